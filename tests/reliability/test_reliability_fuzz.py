"""Fuzzing the component with hostile text, on every tiny model kind.

Every tokenizer family has its own weak spots: WordPiece's normaliser strips accents and control
characters (a token can yield no wordpiece at all), the Unigram/metaspace tokenizer maps unknown
characters to <unk>, and byte-level BPE turns one odd character into several pieces, so a single
long token becomes hundreds of windows. Whatever the input, the component must not crash, must
leave the text alone, and must tag every token.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from pathlib import Path

import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.language import Language
from spacy.tokens import Doc

# bert is the lowercasing, accent-stripping WordPiece; "distilbert-uncased" feeds the cased model
# lowercased words (case_sensitive=False), which changes some words' lengths ("İ" -> "i̇").
VARIANTS = {
    "distilbert": ("distilbert", {}),
    "distilbert-uncased": ("distilbert", {"case_sensitive": False}),
    "bert": ("bert", {}),
    "albert": ("albert", {}),
    "longformer": ("longformer", {}),
}
KINDS = ["distilbert", "bert", "albert", "longformer"]
FUZZ = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def nlps(tiny_model: Callable[..., Path]) -> dict[str, Language]:
    """One loaded pipeline per variant; max_length 128 so that long inputs are windowed."""
    out = {}
    for name, (kind, extra) in VARIANTS.items():
        nlp = spacy.blank("en")
        config = {"model": str(tiny_model(kind)), "max_length": 128, "batch_size": 16, **extra}
        nlp.add_pipe("token_classifier", config=config)
        nlp.initialize()
        out[name] = nlp
    return out


def check(doc: Doc, text: str) -> None:
    """No change to the text, one B/I/O tag per token, disjoint entities without whitespace."""
    assert doc.text == text
    assert all(t.ent_iob_ in ("B", "I", "O") for t in doc)
    end = 0
    for ent in doc.ents:
        assert end <= ent.start < ent.end
        end = ent.end
        assert not any(t.is_space for t in ent)
    assert len(doc.spans["nerzoo"]) == len(doc.ents)


# -- generated text --------------------------------------------------------------------------

# Every category but lone surrogates (Cs), which get their own test below.
ANY_CHAR = st.characters(exclude_categories=("Cs",))
# Fragments that stress normalisers and pre-tokenizers, mixed with ordinary words.
FRAGMENTS = st.sampled_from(
    [
        "Berlin",
        "Angela Merkel",
        " ",
        "\n",
        "\u0301",  # combining acute accent
        "e\u0301\u0323",
        "\u200d",  # zero-width joiner
        "\u200c",  # zero-width non-joiner
        "\u200b",  # zero-width space
        "\ufeff",  # BOM
        "\u202e",  # right-to-left override
        "\u200f",  # right-to-left mark
        "مرحبا بالعالم",
        "שלום עולם",
        "👨\u200d👩\u200d👧\u200d👦",
        "🏳️\u200d🌈",
        "\ufe0f",
        "\U000e0041",  # tag character
        "\x00",
        "\x1f",
        "\u2028",
        "\uffff",
        "\U0010ffff",
        "[SEP]",
        "<s>",
        "</s>",
        "[CLS]",
        "<pad>",
        "<mask>",
        "...",
        "!?",
    ]
)


@pytest.mark.parametrize("variant", list(VARIANTS))
@FUZZ
@given(text=st.text(ANY_CHAR, max_size=200))
def test_any_unicode_text(nlps, variant, text):
    nlp = nlps[variant]
    check(nlp(text), text)


@pytest.mark.parametrize("variant", list(VARIANTS))
@FUZZ
@given(parts=st.lists(st.one_of(FRAGMENTS, st.text(ANY_CHAR, max_size=5)), max_size=40))
def test_hostile_fragments(nlps, variant, parts):
    text = "".join(parts)
    check(nlps[variant](text), text)


@pytest.mark.parametrize("variant", ["distilbert", "albert", "longformer"])
@FUZZ
@given(raw=st.binary(max_size=400))
def test_random_bytes_decoded_with_replacement(nlps, variant, raw):
    text = raw.decode("utf-8", errors="replace")
    check(nlps[variant](text), text)


@pytest.mark.parametrize("variant", ["distilbert", "albert", "longformer"])
@FUZZ
@given(words=st.lists(st.text(ANY_CHAR, min_size=1, max_size=8), max_size=30))
def test_arbitrary_pre_tokenised_words(nlps, variant, words):
    nlp = nlps[variant]
    doc = nlp(Doc(nlp.vocab, words=words))
    check(doc, doc.text)
    assert [t.text for t in doc] == words


# -- hand-made cases -------------------------------------------------------------------------

_rng = random.Random(1234)
HAND_MADE = {
    "combining marks": "Z\u0351\u036b\u0343a\u0352\u0310l\u0342g\u0366o " * 20
    + "e"
    + "\u0301" * 300,
    "only combining marks": "\u0301\u0302\u0303 \u0323\u0324",
    "zero-width joiners": "👩\u200d💻 in Berlin \u200d\u200d\u200d Paris\u200c\u200b London",
    "right-to-left": "\u202bقال أنجيلا ميركل في برلين\u202c و "
    + "\u05d0\u05e0\u05d2\u05dc\u05d4 \u200fטל",
    "bidi overrides": "\u202eBerlin\u202c \u2066Paris\u2069 \u061cLondon",
    "random bytes": bytes(_rng.randrange(256) for _ in range(1500)).decode("utf-8", "replace"),
    "only punctuation": "!!! ... ,,, ;;; ??? --- ((( ))) [[[ ]]] {{{ }}} '\"'\"` ~@#$%^&*" * 4,
    "only newlines": "\n" * 500,
    "only whitespace mix": " \t\n\r\u3000\xa0\u2028\u2029\x0b\x0c" * 50,
    "crlf lines": "Angela Merkel\r\nmet Tim Cook\r\n\r\nin Berlin.\r\n",
    "control characters": "".join(chr(c) for c in range(32)) + "Berlin" + "\x7f\x80\x9f",
    "special-token text": "[CLS] [SEP] [PAD] [MASK] [UNK] <s> </s> <pad> <unk> <mask> Berlin",
    "private use and noncharacters": "\ue000\uf8ff \U000f0000 \ufdd0\ufffe Berlin \ufffd",
    "many emoji": "😀" * 600,
    "cjk without spaces": "東京とパリとベルリン" * 60,
    "long run of one piece": "ab " * 1000,
}


@pytest.mark.parametrize("case", list(HAND_MADE))
@pytest.mark.parametrize("kind", KINDS)
def test_hand_made_inputs(nlps, kind, case):
    text = HAND_MADE[case]
    check(nlps[kind](text), text)


def test_lone_surrogates_are_refused_by_spacy_itself():
    # Strings from surrogateescape decoding cannot enter a spaCy Doc at all (its string store
    # encodes UTF-8), so they never reach the component; callers must clean them first.
    nlp = spacy.blank("en")
    with pytest.raises(UnicodeEncodeError):
        nlp.make_doc(b"caf\xe9 in Berlin".decode("utf-8", "surrogateescape"))


def _long_token(n: int) -> str:
    # A realistic worst case for byte-level BPE: letters, digits, accents, CJK and emoji mixed,
    # as in a base64 blob, a minified URL or a mangled scrape.
    rng = random.Random(0)
    alphabet = string.ascii_letters + string.digits + "éüßøñ漢字東京😀🎉/+=_-"
    return "".join(rng.choice(alphabet) for _ in range(n))


# Unigram and byte-level BPE make ~90,000 and ~140,000 wordpieces of the token, which then runs
# in hundreds of windows: about a second each on an idle two-core machine.
@pytest.mark.parametrize("kind", KINDS)
def test_token_of_100000_characters(nlps, kind):
    nlp = nlps[kind]
    words = ["Angela", "Merkel", "met", _long_token(100_000), "in", "Berlin", "."]
    doc = nlp(Doc(nlp.vocab, words=words))
    check(doc, " ".join(words) + " ")
    assert [t.text for t in doc] == words


@pytest.mark.slow  # 15-25 s per model kind on two cores
@pytest.mark.parametrize("kind", KINDS)
def test_document_of_1000000_characters(nlps, kind):
    rng = random.Random(0)
    parts = list(HAND_MADE.values()) + ["Angela Merkel met Tim Cook in Berlin on Monday."] * 40
    text = ""
    while len(text) < 999_000:
        text += rng.choice(parts) + rng.choice([" ", "\n", "\n\n", ". "])
    text = text[:1_000_000]
    nlp = nlps[kind]
    doc = nlp(text)
    check(doc, text)
    assert len(text) == 1_000_000 and doc.ents
