"""Writing predictions to the Doc, the only output channel (as spaCy's own components do).

- ``doc.spans[spans_key]``: every prediction, with ``attrs["scores"]`` (as spancat does).
- ``doc.ents``: the existing entities and the predictions, merged by the component's
  ``ents_filter`` (spaCy's span_ruler setting; by default ``prioritize_existing_ents_filter``:
  existing entities are kept and non-overlapping predictions added).
- ``Span._.confidence``: the confidence of an entity (the mean probability of its tags). spaCy
  stores span extension values in ``doc.user_data``, so they survive ``DocBin``, ``to_bytes`` and
  ``nlp.pipe(n_process=...)``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from spacy.tokens import Doc, Span, SpanGroup

from .components.common import EntsFilter, Prediction

CONFIDENCE_ATTR = "confidence"
DEFAULT_SPANS_KEY = "nerzoo"


def register_extensions() -> None:
    """Register ``Span._.confidence`` (None for entities no nerzoo component predicted)."""
    if not Span.has_extension(CONFIDENCE_ATTR):
        Span.set_extension(CONFIDENCE_ATTR, default=None)


def write_predictions(
    doc: Doc,
    entities: Sequence[Prediction],
    *,
    ents_filter: EntsFilter,
    spans_key: str | None,
) -> None:
    """Set ``doc.ents``, ``doc.spans[spans_key]`` and confidences; never raises on conflicts.

    ``entities`` are ``(token_start, token_end, label, confidence)``, non-overlapping;
    ``ents_filter(doc.ents, predicted spans)`` decides which entities the Doc ends up with.
    Confidences go to the predictions it keeps (an existing entity keeps its own).
    """
    spans = [Span(doc, s, e, label=lab) for s, e, lab, _ in entities]
    scores = [float(c) for *_, c in entities]
    if spans_key:
        doc.spans[spans_key] = SpanGroup(doc, name=spans_key, spans=spans, attrs={"scores": scores})
    # Reading doc.ents walks every token; skip it when no token carries an entity annotation.
    existing = list(doc.ents) if doc.has_annotation("ENT_IOB") else []
    ents = list(ents_filter(existing, spans))
    # What the doc.ents setter does, without first copying every Span (order does not matter).
    doc.set_ents(ents)
    # spaCy's filters return the very Span objects they were given; a filter that builds new
    # ones gets the confidence of the prediction with the same tokens and label.
    by_id = {id(sp): c for sp, c in zip(spans, scores, strict=True)}
    by_key = {(sp.start, sp.end, sp.label): c for sp, c in zip(spans, scores, strict=True)}
    old = {id(e) for e in existing}
    new: list[Span] = []
    new_scores: list[float] = []
    for ent in ents:
        c = by_id.get(id(ent))
        if c is None and id(ent) not in old:
            c = by_key.get((ent.start, ent.end, ent.label))
        if c is not None:
            new.append(ent)
            new_scores.append(c)
    if _confidence_in_user_data():
        for ent, conf in zip(new, new_scores, strict=True):
            doc.user_data[("._.", CONFIDENCE_ATTR, ent.start_char, ent.end_char)] = conf
    else:
        for ent, conf in zip(new, new_scores, strict=True):
            ent._.set(CONFIDENCE_ATTR, conf)


@functools.cache
def _confidence_in_user_data() -> bool:
    """Whether ``span._.confidence = x`` stores ``doc.user_data[("._.", "confidence",
    span.start_char, span.end_char)] = x``, as every spaCy 3 release does.

    If so, confidences are written there directly: going through ``span._`` builds an
    ``Underscore`` object per entity, which cost as much as setting ``doc.ents``. Checked once,
    on a throwaway Doc, so that a spaCy keying extension values differently gets ``span._``.
    """
    from spacy.vocab import Vocab

    register_extensions()
    doc = Doc(Vocab(), words=["a", "b", "c"])
    span = Span(doc, 1, 3)
    span._.set(CONFIDENCE_ATTR, 0.5)
    return doc.user_data == {("._.", CONFIDENCE_ATTR, span.start_char, span.end_char): 0.5}
