"""Finding a checkpoint (local folder or hub id) and turning failures into one clear error."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..catalogue import ZOO, bundled_path
from ..errors import ModelLoadError

WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
ONNX_FILES = ("model.onnx", "model.int8.onnx")
# Hub ids are "name" or "owner/name"; anything else that does not exist is a missing folder.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# Byte-level BPE tokenizers need a prefix space to encode pre-split words the way they were
# trained (HF run_ner does the same).
_PREFIX_SPACE_TYPES = {"roberta", "longformer", "gpt2", "bart", "deberta", "mpnet"}


@dataclass
class Checkpoint:
    """A checkpoint resolved to something transformers can load."""

    source: str  # what the user gave
    location: str  # local folder or hub id handed to from_pretrained
    is_local: bool


def resolve_checkpoint(source: str | None, *, component: str) -> Checkpoint:
    """Decide whether ``source`` is a local folder or a hub id; fail early on obvious problems."""
    if not source:
        from ..sparknlp.zoo import cached_checkpoint, import_hint

        converted = cached_checkpoint(component)  # a Spark NLP seed model, converted once
        if converted is not None:
            return Checkpoint(str(converted), str(converted), True)
        seed = ZOO.get(component)
        raise ModelLoadError(
            f"Component '{component}' has no model to load: this zoo entry has no public "
            f"checkpoint. Supply one with nlp.add_pipe('{component}', "
            "config={'model': '/path/to/checkpoint'}) (a folder with config.json, tokenizer files "
            "and weights) or a Hugging Face hub id."
            + (f" {import_hint(seed)}" if seed is not None and seed.spark_nlp_download else "")
        )
    entry = ZOO.get(source)
    bundled = bundled_path(entry) if entry else None
    if bundled is not None:
        if not (bundled / "config.json").exists():
            raise ModelLoadError(
                f"Component '{component}': the built-in model '{source}' is missing from this "
                f"installation (expected in {bundled}): reinstall spacy-nerzoo, or, in a "
                "source checkout, train and export it with the project's workflow (project.yml)"
            )
        return Checkpoint(source, str(bundled), True)
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").exists():
            raise ModelLoadError(
                f"Component '{component}': {path.resolve()} is not a Hugging Face checkpoint "
                "folder (no config.json). Point 'model' at a folder saved with save_pretrained()."
            )
        return Checkpoint(source, str(path.resolve()), True)
    if not _HUB_ID.match(source):
        raise ModelLoadError(
            f"Component '{component}': model folder {path.resolve()} does not exist (and "
            f"'{source}' is not a Hugging Face hub id). Point 'model' at a checkpoint folder."
        )
    return Checkpoint(source, _hub_snapshot(source, component), False)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick probe, so an offline machine fails in seconds rather than after HTTP retries."""
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _hub_snapshot(repo_id: str, component: str) -> str:
    """Local folder of a hub checkpoint: from the cache, else downloaded once."""
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.txt", "*.model", "*.safetensors", "*.bin", "*.onnx"]
    ckpt = Checkpoint(repo_id, repo_id, False)
    try:
        return str(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached: try the hub below
        pass
    offline = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    if offline or not _hub_reachable():
        why = "offline mode is set" if offline else "the Hugging Face hub is unreachable"
        raise load_error(
            ckpt, component, "files", RuntimeError(f"not in the local cache and {why}")
        )
    try:
        return str(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as e:  # noqa: BLE001
        raise load_error(ckpt, component, "files", e) from None


def load_error(ckpt: Checkpoint, component: str, what: str, exc: BaseException) -> ModelLoadError:
    """Build the single error raised when any part of a checkpoint cannot be loaded."""
    # The first lines: torch's state-dict errors put the cause (sizes) on the second line.
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    reason = " ".join(lines[:3])[:600] if lines else type(exc).__name__
    if ckpt.is_local:
        tried = f"local folder {ckpt.location}"
        hint = "Check that the folder holds config.json, the tokenizer files and the weights "
        hint += f"({' or '.join(WEIGHT_FILES[:2])}), and that they are complete."
    else:
        local = Path(ckpt.source).expanduser().resolve()
        tried = (
            f"local folder {local} (does not exist); Hugging Face hub id '{ckpt.source}' "
            "(local cache, then the hub)"
        )
        hint = (
            "Without network access, download the checkpoint elsewhere (e.g. "
            f"`huggingface-cli download {ckpt.source} --local-dir DIR`) and pass "
            "config={'model': 'DIR'}."
        )
    return ModelLoadError(
        f"Could not load the {what} of model '{ckpt.source}' for component '{component}'. "
        f"Tried: {tried}. Reason: {reason}. {hint}"
    )


def load_tokenizer(location: str | Path, config: Any) -> Any:
    """Load the fast tokenizer, with a prefix space for byte-level BPE models."""
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"use_fast": True}
    if getattr(config, "model_type", None) in _PREFIX_SPACE_TYPES:
        kwargs["add_prefix_space"] = True
    return AutoTokenizer.from_pretrained(str(location), **kwargs)


def max_positions(config: Any) -> int | None:
    """Longest input (special tokens included) the model's position embeddings allow."""
    n = getattr(config, "max_position_embeddings", None)
    if n is None:
        return None
    # RoBERTa-style models reserve padding_idx + 1 positions.
    if getattr(config, "model_type", None) in {"roberta", "longformer", "xlm-roberta", "camembert"}:
        n -= getattr(config, "pad_token_id", 1) + 1
    return int(n)
