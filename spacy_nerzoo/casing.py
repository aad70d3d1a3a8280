"""Word casing classes: the case information an uncased encoder's tokenizer throws away.

An uncased WordPiece vocabulary lowercases its input, so "Apple" and "apple", "US" and "us" reach
the encoder as the same pieces. A model trained with casing gets each wordpiece's casing class
(that of the word it belongs to, read from the original text) through BERT's token-type
embedding: the table is widened to :data:`N_CLASSES` rows, every row starting as the pretrained
segment-A row, so training starts from the unchanged encoder and learns what case adds. At
inference the classes go in as ``token_type_ids`` (the torch and ONNX backends take them when the
model's ``config.nerzoo["casing"]`` names a scheme). Class 0 is the special tokens' and padding's,
so a model run without casing ids sees what it saw for ``[CLS]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

# The scheme a model was trained with is stored in its config; a model whose scheme this version
# does not know is refused rather than fed the wrong classes.
SCHEME = "word-shape-v1"
SPECIAL, LOWER, TITLE, UPPER, MIXED, NO_LETTERS = range(6)
N_CLASSES = 6
CLASS_NAMES = ("special", "lower", "title", "upper", "mixed", "no-letters")


@lru_cache(maxsize=200_000)
def word_class(word: str) -> int:
    """The casing class of one word, from its original text.

    ``lower``: letters, none upper-case ("apple"); ``title``: the first letter upper-case and no
    other ("Apple", "A", "O'neill"); ``upper``: two or more letters, all upper-case ("US", "NATO");
    ``mixed``: any other use of capitals ("iPhone", "McDonald"); ``no-letters``: digits and
    punctuation ("1996", "--").
    """
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return NO_LETTERS
    uppers = [c.isupper() for c in letters]
    if not any(uppers):
        return LOWER
    if all(uppers):
        return UPPER if len(letters) > 1 else TITLE
    if uppers[0] and not any(uppers[1:]):
        return TITLE
    return MIXED


_BY_ORTH: dict[int, int] = {}
_MAX_CACHED_ORTHS = 200_000


def orth_classes(orths: Sequence[int], strings: Any) -> list[int]:
    """:func:`word_class` of each word given as a spaCy ORTH hash (``strings``: the vocab's
    ``StringStore``).

    A hash names one string in every vocab, so classes are cached by hash: a word's text is read
    only the first time it is seen, the way the component reads its Docs (``Doc.to_array``).
    """
    cache = _BY_ORTH
    if len(cache) > _MAX_CACHED_ORTHS:
        cache.clear()
    out = []
    for orth in orths:
        found = cache.get(orth)
        if found is None:
            found = cache[orth] = word_class(strings[orth])
        out.append(found)
    return out


def config_scheme(config: Any) -> str | None:
    """The casing scheme a Hugging Face config records (``config.nerzoo["casing"]``), if any."""
    return (getattr(config, "nerzoo", None) or {}).get("casing")


def check_scheme(scheme: object) -> None:
    """Refuse a casing scheme this version cannot compute (a model from a newer release)."""
    if scheme != SCHEME:
        raise ValueError(
            f"the model was trained with casing scheme {scheme!r}, but this version of "
            f"spacy-nerzoo computes {SCHEME!r}; upgrade spacy-nerzoo"
        )
