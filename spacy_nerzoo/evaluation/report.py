"""Full evaluation reports: the token-level table, then conlleval's phrase-level block.

The Spark NLP model cards print two blocks: a per-tag table in the layout of scikit-learn's
``classification_report(digits=4)``, then conlleval's output. We produce both from one pass over the
tags, without depending on scikit-learn (a few counts in numpy are all it needs), and we read the
inputs three ways: tag sequences, CoNLL column files (gold plus a prediction file), and spaCy
``Doc`` objects, so a model, a file from another toolkit and a paper's output are scored alike.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from spacy.tokens import Doc
from spacy.vocab import Vocab

from .conlleval import (
    OUTSIDE,
    ConllevalResult,
    LabelLevel,
    Scheme,
    map_tags,
    resolve_scheme,
    score_tags,
    tag_types,
)

DOCSTART = "-DOCSTART-"
TypesOption = Collection[str] | Literal["gold"] | None


@dataclass
class TokenScores:
    """One row of the token-level table; scores are fractions, ``support`` counts gold tokens."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1-score": self.f1,
            "support": self.support,
        }


@dataclass
class TokenReport:
    """Per-tag precision/recall/F1 plus accuracy (or micro avg), macro avg and weighted avg.

    ``accuracy`` is set when every tag that occurs was scored (then micro-averaged F1 *is* token
    accuracy, and scikit-learn prints it as such); otherwise ``micro`` holds the micro average over
    the chosen tags, again as scikit-learn does.
    """

    rows: list[TokenScores]
    macro: TokenScores
    weighted: TokenScores
    accuracy: float | None = None
    micro: TokenScores | None = None
    digits: int = 4

    @property
    def support(self) -> int:
        return sum(r.support for r in self.rows)

    def format(self, digits: int | None = None) -> str:
        """Text in the layout of ``sklearn.metrics.classification_report`` (trailing newline)."""
        d = self.digits if digits is None else digits
        headers = ["precision", "recall", "f1-score", "support"]
        width = max([len(r.label) for r in self.rows] + [len("weighted avg"), d])
        row_fmt = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
        out = ("{:>{width}s} " + " {:>9}" * len(headers)).format("", *headers, width=width)
        out += "\n\n"
        for r in self.rows:
            out += row_fmt.format(
                r.label, r.precision, r.recall, r.f1, r.support, width=width, digits=d
            )
        out += "\n"
        averages: list[TokenScores] = []
        if self.accuracy is not None:
            acc_fmt = "{:>{width}s} " + " {:>9.{digits}}" * 2 + " {:>9.{digits}f}" + " {:>9}\n"
            out += acc_fmt.format(
                "accuracy", "", "", self.accuracy, self.support, width=width, digits=d
            )
        elif self.micro is not None:
            averages.append(self.micro)
        averages += [self.macro, self.weighted]
        for r in averages:
            out += row_fmt.format(
                r.label, r.precision, r.recall, r.f1, r.support, width=width, digits=d
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """Like scikit-learn's ``output_dict=True``: one entry per tag, then the averages."""
        result: dict[str, Any] = {r.label: r.to_dict() for r in self.rows}
        if self.accuracy is not None:
            result["accuracy"] = self.accuracy
        if self.micro is not None:
            result["micro avg"] = self.micro.to_dict()
        result["macro avg"] = self.macro.to_dict()
        result["weighted avg"] = self.weighted.to_dict()
        return result


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise ``num / den`` with 0 where ``den`` is 0 (scikit-learn's ``zero_division``)."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def token_report(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    *,
    labels: Sequence[str] | None = None,
    digits: int = 4,
) -> TokenReport:
    """Token-level scores per tag, as ``classification_report`` computes them.

    Every token is one sample and its full tag (``B-PER``, ``O``) its class. ``labels`` limits the
    rows (e.g. to leave out ``O``); by default every tag seen in gold or predictions gets one, in
    sorted order. Undefined ratios (no predictions of a tag, no gold tokens of it) count as 0.
    """
    y_true = np.asarray([t for sent in gold for t in sent], dtype=object)
    y_pred = np.asarray([t for sent in pred for t in sent], dtype=object)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{len(y_true)} gold tags but {len(y_pred)} predicted ones")
    seen = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    names = list(labels) if labels is not None else seen
    micro_is_accuracy = labels is None or set(names) >= set(seen)
    index = {name: i for i, name in enumerate(names)}
    n = len(names)
    true_idx = np.fromiter((index.get(t, -1) for t in y_true), dtype=np.int64, count=len(y_true))
    pred_idx = np.fromiter((index.get(t, -1) for t in y_pred), dtype=np.int64, count=len(y_pred))
    true_sum = np.bincount(true_idx[true_idx >= 0], minlength=n)
    pred_sum = np.bincount(pred_idx[pred_idx >= 0], minlength=n)
    hits = (true_idx == pred_idx) & (true_idx >= 0)
    tp = np.bincount(true_idx[hits], minlength=n)

    precision = _divide(tp, pred_sum)
    recall = _divide(tp, true_sum)
    # scikit-learn computes F1 from counts, 2tp / (2tp + fp + fn), not from rounded P and R.
    f1 = _divide(2.0 * tp, (true_sum + pred_sum).astype(np.float64))
    rows = [
        TokenScores(name, float(p), float(r), float(f), int(s))
        for name, p, r, f, s in zip(names, precision, recall, f1, true_sum, strict=True)
    ]
    total = int(true_sum.sum())

    def _mean(values: np.ndarray, weights: np.ndarray | None = None) -> float:
        if values.size == 0 or (weights is not None and weights.sum() == 0):
            return 0.0
        return float(np.average(values, weights=weights))

    macro = TokenScores("macro avg", _mean(precision), _mean(recall), _mean(f1), total)
    weighted = TokenScores(
        "weighted avg",
        _mean(precision, true_sum),
        _mean(recall, true_sum),
        _mean(f1, true_sum),
        total,
    )
    tp_all, pred_all = int(tp.sum()), int(pred_sum.sum())
    micro_p = tp_all / pred_all if pred_all else 0.0
    micro_r = tp_all / total if total else 0.0
    micro_f = 2 * tp_all / (total + pred_all) if total + pred_all else 0.0
    if micro_is_accuracy:
        return TokenReport(rows, macro, weighted, accuracy=micro_f, digits=digits)
    micro = TokenScores("micro avg", micro_p, micro_r, micro_f, total)
    return TokenReport(rows, macro, weighted, micro=micro, digits=digits)


@dataclass
class EvaluationReport:
    """Both blocks of a model card's evaluation: the token table, then conlleval's output."""

    token: TokenReport
    phrase: ConllevalResult
    types: list[str] | None = None

    @property
    def f1(self) -> float:
        """Phrase-level F1 (a fraction): the headline number."""
        return self.phrase.f1

    def format(self) -> str:
        return f"{self.token.format()}\n{self.phrase.format()}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token.to_dict(),
            "phrase": self.phrase.to_dict(),
            "types": self.types,
        }


def _resolve_types(
    types: TypesOption, gold: Sequence[Sequence[str]], scheme: Literal["iob", "io"]
) -> list[str] | None:
    if types is None:
        return None
    if types == "gold":
        return sorted(tag_types(gold, scheme=scheme))
    if isinstance(types, str):
        raise TypeError(f"types must be a collection of type names or 'gold', got {types!r}")
    return sorted(types)


def evaluate_tags(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    *,
    scheme: Scheme = "auto",
    types: TypesOption = None,
    label_level: LabelLevel = "fine",
    token_labels: Sequence[str] | None = None,
    digits: int = 4,
) -> EvaluationReport:
    """Score tag sequences (one inner sequence per sentence) and build both report blocks.

    ``types`` restricts scoring to some entity types; ``"gold"`` means the types the gold data
    contains, which is what the partial Few-NERD INTER files need (each annotates only its own
    types, so a model's other types would otherwise all count as false positives).
    ``label_level="coarse"`` scores Few-NERD ``coarse-fine`` types by their coarse part. The token
    table is computed on the same restricted, mapped tags the phrase scorer saw.
    """
    resolved = resolve_scheme(scheme, gold, pred)
    chosen = _resolve_types(types, gold, resolved)
    phrase = score_tags(gold, pred, scheme=resolved, types=chosen, label_level=label_level)
    mapped_gold = map_tags(gold, scheme=resolved, types=chosen, label_level=label_level)
    mapped_pred = map_tags(pred, scheme=resolved, types=chosen, label_level=label_level)
    token = token_report(mapped_gold, mapped_pred, labels=token_labels, digits=digits)
    return EvaluationReport(token=token, phrase=phrase, types=chosen)


class _Line(NamedTuple):
    lineno: int
    word: str
    tag: str


def _read_token_lines(path: Path) -> Iterator[list[_Line]]:
    """Yield the sentences of a column file with line numbers, for error messages that point.

    Same reading rules as ``spacy_nerzoo.data.readers`` (tab-separated if the line has a tab, else
    whitespace; blank lines and ``-DOCSTART-`` lines end sentences), but keeping every token's line.
    """
    sent: list[_Line] = []
    with path.open(encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.rstrip("\r\n")
            parts = line.split("\t") if "\t" in line else line.split()
            if not line.strip() or parts[0] == DOCSTART:
                if sent:
                    yield sent
                    sent = []
                continue
            if len(parts) < 2 or not parts[0]:
                raise ValueError(f"{path}:{lineno}: expected 'word ... tag', got {line!r}")
            sent.append(_Line(lineno, parts[0], parts[-1]))
    if sent:
        yield sent


def read_aligned_tags(
    gold_path: str | Path, pred_path: str | Path
) -> tuple[list[list[str]], list[list[str]]]:
    """Read gold tags and predicted tags for the same tokens from two CoNLL-style files.

    The prediction file may be conlleval input (``word ... gold pred``) or any file with the same
    tokens and the predicted tag in its last column; sentence breaks are taken from the gold file.
    Tokens must line up one for one: the first mismatch raises ``ValueError`` naming both lines,
    because a silent shift would score every later token against the wrong gold tag.
    """
    gold_path, pred_path = Path(gold_path), Path(pred_path)
    gold_sents = list(_read_token_lines(gold_path))
    pred_lines = (line for sent in _read_token_lines(pred_path) for line in sent)
    gold_tags: list[list[str]] = []
    pred_tags: list[list[str]] = []
    for sent in gold_sents:
        g_tags: list[str] = []
        p_tags: list[str] = []
        for g in sent:
            p = next(pred_lines, None)
            if p is None:
                raise ValueError(
                    f"{pred_path} ends before {gold_path}:{g.lineno} (token {g.word!r}); "
                    "the prediction file must contain every gold token"
                )
            if p.word != g.word:
                raise ValueError(
                    f"{pred_path}:{p.lineno}: token {p.word!r} does not line up with "
                    f"{gold_path}:{g.lineno} token {g.word!r}"
                )
            g_tags.append(g.tag)
            p_tags.append(p.tag)
        gold_tags.append(g_tags)
        pred_tags.append(p_tags)
    extra = next(pred_lines, None)
    if extra is not None:
        raise ValueError(
            f"{pred_path}:{extra.lineno}: token {extra.word!r} is past the end of {gold_path}"
        )
    return gold_tags, pred_tags


def score_files(
    gold_path: str | Path,
    pred_path: str | Path,
    *,
    scheme: Scheme = "auto",
    types: TypesOption = None,
    label_level: LabelLevel = "fine",
    digits: int = 4,
) -> EvaluationReport:
    """Score a CoNLL-format prediction file against a gold file, as conlleval would.

    ``-DOCSTART-`` lines are skipped (they are not tokens; the published "processed 46435 tokens"
    on CoNLL-2003 test excludes them). See ``read_aligned_tags`` for the prediction file's format.
    """
    gold, pred = read_aligned_tags(gold_path, pred_path)
    return evaluate_tags(
        gold, pred, scheme=scheme, types=types, label_level=label_level, digits=digits
    )


def doc_tags(doc: Doc, *, scheme: Literal["iob", "io"] = "iob") -> list[str]:
    """A Doc's entities as one tag per token: IOB2 (``B-PER I-PER``) or IO (``PER PER``)."""
    tags = [OUTSIDE] * len(doc)
    for ent in doc.ents:
        for i in range(ent.start, ent.end):
            if scheme == "io":
                tags[i] = ent.label_
            else:
                tags[i] = f"{'B' if i == ent.start else 'I'}-{ent.label_}"
    return tags


def fresh_doc(gold: Doc, vocab: Vocab, *, sentences: bool = True) -> Doc:
    """A Doc with the gold words and spaces, the gold sentence starts unless ``sentences`` is
    false (raw text), and no entities, to predict on."""
    return Doc(
        vocab,
        words=[t.text for t in gold],
        spaces=[bool(t.whitespace_) for t in gold],
        sent_starts=[t.is_sent_start for t in gold] if sentences else None,
    )


def _sentence_starts(doc: Doc) -> list[int]:
    return [0] + [t.i for t in doc[1:] if t.is_sent_start]


def evaluate_docs(
    gold_docs: Iterable[Doc],
    pred_docs: Iterable[Doc],
    *,
    scheme: Literal["iob", "io"] = "iob",
    types: TypesOption = None,
    label_level: LabelLevel = "fine",
    digits: int = 4,
) -> EvaluationReport:
    """Score predicted ``doc.ents`` against gold ``doc.ents`` on the same tokens.

    Entities become IOB2 tags (or IO tags with ``scheme="io"``, for Few-NERD, where adjacent
    entities of one type then merge as in its official evaluation), split at the gold documents'
    sentence boundaries so the numbers equal conlleval's over the source file. Docs must pair up
    with identical tokens; the first mismatch raises ``ValueError`` naming doc and token.
    """
    gold_tags: list[list[str]] = []
    pred_tags: list[list[str]] = []
    missing = object()
    for i, (g_doc, p_doc) in enumerate(zip_longest(gold_docs, pred_docs, fillvalue=missing)):
        if g_doc is missing or p_doc is missing:
            side = "gold" if g_doc is missing else "predicted"
            raise ValueError(
                f"doc {i}: {side} docs ran out first; gold and predictions must pair up"
            )
        assert isinstance(g_doc, Doc) and isinstance(p_doc, Doc)
        g_words = [t.text for t in g_doc]
        p_words = [t.text for t in p_doc]
        if g_words != p_words:
            j = next(
                (k for k, (a, b) in enumerate(zip(g_words, p_words, strict=False)) if a != b),
                min(len(g_words), len(p_words)),
            )
            g_tok = g_words[j] if j < len(g_words) else "<end>"
            p_tok = p_words[j] if j < len(p_words) else "<end>"
            raise ValueError(
                f"doc {i}: tokens differ at token {j} (gold {g_tok!r}, predicted {p_tok!r}); "
                "predictions must keep the gold tokenisation"
            )
        g_all = doc_tags(g_doc, scheme=scheme)
        p_all = doc_tags(p_doc, scheme=scheme)
        # Whitespace tokens (the newline ending a line) are not words of the corpus: skipped,
        # so the counts stay those of conlleval over the source file.
        words = [not t.text.isspace() for t in g_doc]
        starts = _sentence_starts(g_doc)
        for a, b in zip(starts, [*starts[1:], len(g_doc)], strict=True):
            keep = [i for i in range(a, b) if words[i]]
            if keep:
                gold_tags.append([g_all[i] for i in keep])
                pred_tags.append([p_all[i] for i in keep])
    return evaluate_tags(
        gold_tags, pred_tags, scheme=scheme, types=types, label_level=label_level, digits=digits
    )


if __name__ == "__main__":  # ``python -m spacy_nerzoo.evaluation.report ARGS``: nerzoo score
    from spacy_nerzoo.cli.main import run_module

    run_module("score")
