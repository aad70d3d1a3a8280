"""Token-level table, prediction files, Doc scoring and the combined report."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from spacy_nerzoo.data.converters import docs_from_file
from spacy_nerzoo.data.readers import read_sentences
from spacy_nerzoo.evaluation.conlleval import score_tags
from spacy_nerzoo.evaluation.report import (
    doc_tags,
    evaluate_docs,
    evaluate_tags,
    read_aligned_tags,
    score_files,
    token_report,
)

CONLL_TEST_SUPPORT = {
    "B-LOC": 1668,
    "B-MISC": 702,
    "B-ORG": 1661,
    "B-PER": 1617,
    "I-LOC": 257,
    "I-MISC": 216,
    "I-ORG": 835,
    "I-PER": 1156,
    "O": 38323,
}
TAGS = ["O"] + [f"{p}-{t}" for t in ["LOC", "MISC", "ORG", "PER"] for p in "BI"]
GOLD = "EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n"


def _corrupt(gold: list[list[str]], seed: int, rate: float = 0.1) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(TAGS) if rng.random() < rate else t for t in s] for s in gold]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_token_table_layout() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "O"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-LOC", "O"]]
    report = token_report(gold, pred)
    assert {r.label: r.support for r in report.rows} == {"B-LOC": 1, "B-PER": 1, "I-PER": 1, "O": 3}
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.format().split("\n") == [
        "              precision    recall  f1-score   support",
        "",
        "       B-LOC     0.5000    1.0000    0.6667         1",
        "       B-PER     1.0000    1.0000    1.0000         1",
        "       I-PER     0.0000    0.0000    0.0000         1",
        "           O     0.6667    0.6667    0.6667         3",
        "",
        "    accuracy                         0.6667         6",
        "   macro avg     0.5417    0.6667    0.5833         6",
        "weighted avg     0.5833    0.6667    0.6111         6",
        "",
    ]
    no_o = token_report(gold, pred, labels=["B-LOC", "B-PER", "I-PER"])
    assert no_o.accuracy is None and no_o.micro is not None
    assert "   micro avg     0.6667    0.6667    0.6667         3" in no_o.format()


def test_token_table_equals_sklearn_on_noise() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(5)
    gold = [[rng.choice(TAGS) for _ in range(rng.randint(1, 30))] for _ in range(200)]
    pred = _corrupt(gold, 6, 0.4)
    flat_gold = [t for s in gold for t in s]
    flat_pred = [t for s in pred for t in s]
    assert token_report(gold, pred).format() == metrics.classification_report(
        flat_gold, flat_pred, digits=4, zero_division=0
    )
    labels = TAGS[1:]
    assert token_report(gold, pred, labels=labels).format() == metrics.classification_report(
        flat_gold, flat_pred, labels=labels, digits=4, zero_division=0
    )
    ours = token_report(gold, pred).to_dict()
    theirs = metrics.classification_report(flat_gold, flat_pred, output_dict=True, zero_division=0)
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value)


def test_prediction_file_formats(tmp_path: Path) -> None:
    gold = _write(tmp_path, "gold.txt", GOLD)
    conlleval_style = _write(
        tmp_path,
        "pred1.txt",
        "EU B-ORG B-ORG\nrejects O O\nGerman B-MISC I-MISC\ncall O O\n\n"
        "Peter B-PER B-PER\nBlackburn I-PER B-PER\n",
    )
    # Tab-separated, no gold column, no sentence breaks: tokens still line up.
    tag_only = _write(
        tmp_path,
        "pred2.txt",
        "EU\tB-ORG\nrejects\tO\nGerman\tI-MISC\ncall\tO\nPeter\tB-PER\nBlackburn\tB-PER\n",
    )
    g1, p1 = read_aligned_tags(gold, conlleval_style)
    g2, p2 = read_aligned_tags(gold, tag_only)
    assert g1 == g2 == [["B-ORG", "O", "B-MISC", "O"], ["B-PER", "I-PER"]]
    assert p1 == p2 == [["B-ORG", "O", "I-MISC", "O"], ["B-PER", "B-PER"]]
    report = score_files(gold, conlleval_style)
    assert report.phrase.format().split("\n")[0] == (
        "processed 6 tokens with 3 phrases; found: 4 phrases; correct: 2."
    )
    assert report.format() == score_files(gold, tag_only).format()


def test_misaligned_prediction_file(tmp_path: Path) -> None:
    gold = _write(tmp_path, "gold.txt", GOLD)
    shifted = _write(tmp_path, "shifted.txt", "EU O\nGerman O\ncall O\n\nPeter O\nBlackburn O\n")
    with pytest.raises(ValueError, match=r"shifted\.txt:2: token 'German' does not line up with "):
        score_files(gold, shifted)
    short = _write(tmp_path, "short.txt", "EU O\nrejects O\nGerman O\ncall O\n\nPeter O\n")
    with pytest.raises(ValueError, match=r"ends before .*gold\.txt:7 \(token 'Blackburn'\)"):
        score_files(gold, short)
    long = _write(tmp_path, "long.txt", GOLD + "extra O\n")
    with pytest.raises(ValueError, match=r"long\.txt:8: token 'extra' is past the end"):
        score_files(gold, long)


def test_gold_types_restriction(tmp_path: Path) -> None:
    """Partial files (Few-NERD INTER) are scored on their own types only."""
    gold = _write(tmp_path, "gold.txt", "A\tperson-actor\nB\tO\nC\tO\n\nD\tevent-election\n")
    pred = _write(tmp_path, "pred.txt", "A\tperson-actor\nB\tart-music\nC\tO\n\nD\tO\n")
    full = score_files(gold, pred)
    assert full.phrase.precision == 0.5
    own = score_files(gold, pred, types="gold")
    assert own.types == ["event-election", "person-actor"]
    assert own.phrase.precision == 1.0 and own.phrase.recall == 0.5
    assert "art-music" not in {r.label for r in own.token.rows}
    with pytest.raises(TypeError):
        score_files(gold, pred, types="person-actor")


def _doc(words: list[str], ents: list[tuple[int, int, str]], sent_starts: list[int]) -> Doc:
    doc = Doc(
        Vocab(),
        words=words,
        sent_starts=[i in sent_starts for i in range(len(words))],
    )
    doc.ents = [Span(doc, s, e, label=lab) for s, e, lab in ents]
    return doc


def test_evaluate_docs_small() -> None:
    words = ["Tom", "Hanks", "Meryl", "Streep", "in", "Paris", "Paris"]
    gold = _doc(words, [(0, 2, "PER"), (2, 4, "PER"), (5, 6, "LOC")], [0, 6])
    pred = _doc(words, [(0, 2, "PER"), (2, 4, "PER"), (5, 7, "LOC")], [0])
    assert doc_tags(gold) == ["B-PER", "I-PER", "B-PER", "I-PER", "O", "B-LOC", "O"]
    assert doc_tags(gold, scheme="io") == ["PER"] * 4 + ["O", "LOC", "O"]
    report = evaluate_docs([gold], [pred])
    # Gold sentence breaks split the sequences: the predicted LOC spanning one becomes two phrases.
    assert report.phrase.format().split("\n")[0] == (
        "processed 7 tokens with 3 phrases; found: 4 phrases; correct: 3."
    )
    io = evaluate_docs([gold], [pred], scheme="io")
    assert (io.phrase.overall.gold, io.phrase.overall.found) == (2, 3)  # the two PER merge
    json.dumps(report.to_dict())
    assert report.format().endswith(report.phrase.format())
    assert report.format().startswith(report.token.format())


def test_evaluate_docs_errors() -> None:
    gold = _doc(["a", "b"], [], [0])
    with pytest.raises(
        ValueError, match=r"doc 0: tokens differ at token 1 \(gold 'b', predicted 'c'\)"
    ):
        evaluate_docs([gold], [_doc(["a", "c"], [], [0])])
    with pytest.raises(ValueError, match="doc 1: predicted docs ran out first"):
        evaluate_docs([gold, gold], [gold])


@pytest.mark.shared
@pytest.mark.parametrize(
    ("split", "header"),
    [
        ("test", "processed 46435 tokens with 5648 phrases; found: 5648 phrases; correct: 5648."),
        ("valid", "processed 51362 tokens with 5942 phrases; found: 5942 phrases; correct: 5942."),
    ],
)
def test_files_against_themselves(shared_data: Path, split: str, header: str) -> None:
    path = shared_data / "conll2003" / f"{split}.txt"
    report = score_files(path, path)
    assert report.phrase.format().split("\n")[0] == header
    if split == "test":
        assert {r.label: r.support for r in report.token.rows} == CONLL_TEST_SUPPORT
        assert report.token.accuracy == 1.0
    docs = list(docs_from_file(path))
    assert evaluate_docs(docs, docs).format() == report.format()
    # Docs that keep the source's lines (newline tokens) count the same words.
    lined = list(docs_from_file(path, newlines=True))
    assert evaluate_docs(lined, lined).format() == report.format()


@pytest.mark.shared
def test_noisy_prediction_file_and_docs(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "conll2003" / "test.txt"
    sents = [s for _, s in read_sentences(path)]
    gold = [s.tags for s in sents]
    pred = _corrupt(gold, 11)
    lines = []
    for sent, tags in zip(sents, pred, strict=True):
        lines += [f"{w} {g} {p}" for w, g, p in zip(sent.words, sent.tags, tags, strict=True)]
        lines.append("")
    pred_path = _write(tmp_path, "pred.txt", "\n".join(lines))
    report = score_files(path, pred_path)
    assert report.format() == evaluate_tags(gold, pred).format()
    assert report.phrase.to_dict() == score_tags(gold, pred).to_dict()
    assert sum(r.support for r in report.token.rows) == 46435
    assert {r.label: r.support for r in report.token.rows} == CONLL_TEST_SUPPORT

    # The same predictions as Docs (decoded like the converter does) give the same phrase block.
    pred_docs = list(docs_from_file(pred_path, format="conll03"))
    gold_docs = list(docs_from_file(path))
    assert len(pred_docs) == 3453
    flat_pred = iter(pred_docs)
    pred_by_doc = []
    for g_doc in gold_docs:
        n_sents = len(list(g_doc.sents))
        parts = [next(flat_pred) for _ in range(n_sents)]
        pred_by_doc.append(Doc.from_docs(parts, ensure_whitespace=True))
    doc_report = evaluate_docs(gold_docs, pred_by_doc)
    # Docs hold decoded entities, so stray I- tags are already B-: phrase counts are unchanged.
    assert doc_report.phrase.overall == report.phrase.overall
    assert doc_report.phrase.types == report.phrase.types
