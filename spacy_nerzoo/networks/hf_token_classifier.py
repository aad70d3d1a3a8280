"""The trainable network of the token-classifier component: a thinc model around the Hugging
Face token classifier, its inputs, its training windows and its loss.

The network lives in the component's backend (:mod:`spacy_nerzoo.backends.runtime`); for
training, the thinc model built here holds the same torch module in a ``PyTorchShim``
(:func:`bind_network`), so spaCy's ``[training.optimizer]`` (Adam, its learn-rate schedule,
gradient clipping, L2) updates the very module the backend predicts with.

Gold tags are mapped onto wordpieces with the alignment inference uses: the same words, windows
(``plan_windows``) and, for each piece, the window where inference reads it (``best_window``);
see :func:`training_windows`. Imports without torch: thinc's torch helpers load on first use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from spacy.training import Example
from spacy.util import minibatch
from thinc.api import ArgsKwargs, Model, get_array_module

from ..alignment import (
    BatchEncoding,
    BatchWindows,
    best_window,
    encode_docs,
    pad_windows,
    plan_windows,
    window_pieces,
)
from ..backends.runtime import Runtime
from ..casing import SPECIAL as CASING_SPECIAL
from ..components.common import gold_tag_ids, network

IGNORE_INDEX = -100  # pieces the loss skips (as in Hugging Face's token-classification recipes)

# Padded wordpiece ids, attention mask and token types (casing classes; None: the model's default)
HFInput = tuple[np.ndarray, np.ndarray, np.ndarray | None]


def bind_network(model: Model[Any, Any], net: Any) -> None:
    """Hold ``net`` (a torch module) in ``model``'s ``PyTorchShim``, once, for the optimizer."""
    from thinc.shims import PyTorchShim

    if network(model) is not net:
        model.shims[:] = [PyTorchShim(net)]


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


def network_inputs(
    rt: Runtime,
    piece_ids: np.ndarray,
    piece_types: np.ndarray | None,
    starts: np.ndarray,
    ends: np.ndarray,
) -> HFInput:
    """Network inputs for the windows ``starts[i]:ends[i]`` of a piece sequence: ids with the
    model's special tokens, right-padded, the attention mask, and the pieces' casing classes
    laid out alike (special tokens and padding: class 0), or the token types the tokenizer
    gives where they are not all 0, or None (the network's default, all 0)."""
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


def piece_logits(
    rt: Runtime, batch: BatchEncoding, windows: BatchWindows, batch_size: int
) -> np.ndarray:
    """Logits ``(n_pieces, n_tags)`` of every piece of a batch, each read from its best window.

    Windows run ``batch_size`` at a time, sorted by length so each forward pass pads as little
    as possible.
    """
    lengths = windows.lengths
    order = np.argsort(lengths, kind="stable")
    outputs = [np.zeros((0, len(rt.scheme.prefixes)), np.float32)]
    for at in range(0, len(order), batch_size):
        run = order[at : at + batch_size]
        inputs = network_inputs(
            rt, batch.piece_ids, batch.piece_types, windows.starts[run], windows.ends[run]
        )
        logits = rt.backend.predict(*inputs)
        outputs.append(window_pieces(logits, lengths[run], len(rt.prefix)))
    return np.concatenate(outputs)[windows.rows(order)]


def batch_inputs(rt: Runtime, windows: list[TrainingWindow]) -> HFInput:
    """:func:`network_inputs` for separate training windows, one row each."""
    lengths = np.asarray([len(w.piece_ids) for w in windows], np.int64)
    ends = np.cumsum(lengths)

    def flat(arrays: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(arrays) if arrays else np.zeros(0, np.int64)

    types = None
    if windows and windows[0].piece_types is not None:
        types = flat([w.piece_types for w in windows])  # type: ignore[misc]
    return network_inputs(rt, flat([w.piece_ids for w in windows]), types, ends - lengths, ends)


def training_windows(
    examples: Iterable[Example],
    rt: Runtime,
    *,
    window: int,
    stride: int,
    lowercase: bool,
    join_hyphens: bool = False,
) -> list[TrainingWindow]:
    """The wordpiece windows of the examples' predicted Docs, with gold tag ids per piece.

    Exactly the inference view: the same words (whitespace tokens left out, lowercased with
    ``lowercase``), the same windows (``plan_windows`` with ``window`` pieces between the special
    tokens and ``stride``), and each piece labelled only in its ``best_window``, the one inference
    reads it from. Gold tags come from ``example.get_aligned_ner()`` (the reference's entities on
    the predicted tokens), mapped to the head's scheme (IOB2, IO or BIOES), and go on the first
    piece of each token, also for ``alignment`` "average" and "max" (their pooled probabilities
    have no per-piece target; training the first piece is the usual recipe). Other pieces,
    unknown or misaligned tags and tokens without pieces are ignored. Windows without any gold
    tag are dropped. With ``join_hyphens`` a compound spaCy split is one word, as at inference,
    with its first token's gold tag.
    """
    examples = list(examples)
    docs = [eg.predicted for eg in examples]
    encodings = encode_docs(rt.tokenizer, docs, lowercase, rt.casing, join_hyphens)
    out: list[TrainingWindow] = []
    for eg, enc in zip(examples, encodings, strict=True):
        n = len(enc.piece_ids)
        if not n:
            continue
        token_gold = gold_tag_ids(eg.get_aligned_ner(), rt.scheme, IGNORE_INDEX)
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


def windows_loss(windows: list[TrainingWindow], scores: list[Any]) -> tuple[float, list[Any]]:
    """Mean cross-entropy per gold piece, and its gradient, for one logits array
    ``(n_pieces, n_tags)`` per window (special tokens left out), in the order of ``windows``."""
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


def train_windows(
    model: Model[HFInput, Any], rt: Runtime, windows: list[TrainingWindow], batch_size: int
) -> float:
    """Forward and backward passes over ``windows`` (the optimizer step is the caller's).

    Windows are sorted by length and run ``batch_size`` at a time, their gradients accumulating,
    each batch's loss weighted so the sum is the mean over all gold pieces. Returns that loss.
    """
    n_gold = sum(w.n_gold for w in windows)
    if not n_gold:
        return 0.0
    windows = sorted(windows, key=lambda w: len(w.piece_ids))  # less padding per forward pass
    prefix = len(rt.prefix)
    total = 0.0
    for batch in minibatch(windows, size=batch_size):
        ids, mask, types = batch_inputs(rt, batch)
        gold = np.full(ids.shape, IGNORE_INDEX, np.int64)
        for row, w in enumerate(batch):
            gold[row, prefix : prefix + len(w.labels)] = w.labels
        logits, backprop = model.begin_update((ids, mask, types))
        loss, d_logits = cross_entropy(logits, gold, n_gold)
        backprop(d_logits)
        total += loss
    return total
