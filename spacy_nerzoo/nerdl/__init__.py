"""NerDL: a trainable BiLSTM-CNN-CRF tagger over ELMo, frozen transformer or plain word embeddings.

Importing this package registers the factories ``nerdl``, ``elmo_conll03`` and
``distilbert_conll03`` and, where torch is installed, the architectures ``spacy_nerzoo.NerDL.v1``,
``spacy_nerzoo.WordEmbeddings.v1``, ``spacy_nerzoo.ElmoEmbeddings.v1`` and
``spacy_nerzoo.TransformerEmbeddings.v1``. It imports without torch (see ``component.py``); the
torch parts live in ``model``, ``embeddings``, ``crf`` and ``elmo``.
"""

from .component import NerDLTagger, make_nerdl

__all__ = ["NerDLTagger", "make_nerdl"]
