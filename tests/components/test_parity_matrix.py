"""The parity matrix: every tokenizer family gives exactly the entities transformers gives.

Each cell is a tiny random checkpoint built in the session (``parity_model`` in conftest.py): an
architecture, its tokenizer saved as its own class or as the generic ``PreTrainedTokenizerFast``
from the same tokenizer.json (as ModernBERT and many recent checkpoints are published), and
variants of the post-processor (BERT template, RoBERTa, none at all, one that gives token types)
and of byte-level BPE's ``add_prefix_space``. The component, on the torch and the ONNX fp32
backend, must match

- transformers on the same pre-split words, first wordpiece, argmax (conlleval chunks), and
- ``pipeline("token-classification", aggregation_strategy="first")`` on raw text whose words are
  separated by spaces (where spaCy's tokens and the pipeline's words are the same words).

docs/parity.md lists the matrix and what is known not to work, with the reason.
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import pytest
import spacy
import torch
from seqeval.metrics.sequence_labeling import get_entities
from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

from spacy_nerzoo.errors import ModelLoadError

# Pre-split words: punctuation, a long word, scripts the tiny vocabularies barely know.
WORD_TEXTS = [
    "Angela Merkel met Tim Cook in Berlin.",
    "Peter Blackburn reported from Brussels for Reuters, and Apple opened offices in London.",
    "Москва и Санкт-Петербург. 東京とパリ。 Emoji 😀 here.",
]
# Raw text for the pipeline: words separated by spaces, so its words (from offsets) are spaCy's.
PIPELINE_TEXTS = [
    "Angela Merkel met Tim Cook in Berlin on Monday",
    "Peter Blackburn reported from Brussels for Reuters and Apple opened offices in London",
    "The European Commission said on Thursday it disagreed with German advice",
]
MAX_LENGTH = 128
# transformers' pipeline says so for every tokenizer without "##"-style continuation pieces.
pytestmark = pytest.mark.filterwarnings("ignore:Tokenizer does not support real words")

# The architectures (conftest.PARITY_ARCHS says how each is published): WordPiece, Unigram with a
# metaspace, byte-level BPE.
ARCHS = ["bert", "distilbert", "electra", "mpnet", "albert", "xlm-roberta", "deberta-v2"]
ARCHS += ["roberta", "longformer", "modernbert"]
BYTE_LEVEL = {"roberta", "longformer", "modernbert"}
GENERIC_ONLY = {"modernbert"}  # published with PreTrainedTokenizerFast only; no class of its own
TORCH_ONLY = {"longformer"}  # no ONNX export with dynamic shapes (see spacy_nerzoo.export.onnx)

# (architecture, tokenizer class, variant): every architecture with its own class and with the
# generic one from the same tokenizer.json; post-processor variants (none at all; a template that
# gives token types) on BERT, add_prefix_space=False in tokenizer.json on RoBERTa.
CELLS = [
    *[(name, "own", {}) for name in ARCHS if name not in GENERIC_ONLY],
    *[(name, "generic", {}) for name in ARCHS],
    ("bert", "own", {"post": "none"}),
    ("bert", "generic", {"post": "none"}),
    ("roberta", "own", {"add_prefix_space": False}),
    ("roberta", "generic", {"add_prefix_space": False}),
    ("bert", "own", {"post": "typed"}),
]


def cell_id(cell: tuple[str, str, dict]) -> str:
    name, tokenizer, variant = cell
    return "-".join([name, tokenizer, *(f"{k}={v}" for k, v in sorted(variant.items()))])


def backends(cell: tuple[str, str, dict]) -> list[str]:
    """torch everywhere; ONNX fp32 where the model exports and needs no token types (the typed
    cell must fail clearly there: test_token_types_without_an_input_for_them_fail_clearly)."""
    name, _, variant = cell
    if name in TORCH_ONLY or variant.get("post") == "typed":
        return ["torch"]
    return ["torch", "onnx"]


MATRIX = [
    pytest.param(cell, backend, id=f"{cell_id(cell)}-{backend}")
    for cell in CELLS
    for backend in backends(cell)
]


@pytest.fixture(scope="module", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory):
    """One export cache for the module: the variants of an architecture share its weights, so
    each architecture is exported once."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPACY_NERZOO_CACHE", str(tmp_path_factory.mktemp("onnx-cache")))
        yield


def make_nlp(path: Path, **config) -> spacy.language.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "token_classifier",
        config={
            "model": str(path),
            "alignment": "first",
            "decoding": "argmax",
            "max_length": MAX_LENGTH,
            # The reference reads spaCy's tokens as the words ("Санкт", "-", "Петербург");
            # reading split compounds as one word is tested in test_hyphen_compounds.py.
            "join_hyphens": False,
            **config,
        },
    )
    return nlp


def ents(doc) -> list[tuple[int, int, str]]:
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


@cache
def reference_model(path: Path):
    return AutoModelForTokenClassification.from_pretrained(path).eval()


@cache
def reference_tokenizer(path: Path, byte_level: bool):
    # Byte-level BPE encodes pre-split words with a prefix space, as transformers' docs and
    # run_ner load it; every other tokenizer as saved.
    kwargs = {"add_prefix_space": True} if byte_level else {}
    return AutoTokenizer.from_pretrained(path, **kwargs)


@cache
def reference_pipeline(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pipeline(
            "token-classification",
            model=str(path),
            aggregation_strategy="first",
            framework="pt",
            device=-1,
        )


def word_entities(path: Path, doc, byte_level: bool) -> list[tuple[int, int, str]]:
    """transformers on the Doc's words, pre-split: first wordpiece, argmax, conlleval chunks.

    The tokenizer's whole output goes to the model, token_type_ids included where it gives them.
    """
    tokenizer = reference_tokenizer(path, byte_level)
    model = reference_model(path)
    words = [t.text for t in doc if not t.is_space]
    index = [t.i for t in doc if not t.is_space]
    enc = tokenizer(words, is_split_into_words=True, return_tensors="pt")
    with torch.inference_mode():
        pred = model(**enc).logits[0].argmax(-1).tolist()
    if tokenizer.is_fast:
        word_ids = enc.word_ids()
    else:  # a slow tokenizer encodes pre-split words one by one, between its special tokens
        counts = [len(tokenizer.tokenize(w, is_split_into_words=True)) for w in words]
        n_prefix = tokenizer.build_inputs_with_special_tokens([-1]).index(-1)
        word_ids = [None] * n_prefix + [w for w, n in enumerate(counts) for _ in range(n)]
    tags = ["O"] * len(doc)
    seen: set[int] = set()
    for pos, w in enumerate(word_ids):
        if w is not None and w not in seen:
            seen.add(w)
            tags[index[w]] = model.config.id2label[pred[pos]]
    return [(doc[s].idx, doc[e].idx + len(doc[e]), t) for t, s, e in get_entities(tags)]


def pipeline_entities(path: Path, text: str) -> list[tuple[int, int, str]]:
    """The pipeline's entities, their spans without the space a piece may start with (offsets of
    byte-level and metaspace pieces include it unless the tokenizer trims them)."""
    found = []
    for ent in reference_pipeline(path)(text):
        start, end = ent["start"], ent["end"]
        while start < end and text[start].isspace():
            start += 1
        found.append((start, end, ent["entity_group"]))
    return found


def pipeline_text(path: Path, text: str, byte_level: bool) -> str:
    """The raw text the pipeline gets: a byte-level tokenizer without add_prefix_space encodes the
    first word of a text without the space that its other words, and every pre-split word, get;
    a leading space gives the first word the same pieces (see docs/parity.md)."""
    prefix_space = getattr(reference_pipeline(path).tokenizer, "add_prefix_space", False)
    return " " + text if byte_level and not prefix_space else text


@pytest.mark.parametrize(("cell", "backend"), MATRIX)
def test_entities_match_transformers(parity_model, cell, backend):
    name, tokenizer, variant = cell
    path = parity_model(name, tokenizer, **variant)
    byte_level = name in BYTE_LEVEL
    nlp = make_nlp(path, backend=backend)
    found = 0
    for text in WORD_TEXTS:
        doc = nlp(text)
        assert ents(doc) == word_entities(path, nlp.make_doc(text), byte_level), text
        found += len(doc.ents)
    for text in PIPELINE_TEXTS:
        text = pipeline_text(path, text, byte_level)
        doc = nlp(text)
        assert ents(doc) == pipeline_entities(path, text), text
        found += len(doc.ents)
    assert found > 0  # the tiny models do predict entities: the comparison is not vacuous


def test_generic_class_gets_the_special_tokens_of_its_post_processor(parity_model):
    """The reported bug: the generic class's build_inputs_with_special_tokens adds nothing, its
    tokenizer.json adds [CLS]/[SEP]. Windows get what the tokenizer really adds, for both
    classes, and a tokenizer.json without a post-processor gets none, whatever the class says."""
    runtimes = {}
    for tokenizer, post in [("own", None), ("generic", None), ("own", "none")]:
        nlp = make_nlp(parity_model("bert", tokenizer, **({"post": post} if post else {})))
        runtimes[tokenizer, post] = nlp.get_pipe("token_classifier").runtime
    own, generic, bare = runtimes.values()
    assert generic.tokenizer.build_inputs_with_special_tokens([7]) == [7]  # the trap
    cls, sep = own.tokenizer.cls_token_id, own.tokenizer.sep_token_id
    for rt in (own, generic):
        assert rt.prefix.tolist() == [cls] and rt.suffix.tolist() == [sep]
    assert bare.tokenizer.build_inputs_with_special_tokens([7]) == [cls, 7, sep]  # the other trap
    assert bare.n_special == 0


def test_byte_level_tokenizers_encode_words_with_a_prefix_space(parity_model):
    """ModernBERT names the generic class and its tokenizer.json adds no prefix space; pre-split
    words still get one, as with RoBERTa's own class."""
    for name, tokenizer in [("modernbert", "generic"), ("roberta", "generic"), ("roberta", "own")]:
        path = parity_model(name, tokenizer, add_prefix_space=False)
        rt = make_nlp(path).get_pipe("token_classifier").runtime
        pre = json.loads(rt.tokenizer.backend_tokenizer.pre_tokenizer.__getstate__())
        assert pre["add_prefix_space"] is True, (name, tokenizer)


def test_token_types_without_an_input_for_them_fail_clearly(parity_model):
    """A tokenizer that gives a sentence token types other than 0 cannot run on an ONNX graph
    that takes none: one clear error, not silently different entities."""
    nlp = make_nlp(parity_model("bert", "own", post="typed"), backend="onnx")
    with pytest.raises(ModelLoadError, match="token types other than 0.*backend='torch'"):
        nlp("Angela Merkel met Tim Cook in Berlin.")


def test_slow_only_tokenizer_works(slow_model):
    """A checkpoint whose tokenizer has no fast class runs on its slow tokenizer, with the same
    entities as transformers on the same words. (transformers' pipeline refuses first-piece
    aggregation with a slow tokenizer, so there is no raw-text reference.)"""
    path = slow_model
    nlp = make_nlp(path)
    rt = nlp.get_pipe("token_classifier").runtime
    assert not rt.tokenizer.is_fast
    assert rt.prefix.tolist() == [0] and rt.suffix.tolist() == [2]  # <s> ... </s>
    found = 0
    for text in WORD_TEXTS[:2] + PIPELINE_TEXTS:
        doc = nlp(text)
        assert ents(doc) == word_entities(path, nlp.make_doc(text), False), text
        found += len(doc.ents)
    assert found > 0
    with pytest.raises(ValueError, match="Slow tokenizers cannot handle subwords"):
        reference_pipeline(path)
