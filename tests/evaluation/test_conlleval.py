"""conlleval re-implementation: published counts, layout, and parity with seqeval on noisy tags."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from spacy_nerzoo.data.readers import read_sentences
from spacy_nerzoo.evaluation.conlleval import (
    Chunk,
    detect_scheme,
    iter_chunks,
    map_tags,
    score_tags,
)

CONLL_TYPES = ["LOC", "MISC", "ORG", "PER"]
HEADER = re.compile(r"^processed \d+ tokens with \d+ phrases; found: \d+ phrases; correct: \d+\.$")
OVERALL = re.compile(
    r"^accuracy: [ \d]{2}\d\.\d\d%; precision: [ \d]{2}\d\.\d\d%; "
    r"recall: [ \d]{2}\d\.\d\d%; FB1: [ \d]{2}\d\.\d\d$"
)
PER_TYPE = re.compile(
    r"^ *\S+: precision: [ \d]{2}\d\.\d\d%; recall: [ \d]{2}\d\.\d\d%; "
    r"FB1: [ \d]{2}\d\.\d\d  \d+$"
)


def _gold(shared_data: Path, split: str) -> list[list[str]]:
    return [s.tags for _, s in read_sentences(shared_data / "conll2003" / f"{split}.txt")]


def _corrupt(gold: list[list[str]], seed: int, rate: float, tags: list[str]) -> list[list[str]]:
    """Replace a fraction of tags at random: produces stray I- tags, type changes, split phrases."""
    rng = random.Random(seed)
    return [[rng.choice(tags) if rng.random() < rate else t for t in sent] for sent in gold]


def _to_iobes(sent: list[str]) -> list[str]:
    out = []
    for i, tag in enumerate(sent):
        nxt = sent[i + 1] if i + 1 < len(sent) else "O"
        if tag == "O":
            out.append(tag)
            continue
        ends = nxt[:2] != "I-" or nxt[2:] != tag[2:]
        if tag.startswith("B-"):
            out.append(("S-" if ends else "B-") + tag[2:])
        else:
            out.append(("E-" if ends else "I-") + tag[2:])
    return out


def _assert_matches_seqeval(gold: list[list[str]], pred: list[list[str]], **kwargs: str) -> None:
    result = score_tags(gold, pred, **kwargs)  # type: ignore[arg-type]
    report = classification_report(gold, pred, mode=None, output_dict=True, zero_division=0)
    types = {k for k in report if not k.endswith(" avg")}
    assert types == set(result.types)
    for name in types:
        assert result.types[name].precision == pytest.approx(report[name]["precision"], abs=1e-9)
        assert result.types[name].recall == pytest.approx(report[name]["recall"], abs=1e-9)
        assert result.types[name].f1 == pytest.approx(report[name]["f1-score"], abs=1e-9)
        assert result.types[name].gold == report[name]["support"]
    assert result.precision == pytest.approx(precision_score(gold, pred), abs=1e-9)
    assert result.recall == pytest.approx(recall_score(gold, pred), abs=1e-9)
    assert result.f1 == pytest.approx(f1_score(gold, pred), abs=1e-9)


def test_chunks_follow_conlleval_rules() -> None:
    tags = ["I-PER", "I-PER", "B-PER", "I-LOC", "O", "I-ORG", "B-ORG", "O", "B-MISC"]
    assert list(iter_chunks(tags)) == [
        Chunk("PER", 0, 2),
        Chunk("PER", 2, 3),
        Chunk("LOC", 3, 4),
        Chunk("ORG", 5, 6),
        Chunk("ORG", 6, 7),
        Chunk("MISC", 8, 9),
    ]
    iobes = ["S-PER", "B-LOC", "E-LOC", "E-LOC", "I-ORG", "E-ORG"]
    assert list(iter_chunks(iobes)) == [
        Chunk("PER", 0, 1),
        Chunk("LOC", 1, 3),
        Chunk("LOC", 3, 4),
        Chunk("ORG", 4, 6),
    ]
    io = ["person-actor", "person-actor", "person-artist", "O", "location-GPE"]
    assert list(iter_chunks(io, scheme="io")) == [
        Chunk("person-actor", 0, 2),
        Chunk("person-artist", 2, 3),
        Chunk("location-GPE", 4, 5),
    ]
    assert list(iter_chunks(io, scheme="io", label_level="coarse")) == [
        Chunk("person", 0, 3),
        Chunk("location", 4, 5),
    ]


def test_format_layout_and_small_example() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["I-ORG", "O"]]
    result = score_tags(gold, pred)
    lines = result.format().split("\n")
    assert lines == [
        "processed 6 tokens with 3 phrases; found: 3 phrases; correct: 2.",
        "accuracy:  66.67%; precision:  66.67%; recall:  66.67%; FB1:  66.67",
        "              LOC: precision:   0.00%; recall:   0.00%; FB1:   0.00  0",
        "              ORG: precision:  50.00%; recall: 100.00%; FB1:  66.67  2",
        "              PER: precision: 100.00%; recall: 100.00%; FB1: 100.00  1",
    ]
    assert HEADER.match(lines[0]) and OVERALL.match(lines[1])
    assert all(PER_TYPE.match(line) for line in lines[2:])
    # (The stray I-ORG opening the second sentence is a correct ORG phrase, as in conlleval.pl.)
    data = result.to_dict()
    assert data["types"]["ORG"] == {
        "precision": 0.5,
        "recall": 1.0,
        "f1": pytest.approx(2 / 3),
        "gold": 1,
        "found": 2,
        "correct": 1,
    }
    assert data["tokens"] == 6 and data["f1"] == pytest.approx(2 / 3)


def test_phrase_across_sentence_break_is_split() -> None:
    # conlleval treats a sentence break as O on both sides, so I-PER I-PER across it is two phrases.
    result = score_tags([["O", "B-PER"], ["I-PER"]], [["O", "B-PER"], ["I-PER"]])
    assert (result.overall.gold, result.overall.found, result.overall.correct) == (2, 2, 2)
    joined = score_tags([["O", "B-PER", "I-PER"]], [["O", "B-PER", "I-PER"]])
    assert joined.overall.gold == 1


def test_empty_and_mismatched() -> None:
    assert (
        score_tags([], []).format()
        == "processed 0 tokens with 0 phrases; found: 0 phrases; correct: 0."
    )
    with pytest.raises(ValueError, match="sentence 1"):
        score_tags([["O"], ["O", "O"]], [["O"], ["O"]])


def test_restricted_types_and_coarse() -> None:
    gold = [["person-actor", "O", "location-GPE", "event-election"]]
    pred = [["person-actor", "building-hospital", "location-GPE", "O"]]
    full = score_tags(gold, pred, scheme="io")
    assert (full.overall.gold, full.overall.found, full.overall.correct) == (3, 3, 2)
    only = score_tags(gold, pred, scheme="io", types={"person-actor", "location-GPE"})
    assert set(only.types) == {"person-actor", "location-GPE"}
    assert only.f1 == 1.0
    # A coarse name keeps all its fine types.
    person = score_tags(gold, pred, scheme="io", types={"person"})
    assert set(person.types) == {"person-actor"}
    coarse = score_tags(
        [["person-actor", "person-artist", "O"]],
        [["person-director", "person-director", "O"]],
        scheme="io",
        label_level="coarse",
    )
    assert set(coarse.types) == {"person"} and coarse.f1 == 1.0
    assert map_tags([["B-person-actor", "O"]], scheme="iob", label_level="coarse") == [
        ["B-person", "O"]
    ]


def test_detect_scheme() -> None:
    assert detect_scheme([["B-PER", "O"]]) == "iob"
    assert detect_scheme([["person-actor", "O"]]) == "io"
    assert detect_scheme([["O"]], [["S-LOC"]]) == "iob"


@pytest.mark.shared
@pytest.mark.parametrize(
    ("split", "header"),
    [
        ("test", "processed 46435 tokens with 5648 phrases; found: 5648 phrases; correct: 5648."),
        ("valid", "processed 51362 tokens with 5942 phrases; found: 5942 phrases; correct: 5942."),
    ],
)
def test_gold_against_itself(shared_data: Path, split: str, header: str) -> None:
    gold = _gold(shared_data, split)
    lines = score_tags(gold, gold).format().split("\n")
    assert lines[0] == header
    assert lines[1] == "accuracy: 100.00%; precision: 100.00%; recall: 100.00%; FB1: 100.00"
    assert [line.split(":")[0].strip() for line in lines[2:]] == CONLL_TYPES


@pytest.mark.shared
@pytest.mark.parametrize(("seed", "rate"), [(0, 0.02), (1, 0.1), (2, 0.3)])
def test_matches_seqeval_on_noisy_conll(shared_data: Path, seed: int, rate: float) -> None:
    gold = _gold(shared_data, "test")
    tags = ["O"] + [f"{p}-{t}" for t in CONLL_TYPES for p in "BI"]
    pred = _corrupt(gold, seed, rate, tags)
    assert any(  # the corruption must produce stray I- tags after O
        a == "O" and b.startswith("I-") for s in pred for a, b in zip(s, s[1:], strict=False)
    )
    _assert_matches_seqeval(gold, pred)
    # Corrupting the gold side too exercises stray I- tags in the reference.
    _assert_matches_seqeval(_corrupt(gold, seed + 100, rate, tags), pred)
    lines = score_tags(gold, pred).format().split("\n")
    assert HEADER.match(lines[0]) and OVERALL.match(lines[1])
    assert all(PER_TYPE.match(line) for line in lines[2:])


@pytest.mark.shared
def test_matches_seqeval_on_noisy_iobes(shared_data: Path) -> None:
    gold = [_to_iobes(s) for s in _gold(shared_data, "valid")]
    tags = ["O"] + [f"{p}-{t}" for t in CONLL_TYPES for p in "BIES"]
    _assert_matches_seqeval(gold, _corrupt(gold, 7, 0.1, tags))


@pytest.mark.shared
def test_io_matches_seqeval_on_fewnerd(shared_data: Path) -> None:
    """IO runs equal what seqeval finds when every tag is read as ``I-<tag>``."""
    sents = [s.tags for _, s in read_sentences(shared_data / "fewnerd_inter" / "test.txt")]
    gold = sents[:3000]
    labels = sorted({t for s in gold for t in s})
    pred = _corrupt(gold, 3, 0.1, labels)

    def prefixed(seqs: list[list[str]]) -> list[list[str]]:
        return [[t if t == "O" else f"I-{t}" for t in s] for s in seqs]

    result = score_tags(gold, pred, scheme="auto")
    assert result.scheme == "io"
    assert result.f1 == pytest.approx(f1_score(prefixed(gold), prefixed(pred)), abs=1e-9)
    _assert_matches_seqeval(prefixed(gold), prefixed(pred))
