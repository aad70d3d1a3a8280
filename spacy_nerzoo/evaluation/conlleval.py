"""Phrase-level scoring exactly as ``conlleval.pl`` (CoNLL-2000/2003 shared tasks) does it.

Every published CoNLL-2003 number, and the block the Spark NLP model cards print, comes from that
Perl script, so we re-implement its counting rather than approximating it with span sets: the same
chunk start/end rules (a stray ``I-`` after ``O`` opens a phrase, a type change closes one), the
same treatment of sentence breaks (always outside any phrase), the same token accuracy and the same
``printf`` layout. The start/end rules for ``E-``/``S-`` tags follow the widely used extension of
the script (conlleval.py, seqeval), which agrees with the original on IOB1/IOB2 input.

Few-NERD uses IO tags (``person-actor`` with no prefix); its official evaluation takes every maximal
run of same-type tokens as one phrase. ``scheme="io"`` reads tags that way by treating each one as
``I-<tag>``, which the conlleval rules then chunk into exactly those runs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

Scheme = Literal["iob", "io", "auto"]
LabelLevel = Literal["fine", "coarse"]

OUTSIDE = "O"
# The script's sentence-break token; both tags are forced to ``O`` there.
_BREAK: tuple[str, str] = (OUTSIDE, "")


class Chunk(NamedTuple):
    """One phrase: its type and token offsets ``[start, end)`` within its sequence."""

    label: str
    start: int
    end: int


def coarse_label(label: str) -> str:
    """Map a Few-NERD ``coarse-fine`` type to its coarse part; other types pass unchanged."""
    return label.split("-", 1)[0]


def split_tag(tag: str, scheme: Literal["iob", "io"]) -> tuple[str, str]:
    """Split a tag into ``(prefix, type)`` the way the scorer sees it.

    For ``iob`` the split is at the first hyphen, as conlleval's 2004 revision does, so types may
    contain hyphens (``B-person-actor`` has type ``person-actor``). For ``io`` the whole tag is the
    type and the prefix is ``I``.
    """
    if tag == OUTSIDE:
        return _BREAK
    if scheme == "io":
        return ("I", tag)
    prefix, sep, type_ = tag.partition("-")
    return (prefix, type_) if sep else (tag, "")


def detect_scheme(*tag_sequences: Iterable[Sequence[str]]) -> Literal["iob", "io"]:
    """Guess the tagging scheme from the first sequences that contain entity tags.

    IOB-style data has every non-``O`` tag prefixed ``B-``/``I-``/``E-``/``S-``; anything else is
    read as IO. The gold sequences are passed first, so a prediction full of junk tags does not
    change how the gold standard is read.
    """
    for sentences in tag_sequences:
        seen = False
        for sent in sentences:
            for tag in sent:
                if tag == OUTSIDE:
                    continue
                seen = True
                if tag[:2] not in ("B-", "I-", "E-", "S-"):
                    return "io"
        if seen:
            return "iob"
    return "iob"


def _chunk_end(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """Did a phrase end between the previous token and this one? (conlleval's ``endOfChunk``)."""
    if prev_tag in ("E", "S", "[", "]"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", OUTSIDE):
        return True
    return prev_tag not in (OUTSIDE, ".") and prev_type != type_


def _chunk_start(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """Did a phrase start at this token? (conlleval's ``startOfChunk``)."""
    if tag in ("B", "S", "[", "]"):
        return True
    if prev_tag in ("E", "S", OUTSIDE) and tag in ("E", "I"):
        return True
    return tag not in (OUTSIDE, ".") and prev_type != type_


class _TagMap:
    """Turns raw tags into ``(prefix, type)`` after type restriction and coarse mapping.

    Restriction comes first and matches either the full type or its coarse part, so
    ``types={"person"}`` keeps every ``person-*`` type; tags of other types become ``O`` in gold and
    predictions alike, which is how the partial Few-NERD INTER files must be scored.
    """

    def __init__(
        self,
        scheme: Literal["iob", "io"],
        types: Collection[str] | None,
        label_level: LabelLevel,
    ) -> None:
        self.scheme = scheme
        self.types = frozenset(types) if types is not None else None
        self.coarse = label_level == "coarse"
        self._cache: dict[str, tuple[str, str]] = {}

    def __call__(self, tag: str) -> tuple[str, str]:
        cached = self._cache.get(tag)
        if cached is not None:
            return cached
        prefix, type_ = split_tag(tag, self.scheme)
        if (
            self.types is not None
            and prefix != OUTSIDE
            and type_ not in self.types
            and coarse_label(type_) not in self.types
        ):
            prefix, type_ = _BREAK
        if self.coarse and type_:
            type_ = coarse_label(type_)
        self._cache[tag] = (prefix, type_)
        return prefix, type_

    def tag(self, tag: str) -> str:
        """The mapped tag as a string (``B-PER``, ``person`` in IO mode, ``O``)."""
        prefix, type_ = self(tag)
        if prefix == OUTSIDE:
            return OUTSIDE
        if self.scheme == "io":
            return type_
        return f"{prefix}-{type_}" if type_ else prefix


def iter_chunks(
    tags: Sequence[str],
    *,
    scheme: Literal["iob", "io"] = "iob",
    label_level: LabelLevel = "fine",
) -> Iterator[Chunk]:
    """Yield the phrases conlleval sees in one tag sequence (one sentence).

    This is the decoder the converters use too, so the entities written to a ``.spacy`` file are
    exactly the phrases this module counts: converting a file and scoring it against itself can
    never disagree about how many entities there are.
    """
    mapper = _TagMap(scheme, None, label_level)
    prev_tag, prev_type = _BREAK
    begin = 0
    for i, (tag, type_) in enumerate([*map(mapper, tags), _BREAK]):
        if _chunk_end(prev_tag, tag, prev_type, type_):
            yield Chunk(prev_type, begin, i)
        if _chunk_start(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_


@dataclass
class PhraseCounts:
    """Phrase counts for one type (or all): gold phrases, predicted phrases, exact matches.

    Scores are fractions in [0, 1] (spaCy's convention); ``format`` prints conlleval's percentages.
    """

    gold: int = 0
    found: int = 0
    correct: int = 0

    @property
    def precision(self) -> float:
        return self.correct / self.found if self.found else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def percentages(self) -> tuple[float, float, float]:
        """Precision, recall and FB1 in percent, computed in the script's order of operations."""
        p = 100 * self.correct / self.found if self.found else 0.0
        r = 100 * self.correct / self.gold if self.gold else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "gold": self.gold,
            "found": self.found,
            "correct": self.correct,
        }


@dataclass
class ConllevalResult:
    """What conlleval reports: token accuracy, overall and per-type phrase scores."""

    tokens: int = 0
    correct_tags: int = 0
    overall: PhraseCounts = field(default_factory=PhraseCounts)
    types: dict[str, PhraseCounts] = field(default_factory=dict)
    scheme: Literal["iob", "io"] = "iob"

    @property
    def accuracy(self) -> float:
        return self.correct_tags / self.tokens if self.tokens else 0.0

    @property
    def precision(self) -> float:
        return self.overall.precision

    @property
    def recall(self) -> float:
        return self.overall.recall

    @property
    def f1(self) -> float:
        return self.overall.f1

    def format(self) -> str:
        """The script's output, line for line (no trailing newline).

        Types are listed in code-point order, as Perl's ``sort`` does, and each type line ends with
        the number of *predicted* phrases of that type, as the original prints it.
        """
        o = self.overall
        lines = [
            f"processed {self.tokens} tokens with {o.gold} phrases; "
            f"found: {o.found} phrases; correct: {o.correct}."
        ]
        if self.tokens > 0:
            p, r, f = o.percentages()
            acc = 100 * self.correct_tags / self.tokens
            # The script's printf formats: "%6.2f%%" per score, "%17s" for the type name.
            lines.append(
                f"accuracy: {acc:6.2f}%; precision: {p:6.2f}%; recall: {r:6.2f}%; FB1: {f:6.2f}"
            )
        for name in sorted(self.types):
            counts = self.types[name]
            p, r, f = counts.percentages()
            scores = f"precision: {p:6.2f}%; recall: {r:6.2f}%; FB1: {f:6.2f}"
            lines.append(f"{name:>17}: {scores}  {counts.found}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready scores; fractions in [0, 1], counts as integers."""
        return {
            "scheme": self.scheme,
            "tokens": self.tokens,
            "accuracy": self.accuracy,
            **self.overall.to_dict(),
            "types": {name: c.to_dict() for name, c in sorted(self.types.items())},
        }


class _Scorer:
    """conlleval's main loop as a state machine over ``(prefix, type)`` pairs.

    A phrase counts as correct only when gold and prediction start it on the same token with the
    same type and end it on the same token; ``in_correct`` tracks "both sides opened the same phrase
    and nothing has diverged yet", exactly as the script's ``$inCorrect`` does.
    """

    def __init__(self, scheme: Literal["iob", "io"]) -> None:
        self.result = ConllevalResult(scheme=scheme)
        self.in_correct = False
        self.last_gold = _BREAK
        self.last_pred = _BREAK

    def _type(self, name: str) -> PhraseCounts:
        counts = self.result.types.get(name)
        if counts is None:
            counts = self.result.types[name] = PhraseCounts()
        return counts

    def step(self, gold: tuple[str, str], pred: tuple[str, str], *, is_token: bool = True) -> None:
        (g_tag, g_type), (p_tag, p_type) = gold, pred
        (lg_tag, lg_type), (lp_tag, lp_type) = self.last_gold, self.last_pred
        res = self.result
        if self.in_correct:
            gold_ends = _chunk_end(lg_tag, g_tag, lg_type, g_type)
            pred_ends = _chunk_end(lp_tag, p_tag, lp_type, p_type)
            if gold_ends and pred_ends and lp_type == lg_type:
                self.in_correct = False
                res.overall.correct += 1
                self._type(lg_type).correct += 1
            elif gold_ends != pred_ends or p_type != g_type:
                self.in_correct = False
        gold_starts = _chunk_start(lg_tag, g_tag, lg_type, g_type)
        pred_starts = _chunk_start(lp_tag, p_tag, lp_type, p_type)
        if gold_starts and pred_starts and p_type == g_type:
            self.in_correct = True
        if gold_starts:
            res.overall.gold += 1
            self._type(g_type).gold += 1
        if pred_starts:
            res.overall.found += 1
            self._type(p_type).found += 1
        if is_token:
            res.tokens += 1
            if gold == pred:
                res.correct_tags += 1
        self.last_gold, self.last_pred = gold, pred

    def sentence_break(self) -> None:
        self.step(_BREAK, _BREAK, is_token=False)

    def finish(self) -> ConllevalResult:
        self.sentence_break()
        return self.result


def resolve_scheme(
    scheme: Scheme, gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]
) -> Literal["iob", "io"]:
    """``auto`` becomes ``iob`` or ``io`` from the data (gold first); explicit schemes pass."""
    return detect_scheme(gold, pred) if scheme == "auto" else scheme


def score_tags(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    *,
    scheme: Scheme = "auto",
    types: Collection[str] | None = None,
    label_level: LabelLevel = "fine",
) -> ConllevalResult:
    """Score predicted tag sequences against gold ones, one inner sequence per sentence.

    Sentence ends act as the script's sentence-break lines: both sides are outside any phrase
    there, so no phrase crosses them. ``types`` restricts scoring to those types (others become
    ``O`` on both sides); ``label_level="coarse"`` scores ``coarse-fine`` types by their coarse
    part. Sentences must pair up token for token; a length mismatch raises ``ValueError``.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted ones")
    resolved = resolve_scheme(scheme, gold, pred)
    mapper = _TagMap(resolved, types, label_level)
    scorer = _Scorer(resolved)
    for i, (g_sent, p_sent) in enumerate(zip(gold, pred, strict=True)):
        if len(g_sent) != len(p_sent):
            raise ValueError(
                f"sentence {i}: {len(g_sent)} gold tags but {len(p_sent)} predicted ones"
            )
        for g_tag, p_tag in zip(g_sent, p_sent, strict=True):
            scorer.step(mapper(g_tag), mapper(p_tag))
        scorer.sentence_break()
    return scorer.finish()


def map_tags(
    sentences: Sequence[Sequence[str]],
    *,
    scheme: Literal["iob", "io"],
    types: Collection[str] | None = None,
    label_level: LabelLevel = "fine",
) -> list[list[str]]:
    """Apply the same type restriction and coarse mapping ``score_tags`` uses, returning tags.

    The token-level table needs the tags the phrase scorer saw, so both blocks of a report agree on
    what was scored.
    """
    mapper = _TagMap(scheme, types, label_level)
    return [[mapper.tag(t) for t in sent] for sent in sentences]


def tag_types(sentences: Iterable[Sequence[str]], *, scheme: Literal["iob", "io"]) -> set[str]:
    """The entity types occurring in some tag sequences (e.g. a partial file's own types)."""
    found: set[str] = set()
    for sent in sentences:
        for tag in sent:
            prefix, type_ = split_tag(tag, scheme)
            if prefix != OUTSIDE and type_:
                found.add(type_)
    return found
