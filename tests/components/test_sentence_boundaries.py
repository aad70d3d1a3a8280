"""Entities never cross a sentence start the Doc already has (``sentence_boundaries``)."""

from __future__ import annotations

import pytest
import spacy
from spacy.tokens import Doc

TEXT = (
    "Peter Blackburn visited the National Hockey League in New York with Angela Merkel and "
    "the European Commission , then Tim Cook flew to Berlin for Reuters and Apple . "
) * 3


def _nlp(path, **config) -> spacy.language.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("token_classifier", config={"model": str(path), "max_length": 64, **config})
    return nlp


def _doc(nlp, sent_starts: list[int] | None) -> Doc:
    words = TEXT.split()
    starts = None
    if sent_starts is not None:
        starts = [i == 0 or i in sent_starts for i in range(len(words))]
    return Doc(nlp.vocab, words=words, sent_starts=starts)


def _spans(doc: Doc) -> list[tuple[int, int, str]]:
    return [(e.start, e.end, e.label_) for e in doc.ents]


@pytest.mark.parametrize("kind", ["bert", "albert"])
def test_no_entity_crosses_a_sentence_start(tiny_model, kind: str) -> None:
    nlp = _nlp(tiny_model(kind))
    raw = nlp(_doc(nlp, None))
    long = [e for e in raw.ents if len(e) > 1]
    assert long, "the tiny model must give multi-token entities for this test to mean anything"
    cuts = [e.start + 1 for e in long]
    split = nlp(_doc(nlp, cuts))
    for ent in split.ents:
        assert not any(split[i].is_sent_start for i in range(ent.start + 1, ent.end)), ent
    assert _spans(split) != _spans(raw)
    # Raw text and the setting turned off: decoded whole, as before.
    off = _nlp(tiny_model(kind), sentence_boundaries=False)
    assert _spans(off(_doc(off, cuts))) == _spans(raw)
    # Sentence starts at entity starts change nothing that did not cross.
    aligned = nlp(_doc(nlp, [e.start for e in raw.ents if e.start > 0]))
    assert _spans(aligned) == _spans(raw)


def test_batches_mix_docs_with_and_without_sentences(tiny_model) -> None:
    nlp = _nlp(tiny_model("bert"))
    raw = _spans(nlp(_doc(nlp, None)))
    cut = next(s + 1 for s, e, _ in raw if e - s > 1)
    docs = [_doc(nlp, None), _doc(nlp, [cut]), nlp.make_doc(""), _doc(nlp, None)]
    alone = [_spans(nlp(d.copy())) for d in docs]
    together = [_spans(d) for d in nlp.pipe(docs, batch_size=4)]
    assert together == alone
    assert together[0] == together[3] == raw and together[1] != raw
