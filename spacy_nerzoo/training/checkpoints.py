"""Checkpoints of a fine-tuning run: the model folders, and everything ``--resume`` needs.

Every folder is written to a staging folder and swapped in (``serialization.replace_folder``),
so a run killed at any moment leaves its last complete checkpoint; the RNG states are saved with
it, so a resumed run draws the same batches and dropout masks as one that never stopped.
"""

from __future__ import annotations

import json
import platform
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spacy_nerzoo.serialization import replace_folder, staging_folder

# What a resumed run must share with the run that wrote the checkpoint (epochs and max_steps may
# change: they only move the end of the schedule).
RESUME_KEYS = (
    "format",
    "base_model",
    "lr",
    "batch_size",
    "max_length",
    "seed",
    "warmup",
    "weight_decay",
    "clip",
    "bf16",
    "casing",
    "casing_lr",
    "head_lr",
    "soft_labels",
    "unlabelled",
    "unlabelled_soft",
    "unlabelled_limit",
    "distill_alpha",
    "temperature",
    "layers",
)


def versions() -> dict[str, str]:
    import transformers

    from spacy_nerzoo.about import __version__

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "spacy_nerzoo": __version__,
    }


def write_model(model: Any, tokenizer: Any, folder: Path, info: dict[str, Any]) -> Path:
    """A self-contained HF folder, staged: ``replace_folder`` puts it in place once complete."""
    tmp = staging_folder(folder)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "nerzoo_training.json").write_text(json.dumps(info, indent=2))
    return tmp


def rng_states() -> dict[str, Any]:
    """Python's and NumPy's global RNG states as JSON (torch's is saved as a tensor)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()  # type: ignore[misc]
    return {
        "python": [version, list(internal), gauss],
        "numpy": [name, np.asarray(keys).tolist(), pos, has_gauss, cached],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def save_checkpoint(
    folder: Path,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict[str, Any],
    info: dict[str, Any],
) -> None:
    """Everything ``--resume`` needs, written to a staging folder and swapped in
    (``serialization.replace_folder``).

    ``trainer_state.json`` is written last: a folder without it is never used.
    """
    tmp = write_model(model, tokenizer, folder, info)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(torch.get_rng_state(), tmp / "torch_rng.pt")
    (tmp / "rng.json").write_text(json.dumps(rng_states()))
    (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2))
    replace_folder(tmp, folder)


def check_resume(saved: dict[str, Any] | None, now: dict[str, Any], last_dir: Path) -> None:
    """Refuse to continue a checkpoint made with other data or another recipe."""
    if not saved:  # written before settings were recorded
        return
    diffs = [k for k in RESUME_KEYS if k in saved and saved[k] != now[k]]
    diffs += [
        k
        for k in ("train", "dev")
        if k in saved and Path(saved[k]).resolve() != Path(now[k]).resolve()
    ]
    if diffs:
        detail = ", ".join(f"{k}: {saved[k]!r} -> {now[k]!r}" for k in diffs)
        raise ValueError(
            f"--resume: {last_dir} was trained with other settings ({detail}); resume with the "
            "same settings, or start afresh with another --output"
        )


# --------------------------------------------------------------------------------------------------
# Training
