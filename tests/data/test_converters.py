"""Converters: published corpus counts, IOB2/IO decoding, coarse labels, DocBin round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from spacy.tokens import DocBin
from spacy.vocab import Vocab

from spacy_nerzoo.data.converters import convert, detect_format, docs_from_file

FEWNERD_SAMPLE = (
    "Bagan\tlocation-GPE\nDalam\tlocation-GPE\nin\tO\nMalay\tother-language\n"
    "Tom\tperson-actor\nHanks\tperson-actor\nMeryl\tperson-actor\nStreep\tperson-artist/author\n"
    ".\tO\n\nParis\tlocation-GPE\n"
)
CONLL_SAMPLE = (
    "-DOCSTART- -X- -X- O\n\n"
    "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP I-MISC\ncall NN I-NP O\n\n"
    "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\nLondon NNP I-NP I-LOC\n\n"
    "-DOCSTART- -X- -X- O\n\nBRUSSELS NNP B-NP B-LOC\n"
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _ents(doc: object) -> list[tuple[str, str]]:
    return [(e.text, e.label_) for e in doc.ents]  # type: ignore[attr-defined]


def test_conll_sample_iob2_like_conlleval(tmp_path: Path) -> None:
    path = _write(tmp_path, "sample.txt", CONLL_SAMPLE)
    assert detect_format(path) == "conll03"
    docs = list(docs_from_file(path))
    assert len(docs) == 2
    assert docs[0].text == "EU rejects German call Peter Blackburn London"
    assert [s.text for s in docs[0].sents] == ["EU rejects German call", "Peter Blackburn London"]
    # A stray I-MISC after O starts an entity; I-LOC after I-PER starts a new one (type change).
    assert _ents(docs[0]) == [
        ("EU", "ORG"),
        ("German", "MISC"),
        ("Peter Blackburn", "PER"),
        ("London", "LOC"),
    ]
    assert all(t.ent_iob_ in ("B", "I", "O") for t in docs[0])  # no missing annotation
    per_sentence = list(docs_from_file(path, per_sentence=True))
    assert [d.text for d in per_sentence] == [
        "EU rejects German call",
        "Peter Blackburn London",
        "BRUSSELS",
    ]


def test_newlines_keep_the_lines_of_the_source(tmp_path: Path) -> None:
    """Sentences end in a newline token: re-tokenising the text (as ``spacy evaluate`` does)
    gives the same tokens, and the entities and sentence starts are those of the plain Doc."""
    import spacy

    path = _write(tmp_path, "sample.txt", CONLL_SAMPLE)
    plain = list(docs_from_file(path))
    lined = list(docs_from_file(path, newlines=True))
    assert lined[0].text == "EU rejects German call\nPeter Blackburn London"
    assert [t.text for t in spacy.blank("en").make_doc(lined[0].text)] == [t.text for t in lined[0]]
    for a, b in zip(plain, lined, strict=True):
        assert _ents(a) == _ents(b)
        assert [s.text.strip() for s in a.sents] == [s.text.strip() for s in b.sents]
    assert lined[1].text == plain[1].text == "BRUSSELS"


def test_fewnerd_io_merges_adjacent_same_type(tmp_path: Path) -> None:
    path = _write(tmp_path, "fewnerd.txt", FEWNERD_SAMPLE)
    assert detect_format(path) == "fewnerd"
    docs = list(docs_from_file(path))
    assert len(docs) == 2  # no document structure: one Doc per sentence
    assert _ents(docs[0]) == [
        ("Bagan Dalam", "location-GPE"),
        ("Malay", "other-language"),
        ("Tom Hanks Meryl", "person-actor"),
        ("Streep", "person-artist/author"),
    ]
    coarse = list(docs_from_file(path, label_level="coarse"))
    assert _ents(coarse[0]) == [
        ("Bagan Dalam", "location"),
        ("Malay", "other"),
        ("Tom Hanks Meryl Streep", "person"),
    ]
    assert _ents(coarse[1]) == [("Paris", "location")]


def test_docbin_round_trip(tmp_path: Path) -> None:
    path = _write(tmp_path, "sample.txt", CONLL_SAMPLE)
    out = tmp_path / "out" / "sample.spacy"
    assert convert(path, out) == 2
    docs = list(DocBin().from_disk(out).get_docs(Vocab()))
    originals = list(docs_from_file(path))
    assert [d.text for d in docs] == [d.text for d in originals]
    assert [_ents(d) for d in docs] == [_ents(d) for d in originals]
    assert [[s.start for s in d.sents] for d in docs] == [[0, 4], [0]]
    # A directory as output names the file after the input, as ``spacy convert`` does.
    assert convert(path, tmp_path, per_sentence=True) == 3
    assert (tmp_path / "sample.spacy").exists()


@pytest.mark.shared
@pytest.mark.parametrize(
    ("split", "n_docs", "n_sents", "n_tokens", "n_ents"),
    [("test", 231, 3453, 46435, 5648), ("valid", 216, 3250, 51362, 5942)],
)
def test_conll03_published_counts(
    shared_data: Path,
    tmp_path: Path,
    split: str,
    n_docs: int,
    n_sents: int,
    n_tokens: int,
    n_ents: int,
) -> None:
    path = shared_data / "conll2003" / f"{split}.txt"
    out = tmp_path / f"{split}.spacy"
    assert convert(path, out) == n_docs
    docs = list(DocBin().from_disk(out).get_docs(Vocab()))
    assert len(docs) == n_docs
    assert sum(len(list(d.sents)) for d in docs) == n_sents
    assert sum(len(d) for d in docs) == n_tokens
    assert sum(len(d.ents) for d in docs) == n_ents
    assert convert(path, out, per_sentence=True) == n_sents


@pytest.mark.shared
def test_conll03_test_entity_types(shared_data: Path) -> None:
    from collections import Counter

    docs = docs_from_file(shared_data / "conll2003" / "test.txt")
    counts = Counter(e.label_ for d in docs for e in d.ents)
    assert counts == {"LOC": 1668, "MISC": 702, "ORG": 1661, "PER": 1617}


@pytest.mark.shared
def test_fewnerd_real_sample(shared_data: Path, tmp_path: Path) -> None:
    """First 2,000 sentences of Few-NERD test: entities are exactly the maximal same-tag runs."""
    lines = (shared_data / "fewnerd" / "test.txt").read_text(encoding="utf-8").split("\n")
    sample: list[str] = []
    n_sents = 0
    for line in lines:
        sample.append(line)
        if not line.strip():
            n_sents += 1
            if n_sents == 2000:
                break
    path = _write(tmp_path, "fewnerd.txt", "\n".join(sample) + "\n")
    docs = list(docs_from_file(path))
    assert len(docs) == 2000
    runs = 0
    prev = "O"
    for line in sample:
        tag = line.split("\t")[-1] if line.strip() else "O"
        runs += tag != "O" and tag != prev
        prev = tag
    assert sum(len(d.ents) for d in docs) == runs
    assert all(len(list(d.sents)) == 1 for d in docs)
