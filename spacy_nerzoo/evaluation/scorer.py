"""conlleval as a spaCy scorer, so ``spacy train`` and ``spacy evaluate`` report the cards' numbers.

spaCy's own ``spacy.ner_scorer.v1`` counts exact entity matches; the model cards quote
conlleval, which reads entities from per-token tags (a stray ``I-`` opens a phrase, sentence
ends close one, Few-NERD's IO tags merge touching same-type entities). The scorer here turns
each example into the tags ``nerzoo evaluate`` scores (:func:`~.report.evaluate_docs`, on the
reference's tokens and sentences) and returns them under spaCy's keys (``ents_p``, ``ents_r``,
``ents_f``, ``ents_per_type``), so ``[training.score_weights]`` and every spaCy report keep
working. On the same Docs its numbers are those of ``nerzoo evaluate``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import filter_spans, registry

from .conlleval import LabelLevel
from .report import evaluate_docs, fresh_doc

TagReading = Literal["iob", "io"]
Scorer = Callable[..., dict[str, Any]]


def predicted_on_reference(eg: Example) -> Doc:
    """The predicted entities on the reference's tokens, a Doc ``evaluate_docs`` can pair.

    With the same tokens (``nerzoo evaluate``, a gold-tokenised corpus) the entities are copied
    as they are; otherwise each is mapped through spaCy's alignment, and one whose tokens do
    not map is dropped, as spaCy's NER scorer does.
    """
    doc = fresh_doc(eg.reference, eg.reference.vocab, sentences=False)
    pred = eg.predicted
    if [t.text for t in pred] == [t.text for t in eg.reference]:
        spans = [Span(doc, e.start, e.end, label=e.label) for e in pred.ents]
    else:
        aligned = eg.get_aligned_spans_x2y(pred.ents)
        spans = filter_spans([Span(doc, e.start, e.end, label=e.label) for e in aligned])
    doc.set_ents(spans)
    return doc


def conlleval_score(
    examples: Iterable[Example], *, scheme: TagReading = "iob", label_level: LabelLevel = "fine"
) -> dict[str, Any]:
    """conlleval's phrase scores of ``examples`` under spaCy's NER keys (fractions in [0, 1]).

    ``scheme="io"`` reads entities as Few-NERD's evaluation does (touching same-type entities
    are one); ``label_level="coarse"`` scores ``coarse-fine`` types by their coarse part.
    Examples whose reference has no entity annotation are skipped, as spaCy's scorer skips them;
    with none left every score is None.
    """
    gold: list[Doc] = []
    pred: list[Doc] = []
    for eg in examples:
        if eg.reference.has_annotation("ENT_IOB"):
            gold.append(eg.reference)
            pred.append(predicted_on_reference(eg))
    if not gold:
        return {"ents_p": None, "ents_r": None, "ents_f": None, "ents_per_type": None}
    phrase = evaluate_docs(gold, pred, scheme=scheme, label_level=label_level).phrase
    return {
        "ents_p": phrase.precision,
        "ents_r": phrase.recall,
        "ents_f": phrase.f1,
        "ents_per_type": {
            name: {"p": c.precision, "r": c.recall, "f": c.f1}
            for name, c in sorted(phrase.types.items())
        },
    }


@dataclass(frozen=True)
class ConllevalScorer:
    """:func:`conlleval_score` with fixed settings; None follows the component being scored.

    A class rather than a closure: spaCy pickles components (their scorer too) for
    ``nlp.pipe(n_process=...)`` under the spawn start method.
    """

    scheme: TagReading | None = None
    label_level: LabelLevel | None = None

    def __call__(self, examples: Iterable[Example], **kwargs: Any) -> dict[str, Any]:
        return conlleval_score(
            examples,
            scheme=self.scheme or kwargs.get("scheme") or "iob",
            label_level=self.label_level or kwargs.get("label_level") or "fine",
        )


@registry.scorers("spacy_nerzoo.conlleval_scorer.v1")
def make_conlleval_scorer(
    scheme: TagReading | None = None, label_level: LabelLevel | None = None
) -> Scorer:
    """``scorer = {"@scorers": "spacy_nerzoo.conlleval_scorer.v1"}``: conlleval under spaCy's keys.

    Unset (None), ``scheme`` and ``label_level`` follow the component being scored, which passes
    how its tags read (IO for Few-NERD heads) and its ``label_level`` as keyword arguments; set,
    they win. Other keyword arguments spaCy passes (``labels``) are not used: like spaCy's NER
    scorer, every gold and predicted type counts.
    """
    return ConllevalScorer(scheme, label_level)
