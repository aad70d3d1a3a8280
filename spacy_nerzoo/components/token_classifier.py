"""The token-classifier NER component and the zoo factories built on it.

One component class serves every Hugging Face ``AutoModelForTokenClassification`` checkpoint; the
zoo names (``albert_conll03``, ...) are the same factory registered with the catalogue's defaults.

Weights load lazily, at ``nlp.initialize()`` or on first use, and are then serialised inside the
pipeline by ``to_disk``. Loading in the factory would make ``spacy.load`` fetch the original
checkpoint again (the factory runs before ``from_disk``), which breaks once it is deleted.
We serialise with ``save_pretrained`` rather than spacy-transformers' ``HFShim``: the shim rebuilds
the network with ``AutoModel`` (dropping the classification head) and would tie the ONNX path to
torch.

Training (torch backend): the component is a ``TrainablePipe``, so ``nlp.update`` and ``spacy
train`` fine-tune the network inside spaCy's loop. As for the NerDL tagger, the torch network is
held by a thinc ``PyTorchShim`` inside ``self.model``, so ``[training.optimizer]`` (Adam, its
learn-rate schedule, gradient clipping, L2) updates the very module the backend predicts with.
Gold tags are mapped onto wordpieces with the alignment inference uses: the same words, windows
(``plan_windows``) and, for each piece, the window where inference reads it (``best_window``);
see :meth:`TokenClassifierNER.training_windows`. ``initialize`` builds a new classifier head
when the checkpoint's labels do not cover the training data (see its docstring for the rule).
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from spacy.attrs import SENT_START
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import minibatch
from thinc.api import ArgsKwargs, Model, Optimizer, get_array_module

from ..alignment import (
    Alignment,
    best_window,
    encode_batch,
    encode_docs,
    pad_token_id,
    pad_windows,
    plan_batch_windows,
    plan_windows,
    pool_pieces,
    softmax,
    special_tokens,
    window_pieces,
)
from ..backends.base import Backend, BackendName, Precision, check_precision
from ..backends.loading import (
    Checkpoint,
    load_error,
    load_tokenizer,
    max_positions,
    resolve_checkpoint,
)
from ..casing import N_CLASSES as N_CASING_CLASSES
from ..casing import SPECIAL as CASING_SPECIAL
from ..casing import check_scheme as check_casing_scheme
from ..casing import config_scheme as casing_scheme
from ..catalogue import ZOO, ZooEntry
from ..decoding import Decoding, TagScheme, chunk_flat, decode_flat, mean_tag_probs
from ..errors import ModelLoadError
from ..serialization import FolderBytesMixin
from ..writing import DEFAULT_SPANS_KEY, register_extensions, write_predictions

LabelLevel = Literal["fine", "coarse"]
NewHeadScheme = Literal["IOB2", "IO"]
Prediction = tuple[int, int, str, float]  # token start, token end, label, confidence
MODEL_DIR = "model"
CFG_FILE = "cfg.json"
SERIAL_VERSION = 1
_LOAD_LOCK = threading.Lock()
IGNORE_INDEX = -100  # pieces the loss skips (as in Hugging Face's token-classification recipes)

logger = logging.getLogger(__name__)

# spaCy's aligned gold tags are BILUO; how each prefix reads in the head's tag scheme.
_BILUO_TO_SCHEME = {
    "IOB2": {"B": "B", "I": "I", "L": "I", "U": "B"},
    "IO": {"B": "I", "I": "I", "L": "I", "U": "I"},
    "BIOES": {"B": "B", "I": "I", "L": "E", "U": "S"},
}


class Runtime:
    """What a loaded model is made of: tokenizer, HF config, tag scheme and network backend."""

    def __init__(self, tokenizer: Any, config: Any, backend: Backend) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.backend = backend
        self.scheme = TagScheme.from_labels(config.id2label)
        self.coarse_scheme = self.scheme.coarse()  # for label_level="coarse"
        # ValueErrors here are wrapped by load_runtime with the model's name.
        if backend.num_labels != len(self.scheme.prefixes):
            raise ValueError(
                f"the classifier head ({backend!r}) has {backend.num_labels} outputs but "
                f"config.json lists {len(self.scheme.prefixes)} labels "
                f"({list(config.id2label.values())})"
            )
        vocab_size = getattr(config, "vocab_size", None)
        if vocab_size is not None and len(tokenizer) > int(vocab_size):
            raise ValueError(
                f"the tokenizer's vocabulary has {len(tokenizer)} ids but the model's embeddings "
                f"have {vocab_size} rows: tokenizer and weights do not belong together"
            )
        # The special tokens around every window, as the tokenizer really adds them (its
        # post-processor), not as build_inputs_with_special_tokens claims: see special_tokens.
        specials = special_tokens(tokenizer)
        self.prefix, self.suffix = specials.prefix, specials.suffix
        # Token types of specials and pieces, for the rare tokenizer that gives any but 0.
        self.token_types = specials if specials.typed else None
        self.pad_id = pad_token_id(tokenizer, config)
        self.max_positions = max_positions(config)
        if self.token_types is not None and not getattr(backend, "takes_token_types", True):
            raise ValueError(
                "the tokenizer gives a sentence token types other than 0 (specials "
                f"{specials.prefix_types.tolist()} / {specials.suffix_types.tolist()}, pieces "
                f"{specials.word_type}), but the network ({backend!r}) has no token_type_ids "
                "input to take them; use backend='torch'"
            )
        # A model trained with casing classes as token types (spacy_nerzoo.casing) gets them.
        casing = casing_scheme(config)
        self.casing = casing is not None
        if self.casing:
            check_casing_scheme(casing)
            if self.token_types is not None:
                raise ValueError(
                    f"config.json asks for casing classes ({casing!r}) as token types, but the "
                    "tokenizer gives a sentence token types of its own"
                )
            n_types = int(getattr(config, "type_vocab_size", 0) or 0)
            if n_types < N_CASING_CLASSES:
                raise ValueError(
                    f"config.json asks for casing ({casing!r}, {N_CASING_CLASSES} classes) but "
                    f"the model has {n_types} token types"
                )
            if not getattr(backend, "takes_token_types", True):
                raise ValueError(
                    f"the model was trained with casing classes ({casing!r}) as token types, "
                    f"but its network ({backend!r}) has no token_type_ids input, so they would "
                    "be lost; export it again with spacy_nerzoo.export.onnx.export_onnx"
                )

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

    from ..backends.cased import register as register_cased

    register_cased()
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


def load_with_new_head(
    location: str | Path, tags: list[str], precision: str, *, ckpt: Checkpoint, component: str
) -> Runtime:
    """Load a checkpoint's encoder with a classifier head for ``tags`` (torch backend).

    The head is freshly initialised unless the checkpoint's head already has exactly these tags:
    when only the size differs, ``ignore_mismatched_sizes`` re-creates it; when the size happens
    to match but the tags differ (9 CoNLL tags vs 9 other tags), it is re-initialised here, so no
    output starts with another label's weights.
    """
    from transformers import AutoConfig, AutoModelForTokenClassification

    from ..backends.torch_backend import TorchBackend

    try:
        old = AutoConfig.from_pretrained(str(location))
    except Exception as e:  # noqa: BLE001 - any failure becomes one actionable error
        raise load_error(ckpt, component, "config", e) from None
    old_tags = [old.id2label[i] for i in range(old.num_labels)]
    try:
        net = AutoModelForTokenClassification.from_pretrained(
            str(location),
            num_labels=len(tags),
            id2label=dict(enumerate(tags)),
            label2id={t: i for i, t in enumerate(tags)},
            ignore_mismatched_sizes=True,
        )
    except Exception as e:  # noqa: BLE001
        raise load_error(ckpt, component, "weights", e) from None
    if old_tags != tags and old.num_labels == len(tags):
        _reset_head(net)
    try:
        tokenizer = load_tokenizer(location, net.config)
    except Exception as e:  # noqa: BLE001
        raise load_error(ckpt, component, "tokenizer", e) from None
    return Runtime(tokenizer, net.config, TorchBackend(net, precision))


def _reset_head(net: Any) -> None:
    """Re-initialise the classifier head the way HF initialises a new one."""
    head = getattr(net, "classifier", None)
    if head is None or not hasattr(head, "weight"):
        logger.warning("Could not find the classifier head of %s to re-initialise", type(net))
        return
    import torch

    with torch.no_grad():
        head.weight.normal_(0.0, getattr(net.config, "initializer_range", 0.02))
        if getattr(head, "bias", None) is not None:
            head.bias.zero_()


def new_head_tags(labels: Iterable[str], scheme: NewHeadScheme) -> list[str]:
    """Tags of a new head: ``O`` then, per label in sorted order, ``B-X``, ``I-X`` (IOB2) or ``I-X``
    (IO). IO tags carry the ``I-`` prefix so that no label can be misread as a prefixed tag."""
    if scheme == "IO":
        return ["O"] + [f"I-{lab}" for lab in sorted(set(labels))]
    from ..nerdl.component import iob2_tags

    return iob2_tags(labels)


@dataclass
class TrainingWindow:
    """One window of a training Doc: its wordpieces and a gold tag id per piece.

    ``labels`` is ``IGNORE_INDEX`` except on the first piece of each token whose gold tag is known,
    and only in the window that inference reads that piece from (so each piece is trained once).
    """

    piece_ids: np.ndarray  # (n,) int64, without special tokens
    labels: np.ndarray  # (n,) int64
    piece_types: np.ndarray | None = None  # (n,) int64 casing classes, for casing models

    @property
    def n_gold(self) -> int:
        return int((self.labels >= 0).sum())


def cross_entropy(logits: Any, gold: Any, normalizer: float) -> tuple[float, Any]:
    """Summed cross-entropy of ``logits[..., tag]`` against ``gold`` tag ids, over ``normalizer``.

    Positions where ``gold`` is negative are skipped. Returns the loss and its gradient with
    respect to ``logits`` (NumPy or CuPy, following ``logits``).
    """
    xp = get_array_module(logits)
    gold = xp.asarray(gold)
    where = xp.nonzero(gold >= 0)
    target = gold[where]
    x = logits[where].astype(xp.float32)
    x = x - x.max(axis=-1, keepdims=True)
    log_p = x - xp.log(xp.exp(x).sum(axis=-1, keepdims=True))
    rows = xp.arange(len(target))
    loss = -float(log_p[rows, target].sum()) / normalizer
    d_x = xp.exp(log_p)
    d_x[rows, target] -= 1.0
    d_logits = xp.zeros(logits.shape, dtype=logits.dtype)
    d_logits[where] = (d_x / normalizer).astype(logits.dtype)
    return loss, d_logits


# Padded wordpiece ids, attention mask and token types (casing classes; None: the model's default)
HFInput = tuple[np.ndarray, np.ndarray, np.ndarray | None]


def _hf_forward(model: Model[HFInput, Any], inputs: HFInput, is_train: bool) -> tuple[Any, Any]:
    """Run the HF token classifier held by the model's shim: logits ``(batch, width, n_tags)``.

    The backward pass takes the gradient of the logits (from :func:`cross_entropy`).
    """
    from thinc.util import torch2xp, xp2torch

    if not model.shims:
        raise ValueError("The token classifier's network is not bound to its thinc model")
    shim = model.shims[0]
    ids, mask, types = inputs
    kwargs = {
        "input_ids": xp2torch(ids, device=shim.device),
        "attention_mask": xp2torch(mask, device=shim.device),
    }
    if types is not None:
        kwargs["token_type_ids"] = xp2torch(types, device=shim.device)
    args = ArgsKwargs(args=(), kwargs=kwargs)
    if not is_train:
        net = shim._model
        was_training = net.training
        out = shim.predict(args).logits
        net.train(was_training)  # PyTorchShim.predict leaves the network in train mode
        return torch2xp(out), lambda d: inputs
    output, shim_backprop = shim.begin_update(args)
    logits = output.logits

    def backprop(d_logits: Any) -> HFInput:
        grad = xp2torch(d_logits, device=logits.device).to(logits.dtype)
        shim_backprop(ArgsKwargs(args=(logits,), kwargs={"grad_tensors": grad}))
        return inputs  # integer inputs: nothing to propagate

    return torch2xp(logits), backprop


def build_hf_model() -> Model[HFInput, Any]:
    """The thinc model of a token-classifier component; its shim is bound when training starts."""
    return Model("nerzoo_hf_token_classifier", _hf_forward)


class TokenClassifierNER(FolderBytesMixin, TrainablePipe):
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
        sentence_boundaries: bool = True,
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
        self.sentence_boundaries = sentence_boundaries
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
        self.model.shims.clear()  # a new network: bound again when training resumes

    def effective_stride(self, window: int) -> int:
        return window // 4 if self.stride is None else self.stride

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
            with tempfile.TemporaryDirectory() as tmp:
                self._save_model(Path(tmp))
                ckpt = Checkpoint(self.model_source or tmp, tmp, True)
                runtime = load_with_new_head(
                    tmp, tags, self.precision, ckpt=ckpt, component=self.name
                )
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
        from transformers import AutoConfig

        ckpt = resolve_checkpoint(self.model_source, component=self.name)
        try:
            config = AutoConfig.from_pretrained(ckpt.location)
        except Exception as e:  # noqa: BLE001 - any failure becomes one actionable error
            raise load_error(ckpt, self.name, "config", e) from None
        names = [config.id2label[i] for i in range(config.num_labels)]
        if self.id2label and len(self.id2label) == len(names):
            names = list(self.id2label)
        try:
            return TagScheme.from_labels(names).entity_types
        except ValueError:
            return None

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
        from thinc.shims import PyTorchShim

        from ..nerdl.component import network

        net = getattr(self.runtime.backend, "model", None)
        if net is None:
            raise ValueError(f"Component '{self.name}': its backend has no torch network to train")
        if network(self.model) is not net:
            self.model.shims[:] = [PyTorchShim(net)]
        return net

    def _gold_ids(self, aligned: list[str | None]) -> np.ndarray:
        """Tag ids of the head for spaCy's aligned BILUO tags; ``IGNORE_INDEX`` where unknown."""
        scheme = self.runtime.scheme
        to_scheme = _BILUO_TO_SCHEME[scheme.name]
        index: dict[tuple[str, str], int] = {}
        for i, key in enumerate(zip(scheme.prefixes, scheme.types, strict=True)):
            index.setdefault(key, i)
        memo: dict[str | None, int] = {"O": scheme.outside, None: IGNORE_INDEX, "-": IGNORE_INDEX}
        out = np.full(len(aligned), IGNORE_INDEX, np.int64)
        for i, tag in enumerate(aligned):
            if tag not in memo:
                prefix, _, label = tag.partition("-")  # type: ignore[union-attr]
                # A label the head lacks is unknown, not O (initialize fits the head to the data).
                memo[tag] = index.get((to_scheme.get(prefix, ""), label), IGNORE_INDEX)
            out[i] = memo[tag]
        return out

    def training_windows(self, examples: Iterable[Example]) -> list[TrainingWindow]:
        """The wordpiece windows of the examples' predicted Docs, with gold tag ids per piece.

        Exactly the inference view: the same words (whitespace tokens left out, lowercased when
        not ``case_sensitive``), the same windows (``plan_windows`` with ``max_length`` and
        ``stride``), and each piece labelled only in its ``best_window``, the one inference reads
        it from. Gold tags come from ``example.get_aligned_ner()`` (the reference's entities on
        the predicted tokens), mapped to the head's scheme (IOB2, IO or BIOES), and go on the
        first piece of each token, also for ``alignment`` "average" and "max" (their pooled
        probabilities have no per-piece target; training the first piece is the usual recipe).
        Other pieces, unknown or misaligned tags and tokens without pieces are ignored.
        Windows without any gold tag are dropped.
        """
        examples = list(examples)
        rt = self.runtime
        encodings = encode_docs(
            rt.tokenizer,
            [eg.predicted for eg in examples],
            lowercase=not self.case_sensitive,
            casing=rt.casing,
        )
        window = self.max_length - rt.n_special
        stride = self.effective_stride(window)
        out: list[TrainingWindow] = []
        for eg, enc in zip(examples, encodings, strict=True):
            n = len(enc.piece_ids)
            if not n:
                continue
            token_gold = self._gold_ids(eg.get_aligned_ner())
            owner = enc.piece_token
            first = np.r_[True, owner[1:] != owner[:-1]]
            piece_gold = np.where(first, token_gold[owner], IGNORE_INDEX)
            plan = plan_windows(n, window, stride)
            which, _ = best_window(n, plan)
            for w, (s, e) in enumerate(plan):
                labels = np.where(which[s:e] == w, piece_gold[s:e], IGNORE_INDEX)
                if (labels >= 0).any():
                    types = None if enc.piece_types is None else enc.piece_types[s:e]
                    out.append(TrainingWindow(enc.piece_ids[s:e], labels, types))
        return out

    def get_loss(self, examples: Iterable[Example], scores: list[Any]) -> tuple[float, list[Any]]:
        """Mean cross-entropy per gold piece, and its gradient, for the windows' logits.

        ``scores`` holds one ``(n_pieces, n_tags)`` logits array per window of
        ``training_windows(examples)``, in that order (special tokens left out).
        """
        windows = self.training_windows(examples)
        if len(scores) != len(windows):
            raise ValueError(f"Got logits for {len(scores)} windows, expected {len(windows)}")
        n_gold = max(sum(w.n_gold for w in windows), 1)
        total = 0.0
        grads = []
        for w, x in zip(windows, scores, strict=True):
            loss, d_x = cross_entropy(x, w.labels, n_gold)
            total += loss
            grads.append(d_x)
        return total, grads

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optimizer | None = None,
        losses: dict[str, float] | None = None,
    ) -> dict[str, float]:
        """One step on the mean cross-entropy of the batch's gold wordpieces.

        The windows of all examples (see :meth:`training_windows`) are sorted by length and run
        ``batch_size`` at a time in train mode, their gradients accumulating, each batch's loss
        weighted so the sum is the mean over all gold pieces of the update. The optimizer step is
        ``finish_update(sgd)`` (spaCy's loop calls it). ``drop`` is not used: dropout is the
        network's own (its config.json, e.g. ``hidden_dropout_prob``), active in train mode.
        Training runs in fp32 whatever ``precision`` says (that setting is for inference).
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "TokenClassifierNER.update")
        net = self._trainable_network()
        windows = self.training_windows(examples)
        n_gold = sum(w.n_gold for w in windows)
        if not n_gold:
            return losses
        windows.sort(key=lambda w: len(w.piece_ids))  # less padding per forward pass
        prefix = len(self.runtime.prefix)
        total = 0.0
        try:
            for batch in minibatch(windows, size=self.batch_size):
                ids, mask, types = self._pad(
                    [w.piece_ids for w in batch],
                    None if batch[0].piece_types is None else [w.piece_types for w in batch],
                )
                gold = np.full(ids.shape, IGNORE_INDEX, np.int64)
                for row, w in enumerate(batch):
                    gold[row, prefix : prefix + len(w.labels)] = w.labels
                logits, backprop = self.model.begin_update((ids, mask, types))
                loss, d_logits = cross_entropy(logits, gold, n_gold)
                backprop(d_logits)
                total += loss
        finally:
            net.eval()  # the backend predicts with this module: no dropout outside update
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += total
        return losses

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
            rt.tokenizer, docs, lowercase=not self.case_sensitive, casing=rt.casing
        )
        window = self.max_length - rt.n_special
        windows = plan_batch_windows(batch, window, self.effective_stride(window))
        lengths = windows.lengths
        # Sort by length so each forward pass pads as little as possible.
        order = np.argsort(lengths, kind="stable")
        outputs = [np.zeros((0, len(rt.scheme.prefixes)), np.float32)]
        for at in range(0, len(order), self.batch_size):
            run = order[at : at + self.batch_size]
            inputs = self._inputs(
                batch.piece_ids, batch.piece_types, windows.starts[run], windows.ends[run]
            )
            logits = rt.backend.predict(*inputs)
            outputs.append(window_pieces(logits, lengths[run], len(rt.prefix)))
        pieces = np.concatenate(outputs)[windows.rows(order)]
        piece_probs = softmax(pieces.astype(np.float32, copy=False))
        n_tokens = int(batch.token_offsets[-1])
        token_probs, has = pool_pieces(piece_probs, batch.piece_token, n_tokens, self.alignment)
        offsets = batch.token_offsets
        segments = self._segments(docs, offsets)
        tags = decode_flat(token_probs, ~has, segments, rt.scheme, self.decoding)
        return self._entities(token_probs, tags, offsets, segments)

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

    def _inputs(
        self,
        piece_ids: np.ndarray,
        piece_types: np.ndarray | None,
        starts: np.ndarray,
        ends: np.ndarray,
    ) -> HFInput:
        """Network inputs for the windows ``starts[i]:ends[i]`` of a piece sequence: ids with the
        model's special tokens, right-padded, the attention mask, and the pieces' casing classes
        laid out alike (special tokens and padding: class 0), or the token types the tokenizer
        gives where they are not all 0, or None (the network's default, all 0)."""
        rt = self.runtime
        ids, mask = pad_windows(piece_ids, starts, ends, rt.prefix, rt.suffix, rt.pad_id)
        types = None
        if piece_types is not None:
            prefix, suffix = np.zeros_like(rt.prefix), np.zeros_like(rt.suffix)
            types, _ = pad_windows(piece_types, starts, ends, prefix, suffix, CASING_SPECIAL)
        elif rt.token_types is not None:  # the tokenizer's own token types, where not all 0
            t = rt.token_types
            same = np.full(len(piece_ids), t.word_type, np.int64)
            types, _ = pad_windows(same, starts, ends, t.prefix_types, t.suffix_types, 0)
        return ids, mask, types

    def _pad(self, pieces: list[np.ndarray], types: list[np.ndarray] | None = None) -> HFInput:
        """:meth:`_inputs` for separate windows, one row each (``types`` alike, or None)."""
        lengths = np.asarray([len(p) for p in pieces], np.int64)
        ends = np.cumsum(lengths)

        def flat(arrays: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(arrays) if arrays else np.zeros(0, np.int64)

        return self._inputs(
            flat(pieces), None if types is None else flat(types), ends - lengths, ends
        )

    def _entities(
        self,
        token_probs: np.ndarray,
        tags: np.ndarray,
        offsets: np.ndarray,
        segments: np.ndarray | None = None,
    ) -> list[list[Prediction]]:
        """Each Doc's entities from the tags of a batch (Doc ``d``: ``offsets[d]:offsets[d+1]``),
        chunked within ``segments`` (default: the Docs)."""
        scheme = self._output_scheme(self.runtime)
        starts, ends, types = chunk_flat(tags, offsets if segments is None else segments, scheme)
        confidences = mean_tag_probs(token_probs, tags, starts, ends).tolist()
        doc_of = np.searchsorted(offsets, starts, side="right") - 1
        first = offsets[doc_of]
        labels = scheme.entity_types
        keep = [self.labels_filter is None or lab in self.labels_filter for lab in labels]
        result: list[list[Prediction]] = [[] for _ in range(len(offsets) - 1)]
        for d, s, e, typ, conf in zip(
            doc_of.tolist(),
            (starts - first).tolist(),
            (ends - first).tolist(),
            types.tolist(),
            confidences,
            strict=True,
        ):
            if keep[typ]:
                result[d].append((s, e, labels[typ], conf))
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
        model_dir = path / MODEL_DIR
        model_dir.mkdir(exist_ok=True)
        self._save_model(model_dir)
        (path / CFG_FILE).write_text(json.dumps(self._cfg(), indent=2), encoding="utf8")

    def _save_model(self, model_dir: Path) -> None:
        """Weights, HF config and tokenizer: a checkpoint folder ``from_pretrained`` reads."""
        rt = self.runtime
        # Weights first: save_pretrained also writes the network's own config.json, which the
        # runtime's config (with any id2label override) must replace.
        rt.backend.save(model_dir)
        rt.config.save_pretrained(str(model_dir))
        rt.tokenizer.save_pretrained(str(model_dir))

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
    sentence_boundaries: bool = True,
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
        sentence_boundaries=sentence_boundaries,
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
        "stride": entry.stride if entry else None,
        "case_sensitive": entry.case_sensitive if entry else True,
        "batch_size": 8,
        "label_level": "fine",
        "labels": None,
        "overwrite_ents": False,
        "spans_key": DEFAULT_SPANS_KEY,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
        "id2label": None,
        "sentence_boundaries": True,
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
