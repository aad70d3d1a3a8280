"""Writing predictions to the Doc, the only output channel (as spaCy's own components do).

- ``doc.spans[spans_key]``: every prediction, with ``attrs["scores"]`` (as spancat does).
- ``doc.ents``: by default existing entities are kept and non-overlapping predictions added
  (spaCy's ``prioritize_existing_ents_filter`` policy); ``overwrite_ents=True`` replaces them.
- ``Span._.confidence``: the confidence of an entity (the mean probability of its tags). spaCy
  stores span extension values in ``doc.user_data``, so they survive ``DocBin``, ``to_bytes`` and
  ``nlp.pipe(n_process=...)``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from spacy.tokens import Doc, Span, SpanGroup

CONFIDENCE_ATTR = "confidence"
DEFAULT_SPANS_KEY = "nerzoo"


def register_extensions() -> None:
    """Register ``Span._.confidence`` (None for entities no nerzoo component predicted)."""
    if not Span.has_extension(CONFIDENCE_ATTR):
        Span.set_extension(CONFIDENCE_ATTR, default=None)


def write_predictions(
    doc: Doc,
    entities: Sequence[tuple[int, int, str, float]],
    *,
    overwrite_ents: bool,
    spans_key: str | None,
) -> None:
    """Set ``doc.ents``, ``doc.spans[spans_key]`` and confidences; never raises on conflicts.

    ``entities`` are ``(token_start, token_end, label, confidence)``, non-overlapping.
    """
    spans = [Span(doc, s, e, label=lab) for s, e, lab, _ in entities]
    scores = [float(c) for *_, c in entities]
    if spans_key:
        doc.spans[spans_key] = SpanGroup(doc, name=spans_key, spans=spans, attrs={"scores": scores})
    # Reading doc.ents walks every token; skip it when no token carries an entity annotation.
    if overwrite_ents or not doc.has_annotation("ENT_IOB"):
        kept: list[Span] = []
        new, new_scores = spans, scores
    else:
        kept = list(doc.ents)
        taken = {i for ent in kept for i in range(ent.start, ent.end)}
        free = [not any(i in taken for i in range(sp.start, sp.end)) for sp in spans]
        new = [sp for sp, ok in zip(spans, free, strict=True) if ok]
        new_scores = [c for c, ok in zip(scores, free, strict=True) if ok]
    # What the doc.ents setter does, without first copying every Span (order does not matter).
    doc.set_ents(kept + new)
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
