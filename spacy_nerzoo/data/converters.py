"""Convert CoNLL-2003 and Few-NERD column files to spaCy ``.spacy`` DocBins with gold entities.

Entities are decoded with the same rules the evaluator counts phrases by
(``spacy_nerzoo.evaluation.conlleval.iter_chunks``): IOB2 for CoNLL-2003, where a stray ``I-`` after
``O`` opens an entity as conlleval does, and IO for Few-NERD, where adjacent tokens of one type form
one entity as in Few-NERD's official evaluation. Converting a split and scoring it against itself
therefore finds exactly the published number of phrases (5,648 on CoNLL-2003 test).

By default one ``Doc`` holds one source document with its sentence boundaries set, because document
context is what lets a model see a sentence's neighbours; ``per_sentence`` gives one ``Doc`` per
sentence instead. Words are joined by single spaces: the corpora are pre-tokenised and keep no
original whitespace. With ``newlines`` each sentence ends in a newline token instead, as a line of
the source article: the layout raw text has, so a Doc's ``text`` re-tokenised by spaCy (what
``spacy evaluate`` predicts on) still shows where CoNLL-2003's lines (headlines, table rows,
datelines) end, even though it carries no sentence starts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

from ..evaluation.conlleval import OUTSIDE, LabelLevel, iter_chunks
from ..serialization import atomic_path
from .readers import Sentence, read_documents

Format = Literal["conll03", "fewnerd", "auto"]

# How many tagged lines ``detect_format`` looks at before deciding.
_DETECT_LINES = 2000


def detect_format(path: str | Path) -> Literal["conll03", "fewnerd"]:
    """Tell CoNLL-2003 from Few-NERD by looking at the first tagged lines of a file.

    CoNLL-2003 tags carry ``B-``/``I-`` prefixes; Few-NERD's are bare ``coarse-fine`` labels. If no
    entity tag shows up early, the separator decides (Few-NERD files are tab-separated).
    """
    has_tab = False
    seen = 0
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if line.startswith("-DOCSTART-"):
                return "conll03"
            has_tab = has_tab or "\t" in line
            tag = (line.split("\t") if "\t" in line else line.split(" "))[-1]
            if tag != OUTSIDE:
                return "conll03" if tag[:2] in ("B-", "I-", "E-", "S-") else "fewnerd"
            seen += 1
            if seen >= _DETECT_LINES:
                break
    return "fewnerd" if has_tab else "conll03"


def _make_doc(
    vocab: Vocab,
    sentences: Sequence[Sentence],
    scheme: Literal["iob", "io"],
    label_level: LabelLevel,
    newlines: bool = False,
) -> Doc:
    """One Doc over some sentences: words, sentence starts and gold entities (rest marked O);
    with ``newlines`` a ``"\n"`` token ends every sentence but the last."""
    words: list[str] = []
    spaces: list[bool] = []
    sent_starts: list[bool] = []
    starts: list[int] = []  # token index of each sentence's first word
    for k, s in enumerate(sentences):
        if k and newlines:
            spaces[-1] = False
            words.append("\n")
            spaces.append(False)
            sent_starts.append(False)
        starts.append(len(words))
        words += s.words
        spaces += [True] * len(s.words)
        sent_starts += [i == 0 for i in range(len(s.words))]
    if words:
        spaces[-1] = False
    doc = Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts)
    spans: list[Span] = []
    for s, offset in zip(sentences, starts, strict=True):
        for chunk in iter_chunks(s.tags, scheme=scheme, label_level=label_level):
            spans.append(Span(doc, offset + chunk.start, offset + chunk.end, label=chunk.label))
    # "outside" marks every other token as a known non-entity, not as missing annotation, which
    # is what a fully labelled corpus means (and what training on it must see).
    doc.set_ents(spans, default="outside")
    return doc


def docs_from_file(
    input_path: str | Path,
    vocab: Vocab | None = None,
    *,
    format: Format = "auto",
    per_sentence: bool = False,
    label_level: LabelLevel = "fine",
    newlines: bool = False,
) -> Iterator[Doc]:
    """Yield gold ``Doc`` objects from a CoNLL-2003 or Few-NERD file.

    ``label_level="coarse"`` maps Few-NERD types to their coarse part (``person-actor`` ->
    ``person``) before decoding, so adjacent tokens of two fine types under one coarse type become
    one entity, as in Few-NERD's coarse-grained setting. CoNLL-2003 types have no fine part and are
    unchanged by it.
    """
    fmt = detect_format(input_path) if format == "auto" else format
    scheme: Literal["iob", "io"] = "iob" if fmt == "conll03" else "io"
    vocab = vocab if vocab is not None else Vocab()
    for document in read_documents(input_path):
        if per_sentence:
            for sent in document.sentences:
                yield _make_doc(vocab, [sent], scheme, label_level)
        else:
            yield _make_doc(vocab, document.sentences, scheme, label_level, newlines)


def convert(
    input_path: str | Path,
    output_path: str | Path,
    *,
    format: Format = "auto",
    per_sentence: bool = False,
    label_level: LabelLevel = "fine",
    newlines: bool = False,
) -> int:
    """Write a ``.spacy`` DocBin for a corpus file and return the number of Docs written.

    If ``output_path`` is an existing directory the file is named after the input
    (``test.txt`` -> ``test.spacy``), as ``spacy convert`` does.
    """
    out = Path(output_path)
    if out.is_dir():
        out = out / f"{Path(input_path).stem}.spacy"
    doc_bin = DocBin(attrs=["ORTH", "SPACY", "ENT_IOB", "ENT_TYPE", "SENT_START"])
    n = 0
    for doc in docs_from_file(
        input_path,
        format=format,
        per_sentence=per_sentence,
        label_level=label_level,
        newlines=newlines,
    ):
        doc_bin.add(doc)
        n += 1
    with atomic_path(out, suffix=".tmp.spacy") as tmp:
        doc_bin.to_disk(tmp)
    return n


if __name__ == "__main__":  # ``python -m spacy_nerzoo.data.converters ARGS``: nerzoo convert
    from spacy_nerzoo.cli.main import run_module

    run_module("convert")
