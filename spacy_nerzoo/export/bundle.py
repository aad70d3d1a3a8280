"""Turn a trained checkpoint into a model folder the package ships (``spacy_nerzoo/models/NAME``).

A shipped folder holds what inference needs and nothing else: the HF ``config.json`` (labels,
architecture), the tokenizer files, and one ONNX network (dynamic int8 by default, checked against
torch while exporting). No torch weights: they would triple the size and the wheel must stay small.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from ..backends.onnx_backend import ONNX_FILE_NAMES
from ..serialization import replace_folder, staging_folder
from .onnx import export_onnx

TRAINING_INFO = "training.json"


def bundle_model(
    checkpoint: Path, output: Path, *, precision: Literal["fp32", "int8"] = "int8"
) -> Path:
    """Export ``checkpoint`` into the folder ``output`` (replaced if it exists)."""
    from transformers import AutoConfig, AutoTokenizer

    checkpoint, output = Path(checkpoint), Path(output)
    staging = staging_folder(output)
    AutoConfig.from_pretrained(str(checkpoint)).save_pretrained(str(staging))
    AutoTokenizer.from_pretrained(str(checkpoint)).save_pretrained(str(staging))
    export_onnx(checkpoint, staging / ONNX_FILE_NAMES[precision], quantize=precision == "int8")
    metrics = checkpoint.parent / "metrics.json"
    if metrics.exists():  # provenance: the training run's settings and valid scores
        info = json.loads(metrics.read_text(encoding="utf8"))
        (staging / TRAINING_INFO).write_text(json.dumps(info, indent=2), encoding="utf8")
    replace_folder(staging, output)
    return output


def export_source(model: str, component: str | None = None) -> Path:
    """The checkpoint folder behind MODEL: a checkpoint folder, a saved pipeline's component or a
    zoo entry's public checkpoint (from the local cache or the hub)."""
    from ..backends.loading import resolve_checkpoint
    from ..components.token_classifier import MODEL_DIR

    path = Path(model)
    if (path / "config.cfg").is_file():
        found = {p.parent.parent.name: p.parent for p in path.glob(f"*/{MODEL_DIR}/config.json")}
        if component is not None:
            found = {k: v for k, v in found.items() if k == component}
        if len(found) != 1:
            names = ", ".join(sorted(found)) or "none"
            raise ValueError(
                f"Pipeline {path} must have exactly one token-classifier component to export "
                f"(found: {names}); choose one with --component"
            )
        source = next(iter(found.values()))
        if not any(source.glob("*.safetensors")) and not any(source.glob("*.bin")):
            raise ValueError(
                f"{source} holds no torch weights (it was saved with backend='onnx'): its ONNX "
                "file is already there"
            )
        return source
    return Path(resolve_checkpoint(model, component="export").location)


if __name__ == "__main__":  # ``python -m spacy_nerzoo.export.bundle ARGS``: nerzoo bundle
    from spacy_nerzoo.cli.main import run_module

    run_module("bundle")
