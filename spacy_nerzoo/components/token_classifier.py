"""The token-classifier NER component and the zoo factories built on it.

One component class serves every Hugging Face ``AutoModelForTokenClassification`` checkpoint; the
zoo names (``albert_conll03``, ...) are the same factory registered with the catalogue's defaults.
The pipe turns Docs into wordpiece windows, reads the network's logits back onto tokens, decodes
and writes entities; loading lives in :mod:`spacy_nerzoo.backends.runtime`, the trainable network
and its loss in :mod:`spacy_nerzoo.networks.hf_token_classifier`.

Weights load lazily, at ``nlp.initialize()`` or on first use, and are then serialised inside the
pipeline by ``to_disk``. Loading in the factory would make ``spacy.load`` fetch the original
checkpoint again (the factory runs before ``from_disk``), which breaks once it is deleted.
We serialise with ``save_pretrained`` rather than spacy-transformers' ``HFShim``: the shim rebuilds
the network with ``AutoModel`` (dropping the classification head) and would tie the ONNX path to
torch.

Training (torch backend): the component is a ``TrainablePipe``, so ``nlp.update`` and ``spacy
train`` fine-tune the network inside spaCy's loop, on the windows inference reads
(:func:`~spacy_nerzoo.networks.hf_token_classifier.training_windows`). ``initialize`` builds a new
classifier head when the checkpoint's labels do not cover the training data (see its docstring).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from spacy.attrs import SENT_START
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example, validate_get_examples
from spacy.util import minibatch

from ..alignment import (
    Alignment,
    encode_batch,
    heads_at,
    plan_batch_windows,
    pool_pieces,
    softmax,
    word_heads,
)
from ..backends.base import BackendName, Precision, check_precision
from ..backends.loading import (
    DEFAULT_MAX_LENGTH,
    Checkpoint,
    recorded_max_length,
    resolve_checkpoint,
)
from ..backends.runtime import Runtime, head_types, load_runtime, load_with_new_head, new_head_tags
from ..catalogue import ZooEntry
from ..decoding import Decoding, TagScheme, decode_flat
from ..networks.hf_token_classifier import (
    TrainingWindow,
    bind_network,
    build_hf_model,
    piece_logits,
    train_windows,
    training_windows,
    windows_loss,
)
from ..writing import DEFAULT_SPANS_KEY, register_extensions
from .base import NERPipe
from .common import (
    CFG_FILE,
    DEFAULT_ENTS_FILTER,
    DEFAULT_SCORER,
    EntsFilter,
    LabelLevel,
    Prediction,
    entities_from_tags,
    pipe_factory,
    read_cfg,
    register_factories,
    resolve_ents_filter,
)

MODEL_DIR = "model"
SERIAL_VERSION = 1
_LOAD_LOCK = threading.Lock()

logger = logging.getLogger(__name__)


class TokenClassifierNER(NERPipe):
    """Named entities from a Hugging Face token classifier, aligned to spaCy tokens.

    Every token gets a tag (whitespace tokens are always O), long documents run in overlapping
    wordpiece windows, and entities are written to ``doc.ents`` and ``doc.spans[spans_key]``
    with confidences. With the torch backend it is trainable (``nlp.update``, ``spacy train``):
    see :meth:`initialize` and :meth:`update`.
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
        max_length: int | None,
        stride: int | None,
        case_sensitive: bool,
        batch_size: int,
        label_level: LabelLevel,
        labels: list[str] | None,
        ents_filter: EntsFilter,
        spans_key: str | None,
        scorer: Callable[..., dict[str, Any]] | None,
        id2label: list[str] | None = None,
        sentence_boundaries: bool = True,
        join_hyphens: bool = True,
        overwrite_ents: bool | None = None,
    ) -> None:
        check_precision(backend, precision)
        if max_length is not None and max_length < 3:
            raise ValueError(f"max_length must be at least 3 wordpieces, got {max_length}")
        if stride is not None and stride < 0:
            raise ValueError(f"stride must be >= 0, got {stride}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.vocab, self.name = nlp.vocab, name
        # The checkpoint and how it runs; loaded lazily (see ``runtime``).
        self.model_source, self.id2label = model, id2label
        self.backend_name, self.precision = backend, precision
        # Docs to wordpiece windows, and the windows' scores back to tokens and entities.
        self.max_length_setting, self.stride, self.batch_size = max_length, stride, batch_size
        # The window in wordpieces; ``None`` (a folder's default) is resolved with the model.
        self.max_length: int = max_length or DEFAULT_MAX_LENGTH
        self.case_sensitive, self.alignment, self.decoding = case_sensitive, alignment, decoding
        self.label_level = label_level
        self.labels_filter = set(labels) if labels else None
        self.ents_filter = resolve_ents_filter(ents_filter, overwrite_ents, name)
        self.spans_key = spans_key
        self.scorer = scorer
        self.sentence_boundaries = sentence_boundaries
        self.join_hyphens = join_hyphens
        # The network lives in the backend; for training, this thinc model's PyTorchShim holds
        # the same torch module (bound by _trainable_network), so spaCy's optimizer updates it.
        self.model = build_hf_model()
        self.cfg: dict[str, Any] = {"labels": []}  # labels added with add_label, for initialize
        self._runtime: Runtime | None = None
        register_extensions()

    # -- loading -----------------------------------------------------------------------------

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            # One load even when several threads make the first call together: transformers'
            # from_pretrained is not thread-safe. A module-level lock, because spaCy pipes are
            # Cython classes whose pickling (spawned processes) copies every attribute.
            with _LOAD_LOCK:
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
        self.max_length = self.max_length_setting or recorded_max_length(runtime.config)
        if limit is not None and self.max_length > limit:
            raise ValueError(
                f"max_length={self.max_length} exceeds what model '{self.model_source}' accepts "
                f"({limit} positions); lower max_length"
            )
        window = self.max_length - runtime.n_special
        if window < 1 or not 0 <= self.effective_stride(window, runtime) < window:
            raise ValueError(
                f"stride={self.stride} must be smaller than the window of "
                f"{window} wordpieces (max_length {self.max_length} minus special tokens)"
            )
        self._runtime = runtime
        self.model.shims.clear()  # a new network: bound again when training resumes

    def effective_stride(self, window: int, runtime: Runtime | None = None) -> int:
        """The overlap of consecutive windows: the ``stride`` setting; else the one the model
        was validated with, which the trainer records in its config (``nerzoo.stride``), so that
        inference reads long documents exactly as model selection did; else a quarter of the
        window."""
        if self.stride is not None:
            return self.stride
        rt = runtime or self._runtime
        nerzoo = (getattr(rt.config, "nerzoo", None) or {}) if rt is not None else {}
        recorded = nerzoo.get("stride")
        if isinstance(recorded, int) and 0 <= recorded < window:
            return recorded
        return window // 4

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]] | None = None,
        *,
        nlp: Language | None = None,
        labels: list[str] | None = None,
        # Spelled out, not NewHeadScheme: spaCy validates [initialize] settings against these
        # annotations, as strings, in its own namespace (where Literal is defined).
        tag_scheme: Literal["IOB2", "IO"] = "IOB2",
    ) -> None:
        """Load the weights now (so a missing checkpoint fails here), fitting the head to the data.

        The rule: collect the entity labels of the examples' gold ``doc.ents``, plus ``labels``
        (``[initialize.components.NAME]``) and any added with :meth:`add_label`. If there are
        none (``nlp.initialize()`` without data), or the checkpoint's head already predicts all
        of them (fine-tuning a CoNLL model on CoNLL-style data), the checkpoint is used as it is.
        Otherwise (a plain encoder such as all-MiniLM-L6-v2, whose config has only generic
        ``LABEL_0..`` names, or a head for other labels) a new head is built for exactly the
        collected labels, with ``tag_scheme`` tags (IOB2: ``O``, ``B-X``, ``I-X``; IO:
        ``O``, ``I-X``), keeping the encoder's weights. A head is compared on its entity types,
        so training labels must be the head's types (``label_level`` applies to output only).

        A runtime already loaded (used before, or read by ``from_disk``) is kept, not loaded
        again from ``model``; only its head is replaced when the labels require it. Building a
        head needs the torch backend.
        """
        found = set(self.cfg["labels"]) | set(labels or [])
        if get_examples is not None:
            validate_get_examples(get_examples, "TokenClassifierNER.initialize")
            for eg in get_examples():
                found.update(ent.label_ for ent in eg.reference.ents)
        if not found:
            _ = self.runtime
            return
        head = self._head_types()
        if head is not None and found <= set(head):
            _ = self.runtime
            return
        if self.backend_name != "torch":
            raise ValueError(
                f"Component '{self.name}': the checkpoint's labels ({sorted(head or [])}) do not "
                f"cover the training labels {sorted(found)}, and a new classifier head can only "
                "be trained with backend='torch'"
            )
        tags = new_head_tags(found, tag_scheme)
        logger.info("'%s': new classifier head with tags %s", self.name, tags)
        if self._runtime is not None:
            # Rebuild from the network in memory (it may have been trained or loaded from disk).
            runtime = self._runtime.with_new_head(tags, self.model_source, component=self.name)
        else:
            ckpt = resolve_checkpoint(self.model_source, component=self.name)
            runtime = load_with_new_head(
                ckpt.location, tags, self.precision, ckpt=ckpt, component=self.name
            )
        self._set_runtime(runtime)

    def _head_types(self) -> list[str] | None:
        """Entity types the current or checkpoint head predicts; None when its labels are generic
        or unreadable. Reads only the checkpoint's config.json, so no weights load twice."""
        if self._runtime is not None:
            return self._runtime.scheme.entity_types
        ckpt = resolve_checkpoint(self.model_source, component=self.name)
        return head_types(ckpt, component=self.name, id2label=self.id2label)

    def add_label(self, label: str) -> int:
        """Add an entity label to train; it takes effect at the next ``nlp.initialize()``.

        Returns 0 if the label is already known (added, or predicted by the loaded head), else 1.
        """
        if not isinstance(label, str):
            raise ValueError(f"Labels must be strings, got {label!r}")
        head = self._runtime.scheme.entity_types if self._runtime is not None else []
        if label in self.cfg["labels"] or label in head:
            return 0
        self.cfg["labels"] = sorted([*self.cfg["labels"], label])
        return 1

    @property
    def label_data(self) -> list[str]:
        """Labels for ``[initialize.components.NAME.labels]`` (``spacy init labels``)."""
        head = self._runtime.scheme.entity_types if self._runtime is not None else []
        return sorted(set(head) | set(self.cfg["labels"]))

    @property
    def is_trainable(self) -> bool:
        """Only the torch backend trains; an ONNX pipeline is inference-only."""
        return self.backend_name == "torch"

    @property
    def labels(self) -> tuple[str, ...]:
        """Entity labels this component predicts; empty until the weights are loaded.

        spaCy reads ``labels`` for ``nlp.meta`` while loading a pipeline, before ``from_disk``
        supplies the weights, so this must not trigger loading.
        """
        if self._runtime is None:
            return ()
        out = self._output_scheme(self._runtime).entity_types
        return tuple(lab for lab in out if self.labels_filter is None or lab in self.labels_filter)

    def _output_scheme(self, rt: Runtime) -> TagScheme:
        """The scheme entities are chunked and labelled by: the head's, or its coarse reading."""
        return rt.coarse_scheme if self.label_level == "coarse" else rt.scheme

    # -- training ----------------------------------------------------------------------------

    def _trainable_network(self) -> Any:
        """The torch network, bound to ``self.model``'s shim so the optimizer reaches it."""
        if self.backend_name != "torch":
            raise ValueError(
                f"Component '{self.name}' runs on backend='{self.backend_name}', which cannot be "
                "trained: set backend='torch' to fine-tune it, or list it in "
                "[training] frozen_components"
            )
        net = getattr(self.runtime.backend, "model", None)
        if net is None:
            raise ValueError(f"Component '{self.name}': its backend has no torch network to train")
        bind_network(self.model, net)
        return net

    def training_windows(self, examples: Iterable[Example]) -> list[TrainingWindow]:
        """The examples' wordpiece windows with gold tag ids: exactly the inference view (the
        same words, windows and best window per piece); see
        :func:`~spacy_nerzoo.networks.hf_token_classifier.training_windows`."""
        rt = self.runtime
        window = self.max_length - rt.n_special
        return training_windows(
            examples,
            rt,
            window=window,
            stride=self.effective_stride(window),
            lowercase=not self.case_sensitive,
            join_hyphens=self.join_hyphens,
        )

    def get_loss(self, examples: Iterable[Example], scores: list[Any]) -> tuple[float, list[Any]]:
        """Mean cross-entropy per gold piece, and its gradient, for the windows' logits.

        ``scores`` holds one ``(n_pieces, n_tags)`` logits array per window of
        ``training_windows(examples)``, in that order (special tokens left out).
        """
        return windows_loss(self.training_windows(examples), scores)

    def train_step(self, examples: list[Example]) -> float | None:
        """Forward and backward passes on the mean cross-entropy of the gold wordpieces.

        The windows of all examples (see :meth:`training_windows`) are sorted by length and run
        ``batch_size`` at a time in train mode, their gradients accumulating, each batch's loss
        weighted so the sum is the mean over all gold pieces of the update. Dropout is the
        network's own (its config.json, e.g. ``hidden_dropout_prob``). Training runs in fp32
        whatever ``precision`` says (that setting is for inference).
        """
        net = self._trainable_network()
        windows = self.training_windows(examples)
        if not any(w.n_gold for w in windows):
            return None
        try:
            return train_windows(self.model, self.runtime, windows, self.batch_size)
        finally:
            net.eval()  # the backend predicts with this module: no dropout outside update

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
            except Exception:  # noqa: BLE001
                # Retry one Doc at a time, so one bad Doc never costs its batch-mates.
                for doc in docs:
                    try:
                        self.set_annotations([doc], self.predict([doc]))
                        yield doc
                    except Exception as e:  # noqa: BLE001 - spaCy's error-handler protocol
                        error_handler(self.name, self, [doc], e)

    def predict(self, docs: Iterable[Doc]) -> list[list[Prediction]]:
        """Entities ``(start, end, label, confidence)`` for each Doc.

        The whole batch of Docs is handled as one set of arrays (:class:`BatchEncoding`): its
        windows run sorted by length, each piece's logits are read from its best window, and
        softmax, pooling, decoding and chunking run once for the batch, not once per Doc. With
        a small network and sentence-length Docs, per-Doc NumPy calls cost as much as the
        network.
        """
        docs = list(docs)
        rt = self.runtime
        batch = encode_batch(
            rt.tokenizer,
            docs,
            lowercase=not self.case_sensitive,
            casing=rt.casing,
            join_hyphens=self.join_hyphens,
        )
        window = self.max_length - rt.n_special
        windows = plan_batch_windows(batch, window, self.effective_stride(window))
        pieces = piece_logits(rt, batch, windows, self.batch_size)
        piece_probs = softmax(pieces.astype(np.float32, copy=False))
        n_tokens = int(batch.token_offsets[-1])
        token_probs, has = pool_pieces(piece_probs, batch.piece_token, n_tokens, self.alignment)
        offsets = batch.token_offsets
        segments = self._segments(docs, offsets)
        # A compound read as one word (``join_hyphens``) is decoded as one: its other tokens
        # leave the sequence, so they neither break an entity nor start one.
        heads = word_heads(batch.joined)
        if heads is not None:
            token_probs, has, segments = token_probs[heads], has[heads], heads_at(heads, segments)
        tags = decode_flat(token_probs, ~has, segments, rt.scheme, self.decoding)
        scheme = self._output_scheme(rt)
        return entities_from_tags(
            token_probs, tags, offsets, segments, scheme, self.labels_filter, heads
        )

    def _segments(self, docs: list[Doc], offsets: np.ndarray) -> np.ndarray:
        """Where decoding and chunking start anew: each Doc, and (with ``sentence_boundaries``)
        each sentence a Doc already has, so no entity crosses a sentence start that a
        sentencizer, a parser or the reader set. Raw text has none and is decoded whole."""
        if not self.sentence_boundaries:
            return offsets
        cuts = [offsets]
        for d, doc in enumerate(docs):
            if len(doc) > 1 and doc.has_annotation("SENT_START"):
                starts = np.flatnonzero(doc.to_array(SENT_START)[1:] == 1) + 1
                cuts.append(starts.astype(np.int64) + offsets[d])
        return np.unique(np.concatenate(cuts)) if len(cuts) > 1 else offsets

    def score(self, examples: Iterable[Example], **kwargs: Any) -> dict[str, Any]:
        """The scorer's scores, told how this head's tags read (IO heads: touching same-type
        entities are one, as Few-NERD's evaluation counts them) and the ``label_level``."""
        io = self._runtime is not None and self._runtime.scheme.name == "IO"
        told = {"scheme": "io" if io else "iob", "label_level": self.label_level}
        return super().score(examples, **{**told, **kwargs})  # type: ignore[no-any-return]

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
        model_dir = path / MODEL_DIR
        model_dir.mkdir(exist_ok=True)
        self.runtime.save(model_dir)
        (path / CFG_FILE).write_text(json.dumps(self._cfg(), indent=2), encoding="utf8")

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> TokenClassifierNER:
        path = Path(path)
        read_cfg(path, self.name, SERIAL_VERSION)
        model_dir = path / MODEL_DIR
        ckpt = Checkpoint(str(model_dir), str(model_dir), True)
        self._set_runtime(
            load_runtime(
                model_dir, self.backend_name, self.precision, ckpt=ckpt, component=self.name
            )
        )
        return self


# The factory of every token-classifier zoo entry and of the generic ``token_classifier``.
make_token_classifier = pipe_factory(TokenClassifierNER)


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
        # A folder or hub id: the window its trainer recorded, else 512 (recorded_max_length).
        "max_length": entry.max_length if entry else None,
        "stride": entry.stride if entry else None,
        "case_sensitive": entry.case_sensitive if entry else True,
        "batch_size": 8,
        "label_level": "fine",
        "labels": None,
        "ents_filter": DEFAULT_ENTS_FILTER,
        "overwrite_ents": None,
        "spans_key": DEFAULT_SPANS_KEY,
        "scorer": DEFAULT_SCORER,
        "id2label": None,
        "sentence_boundaries": True,
        "join_hyphens": True,
    }


register_factories("token_classifier", "token_classifier", make_token_classifier, default_config)
