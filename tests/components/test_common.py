"""What both NER components share: gold-tag mapping, tag names, the saved-cfg check, the
entity-conflict setting, the factory built from a component's ``__init__``."""

from __future__ import annotations

import json
from typing import Literal

import numpy as np
import pytest
import spacy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.pipeline.span_ruler import prioritize_existing_ents_filter
from spacy.util import registry

from spacy_nerzoo.catalogue import ZOO
from spacy_nerzoo.components.common import (
    FACTORY_META,
    entities_from_tags,
    gold_tag_ids,
    io_tags,
    iob2_tags,
    pipe_factory,
    read_cfg,
    replace_ents_filter,
    resolve_ents_filter,
)
from spacy_nerzoo.decoding import TagScheme
from spacy_nerzoo.errors import ModelLoadError

ALIGNED = ["B-PER", "L-PER", "O", "U-LOC", None, "-", "U-ORG", "B-LOC", "I-LOC", "L-LOC"]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        # IOB2: L reads as I, U as B; ORG is not a tag of the network: unknown, not O.
        (["O", "B-LOC", "I-LOC", "B-PER", "I-PER"], [3, 4, 0, 1, -1, -1, -1, 1, 2, 2]),
        (["O", "I-LOC", "I-PER"], [2, 2, 0, 1, -1, -1, -1, 1, 1, 1]),  # IO: every prefix is I
        (  # BIOES: L is E, U is S
            ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "E-PER", "S-ORG"],
            [5, 6, 0, 4, -1, -1, 7, 1, 2, 3],
        ),
        (["O", "person-actor"], [-1, -1, 0, -1, -1, -1, -1, -1, -1, -1]),  # unprefixed IO types
    ],
)
def test_gold_tag_ids_read_biluo_in_the_network_scheme(tags, expected):
    got = gold_tag_ids(ALIGNED, TagScheme.from_labels(tags), -1)
    assert got.dtype == np.int64 and got.tolist() == expected


def test_gold_tag_ids_missing_value_is_the_callers():
    scheme = TagScheme.from_labels(iob2_tags(["LOC"]))
    assert gold_tag_ids([None, "-", "U-LOC"], scheme, -100).tolist() == [-100, -100, 1]


def test_new_network_tags():
    assert iob2_tags(["PER", "LOC", "PER"]) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert io_tags(["person-actor", "LOC"]) == ["O", "I-LOC", "I-person-actor"]
    # What the tags read as: the labels again, in the scheme intended.
    assert TagScheme.from_labels(io_tags(["a-b", "c"])).name == "IO"
    assert TagScheme.from_labels(io_tags(["a-b", "c"])).entity_types == ["a-b", "c"]


def test_entities_from_tags_per_doc_with_labels_filter():
    scheme = TagScheme.from_labels(iob2_tags(["LOC", "PER"]))  # O B-LOC I-LOC B-PER I-PER
    tags = np.asarray([3, 4, 0, 1, 1, 3], np.int64)
    probs = np.full((6, 5), 0.1, np.float32)
    probs[np.arange(6), tags] = [0.9, 0.7, 1.0, 0.6, 0.5, 0.8]
    offsets = np.asarray([0, 4, 6])  # two Docs: tokens 0-3 and 4-5
    segments = np.asarray([0, 4, 6])
    got = entities_from_tags(probs, tags, offsets, segments, scheme)
    assert [[e[:3] for e in doc] for doc in got] == [
        [(0, 2, "PER"), (3, 4, "LOC")],
        [(0, 1, "LOC"), (1, 2, "PER")],
    ]
    assert got[0][0][3] == pytest.approx(0.8)
    only = entities_from_tags(probs, tags, offsets, segments, scheme, {"LOC"})
    assert [[e[2] for e in doc] for doc in only] == [["LOC"], ["LOC"]]


def test_read_cfg(tmp_path):
    with pytest.raises(ModelLoadError, match="cfg.json is missing"):
        read_cfg(tmp_path, "ner", 1)
    (tmp_path / "cfg.json").write_text(json.dumps({"serial_version": 0}), encoding="utf8")
    with pytest.raises(ModelLoadError, match=r"format 0, this version reads 1"):
        read_cfg(tmp_path, "ner", 1)
    (tmp_path / "cfg.json").write_text(json.dumps({"serial_version": 1, "a": 2}), encoding="utf8")
    assert read_cfg(tmp_path, "ner", 1) == {"serial_version": 1, "a": 2}


def test_ents_filter_and_its_deprecated_alias():
    chosen = registry.resolve({"f": {"@misc": "spacy_nerzoo.replace_ents_filter.v1"}})["f"]
    assert chosen is replace_ents_filter
    existing = prioritize_existing_ents_filter
    assert resolve_ents_filter(existing, None, "ner") is existing
    with pytest.warns(FutureWarning, match="spacy_nerzoo.replace_ents_filter.v1"):
        assert resolve_ents_filter(existing, True, "ner") is replace_ents_filter
    with pytest.warns(FutureWarning, match="overwrite_ents is deprecated"):
        assert resolve_ents_filter(existing, False, "ner") is existing


class _Pipe(TrainablePipe):
    def __init__(self, nlp: Language, name: str, *, mode: Literal["a", "b"], size: int = 1) -> None:
        self.vocab, self.name, self.mode, self.size = nlp.vocab, name, mode, size

    def __call__(self, doc):
        return doc


Language.factory("nerzoo_test_pipe", default_config={"mode": "a"}, func=pipe_factory(_Pipe))


def test_pipe_factory_validates_settings_against_init():
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("nerzoo_test_pipe", config={"mode": "b", "size": 3})
    assert (type(pipe), pipe.name, pipe.mode, pipe.size) == (_Pipe, "nerzoo_test_pipe", "b", 3)
    with pytest.raises(Exception, match="mode"):
        nlp.add_pipe("nerzoo_test_pipe", name="typo", config={"mode": "c"})
    with pytest.raises(Exception, match="unexpected"):
        nlp.add_pipe("nerzoo_test_pipe", name="extra", config={"colour": "red"})


def test_every_zoo_entry_is_a_factory_with_the_shared_meta():
    for name in ["token_classifier", "nerdl", *ZOO]:
        meta = Language.get_factory_meta(name)
        assert meta.assigns == FACTORY_META["assigns"]
        assert meta.default_config["ents_filter"] == {
            "@misc": "spacy.prioritize_existing_ents_filter.v1"
        }
        assert meta.default_config["scorer"] == {"@scorers": "spacy_nerzoo.conlleval_scorer.v1"}
