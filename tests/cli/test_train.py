"""``nerzoo train`` and ``nerzoo distill`` (spacy_nerzoo.cli.train): options to settings objects,
the ``python -m`` entry points, and passive OpenMP waiting for training processes."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import asdict, fields

import pytest

from spacy_nerzoo.cli import train as cli_train
from spacy_nerzoo.training import distill, finetune
from spacy_nerzoo.training.settings import LabelSettings, TrainSettings

# A value for every option that differs from its default, so a dropped or misnamed option shows.
TRAIN_OPTIONS = {
    "format": "fewnerd", "base_model": "mpnet", "epochs": "3", "lr": "0.002", "batch_size": "4",
    "max_length": "64", "stride": "8", "seed": "7", "warmup": "0.2", "weight_decay": "0.1",
    "clip": "2.0", "threads": "1", "bf16": None, "eval_bf16": None, "eval_batch_size": "8",
    "eval_limit": "5", "log_every": "2", "max_steps": "9", "save_every": "4", "stop_after": "6",
    "time_limit": "1.5", "casing": None, "casing_lr": "0.01", "soft_labels": "s.npy",
    "unlabelled": "raw.txt", "unlabelled_soft": "raw.npy", "unlabelled_limit": "10",
    "distill_alpha": "0.3", "temperature": "2.0", "head_lr": "0.001", "layers": "3",
    "resume": None,
}  # fmt: skip


def _line(options: dict[str, str | None]) -> list[str]:
    out: list[str] = []
    for name, value in options.items():
        out += [f"--{name.replace('_', '-')}", *([] if value is None else [value])]
    return out


@pytest.fixture
def captured(monkeypatch):
    """The settings objects the commands hand to the library (which is not run)."""
    calls: list[object] = []
    monkeypatch.setattr(finetune, "train", calls.append)
    monkeypatch.setattr(distill, "label", calls.append)
    return calls


def test_train_defaults_are_the_settings_defaults(nerzoo, captured):
    result = nerzoo("train", "--train", "t.txt", "--dev", "d.txt", "--output", "out")
    assert result.exit_code == 0, result.output
    assert captured == [TrainSettings("t.txt", "d.txt", "out")]


def test_every_train_option_reaches_its_field(nerzoo, captured):
    assert set(TRAIN_OPTIONS) == {f.name for f in fields(TrainSettings)} - {
        "train",
        "dev",
        "output",
    }
    args = ["--train", "t.txt", "--dev", "d.txt", "--output", "out", *_line(TRAIN_OPTIONS)]
    result = nerzoo("train", *args)
    assert result.exit_code == 0, result.output
    (settings,) = captured
    default = asdict(TrainSettings("t.txt", "d.txt", "out"))
    changed = {k for k, v in asdict(settings).items() if v != default[k]}
    assert changed == set(TRAIN_OPTIONS)
    assert settings.format == "fewnerd" and settings.time_limit == 1.5 and settings.resume


def test_train_options_are_checked(nerzoo, captured):
    result = nerzoo("train", "--train", "t", "--dev", "d", "--output", "o", "--format", "x")
    assert result.exit_code == 2 and "--format" in result.stderr
    assert nerzoo("train", "--train", "t", "--dev", "d").exit_code == 2  # --output missing
    assert captured == []
    with pytest.raises(ValueError, match="Unknown format"):
        TrainSettings("t", "d", "o", format="conll")  # type: ignore[arg-type]


def test_distill_options(nerzoo, captured):
    base = ["--teacher", "tch", "--data", "d.txt", "--output", "o.npy"]
    assert nerzoo("distill", *base).exit_code == 0
    extra = ["--limit", "3", "--max-length", "64", "--batch-size", "2", "--no-bf16"]
    result = nerzoo("distill", *base, *extra, "--threads", "1")
    assert result.exit_code == 0, result.output
    assert captured == [
        LabelSettings("tch", "d.txt", "o.npy"),
        LabelSettings("tch", "d.txt", "o.npy", 3, 64, 2, False, 1),
    ]


def test_module_entry_points_parse_like_the_cli(captured):
    """``finetune.main(argv)`` / ``distill.main(argv)``: the same options, errors propagate."""
    assert finetune.main(["--train", "t", "--dev", "d", "--output", "o", "--bf16"]) == 0
    assert distill.main(["--teacher", "x", "--data", "d", "--output", "o"]) == 0
    assert captured == [TrainSettings("t", "d", "o", bf16=True), LabelSettings("x", "d", "o")]


def test_module_entry_points_let_exceptions_through(monkeypatch):
    def interrupted(settings):
        raise KeyboardInterrupt

    monkeypatch.setattr(finetune, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        finetune.main(["--train", "t", "--dev", "d", "--output", "o"])


def test_training_commands_restart_with_passive_openmp(monkeypatch):
    calls = []

    def execv(path, args):
        calls.append((path, args, os.environ.get("OMP_WAIT_POLICY")))

    monkeypatch.setattr(os, "execv", execv)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    cli_train.restart_with_passive_openmp(["predict", "m", "x"])
    assert calls == [] and "OMP_WAIT_POLICY" not in os.environ
    cli_train.restart_with_passive_openmp(["--debug", "train", "--train", "t"])
    assert calls == [(sys.executable, [sys.executable, *sys.orig_argv[1:]], "PASSIVE")]
    cli_train.restart_with_passive_openmp(["train"])  # set now (or by the user): no restart
    assert len(calls) == 1


def test_library_imports_leave_openmp_alone():
    code = "import os, spacy_nerzoo.training.finetune; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"


def test_python_dash_m_trainer_runs_with_passive_openmp():
    """The real restart: libgomp reports its spin count at start-up, 0 under PASSIVE."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["OMP_DISPLAY_ENV"] = "VERBOSE"
    command = [sys.executable, "-m", "spacy_nerzoo.training.finetune", "--help"]
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "--time-limit" in out.stdout and "--resume" in out.stdout
    spins = [line.split("=")[1].strip() for line in out.stderr.splitlines() if "SPINCOUNT" in line]
    if not spins:
        pytest.skip("this OpenMP runtime does not report GOMP_SPINCOUNT")
    assert spins[-1] == "'0'"
