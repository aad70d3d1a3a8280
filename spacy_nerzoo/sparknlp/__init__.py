"""Import Spark NLP 3.x model downloads (the zoo's seed models) into spaCy pipelines.

``import_sparknlp(zip, output)`` (or ``nerzoo import-sparknlp ZIP OUTPUT``) converts
AlbertForTokenClassification, DistilBertForTokenClassification and LongformerForTokenClassification
into Hugging Face folders for ``token_classifier``, and NerDLModel into a spaCy pipeline whose
``nerdl`` component runs Spark NLP's graph; DistilBertEmbeddings (the encoder of
``ner_conll_distilbert_base_cased``) into a Hugging Face folder and ElmoEmbeddings (TF Hub's ELMo,
under ``ner_conll_elmo``) into ELMo's options + weights files, for that tagger's embeddings.
Reading the TF files needs ``pip install 'spacy-nerzoo[sparknlp]'``; the converted models do not.
"""

from __future__ import annotations

from .convert import component_config, embeddings_config, import_sparknlp, supported_annotators
from .errors import SparkNLPFormatError

__all__ = [
    "SparkNLPFormatError",
    "component_config",
    "embeddings_config",
    "import_sparknlp",
    "supported_annotators",
]
