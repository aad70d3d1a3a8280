"""Finding a checkpoint (local folder or hub id) and turning failures into one clear error."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ..catalogue import ZOO, bundled_path
from ..errors import ModelLoadError, NerzooError

WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
ONNX_FILES = ("model.onnx", "model.int8.onnx")
# Byte-level BPE tokenizers need a prefix space to encode pre-split words the way they were
# trained (HF run_ner does the same). Passed when loading these types (their own classes refuse
# pre-split words without it); load_tokenizer also finds any other byte-level tokenizer.
_PREFIX_SPACE_TYPES = {"roberta", "longformer", "gpt2", "bart", "deberta"}
# Models whose position ids start after the padding index (create_position_ids_from_input_ids).
_OFFSET_POSITION_TYPES = {"roberta", "longformer", "xlm-roberta", "camembert", "mpnet"}


@dataclass
class Checkpoint:
    """A checkpoint resolved to something transformers can load."""

    source: str  # what the user gave
    location: str  # local folder or hub id handed to from_pretrained
    is_local: bool


def local_path(source: str | Path) -> Path:
    """``source`` as a path with ``~`` expanded; ``~user`` of an unknown user stays literal
    (``Path.expanduser`` would raise instead)."""
    return Path(os.path.expanduser(str(source)))


def is_hub_id(source: str | Path, *, bare_names: bool = True) -> bool:
    """Whether ``source`` names a Hugging Face hub repository rather than a local path.

    The package's one rule, used by ``resolve_checkpoint`` and ``api.resolve_model``: an existing
    file or folder is always local (a folder ``org/name`` beside the working directory wins over
    the hub); otherwise the text must pass ``huggingface_hub``'s own id check (``name`` or
    ``owner/name``, letters, digits, ``-_.``, no leading ``.``/``-``, no ``..``), which rejects
    ``./x``, ``~/x``, absolute paths and Windows paths. ``bare_names=False`` also requires the
    ``owner/`` part: the user-facing resolver treats a bare unknown word as a mistyped zoo name.
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if isinstance(source, Path) or local_path(source).exists():
        return False
    if not bare_names and "/" not in source:
        return False
    try:
        validate_repo_id(source)
    except HFValidationError:
        return False
    return True


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
    path = local_path(source)
    if path.exists():
        if not path.is_dir() or not (path / "config.json").exists():
            raise ModelLoadError(
                f"Component '{component}': {path.resolve()} is not a Hugging Face checkpoint "
                "folder (no config.json). Point 'model' at a folder saved with save_pretrained()."
            )
        return Checkpoint(source, str(path.resolve()), True)
    if not is_hub_id(source):
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
    if isinstance(exc, TokenizerLoadError):  # the cause is known: no generic checklist
        return ModelLoadError(
            f"Could not load the {what} of model '{ckpt.source}' for component '{component}': {exc}"
        )
    # The first lines: torch's state-dict errors put the cause (sizes) on the second line.
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    reason = " ".join(lines[:3])[:600] if lines else type(exc).__name__
    if ckpt.is_local:
        tried = f"local folder {ckpt.location}"
        hint = "Check that the folder holds config.json, the tokenizer files and the weights "
        hint += f"({' or '.join(WEIGHT_FILES[:2])}), and that they are complete."
    else:
        local = local_path(ckpt.source).resolve()
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
    """Load the fast tokenizer (a slow one where the checkpoint has no other), with a prefix space
    for byte-level BPE.

    A byte-level BPE vocabulary spells a word after a space differently ("ĠBerlin") from one at
    the start of a text ("Berlin"); pre-split words are encoded with the prefix space, as HF's
    run_ner fine-tunes on them and as nearly every word of running text reads. Known model types
    get it when loading; any other whose tokenizer.json has a byte-level pre-tokenizer (ModernBERT,
    or a checkpoint naming the generic ``PreTrainedTokenizerFast``) is loaded again with it.
    A tokenizer that fails for a cause recognised here (saved by a newer transformers in a format
    the installed one cannot read, or needing the missing sentencepiece package) raises
    :class:`TokenizerLoadError`, naming the cause.
    """
    from transformers import AutoTokenizer

    _refuse_newer_tokenizer(Path(location))
    kwargs: dict[str, Any] = {"use_fast": True}
    if getattr(config, "model_type", None) in _PREFIX_SPACE_TYPES:
        kwargs["add_prefix_space"] = True
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(location), **kwargs)
    except Exception as e:
        _explain_tokenizer_failure(Path(location), config, e)
        raise
    if "add_prefix_space" not in kwargs and _byte_level_without_prefix_space(tokenizer):
        tokenizer = AutoTokenizer.from_pretrained(str(location), add_prefix_space=True, **kwargs)
    return tokenizer


class TokenizerLoadError(NerzooError, ValueError):
    """A tokenizer that cannot be loaded for a cause recognised here; the message names it (a
    checkpoint saved by a newer transformers, a missing package)."""


def _explain_tokenizer_failure(folder: Path, config: Any, exc: BaseException) -> None:
    """Raise TokenizerLoadError when transformers' failure has a cause we can name."""
    saved_by = str(getattr(config, "transformers_version", None) or "")
    if _major(saved_by) > _major(_installed_transformers()):
        raise TokenizerLoadError(
            f"the checkpoint was saved by transformers {saved_by} and the installed "
            f"{_installed_transformers()} cannot read its tokenizer ({_first_line(exc)}); "
            "save the tokenizer again with transformers 4.x"
        ) from None
    spm = sorted(p.name for p in folder.glob("*.model"))
    if spm and not (folder / "tokenizer.json").is_file() and find_spec("sentencepiece") is None:
        raise TokenizerLoadError(
            f"the checkpoint has no tokenizer.json, only the SentencePiece model {spm[0]}, and "
            "reading that needs the sentencepiece package, which is not installed: `pip install "
            "sentencepiece` (transformers then converts it to a fast tokenizer)"
        ) from None


# The tokenizer classes transformers 5 writes into tokenizer_config.json in place of the
# PreTrainedTokenizerFast / PreTrainedTokenizer family; 4.x has none of them.
_V5_TOKENIZER_CLASSES = {
    "TokenizersBackend": "tokenizers",
    "SentencePieceBackend": "sentencepiece",
    "PythonBackend": "python",
    "MistralCommonBackend": "mistral-common",
}


def _refuse_newer_tokenizer(folder: Path) -> None:
    """Raise TokenizerLoadError for a tokenizer_config.json that names a transformers 5 class.

    transformers 4.x fails on them with "Tokenizer class TokenizersBackend does not exist or is
    not currently imported", which says nothing of the cause.
    """
    path = folder / "tokenizer_config.json"
    try:
        cls = json.loads(path.read_text(encoding="utf-8")).get("tokenizer_class")
    except (OSError, ValueError, AttributeError):
        return  # no (readable) tokenizer_config.json: transformers says what is wrong
    if cls not in _V5_TOKENIZER_CLASSES:
        return
    hint = ""
    if cls == "TokenizersBackend" and (folder / "tokenizer.json").is_file():
        hint = (
            ' Its tokenizer.json is usually readable: set "tokenizer_class" in '
            "tokenizer_config.json to the model family's fast tokenizer (e.g. "
            '"BertTokenizerFast") or to "PreTrainedTokenizerFast".'
        )
    raise TokenizerLoadError(
        f"its tokenizer_config.json names the tokenizer class {cls!r}, which transformers 5 "
        f"writes ({_V5_TOKENIZER_CLASSES[cls]} backend) and the installed transformers "
        f"{_installed_transformers()} does not have: the checkpoint was saved by a newer "
        "transformers than spacy-nerzoo supports (< 4.54). Save the tokenizer again with "
        f"transformers 4.x.{hint}"
    )


def _byte_level_without_prefix_space(tokenizer: Any) -> bool:
    """Whether a fast tokenizer's pre-tokenizer is byte-level BPE's, set to add no prefix space."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or backend.pre_tokenizer is None:
        return False
    state = json.loads(backend.pre_tokenizer.__getstate__())
    return state.get("type") == "ByteLevel" and not state.get("add_prefix_space", False)


def _installed_transformers() -> str:
    import transformers

    return str(transformers.__version__)


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0][:300] if lines else type(exc).__name__


# The window of a checkpoint that records none: what BERT-size encoders take.
DEFAULT_MAX_LENGTH = 512


def recorded_max_length(config: Any) -> int:
    """The window, in wordpieces, a model is run with when none is asked for: the one its
    trainer trained and validated it with (``config.nerzoo["max_length"]``), so it scores as the
    trainer reported; else 512, or the position limit if smaller. The component, teacher
    labelling and static-scale calibration all window a model this way."""
    limit = max_positions(config)
    recorded = (getattr(config, "nerzoo", None) or {}).get("max_length")
    if isinstance(recorded, int) and 3 <= recorded <= (limit or recorded):
        return recorded
    return min(DEFAULT_MAX_LENGTH, limit) if limit else DEFAULT_MAX_LENGTH


def max_positions(config: Any) -> int | None:
    """Longest input (special tokens included) the model's position embeddings allow."""
    n = getattr(config, "max_position_embeddings", None)
    if n is None:
        return None
    # RoBERTa-style models (MPNet too) reserve padding_idx + 1 positions.
    if getattr(config, "model_type", None) in _OFFSET_POSITION_TYPES:
        n -= getattr(config, "pad_token_id", 1) + 1
    return int(n)
