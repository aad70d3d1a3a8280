"""Writing predictions to the Doc: entities, the span group with scores, confidences."""

import pytest
import spacy
from spacy.tokens import Span

from spacy_nerzoo import writing
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
    write_predictions(doc, PREDICTED, overwrite_ents=False, spans_key="nerzoo")
    assert [(e.start, e.end, e.label_, e._.confidence) for e in doc.ents] == PREDICTED
    group = doc.spans["nerzoo"]
    assert [(s.start, s.end, s.label_) for s in group] == [p[:3] for p in PREDICTED]
    assert group.attrs["scores"] == [p[3] for p in PREDICTED]
    assert [t.ent_iob_ for t in doc] == ["B", "I", "O", "B", "I", "O", "B", "O", "B", "O"]


def test_no_predictions_mark_every_token_outside(confidence_path):
    doc = make_doc()
    write_predictions(doc, [], overwrite_ents=False, spans_key="nerzoo")
    assert doc.ents == () and {t.ent_iob_ for t in doc} == {"O"}
    assert list(doc.spans["nerzoo"]) == [] and doc.spans["nerzoo"].attrs["scores"] == []
    write_predictions(doc, [], overwrite_ents=False, spans_key=None)
    assert list(doc.spans) == ["nerzoo"]


def test_existing_entities_kept_and_overlapping_predictions_only_in_spans(confidence_path):
    doc = make_doc()
    doc.ents = [Span(doc, 1, 2, label="EXISTING", kb_id="Q1", span_id="x")]
    write_predictions(doc, PREDICTED, overwrite_ents=False, spans_key="nerzoo")
    got = [(e.start, e.end, e.label_, e.kb_id_, e.id_, e._.confidence) for e in doc.ents]
    assert got == [
        (1, 2, "EXISTING", "Q1", "x", None),
        (3, 5, "PER", "", "", 0.8),
        (6, 7, "ORG", "", "", 0.5),
        (8, 9, "LOC", "", "", 0.7),
    ]
    assert len(doc.spans["nerzoo"]) == 4  # every prediction, also the one not in doc.ents


def test_overwrite_replaces_existing_entities(confidence_path):
    doc = make_doc()
    doc.ents = [Span(doc, 1, 2, label="EXISTING")]
    write_predictions(doc, PREDICTED, overwrite_ents=True, spans_key=None)
    assert [(e.start, e.end, e.label_, e._.confidence) for e in doc.ents] == PREDICTED
    assert "nerzoo" not in doc.spans
