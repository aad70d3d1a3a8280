"""The trainer's corpus formats and label sets.

Two formats: ``conll03`` (CoNLL-2003 column files, ``-DOCSTART-`` documents, IOB2 tags) and
``fewnerd`` (``token<TAB>label``, IO tags, one sentence per document). CoNLL-2003's nine tags have
a fixed order (``LABELS``, the ids of the shipped model); other label sets are derived from the
training data (:func:`label_set`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from spacy_nerzoo.catalogue import CONLL_LABELS
from spacy_nerzoo.data.readers import Document
from spacy_nerzoo.decoding import TagScheme
from spacy_nerzoo.networks.hf_token_classifier import IGNORE_INDEX  # noqa: F401 (one definition)

Format = Literal["conll03", "fewnerd"]
#: Tag scheme of each format, as ``TagScheme.from_labels`` names it.
SCHEMES: dict[str, str] = {"conll03": "IOB2", "fewnerd": "IO"}

#: Label set of CoNLL-2003 in IOB2 (from the catalogue's CoNLL labels); the order fixes the ids in
#: the saved config: O, B-LOC, I-LOC, B-MISC, I-MISC, B-ORG, I-ORG, B-PER, I-PER.
LABELS: tuple[str, ...] = ("O", *(f"{p}-{t}" for t in CONLL_LABELS for p in "BI"))


def resolve_format(fmt: str, path: str | Path) -> Format:
    """``auto`` becomes the format of the file at ``path``; ``conll2003`` means ``conll03``."""
    from spacy_nerzoo.data.converters import detect_format

    if fmt == "auto":
        return detect_format(path)
    if fmt == "conll2003":
        return "conll03"
    if fmt not in SCHEMES:
        raise ValueError(f"Unknown format {fmt!r}: choose auto, conll03 or fewnerd")
    return fmt  # type: ignore[return-value]


def label_set(docs: Iterable[Document], fmt: Format) -> tuple[str, ...]:
    """The classifier's tags in id order, for the training data ``docs``.

    CoNLL-2003 data whose tags are all among ``LABELS`` gets ``LABELS`` (the fixed ids of the
    shipped model). Otherwise: ``O`` first, then the data's tags sorted (IO), or ``B-X``, ``I-X``
    for each type ``X`` in sorted order (IOB2). The set must read as the format's scheme in
    ``TagScheme`` (the component's reader), so a prefixed tag in IO data, or an ``E-``/``S-`` tag
    in IOB2 data, is an error here rather than a silently different model.
    """
    tags = {t for doc in docs for t in doc.tags}
    if fmt == "conll03" and tags <= set(LABELS):
        return LABELS
    if fmt == "fewnerd":
        labels = ("O", *sorted(tags - {"O"}))
    else:
        odd = sorted(t for t in tags if t != "O" and t[:2] not in ("B-", "I-"))
        if odd:
            raise ValueError(f"IOB2 data has tags without a B-/I- prefix: {odd[:5]}")
        types = sorted({t[2:] for t in tags if t != "O"})
        labels = ("O", *(f"{prefix}-{typ}" for typ in types for prefix in "BI"))
    scheme = TagScheme.from_labels(labels).name
    if scheme != SCHEMES[fmt]:
        raise ValueError(
            f"The {fmt} training data's tags read as {scheme}, not {SCHEMES[fmt]} (first tags: "
            f"{list(labels[1:6])}); check --format"
        )
    return labels
