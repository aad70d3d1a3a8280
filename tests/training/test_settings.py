"""The trainer's settings object: the library call without a command line, and the keys
``metrics.json`` records (and ``--resume`` compares), which must not drift."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from spacy_nerzoo.training import finetune  # noqa: E402
from spacy_nerzoo.training.settings import TrainSettings  # noqa: E402

# The hyperparameter keys of every metrics.json written so far (the trainer's option names);
# "layers" was added on 2026-12-03 (older files lack it, and --resume skips missing keys).
RECORDED_KEYS = [
    "train", "dev", "output", "format", "base_model", "epochs", "lr", "batch_size",
    "max_length", "stride", "seed", "warmup", "weight_decay", "clip", "threads", "bf16",
    "eval_bf16", "eval_batch_size", "eval_limit", "log_every", "max_steps", "save_every",
    "stop_after", "time_limit", "casing", "casing_lr", "soft_labels", "unlabelled",
    "unlabelled_soft", "unlabelled_limit", "distill_alpha", "temperature", "head_lr", "layers",
    "resume",
]  # fmt: skip


def test_settings_keep_the_recorded_hyperparameter_keys() -> None:
    assert list(asdict(TrainSettings("t", "d", "o"))) == RECORDED_KEYS
    assert set(finetune.RESUME_KEYS) <= set(RECORDED_KEYS)


def test_train_from_python_with_a_settings_object(
    tmp_path: Path, tiny_base: Path, write_conll
) -> None:
    train, dev = tmp_path / "train.txt", tmp_path / "dev.txt"
    write_conll(train, 8, seed=2)
    write_conll(dev, 2, seed=3)
    settings = TrainSettings(
        str(train), str(dev), str(tmp_path / "out"), base_model=str(tiny_base), epochs=2,
        lr=5e-3, batch_size=4, max_length=32, threads=1, stop_after=2,
    )  # fmt: skip
    metrics = finetune.train(settings)
    assert metrics["stopped"]["reason"] == "--stop-after 2 steps"
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())["hyperparameters"]
    resolved = {"base_model": str(tiny_base), "stride": 8, "format": "conll03"}
    assert saved == {**asdict(settings), **resolved}
    # Resuming with another recipe is refused, naming the setting.
    with pytest.raises(ValueError, match="lr: 0.005 -> 0.001"):
        finetune.train(replace(settings, lr=1e-3, resume=True))
    finished = finetune.train(replace(settings, resume=True, stop_after=0))
    assert finished["finished"] and [e["epoch"] for e in finished["epochs"]] == [1, 2]
