"""Loading a token classifier: tokenizer, HF config and network backend, checked together.

A :class:`Runtime` is what a loaded checkpoint is made of; :func:`load_runtime` builds one for
inference (torch, or ONNX through the export cache), :func:`load_with_new_head` for training a
head with new labels. Every failure becomes one :class:`ModelLoadError` naming the model and the
component, so a user sees what to fix, not a transformers traceback. Nothing here knows about
``Doc`` objects: the component turns Docs into wordpiece windows and reads the logits.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..alignment import pad_token_id, special_tokens
from ..casing import N_CLASSES as N_CASING_CLASSES
from ..casing import check_scheme as check_casing_scheme
from ..casing import config_scheme as casing_scheme
from ..components.common import NewHeadScheme, io_tags, iob2_tags
from ..decoding import TagScheme
from ..errors import ModelLoadError
from .base import Backend
from .loading import Checkpoint, load_error, load_tokenizer, max_positions

logger = logging.getLogger(__name__)


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

    def save(self, folder: Path) -> None:
        """Weights, HF config and tokenizer: a checkpoint folder ``from_pretrained`` reads."""
        # Weights first: save_pretrained also writes the network's own config.json, which the
        # runtime's config (with any id2label override) must replace.
        self.backend.save(folder)
        self.config.save_pretrained(str(folder))
        self.tokenizer.save_pretrained(str(folder))

    def with_new_head(self, tags: list[str], source: str | None, *, component: str) -> Runtime:
        """This runtime's encoder (as it is in memory: trained, or read from disk) with a
        classifier head for ``tags``; see :func:`load_with_new_head`."""
        with tempfile.TemporaryDirectory() as tmp:
            self.save(Path(tmp))
            ckpt = Checkpoint(source or tmp, tmp, True)
            return load_with_new_head(
                tmp, tags, self.backend.precision, ckpt=ckpt, component=component
            )


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

    from .cased import register as register_cased

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
            from ..export.onnx import ensure_onnx
            from .onnx_backend import OnnxBackend

            onnx_path = ensure_onnx(Path(location), None, quantize=precision == "int8")
            net = OnnxBackend(onnx_path, precision=precision)
        else:
            from .torch_backend import TorchBackend

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

    from .torch_backend import TorchBackend

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
    return io_tags(labels) if scheme == "IO" else iob2_tags(labels)


def head_types(ckpt: Checkpoint, *, component: str, id2label: list[str] | None) -> list[str] | None:
    """Entity types a checkpoint's head predicts; None when its labels are generic or
    unreadable. Reads only its config.json, so no weights load twice."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(ckpt.location)
    except Exception as e:  # noqa: BLE001 - any failure becomes one actionable error
        raise load_error(ckpt, component, "config", e) from None
    names = [config.id2label[i] for i in range(config.num_labels)]
    if id2label and len(id2label) == len(names):
        names = list(id2label)
    try:
        return TagScheme.from_labels(names).entity_types
    except ValueError:
        return None
