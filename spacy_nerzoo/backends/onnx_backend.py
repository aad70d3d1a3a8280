"""onnxruntime backend: runs an exported token classifier (fp32 or int8) on the CPU.

This module imports onnxruntime and NumPy only, never torch or transformers, so that a pipeline
saved with an ONNX network runs on a machine without torch. Exporting (which needs torch) lives in
``spacy_nerzoo.export.onnx``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..errors import NerzooError
from ..serialization import atomic_path
from .base import check_precision

REQUIRED_INPUTS = ("input_ids", "attention_mask")
# Exported only for models that use token types (casing classes, ``spacy_nerzoo.casing``).
OPTIONAL_INPUTS = ("token_type_ids",)
# The file name a network of each precision gets inside a saved pipeline or checkpoint folder;
# ``spacy_nerzoo.export.onnx.ensure_onnx`` looks for the same names.
ONNX_FILE_NAMES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
SPINNING_KEY = "session.intra_op.allow_spinning"
# How an int8 file quantises its activations (``spacy_nerzoo.export``): "per_row" (export format
# 3, ``row_scales``) or "static" (format 4, calibrated ranges, ``static_scales``). Files without
# the key are fp32, or int8 from before format 3 (one scale per batch). Defined here because this
# module must not import the export package (which needs onnx, not only onnxruntime).
ACTIVATION_SCALES_KEY = "spacy_nerzoo.activation_scales"
ACTIVATION_SCALES = ("per_row", "static")


class OnnxModelError(NerzooError, ValueError):
    """An ONNX file that cannot serve as a token classifier (wrong inputs or outputs).

    A ``ValueError`` too, so callers that turn refusals into a load error catch it.
    """


class OnnxBackend:
    """Runs an ONNX token classifier with onnxruntime's CPU provider.

    The graph must take ``input_ids`` and ``attention_mask`` (int64, batch x sequence), and
    ``token_type_ids`` only if the model uses them (casing classes), and return logits (batch x
    sequence x labels) as its first output, or as an output named ``logits``; this is checked when
    the file is loaded, so a mismatched file fails at load time with the inputs it has, not at the
    first document. ``precision`` only records what the file holds (``int8`` files come from
    ``export_onnx(..., quantize=True)``); onnxruntime runs the graph as it is. ``num_threads`` sets
    onnxruntime's intra-op threads (default: its own choice, one per physical core).
    """

    name = "onnx"

    def __init__(
        self,
        onnx_path: str | Path,
        precision: str = "fp32",
        num_threads: int | None = None,
        num_labels: int | None = None,
    ) -> None:
        check_precision("onnx", precision)
        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise OnnxModelError(f"ONNX model file {self.path} does not exist")
        self.precision = precision
        self.num_threads = num_threads
        # The model's bytes stay with the backend: saving must not depend on the file it was
        # loaded from still existing (a temporary folder after from_bytes, a deleted pipeline).
        self._model_bytes = self.path.read_bytes()
        self.session = self._session()
        self._check_inputs()
        self._output = self._pick_output()
        self.num_labels = self._infer_num_labels() if num_labels is None else int(num_labels)
        meta = self.session.get_modelmeta().custom_metadata_map
        # Written by export_onnx; lets a caller map label ids without the checkpoint's config.
        self.metadata: dict[str, str] = dict(meta)
        self.activation_scales = self._activation_scales()

    def _activation_scales(self) -> str | None:
        """The file's int8 activation mode (see ``ACTIVATION_SCALES_KEY``), None if unmarked.

        onnxruntime runs either mode as it is; an unknown value means a file from a newer
        release whose graph this version has not been checked against, so it is refused.
        """
        mode = self.metadata.get(ACTIVATION_SCALES_KEY)
        if mode is not None and mode not in ACTIVATION_SCALES:
            raise OnnxModelError(
                f"{self.path} quantises activations as {mode!r}, which this version of "
                f"spacy-nerzoo does not know (it runs {list(ACTIVATION_SCALES)} and unmarked "
                "files); upgrade spacy-nerzoo or export the model again"
            )
        return mode

    def _session(self) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle intra-op threads sleep instead of spin-waiting for the next parallel section.
        # Spinning buys a little latency on an otherwise idle machine, but spin time is CPU
        # time: with other processes on the cores it doubled the built-in model's CPU per word
        # and halved its speed (docs/benchmarks.md, issue 17).
        options.add_session_config_entry(SPINNING_KEY, "0")
        if self.num_threads is not None:
            options.intra_op_num_threads = int(self.num_threads)
        try:
            return ort.InferenceSession(
                self._model_bytes, options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise OnnxModelError(f"onnxruntime could not load {self.path}: {e}") from None

    def __getstate__(self) -> dict[str, object]:
        # An InferenceSession cannot be pickled (spawned worker processes pickle the pipeline):
        # ship the bytes and rebuild the session on the other side.
        state = dict(self.__dict__)
        del state["session"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.session = self._session()

    def _check_inputs(self) -> None:
        # Graph inputs with initialisers (optional inputs) are not listed by get_inputs(), so
        # every input listed here must be fed.
        found = [(i.name, i.type) for i in self.session.get_inputs()]
        names = [n for n, _ in found]
        missing = [n for n in REQUIRED_INPUTS if n not in names]
        extra = [n for n in names if n not in REQUIRED_INPUTS + OPTIONAL_INPUTS]
        self.takes_token_types = "token_type_ids" in names
        if missing or extra:
            problems: list[str] = []
            if missing:
                problems.append(f"missing {missing}")
            if extra:
                problems.append(f"unexpected required inputs {extra}")
            listed = ", ".join(f"{n} ({t})" for n, t in found) or "none"
            raise OnnxModelError(
                f"{self.path} is not a token classifier this backend can run: it must take "
                f"the inputs {list(REQUIRED_INPUTS)} (int64), and optionally "
                f"{list(OPTIONAL_INPUTS)}, but it has {listed}: {'; '.join(problems)}. Export it "
                "with spacy_nerzoo.export.onnx.export_onnx."
            )
        wrong_type = [f"{n} ({t})" for n, t in found if t != "tensor(int64)"]
        if wrong_type:
            raise OnnxModelError(
                f"{self.path}: inputs must be int64 tensors, but found {', '.join(wrong_type)}"
            )

    def _pick_output(self) -> str:
        outputs = self.session.get_outputs()
        named = [o.name for o in outputs if o.name == "logits"]
        chosen = named[0] if named else outputs[0].name
        shape = next(o.shape for o in outputs if o.name == chosen)
        if len(shape) != 3:
            raise OnnxModelError(
                f"{self.path}: output {chosen!r} has shape {shape}; token-classification logits "
                "of shape (batch, sequence, labels) are expected"
            )
        return chosen

    def _infer_num_labels(self) -> int:
        shape = next(o.shape for o in self.session.get_outputs() if o.name == self._output)
        if isinstance(shape[2], int):
            return shape[2]
        # A symbolic label dimension: ask the graph by running one token.
        probe = np.ones((1, 1), dtype=np.int64)
        out = self.session.run([self._output], self._feed(probe, probe, None))
        return int(out[0].shape[-1])

    def _feed(
        self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        feed = {"input_ids": ids, "attention_mask": mask}
        if self.takes_token_types:
            # Type 0 is what the model saw for special tokens: the default without casing ids.
            feed["token_type_ids"] = np.zeros_like(ids) if types is None else types
        return feed

    def predict(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        token_type_ids: np.ndarray | None = None,
    ) -> np.ndarray:
        """Return float32 logits ``(batch, seq_len, num_labels)`` for int64 ids and mask.

        ``token_type_ids`` are fed to graphs that take them (zeros when None) and ignored by
        graphs that do not.
        """
        ids = np.ascontiguousarray(input_ids, dtype=np.int64)
        mask = np.ascontiguousarray(attention_mask, dtype=np.int64)
        if ids.shape != mask.shape or ids.ndim != 2:
            raise ValueError(
                f"input_ids {ids.shape} and attention_mask {mask.shape} must both be (batch, seq)"
            )
        types = None
        if token_type_ids is not None:
            types = np.ascontiguousarray(token_type_ids, dtype=np.int64)
            if types.shape != ids.shape:
                raise ValueError(
                    f"token_type_ids {types.shape} must have the shape of input_ids {ids.shape}"
                )
        if ids.size == 0:
            # Exported graphs need not cope with empty dimensions; nothing to compute anyway.
            return np.zeros((*ids.shape, self.num_labels), dtype=np.float32)
        (logits,) = self.session.run([self._output], self._feed(ids, mask, types))
        return np.asarray(logits, dtype=np.float32)

    def save(self, path: Path) -> None:
        """Write the ONNX model into the folder ``path`` as ``model.onnx`` / ``model.int8.onnx``.

        The copy goes through a temporary file and a rename, so an interrupted save never leaves
        a truncated model behind, and saving onto the file itself is a no-op.
        """
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / ONNX_FILE_NAMES[self.precision]
        if target.exists() and self.path.exists() and os.path.samefile(target, self.path):
            return
        with atomic_path(target) as tmp:
            tmp.write_bytes(self._model_bytes)

    def __repr__(self) -> str:
        return f"OnnxBackend({str(self.path)!r}, precision={self.precision!r})"
