"""Readers for the column formats of the corpora the zoo is trained on.

Both corpora share one shape: one token per line, the tag in the last column, a blank line between
sentences. CoNLL-2003 adds ``-DOCSTART-`` lines that open a document; we keep them, because document
context is what lets a model see a sentence's neighbours. Few-NERD has no documents: every sentence
is its own document.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DOCSTART = "-DOCSTART-"


@dataclass
class Sentence:
    words: list[str]
    tags: list[str]


@dataclass
class Document:
    sentences: list[Sentence] = field(default_factory=list)

    @property
    def words(self) -> list[str]:
        return [w for s in self.sentences for w in s.words]

    @property
    def tags(self) -> list[str]:
        return [t for s in self.sentences for t in s.tags]


def read_sentences(path: str | Path) -> Iterator[tuple[bool, Sentence]]:
    """Yield ``(starts_document, sentence)`` for a column file.

    Columns may be separated by spaces (CoNLL-2003) or tabs (Few-NERD); the first column is the word
    and the last the tag. A line that cannot be parsed raises ``ValueError`` naming file and line,
    rather than silently dropping text.
    """
    path = Path(path)
    words: list[str] = []
    tags: list[str] = []
    new_doc = False
    with path.open(encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                if words:
                    yield new_doc, Sentence(words, tags)
                    new_doc = False
                    words, tags = [], []
                continue
            parts = line.split("\t") if "\t" in line else line.split(" ")
            if parts[0] == DOCSTART:
                if words:
                    yield new_doc, Sentence(words, tags)
                    words, tags = [], []
                new_doc = True
                continue
            if len(parts) < 2 or not parts[0]:
                raise ValueError(f"{path}:{lineno}: expected 'word ... tag', got {line!r}")
            words.append(parts[0])
            tags.append(parts[-1])
    if words:
        yield new_doc, Sentence(words, tags)


def read_documents(path: str | Path) -> list[Document]:
    """Group a column file into documents.

    ``-DOCSTART-`` lines open a new document; a file without any (Few-NERD) gives one document per
    sentence.
    """
    docs: list[Document] = []
    has_docstart = False
    for starts_doc, sent in read_sentences(path):
        has_docstart = has_docstart or starts_doc
        if starts_doc or not docs or not has_docstart:
            docs.append(Document())
        docs[-1].sentences.append(sent)
    return docs
