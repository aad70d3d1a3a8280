"""Writing predictions to the Doc, the only output channel (as spaCy's own components do).

- ``doc.spans[spans_key]``: every prediction, with ``attrs["scores"]`` (as spancat does).
- ``doc.ents``: by default existing entities are kept and non-overlapping predictions added
  (spaCy's ``prioritize_existing_ents_filter`` policy); ``overwrite_ents=True`` replaces them.
- ``Span._.confidence``: the confidence of an entity (the mean probability of its tags). spaCy
  stores span extension values in ``doc.user_data``, so they survive ``DocBin``, ``to_bytes`` and
  ``nlp.pipe(n_process=...)``.
"""

from __future__ import annotations

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
        new = spans
    else:
        kept = list(doc.ents)
        taken = {i for ent in kept for i in range(ent.start, ent.end)}
        new = [sp for sp in spans if not any(i in taken for i in range(sp.start, sp.end))]
    doc.ents = sorted(kept + new, key=lambda sp: sp.start)
    by_span = {(sp.start, sp.end, sp.label_): c for sp, c in zip(spans, scores, strict=True)}
    for ent in new:
        ent._.set(CONFIDENCE_ATTR, by_span[(ent.start, ent.end, ent.label_)])
