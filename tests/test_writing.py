"""Writing predictions to the Doc: entities, the span group with scores, confidences."""

import pytest
import spacy
from spacy.pipeline.span_ruler import (
    prioritize_existing_ents_filter,
    prioritize_new_ents_filter,
)
from spacy.tokens import Span

from spacy_nerzoo import writing
from spacy_nerzoo.components.common import replace_ents_filter
from spacy_nerzoo.writing import register_extensions, write_predictions

TEXT = "Angela Merkel met Tim Cook of Apple in Berlin ."


def make_doc():
    register_extensions()
    return spacy.blank("en").make_doc(TEXT)


@pytest.fixture(params=["user_data", "underscore"])
def confidence_path(request, monkeypatch):
    """Both ways of writing confidences: straight into doc.user_data, and through span._."""
    fast = request.param == "user_data"
    monkeypatch.setattr(writing, "_confidence_in_user_data", lambda: fast)


def test_spacy_keys_span_extensions_as_expected():
    assert writing._confidence_in_user_data.__wrapped__()


PREDICTED = [(0, 2, "PER", 0.9), (3, 5, "PER", 0.8), (6, 7, "ORG", 0.5), (8, 9, "LOC", 0.7)]


def test_predictions_become_ents_spans_and_confidences(confidence_path):
    doc = make_doc()
    write_predictions(
        doc, PREDICTED, ents_filter=prioritize_existing_ents_filter, spans_key="nerzoo"
    )
    assert [(e.start, e.end, e.label_, e._.confidence) for e in doc.ents] == PREDICTED
    group = doc.spans["nerzoo"]
    assert [(s.start, s.end, s.label_) for s in group] == [p[:3] for p in PREDICTED]
    assert group.attrs["scores"] == [p[3] for p in PREDICTED]
    assert [t.ent_iob_ for t in doc] == ["B", "I", "O", "B", "I", "O", "B", "O", "B", "O"]


def test_no_predictions_mark_every_token_outside(confidence_path):
    doc = make_doc()
    write_predictions(doc, [], ents_filter=prioritize_existing_ents_filter, spans_key="nerzoo")
    assert doc.ents == () and {t.ent_iob_ for t in doc} == {"O"}
    assert list(doc.spans["nerzoo"]) == [] and doc.spans["nerzoo"].attrs["scores"] == []
    write_predictions(doc, [], ents_filter=prioritize_existing_ents_filter, spans_key=None)
    assert list(doc.spans) == ["nerzoo"]


def test_existing_entities_kept_and_overlapping_predictions_only_in_spans(confidence_path):
    doc = make_doc()
    doc.ents = [Span(doc, 1, 2, label="EXISTING", kb_id="Q1", span_id="x")]
    write_predictions(
        doc, PREDICTED, ents_filter=prioritize_existing_ents_filter, spans_key="nerzoo"
    )
    got = [(e.start, e.end, e.label_, e.kb_id_, e.id_, e._.confidence) for e in doc.ents]
    assert got == [
        (1, 2, "EXISTING", "Q1", "x", None),
        (3, 5, "PER", "", "", 0.8),
        (6, 7, "ORG", "", "", 0.5),
        (8, 9, "LOC", "", "", 0.7),
    ]
    assert len(doc.spans["nerzoo"]) == 4  # every prediction, also the one not in doc.ents


def test_replace_filter_replaces_existing_entities(confidence_path):
    doc = make_doc()
    doc.ents = [Span(doc, 1, 2, label="EXISTING"), Span(doc, 9, 10, label="AWAY")]
    write_predictions(doc, PREDICTED, ents_filter=replace_ents_filter, spans_key=None)
    assert [(e.start, e.end, e.label_, e._.confidence) for e in doc.ents] == PREDICTED
    assert "nerzoo" not in doc.spans


def test_prioritize_new_keeps_existing_entities_no_prediction_overlaps(confidence_path):
    doc = make_doc()
    doc.ents = [Span(doc, 1, 2, label="EXISTING"), Span(doc, 9, 10, label="AWAY")]
    write_predictions(doc, PREDICTED, ents_filter=prioritize_new_ents_filter, spans_key=None)
    got = [(e.start, e.end, e.label_, e._.confidence) for e in doc.ents]
    assert got == [*PREDICTED, (9, 10, "AWAY", None)]


def test_prediction_equal_to_an_existing_entity_gets_no_confidence_when_not_chosen(
    confidence_path,
):
    doc = make_doc()
    doc.ents = [Span(doc, 0, 2, label="PER")]  # the same span and label as a prediction
    write_predictions(doc, PREDICTED, ents_filter=prioritize_existing_ents_filter, spans_key=None)
    assert doc.ents[0]._.confidence is None
    write_predictions(doc, PREDICTED, ents_filter=replace_ents_filter, spans_key=None)
    assert doc.ents[0]._.confidence == 0.9


def test_filter_building_new_spans_keeps_confidences(confidence_path):
    def copies(entities, spans):
        return [Span(s.doc, s.start, s.end, label=s.label_) for s in spans if s.label_ != "ORG"]

    doc = make_doc()
    write_predictions(doc, PREDICTED, ents_filter=copies, spans_key=None)
    got = [(e.start, e.end, e.label_, e._.confidence) for e in doc.ents]
    assert got == [p for p in PREDICTED if p[2] != "ORG"]
