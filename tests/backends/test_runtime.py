"""Loading a token classifier into a Runtime: checks, saving, a new head, the head's types."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spacy_nerzoo.backends.loading import Checkpoint
from spacy_nerzoo.backends.runtime import (
    head_types,
    load_runtime,
    load_with_new_head,
    new_head_tags,
)
from spacy_nerzoo.errors import ModelLoadError

IDS = np.asarray([[2, 10, 11, 12, 3]], np.int64)
MASK = np.ones_like(IDS)


def ckpt(path):
    return Checkpoint(str(path), str(path), True)


def load(path, **kwargs):
    return load_runtime(path, "torch", "fp32", ckpt=ckpt(path), component="ner", **kwargs)


def test_save_round_trips_weights_config_and_tokenizer(tiny_model, tmp_path):
    path = tiny_model("distilbert")
    rt = load(path, id2label=["O", "B-A", "I-A", "B-B", "I-B", "B-C", "I-C", "B-D", "I-D"])
    rt.save(tmp_path)
    again = load(tmp_path)
    assert again.scheme == rt.scheme and again.scheme.entity_types == ["A", "B", "C", "D"]
    assert (again.prefix, again.suffix, again.pad_id) == (rt.prefix, rt.suffix, rt.pad_id)
    np.testing.assert_allclose(again.backend.predict(IDS, MASK), rt.backend.predict(IDS, MASK))


def test_id2label_must_fit_the_head(tiny_model):
    with pytest.raises(ModelLoadError, match="id2label lists 2 labels"):
        load(tiny_model("distilbert"), id2label=["O", "B-X"])


def test_head_types(tiny_model, tmp_path):
    path = tiny_model("distilbert")
    assert head_types(ckpt(path), component="ner", id2label=None) == ["LOC", "MISC", "ORG", "PER"]
    config = json.loads((path / "config.json").read_text(encoding="utf8"))
    config["id2label"] = {str(i): f"LABEL_{i}" for i in range(len(config["id2label"]))}
    config.pop("label2id")
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf8")
    assert head_types(ckpt(tmp_path), component="ner", id2label=None) is None  # generic
    named = ["O"] + [f"I-T{i}" for i in range(len(config["id2label"]) - 1)]
    assert head_types(ckpt(tmp_path), component="ner", id2label=named)[:2] == ["T0", "T1"]
    with pytest.raises(ModelLoadError, match="config"):
        head_types(ckpt(tmp_path / "absent"), component="ner", id2label=None)


def test_new_head_tags():
    assert new_head_tags(["PER", "LOC"], "IOB2") == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert new_head_tags(["PER", "LOC"], "IO") == ["O", "I-LOC", "I-PER"]


def test_new_head_of_the_same_size_starts_afresh(tiny_model):
    """Nine other tags on a nine-tag CoNLL head: no output keeps another label's weights."""
    path = tiny_model("distilbert")
    old = load(path).backend.model.classifier.weight.detach().clone()
    tags = new_head_tags(["W", "X", "Y", "Z"], "IOB2")
    rt = load_with_new_head(path, tags, "fp32", ckpt=ckpt(path), component="ner")
    new = rt.backend.model.classifier.weight.detach()
    assert rt.scheme.entity_types == ["W", "X", "Y", "Z"] and new.shape == old.shape
    assert not torch.equal(new, old)
    # The same tags as the checkpoint's head: its weights are kept.
    same = load(path)
    conll = [same.config.id2label[i] for i in range(same.config.num_labels)]
    kept = load_with_new_head(path, conll, "fp32", ckpt=ckpt(path), component="ner")
    assert torch.equal(kept.backend.model.classifier.weight.detach(), old)


def test_with_new_head_keeps_the_encoder_in_memory(tiny_model):
    rt = load(tiny_model("distilbert"))
    with torch.no_grad():  # as if trained: the encoder in memory differs from the checkpoint
        rt.backend.model.distilbert.embeddings.word_embeddings.weight.mul_(2.0)
    grown = rt.with_new_head(new_head_tags(["X"], "IO"), None, component="ner")
    assert grown.scheme.name == "IO" and grown.backend.num_labels == 2
    assert torch.equal(
        grown.backend.model.distilbert.embeddings.word_embeddings.weight,
        rt.backend.model.distilbert.embeddings.word_embeddings.weight,
    )
