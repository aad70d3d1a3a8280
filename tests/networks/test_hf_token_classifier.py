"""The token classifier's network side: inputs, logits per piece, training windows, loss."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import spacy
from spacy.training import Example

from spacy_nerzoo.alignment import encode_batch, plan_batch_windows
from spacy_nerzoo.backends.loading import Checkpoint
from spacy_nerzoo.backends.runtime import load_runtime
from spacy_nerzoo.components.common import network
from spacy_nerzoo.networks import hf_token_classifier as hf

TEXTS = [
    "Angela Merkel met Tim Cook in Berlin .",
    "The European Commission said on Thursday it disagreed with German advice to consumers .",
]


@pytest.fixture(scope="module")
def runtime(tiny_model, tmp_path_factory):
    """A tiny DistilBERT without dropout, so train-mode and predict-mode logits agree."""
    path = tmp_path_factory.mktemp("no-dropout")
    shutil.copytree(tiny_model("distilbert"), path, dirs_exist_ok=True)
    config = json.loads((path / "config.json").read_text(encoding="utf8"))
    config.update(dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0)
    (path / "config.json").write_text(json.dumps(config), encoding="utf8")
    ckpt = Checkpoint(str(path), str(path), True)
    return load_runtime(path, "torch", "fp32", ckpt=ckpt, component="ner")


def test_piece_logits_do_not_depend_on_windows_per_pass(runtime):
    nlp = spacy.blank("en")
    batch = encode_batch(runtime.tokenizer, [nlp(t) for t in TEXTS], lowercase=False)
    windows = plan_batch_windows(batch, 6, 2)
    assert len(windows.lengths) > 2
    one = hf.piece_logits(runtime, batch, windows, 1)
    assert one.shape == (len(batch.piece_ids), runtime.backend.num_labels)
    np.testing.assert_allclose(hf.piece_logits(runtime, batch, windows, 64), one, atol=1e-5)


def test_training_windows_labelled_once_and_trained_in_batches(runtime):
    nlp = spacy.blank("en")
    egs = [
        Example.from_dict(nlp.make_doc(TEXTS[0]), {"entities": [(0, 13, "PER"), (30, 36, "LOC")]})
    ]
    windows = hf.training_windows(egs, runtime, window=5, stride=2, lowercase=False)
    assert len(windows) > 1
    assert sum(w.n_gold for w in windows) == len(egs[0].predicted)  # one piece per token
    ids, mask, types = hf.batch_inputs(runtime, windows)
    assert ids.shape == mask.shape == (len(windows), 5 + runtime.n_special) and types is None
    model = hf.build_hf_model()
    hf.bind_network(model, runtime.backend.model)
    shim = model.shims[0]
    hf.bind_network(model, runtime.backend.model)  # bound once: the optimizer keeps its state
    assert model.shims == [shim] and network(model) is runtime.backend.model
    loss = hf.train_windows(model, runtime, windows, batch_size=2)
    runtime.backend.model.eval()
    logits = [model.predict(hf.batch_inputs(runtime, [w]))[0][1:-1] for w in windows]
    assert loss == pytest.approx(hf.windows_loss(windows, logits)[0], rel=1e-4)
    assert all((w.labels == hf.IGNORE_INDEX).sum() < len(w.labels) for w in windows)


def test_windows_loss_needs_one_logits_array_per_window(runtime):
    with pytest.raises(ValueError, match="Got logits for 0 windows, expected 1"):
        nlp = spacy.blank("en")
        eg = Example.from_dict(nlp.make_doc("Tim"), {"entities": [(0, 3, "PER")]})
        hf.windows_loss(hf.training_windows([eg], runtime, window=8, stride=2, lowercase=False), [])
