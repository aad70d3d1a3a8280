"""The token-classifier NER component and the zoo factories built on it.

One component class serves every Hugging Face ``AutoModelForTokenClassification`` checkpoint; the
zoo names (``albert_conll03``, ...) are the same factory registered with the catalogue's defaults.

Weights load lazily, at ``nlp.initialize()`` or on first use, and are then serialised inside the
pipeline by ``to_disk``. Loading in the factory would make ``spacy.load`` fetch the original
checkpoint again (the factory runs before ``from_disk``), which breaks once it is deleted.
We serialise with ``save_pretrained`` rather than spacy-transformers' ``HFShim``: the shim rebuilds
the network with ``AutoModel`` (dropping the classification head) and would tie the ONNX path to
torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import minibatch

from ..alignment import (
    Alignment,
    DocEncoding,
    best_window,
    encode_docs,
    plan_windows,
    pool_pieces,
    softmax,
)
from ..backends.base import Backend, BackendName, Precision, check_precision
from ..backends.loading import (
    Checkpoint,
    load_error,
    load_tokenizer,
    max_positions,
    resolve_checkpoint,
)
from ..catalogue import ZOO, ZooEntry
from ..decoding import Decoding, TagScheme, chunk, decode_batch, entity_confidences
from ..errors import ModelLoadError
from ..serialization import FolderBytesMixin
from ..writing import DEFAULT_SPANS_KEY, register_extensions, write_predictions

LabelLevel = Literal["fine", "coarse"]
Prediction = tuple[int, int, str, float]  # token start, token end, label, confidence
MODEL_DIR = "model"
CFG_FILE = "cfg.json"
SERIAL_VERSION = 1


class Runtime:
    """What a loaded model is made of: tokenizer, HF config, tag scheme and network backend."""

    def __init__(self, tokenizer: Any, config: Any, backend: Backend) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.backend = backend
        self.scheme = TagScheme.from_labels(config.id2label)
        if backend.num_labels != len(self.scheme.prefixes):
            raise ModelLoadError(
                f"The classifier head has {backend.num_labels} outputs but config.json lists "
                f"{len(self.scheme.prefixes)} labels ({list(config.id2label.values())})"
            )
        specials = set(tokenizer.all_special_ids)
        probe = next(i for i in range(len(tokenizer)) if i not in specials)
        wrapped = tokenizer.build_inputs_with_special_tokens([probe])
        at = wrapped.index(probe)
        self.prefix = np.asarray(wrapped[:at], np.int64)
        self.suffix = np.asarray(wrapped[at + 1 :], np.int64)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.max_positions = max_positions(config)

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.suffix)


def load_runtime(
    location: str | Path,
    backend: str,
    precision: str,
    *,
    ckpt: Checkpoint,
    component: str,
    id2label: list[str] | None = None,
) -> Runtime:
    """Load tokenizer, config and network, turning any failure into one ModelLoadError.

    ``id2label`` names the classifier's outputs in order, for checkpoints published with generic
    ``LABEL_0..`` names; it is written into the config, so a saved pipeline keeps it.
    """
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(location))
    except Exception as e:  # noqa: BLE001 - any failure becomes one actionable error
        raise load_error(ckpt, component, "config", e) from None
    if id2label:
        if len(id2label) != config.num_labels:
            raise ModelLoadError(
                f"Component '{component}': id2label lists {len(id2label)} labels but model "
                f"'{ckpt.source}' has {config.num_labels} outputs"
            )
        config.id2label = dict(enumerate(id2label))
        config.label2id = {lab: i for i, lab in enumerate(id2label)}
    try:
        tokenizer = load_tokenizer(location, config)
    except Exception as e:  # noqa: BLE001
        raise load_error(ckpt, component, "tokenizer", e) from None
    try:
        net: Backend
        if backend == "onnx":
            from ..backends.onnx_backend import OnnxBackend
            from ..export.onnx import ensure_onnx

            onnx_path = ensure_onnx(Path(location), None, quantize=precision == "int8")
            net = OnnxBackend(onnx_path, precision=precision)
        else:
            from ..backends.torch_backend import TorchBackend

            net = TorchBackend.from_pretrained(location, precision)
    except ModelLoadError:
        raise
    except ValueError as e:  # refusals with their own clear message (e.g. Longformer + ONNX)
        raise ModelLoadError(f"Component '{component}': {e}") from None
    except Exception as e:  # noqa: BLE001
        raise load_error(ckpt, component, "weights", e) from None
    try:
        return Runtime(tokenizer, config, net)
    except ValueError as e:
        raise ModelLoadError(f"Model '{ckpt.source}' for component '{component}': {e}") from None


class TokenClassifierNER(FolderBytesMixin, Pipe):
    """Named entities from a Hugging Face token classifier, aligned to spaCy tokens.

    Every token gets a tag (whitespace tokens are always O), long documents run in overlapping
    wordpiece windows, and entities are written to ``doc.ents`` and ``doc.spans[spans_key]``
    with confidences.
    """

    def __init__(
        self,
        nlp: Language,
        name: str,
        *,
        model: str | None,
        backend: BackendName,
        precision: Precision,
        alignment: Alignment,
        decoding: Decoding,
        max_length: int,
        stride: int | None,
        case_sensitive: bool,
        batch_size: int,
        label_level: LabelLevel,
        labels: list[str] | None,
        overwrite_ents: bool,
        spans_key: str | None,
        scorer: Callable[..., dict[str, Any]] | None,
        id2label: list[str] | None = None,
    ) -> None:
        check_precision(backend, precision)
        if max_length < 3:
            raise ValueError(f"max_length must be at least 3 wordpieces, got {max_length}")
        if stride is not None and stride < 0:
            raise ValueError(f"stride must be >= 0, got {stride}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.vocab = nlp.vocab
        self.name = name
        self.model_source = model
        self.backend_name = backend
        self.precision = precision
        self.alignment = alignment
        self.decoding = decoding
        self.max_length = max_length
        self.stride = stride
        self.case_sensitive = case_sensitive
        self.batch_size = batch_size
        self.label_level = label_level
        self.labels_filter = set(labels) if labels else None
        self.id2label = id2label
        self.overwrite_ents = overwrite_ents
        self.spans_key = spans_key
        self.scorer = scorer
        self.model = None  # no thinc model: the network lives in the backend
        self._runtime: Runtime | None = None
        register_extensions()

    # -- loading -----------------------------------------------------------------------------

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            ckpt = resolve_checkpoint(self.model_source, component=self.name)
            self._set_runtime(
                load_runtime(
                    ckpt.location,
                    self.backend_name,
                    self.precision,
                    ckpt=ckpt,
                    component=self.name,
                    id2label=self.id2label,
                )
            )
        assert self._runtime is not None
        return self._runtime

    def _set_runtime(self, runtime: Runtime) -> None:
        limit = runtime.max_positions
        if limit is not None and self.max_length > limit:
            raise ValueError(
                f"max_length={self.max_length} exceeds what model '{self.model_source}' accepts "
                f"({limit} positions); lower max_length"
            )
        window = self.max_length - runtime.n_special
        if window < 1 or not 0 <= self.effective_stride(window) < window:
            raise ValueError(
                f"stride={self.stride} must be smaller than the window of "
                f"{window} wordpieces (max_length {self.max_length} minus special tokens)"
            )
        self._runtime = runtime

    def effective_stride(self, window: int) -> int:
        return window // 4 if self.stride is None else self.stride

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]] | None = None,
        *,
        nlp: Language | None = None,
    ) -> None:
        """Load the weights now, so a missing checkpoint fails at ``nlp.initialize()``."""
        _ = self.runtime

    @property
    def labels(self) -> tuple[str, ...]:
        """Entity labels this component predicts; empty until the weights are loaded.

        spaCy reads ``labels`` for ``nlp.meta`` while loading a pipeline, before ``from_disk``
        supplies the weights, so this must not trigger loading.
        """
        if self._runtime is None:
            return ()
        types = self._runtime.scheme.entity_types
        out = sorted({self._map_label(t) for t in types})
        return tuple(lab for lab in out if self.labels_filter is None or lab in self.labels_filter)

    def _map_label(self, label: str) -> str:
        if self.label_level == "coarse":
            return label.split("-", 1)[0]
        return label

    # -- prediction --------------------------------------------------------------------------

    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc]))

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Annotate Docs; windows of a whole batch of Docs are sorted by length and batched."""
        error_handler = self.get_error_handler()
        for docs in minibatch(stream, size=batch_size):
            try:
                self.set_annotations(docs, self.predict(docs))
                yield from docs
            except Exception as e:  # noqa: BLE001 - spaCy's error-handler protocol
                error_handler(self.name, self, docs, e)

    def predict(self, docs: Iterable[Doc]) -> list[list[Prediction]]:
        """Entities ``(start, end, label, confidence)`` for each Doc."""
        docs = list(docs)
        rt = self.runtime
        encodings = encode_docs(rt.tokenizer, docs, lowercase=not self.case_sensitive)
        window = self.max_length - rt.n_special
        stride = self.effective_stride(window)
        plans = [plan_windows(len(enc.piece_ids), window, stride) for enc in encodings]
        jobs = [(d, w) for d, plan in enumerate(plans) for w in range(len(plan))]
        logits: dict[tuple[int, int], np.ndarray] = {}
        # Sort by length so each forward pass pads as little as possible.
        jobs.sort(key=lambda j: plans[j[0]][j[1]][1] - plans[j[0]][j[1]][0])
        for batch in minibatch(jobs, size=self.batch_size):
            pieces = [encodings[d].piece_ids[slice(*plans[d][w])] for d, w in batch]
            out = self._forward(pieces)
            for (d, w), x, p in zip(batch, out, pieces, strict=True):
                logits[(d, w)] = x[len(rt.prefix) : len(rt.prefix) + len(p)]
        pooled = [
            self._pool_doc(doc, enc, plans[d], logits, d)
            for d, (doc, enc) in enumerate(zip(docs, encodings, strict=True))
        ]
        scheme = rt.scheme
        all_tags = decode_batch(
            [p for p, _ in pooled], [~h for _, h in pooled], scheme, self.decoding
        )
        return [self._entities(p, tags) for (p, _), tags in zip(pooled, all_tags, strict=True)]

    def _forward(self, pieces: list[np.ndarray]) -> np.ndarray:
        rt = self.runtime
        width = max(len(p) for p in pieces) + rt.n_special
        ids = np.full((len(pieces), width), rt.pad_id, np.int64)
        mask = np.zeros((len(pieces), width), np.int64)
        for row, p in enumerate(pieces):
            seq = np.concatenate([rt.prefix, p, rt.suffix])
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return rt.backend.predict(ids, mask)

    def _pool_doc(
        self,
        doc: Doc,
        enc: DocEncoding,
        plan: list[tuple[int, int]],
        logits: dict[tuple[int, int], np.ndarray],
        d: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Token probabilities of one Doc, each piece scored in its best window."""
        n_labels = len(self.runtime.scheme.prefixes)
        n_pieces = len(enc.piece_ids)
        if n_pieces:
            which, offset = best_window(n_pieces, plan)
            stacked = np.concatenate([logits[(d, w)] for w in range(len(plan))])
            starts = np.cumsum([0] + [e - s for s, e in plan[:-1]])
            piece_probs = softmax(stacked[starts[which] + offset].astype(np.float32))
        else:
            piece_probs = np.zeros((0, n_labels), np.float32)
        return pool_pieces(piece_probs, enc.piece_token, len(doc), self.alignment)

    def _entities(self, token_probs: np.ndarray, tags: np.ndarray) -> list[Prediction]:
        ents = chunk(tags.tolist(), self.runtime.scheme)
        confidences = entity_confidences(token_probs, tags, ents).tolist()
        result = []
        for (s, e, typ), conf in zip(ents, confidences, strict=True):
            label = self._map_label(typ)
            if self.labels_filter is None or label in self.labels_filter:
                result.append((s, e, label, conf))
        return result

    def set_annotations(self, docs: Iterable[Doc], predictions: Any) -> None:
        for doc, ents in zip(docs, predictions, strict=True):
            write_predictions(
                doc, ents, overwrite_ents=self.overwrite_ents, spans_key=self.spans_key
            )

    # -- serialisation -----------------------------------------------------------------------

    def _cfg(self) -> dict[str, Any]:
        return {
            "serial_version": SERIAL_VERSION,
            "backend": self.backend_name,
            "precision": self.precision,
            "source": self.model_source,
        }

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        """Store tokenizer, HF config and weights inside the pipeline (nothing is fetched later)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        rt = self.runtime
        model_dir = path / MODEL_DIR
        model_dir.mkdir(exist_ok=True)
        # Weights first: save_pretrained also writes the network's own config.json, which the
        # runtime's config (with any id2label override) must replace.
        rt.backend.save(model_dir)
        rt.config.save_pretrained(str(model_dir))
        rt.tokenizer.save_pretrained(str(model_dir))
        (path / CFG_FILE).write_text(json.dumps(self._cfg(), indent=2), encoding="utf8")

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> TokenClassifierNER:
        path = Path(path)
        cfg_path = path / CFG_FILE
        if not cfg_path.exists():
            raise ModelLoadError(
                f"Component '{self.name}': {cfg_path} is missing; the saved pipeline is incomplete"
            )
        cfg = json.loads(cfg_path.read_text(encoding="utf8"))
        if cfg.get("serial_version") != SERIAL_VERSION:
            raise ModelLoadError(
                f"Component '{self.name}' at {path} was saved by an incompatible version of "
                f"spacy-nerzoo (format {cfg.get('serial_version')}, this version reads "
                f"{SERIAL_VERSION}); re-create the pipeline with this version"
            )
        model_dir = path / MODEL_DIR
        ckpt = Checkpoint(str(model_dir), str(model_dir), True)
        self._set_runtime(
            load_runtime(
                model_dir, self.backend_name, self.precision, ckpt=ckpt, component=self.name
            )
        )
        return self


def make_token_classifier(
    nlp: Language,
    name: str,
    model: str | None,
    backend: BackendName,
    precision: Precision,
    alignment: Alignment,
    decoding: Decoding,
    max_length: int,
    stride: int | None,
    case_sensitive: bool,
    batch_size: int,
    label_level: LabelLevel,
    labels: list[str] | None,
    overwrite_ents: bool,
    spans_key: str | None,
    scorer: Callable[..., dict[str, Any]] | None,
    id2label: list[str] | None,
) -> TokenClassifierNER:
    """Factory of every token-classifier zoo entry and of the generic ``token_classifier``."""
    return TokenClassifierNER(
        nlp,
        name,
        model=model,
        backend=backend,
        precision=precision,
        alignment=alignment,
        decoding=decoding,
        max_length=max_length,
        stride=stride,
        case_sensitive=case_sensitive,
        batch_size=batch_size,
        label_level=label_level,
        labels=labels,
        overwrite_ents=overwrite_ents,
        spans_key=spans_key,
        scorer=scorer,
        id2label=id2label,
    )


def default_config(entry: ZooEntry | None) -> dict[str, Any]:
    """The factory defaults, read from the catalogue (the single home of model defaults)."""
    bundled = entry is not None and entry.bundled is not None
    return {
        "model": entry.name if bundled else (entry.checkpoint if entry else None),
        # Built-in models ship as int8 ONNX: fast, small, and no torch weights to download.
        "backend": "onnx" if bundled else "torch",
        "precision": "int8" if bundled else "fp32",
        "alignment": "first",
        "decoding": "viterbi",
        "max_length": entry.max_length if entry else 512,
        "stride": None,
        "case_sensitive": entry.case_sensitive if entry else True,
        "batch_size": 8,
        "label_level": "fine",
        "labels": None,
        "overwrite_ents": False,
        "spans_key": DEFAULT_SPANS_KEY,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
        "id2label": None,
    }


FACTORY_META: dict[str, Any] = {
    "assigns": ["doc.ents", "token.ent_iob", "token.ent_type"],
    "default_score_weights": {"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
}

Language.factory(
    "token_classifier",
    default_config=default_config(None),
    func=make_token_classifier,
    **FACTORY_META,
)
for _entry in ZOO.values():
    if _entry.architecture == "token_classifier":
        Language.factory(
            _entry.name,
            default_config=default_config(_entry),
            func=make_token_classifier,
            **FACTORY_META,
        )
