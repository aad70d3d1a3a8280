"""Export a Hugging Face token classifier to ONNX, optionally int8-quantised, with a parity check.

``export_onnx`` turns a checkpoint folder (anything ``AutoModelForTokenClassification`` loads) into
one self-contained ``.onnx`` file that takes ``input_ids`` and ``attention_mask`` and returns
``logits``, checks it against torch, and writes it atomically. ``ensure_onnx`` is the cache behind
``backend="onnx"``: it exports a plain checkpoint once and reuses the file afterwards.

torch and transformers are imported inside the functions that need them, so using a folder that
already holds ``model.onnx`` (or quantising it) works without torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..backends.onnx_backend import ONNX_FILE_NAMES
from ..casing import N_CLASSES as N_CASING_CLASSES
from ..casing import config_scheme
from ..errors import NerzooError
from ..serialization import unique_file
from . import row_scales, static_scales
from .static_scales import Calibration

logger = logging.getLogger(__name__)

# Bump when the exported graph changes (inputs, exporter, quantisation options), so that files in
# users' caches made by an older version are not reused.
# 3: int8 files quantise activations per row (``row_scales``), not per batch.
# (4, static calibrated activation scales, is only written on request with a calibration corpus,
# never into the cache: see ``static_scales.FORMAT_VERSION``.)
EXPORT_FORMAT_VERSION = 3
DEFAULT_OPSET = 17
CACHE_ENV = "SPACY_NERZOO_CACHE"
# protobuf cannot hold a message over 2 GiB; bigger models would need ONNX external data files,
# which the single-file save/copy used throughout the package does not handle.
_MAX_PROTO_BYTES = 2**31 - 2**26
# The weight files whose size and mtime key the cache (shards included).
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".index.json")
# Bounds for the int8 network against the fp32 ONNX network; see _check_int8.
MAX_INT8_RELATIVE_ERROR = 0.5
MIN_INT8_AGREEMENT = 0.95

# Models the exporter cannot produce a correct dynamic-shape graph for, and why.
_NOT_EXPORTABLE = {
    "longformer": (
        "Longformer does not export to ONNX with dynamic shapes: its sliding-window attention "
        "pads and reshapes by the input length in Python, so the TorchScript exporter bakes the "
        "traced length into the graph (any other length fails in onnxruntime) and the dynamo "
        "exporter fails outright. Use backend='torch' instead (precision='bf16' for speed)."
    ),
}

# News-style sentences with entities of the four CoNLL types (written for this check, not taken
# from any corpus), used when the checkpoint has a tokenizer, so that the int8 check runs on
# inputs like the ones the model will see.
_SAMPLE_SENTENCES = (
    "The European Union asked Germany on Monday to review its rules on imported beef.",
    "Maria Lopez, a spokeswoman for the ministry, spoke to reporters in Madrid.",
    "Shares of Microsoft rose 3 percent in New York after the company beat forecasts.",
    "Kenya beat Ghana 2-1 in Nairobi to reach the final of the African Cup.",
    "Ms. Thompson, a lawyer from Chicago, joined Goldman Sachs in 2004.",
    "The World Health Organization warned that malaria cases in Uganda rose sharply.",
    "Prime Minister John Howard flew to Jakarta for talks with Indonesian officials.",
    "Toyota said its Brazilian unit would build a new plant near Sao Paulo.",
    "Rain stopped play at Lord's with England on 120 for three against Pakistan.",
    "The Nobel-winning French physicist will lecture at Oxford University next spring.",
)


class OnnxExportError(NerzooError):
    """Exporting or checking an ONNX network failed."""


class UnsupportedExportError(OnnxExportError, ValueError):
    """This architecture cannot be exported correctly; the message says what to use instead.

    A ``ValueError`` too, so the component reports it as a configuration refusal.
    """


class OnnxParityError(OnnxExportError):
    """The exported network does not compute what the original does."""


Batch = tuple[np.ndarray, np.ndarray]


def export_onnx(
    model_dir: Path,
    output: Path,
    *,
    quantize: bool = False,
    activation_scales: Literal["per_row", "static"] = "per_row",
    calibration: Calibration | None = None,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    atol: float = 1e-4,
) -> Path:
    """Export the token classifier in ``model_dir`` to the ONNX file ``output`` and return it.

    The graph takes int64 ``input_ids`` and ``attention_mask`` of shape (batch, sequence), both axes
    dynamic, and returns float32 ``logits``. ``token_type_ids`` is an input only for models trained
    with casing classes (``config.nerzoo["casing"]``); for others the model's all-zeros default is
    what the components use, so it is left out. With ``quantize`` the file holds int8 weights
    and quantises activations per token at run time (``activation_scales="per_row"``, see
    ``quantize_onnx``), or with fixed ranges measured on ``calibration``, a corpus from the
    model's domain (``"static"``: faster, but inputs outside the calibrated range are clipped;
    see ``static_scales``). With ``check``, onnxruntime's output is compared with torch's
    on padded batches of several shapes and a mismatch over ``atol`` raises ``OnnxParityError``
    (int8 is held to a relative-error bound and label agreement with the fp32 graph instead; see
    ``_check_int8``). ``output`` is written through a temporary file and a rename, so it is either
    complete or absent.
    """
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification

    from ..backends.cased import register_model

    register_model()
    model_dir, output = Path(model_dir), Path(output)
    static = _static_request(quantize, activation_scales, calibration)
    config = AutoConfig.from_pretrained(str(model_dir))
    refuse_unexportable(config.model_type)
    model = AutoModelForTokenClassification.from_pretrained(
        str(model_dir), torch_dtype=torch.float32
    ).eval()
    n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    if n_bytes > _MAX_PROTO_BYTES:
        raise OnnxExportError(
            f"{model_dir} has {n_bytes / 2**30:.1f} GiB of weights, over the 2 GiB limit of a "
            "single ONNX file; use backend='torch'."
        )
    text, random_ids = _check_batches(model_dir, config)
    metadata = {
        "spacy_nerzoo.export_format": str(EXPORT_FORMAT_VERSION),
        "model_type": str(config.model_type),
        "id2label": json.dumps({str(k): v for k, v in config.id2label.items()}),
        "precision": "int8" if quantize else "fp32",
    }
    if quantize:
        metadata[row_scales.METADATA_KEY] = row_scales.PER_ROW
    if static is not None:
        metadata.update(_static_metadata(static))
    output.parent.mkdir(parents=True, exist_ok=True)
    with _temp_file(output, ".fp32.onnx") as fp32:
        _torch_export(
            model,
            fp32,
            opset,
            vocab_size=int(getattr(config, "vocab_size", 100)),
            token_types=config_scheme(config) is not None,
        )
        if check:
            _check_fp32(model, fp32, text + random_ids, atol)
        if quantize:
            with _temp_file(output, ".int8.onnx") as int8:
                _quantize(fp32, int8)
                if static is not None:
                    _calibrate(int8, model_dir, static)
                if check:
                    _check_int8(fp32, int8, text or random_ids)
                _publish(int8, output, metadata)
        else:
            _publish(fp32, output, metadata)
    logger.info("Exported %s to %s", model_dir, output)
    return output


def quantize_onnx(
    fp32_path: Path, output: Path, *, check: bool = True, batches: list[Batch] | None = None
) -> Path:
    """Write a dynamic int8 copy of the fp32 ONNX token classifier ``fp32_path`` to ``output``.

    Needs onnxruntime only (no torch), so a folder that ships ``model.onnx`` can be run at int8.
    With ``check``, the int8 network's logits and labels are compared with the fp32 network's on
    ``batches`` (default: random ids, padded; see ``_check_int8``) and a network that strays too
    far raises ``OnnxParityError``.
    """
    import onnx

    fp32_path, output = Path(fp32_path), Path(output)
    metadata = {p.key: p.value for p in onnx.load(str(fp32_path)).metadata_props}
    metadata["precision"] = "int8"
    metadata[row_scales.METADATA_KEY] = row_scales.PER_ROW
    output.parent.mkdir(parents=True, exist_ok=True)
    with _temp_file(output, ".int8.onnx") as int8:
        _quantize(fp32_path, int8)
        if check:
            _check_int8(fp32_path, int8, batches or _random_batches(vocab_size=100))
        _publish(int8, output, metadata)
    return output


def _static_request(
    quantize: bool, activation_scales: str, calibration: Calibration | None
) -> Calibration | None:
    """The calibration to apply, or None for per-row scales; refuses inconsistent options."""
    if activation_scales not in ("per_row", "static"):
        raise ValueError(
            f"activation_scales must be 'per_row' or 'static', not {activation_scales!r}"
        )
    if activation_scales == "per_row":
        if calibration is not None:
            raise ValueError("calibration is only used with activation_scales='static'")
        return None
    if not quantize:
        raise ValueError("activation_scales='static' quantises to int8: pass quantize=True")
    if calibration is None:
        raise ValueError(
            "activation_scales='static' needs calibration=Calibration(corpus=...): text from the "
            "model's domain (a CoNLL / Few-NERD file, a .spacy DocBin or a list of texts)"
        )
    return calibration


def _static_metadata(calibration: Calibration) -> dict[str, str]:
    return {
        row_scales.METADATA_KEY: static_scales.STATIC,
        static_scales.FORMAT_KEY: str(static_scales.FORMAT_VERSION),
        static_scales.CALIBRATION_KEY: calibration.describe(),
    }


def _calibrate(int8: Path, model_dir: Path, calibration: Calibration) -> None:
    """Give the per-row int8 file ``int8`` static scales measured on ``calibration``'s corpus,
    windowed with the tokenizer in ``model_dir``."""
    if not (Path(model_dir) / "tokenizer.json").is_file():
        raise OnnxExportError(
            f"{model_dir} has no tokenizer.json to turn the calibration corpus into network inputs"
        )
    batches = calibration.batches(model_dir)
    static_scales.rewrite_file(int8, batches, **calibration.options())


def ensure_onnx(model_dir: Path, cache_dir: Path | None, quantize: bool) -> Path:
    """Return an ONNX file for the checkpoint folder ``model_dir``, exporting it at most once.

    A folder that already holds ``model.onnx`` (fp32) or ``model.int8.onnx`` is used as it is
    (an int8 request on a folder with only ``model.onnx`` quantises that file, without torch).
    Otherwise the checkpoint is exported into the cache, under a key made of its ``config.json``
    and the sizes and mtimes of its weight files, and later calls reuse that file. The cache is
    ``cache_dir``, else ``$SPACY_NERZOO_CACHE/onnx``, else ``~/.cache/spacy_nerzoo/onnx``.
    """
    model_dir = Path(model_dir)
    name = ONNX_FILE_NAMES["int8" if quantize else "fp32"]
    if (model_dir / name).is_file():
        return model_dir / name
    root = onnx_cache_dir(cache_dir)
    shipped_fp32 = model_dir / ONNX_FILE_NAMES["fp32"]
    if quantize and shipped_fp32.is_file():
        target = root / _cache_key([shipped_fp32]) / name
        if not target.is_file():
            logger.info("Quantising %s to int8 once; cached as %s", shipped_fp32, target)
            text, random_ids = _check_batches(model_dir, None)
            quantize_onnx(shipped_fp32, target, batches=text or random_ids)
            _write_source_note(target.parent, model_dir)
        return target
    config_file = model_dir / "config.json"
    if not config_file.is_file():
        raise OnnxExportError(
            f"{model_dir} holds neither {name} nor a Hugging Face checkpoint (config.json) to "
            "export one from."
        )
    config = json.loads(config_file.read_text(encoding="utf-8"))
    refuse_unexportable(str(config.get("model_type", "")))
    weights = sorted(p for p in model_dir.iterdir() if p.name.endswith(_WEIGHT_SUFFIXES))
    if not weights:
        present = ", ".join(sorted(p.name for p in model_dir.glob("*.onnx")))
        hint = f" It ships {present}: choose the matching precision." if present else ""
        raise OnnxExportError(
            f"{model_dir} has no {name} and no torch weights to export one from.{hint}"
        )
    target = root / _cache_key([config_file, *weights], hash_contents=1) / name
    if target.is_file():
        return target
    logger.info("Exporting %s to ONNX once; cached as %s", model_dir, target)
    export_onnx(model_dir, target, quantize=quantize)
    _write_source_note(target.parent, model_dir)
    return target


def onnx_cache_dir(cache_dir: Path | None = None) -> Path:
    """The folder exported networks are cached in (see ``ensure_onnx``)."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(CACHE_ENV)
    base = Path(env) if env else Path.home() / ".cache" / "spacy_nerzoo"
    return base.expanduser() / "onnx"


def refuse_unexportable(model_type: str) -> None:
    """Raise ``UnsupportedExportError`` for architectures that do not export correctly."""
    reason = _NOT_EXPORTABLE.get(model_type)
    if reason is not None:
        raise UnsupportedExportError(reason)


def _cache_key(files: list[Path], hash_contents: int = 0) -> str:
    """Hash that changes whenever the checkpoint or the export recipe does.

    The first ``hash_contents`` files (small ones: config.json) are hashed by content, the rest
    (weights, hundreds of MB) by name, size and mtime, which is enough to notice a re-save.
    """
    h = hashlib.sha256(f"v{EXPORT_FORMAT_VERSION} opset{DEFAULT_OPSET}\n".encode())
    for i, f in enumerate(files):
        if i < hash_contents:
            h.update(f.read_bytes())
        else:
            st = f.stat()
            h.update(f"{f.name} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def _write_source_note(folder: Path, model_dir: Path) -> None:
    """Say which checkpoint a cache entry came from, for people cleaning the cache."""
    note = {"source": str(Path(model_dir).resolve()), "format": EXPORT_FORMAT_VERSION}
    with contextlib.suppress(OSError):
        (folder / "source.json").write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _temp_file(output: Path, suffix: str) -> Iterator[Path]:
    """A temporary path next to ``output`` (same file system, so the final rename is atomic)."""
    path = unique_file(output.parent, f".{output.name}.", suffix)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _publish(tmp: Path, output: Path, metadata: dict[str, str]) -> None:
    """Stamp metadata into the finished file and move it into place."""
    import onnx

    model = onnx.load(str(tmp))
    del model.metadata_props[:]
    for key, value in sorted(metadata.items()):
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(tmp))
    os.replace(tmp, output)


def _probe_types(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Token types for parity checks of casing models: every class occurs, padding gets 0."""
    return (np.asarray(ids, np.int64) % N_CASING_CLASSES) * np.asarray(mask, np.int64)


def _torch_export(
    model: Any, path: Path, opset: int, *, vocab_size: int, token_types: bool = False
) -> None:
    """Trace ``model`` to ONNX with the TorchScript exporter.

    Why ``dynamo=False``, although torch 2.13 defaults to the dynamo exporter (measured with
    onnxruntime 1.31 on DistilBERT, ALBERT and MiniLM): both give correct dynamic-shape graphs
    (max |diff| ~1e-7 at any batch size and length) that run equally fast, but the dynamo
    exporter stores the weights in a separate ``.onnx.data`` file, which breaks the single-file
    atomic write and the backend's copy-on-save; it also takes seconds more (4.5 s vs 0.3 s on a
    tiny model) and prints progress to stdout. Neither handles Longformer (see
    ``_NOT_EXPORTABLE``).
    """
    import torch

    class LogitsOnly(torch.nn.Module):
        """Fixes the graph's signature to (input_ids, attention_mask) -> logits."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    class WithTokenTypes(LogitsOnly):
        """(input_ids, attention_mask, token_type_ids) -> logits, for casing models."""

        def forward(  # type: ignore[override]
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).logits

    # eval() on the wrapper matters: the exporter uses the top module's mode for the whole
    # network, and a wrapper left in training mode traces dropout into the graph.
    wrapper = (WithTokenTypes if token_types else LogitsOnly)(model).eval()
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab_size, (2, 8), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0  # a padded row, so the masking path is traced with real values
    args: tuple[torch.Tensor, ...] = (ids, mask)
    names = ["input_ids", "attention_mask"]
    if token_types:
        args += (torch.from_numpy(_probe_types(ids.numpy(), mask.numpy())),)
        names.append("token_type_ids")
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        # The legacy-exporter deprecation notice and tracer notes about constants are expected.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(
            wrapper,
            args,
            str(path),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**{name: axes for name in names}, "logits": axes},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def _quantize(fp32: Path, int8: Path) -> None:
    """Dynamic int8: int8 weights, activations quantised per token (row) at run time.

    Options measured on DistilBERT-base and MiniLM (AVX-512 VNNI, onnxruntime 1.31): all
    supported op types (MatMul weights and the Gather of embedding tables) against MatMul only,
    each per-tensor and per-channel. All four run at the same speed within 10% (~5x torch fp32 on
    one thread; quantising the embeddings is a little faster and makes the file 4x smaller
    instead of 2x). Per-channel weight scales halve the logit error on real encoders (MiniLM
    fine-tuned on CoNLL-2003: 2.7% vs 6% relative error, 99.4% vs 98.9% of CoNLL tokens keep
    their fp32 label), so: all op types, per channel, QInt8 weights. ``MatMulConstBOnly=False``
    (also quantising attention's activation x activation products) changed neither speed nor
    error, so the dynamic-mode default (constant weights only) stays, stated explicitly.

    ``quantize_dynamic`` picks one activation scale per tensor, i.e. per forward pass, which
    makes a Doc's entities depend on the other Docs in its batch; ``row_scales`` then rewrites
    the graph to one scale per token (docs/benchmarks.md has its cost and accuracy).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(fp32))
    if inline_weight_identities(model):
        # Quantise the rewritten graph; a sibling temp file keeps the write atomic.
        fp32 = int8.with_name(int8.name + ".inlined.onnx")
        onnx.save(model, str(fp32))
    try:
        with _quiet_preprocess_hint():
            quantize_dynamic(
                str(fp32),
                str(int8),
                weight_type=QuantType.QInt8,
                per_channel=True,
                extra_options={"MatMulConstBOnly": True},
            )
        row_scales.rewrite_file(int8)
    finally:
        if fp32.name.endswith(".inlined.onnx"):
            fp32.unlink(missing_ok=True)


def inline_weight_identities(model: Any) -> int:
    """Feed weights to their consumers directly instead of through ``Identity`` nodes.

    The TorchScript exporter writes a parameter that several modules share (ALBERT's one layer,
    reused 12 times) once, and gives each use an ``Identity`` of it. ``quantize_dynamic`` only
    quantises a MatMul whose weight is an initializer, so it left every ALBERT MatMul in fp32
    (measured: int8 ran at 0.93x the fp32 ONNX model). Returns how many nodes were removed.
    """
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    # Graph outputs and names read inside subgraphs (If/Loop bodies) keep their Identity.
    keep_names = {out.name for out in graph.output} | _subgraph_inputs(graph)
    alias = {
        node.output[0]: node.input[0]
        for node in graph.node
        if node.op_type == "Identity"
        and node.input[0] in weights
        and node.output[0] not in keep_names
    }
    if not alias:
        return 0
    kept = [n for n in graph.node if not (n.op_type == "Identity" and n.output[0] in alias)]
    for node in kept:
        for i, name in enumerate(node.input):
            if name in alias:
                node.input[i] = alias[name]
    del graph.node[:]
    graph.node.extend(kept)
    return len(alias)


def _subgraph_inputs(graph: Any) -> set[str]:
    names: set[str] = set()
    for node in graph.node:
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                names.update(i for n in sub.node for i in n.input)
                names |= _subgraph_inputs(sub)
    return names


@contextlib.contextmanager
def _quiet_preprocess_hint() -> Iterator[None]:
    """quantize_dynamic logs a generic hint to pre-process the graph on every call (on the root
    logger); pre-processing gave no speed-up on these encoders, so the hint is noise."""

    def drop(record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run(session: Any, batch: Batch) -> np.ndarray:
    ids, mask = batch
    feed = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in {i.name for i in session.get_inputs()}:
        feed["token_type_ids"] = _probe_types(ids, mask)
    return np.asarray(session.run(["logits"], feed)[0], np.float32)


def _check_fp32(model: Any, onnx_path: Path, batches: list[Batch], atol: float) -> None:
    """onnxruntime must reproduce torch's logits on every position, padding included."""
    import torch

    session = _session(onnx_path)
    token_types = config_scheme(model.config) is not None
    for ids, mask in batches:
        inputs = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
        if token_types:
            inputs["token_type_ids"] = torch.from_numpy(_probe_types(ids, mask))
        with torch.inference_mode():
            expected = model(**inputs).logits.numpy()
        got = _run(session, (ids, mask))
        if got.shape != expected.shape:
            raise OnnxParityError(
                f"ONNX export gives logits of shape {got.shape} where torch gives "
                f"{expected.shape} (input {ids.shape})"
            )
        # Compare real tokens only: padded positions' logits are never read, and exporters may
        # legitimately differ there.
        real = mask.astype(bool)
        diff = float(np.abs(got - expected)[real].max())
        if not diff <= atol:  # also catches NaN
            raise OnnxParityError(
                f"ONNX export does not match torch: max |logit difference| {diff:.3g} > "
                f"atol {atol:g} on a batch of shape {ids.shape}"
            )


def _check_int8(fp32: Path, int8: Path, batches: list[Batch]) -> None:
    """The int8 network must stay close to the fp32 one and choose the same labels.

    Logits cannot be compared with a tight tolerance: int8 noise is a few percent of the logit
    scale by design. So the check, against the fp32 ONNX network (already checked against
    torch) on non-padding positions, is two-fold. (1) The relative error, |int8 - fp32| over the
    spread of the fp32 logits (both as RMS), must stay under MAX_INT8_RELATIVE_ERROR: a broken
    graph (wrong weights, garbage outputs) is at ~1 or more; measured with our options, int8 is
    at 0.01-0.02 on tiny random models, 0.03-0.05 on MiniLM fine-tuned on CoNLL-2003 and 0.2 on
    MiniLM with an untrained head (where per-tensor quantisation reached 0.6). (2) Argmax
    agreement on "decided" positions must reach MIN_INT8_AGREEMENT: a flip where the fp32
    network's top two logits are closer than the int8 noise (bounded by 1) is chance, not a
    defect; those positions are common on a random test model and rare on a trained one, so
    a plain agreement rate would fail random models while this catches a systematic shift.
    """
    ref_session, q_session = _session(fp32), _session(int8)
    refs, gots = [], []
    for batch in batches:
        ref, got = _run(ref_session, batch), _run(q_session, batch)
        if got.shape != ref.shape or not np.isfinite(got).all():
            raise OnnxParityError(
                f"int8 network gives logits of shape {got.shape} (finite: "
                f"{bool(np.isfinite(got).all())}) where the fp32 one gives {ref.shape}"
            )
        real = batch[1].astype(bool)
        refs.append(ref[real])
        gots.append(got[real])
    ref, got = np.concatenate(refs), np.concatenate(gots)
    spread = np.sqrt(np.mean((ref - ref.mean(axis=-1, keepdims=True)) ** 2))
    rel_error = float(np.sqrt(np.mean((got - ref) ** 2)) / max(float(spread), 1e-12))
    if rel_error > MAX_INT8_RELATIVE_ERROR:
        raise OnnxParityError(
            f"int8 quantisation changed the logits by {rel_error:.1%} of their spread (allowed: "
            f"{MAX_INT8_RELATIVE_ERROR:.0%}); the quantised graph is unusable, use "
            "precision='fp32'."
        )
    top2 = np.sort(ref, axis=-1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    noise = np.abs(got - ref).max(axis=-1)
    decided = margin > 2 * float(noise.mean())
    if decided.any():
        agreement = float((ref.argmax(-1) == got.argmax(-1))[decided].mean())
        if agreement < MIN_INT8_AGREEMENT:
            raise OnnxParityError(
                f"int8 quantisation changed the predicted label on {1 - agreement:.1%} of "
                f"{int(decided.sum())} tokens where the fp32 network was decided (allowed: "
                f"{1 - MIN_INT8_AGREEMENT:.0%}); use precision='fp32'."
            )


def _check_batches(model_dir: Path, config: Any) -> tuple[list[Batch], list[Batch]]:
    """Padded batches of several shapes: (tokenised sample sentences, random ids).

    The sentences need a fast tokenizer (tokenizer.json) in the folder and are empty without one.
    Random ids exercise every shape and padding pattern; the sentences give the int8 check the
    kind of activations a real input produces (random ids are harsher on quantisation).
    """
    vocab = int(getattr(config, "vocab_size", 0) or 100)
    limit = int(getattr(config, "max_position_embeddings", 0) or 512)
    # RoBERTa-style position ids start after the padding index; keep well inside the table.
    max_len = max(4, min(64, limit - 4))
    text: list[Batch] = []
    tokenizer_file = Path(model_dir) / "tokenizer.json"
    if tokenizer_file.is_file():
        try:
            text = _sentence_batches(tokenizer_file, max_len)
        except Exception as e:  # noqa: BLE001 - an odd tokenizer only costs the realistic batch
            logger.debug("Could not tokenise sample sentences with %s: %s", tokenizer_file, e)
    return text, _random_batches(vocab, max_len=max_len)


def _random_batches(vocab_size: int, *, max_len: int = 64, seed: int = 0) -> list[Batch]:
    """Random ids in batches of 1, 3 and 4 rows; rows shorten down the batch (right padding)."""
    rng = np.random.default_rng(seed)
    out: list[Batch] = []
    for rows, length in ((1, min(7, max_len)), (3, min(19, max_len)), (4, max_len)):
        ids = rng.integers(0, vocab_size, size=(rows, length), dtype=np.int64)
        mask = np.zeros_like(ids)
        for r in range(rows):
            mask[r, : max(1, length - r * length // rows)] = 1
        out.append((ids * mask, mask))
    return out


def _sentence_batches(tokenizer_file: Path, max_len: int) -> list[Batch]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    # A saved tokenizer.json may carry fixed-length padding or truncation (sentence-transformers
    # models do); padding here would count pad tokens as real ones.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    encoded = [e.ids[:max_len] for e in tokenizer.encode_batch(list(_SAMPLE_SENTENCES))]
    half = len(encoded) // 2
    batches: list[Batch] = []
    for group in (encoded[:half], encoded[half:]):
        length = max(len(e) for e in group)
        ids = np.zeros((len(group), length), dtype=np.int64)
        mask = np.zeros_like(ids)
        for r, e in enumerate(group):
            ids[r, : len(e)] = e
            mask[r, : len(e)] = 1
        batches.append((ids, mask))
    return batches
