"""The trainer's windows and batches: a thin layer on ``spacy_nerzoo.alignment``.

A training window is what the component feeds the network at inference, built by the same code:
each word's pieces from :func:`alignment.word_pieces` (the component's cached wordpiece path),
casing classes from :func:`casing.word_class`, the special tokens the tokenizer really adds
(:func:`alignment.special_tokens`). Only the cut differs, and :func:`alignment.pack_windows` owns
it: a document's consecutive sentences packed into windows that do not overlap, so each word is
trained once per epoch, with its neighbours as context.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from spacy_nerzoo.alignment import pack_windows, special_tokens, word_pieces
from spacy_nerzoo.casing import SPECIAL, word_class
from spacy_nerzoo.data.readers import Document
from spacy_nerzoo.training.corpus import IGNORE_INDEX, LABELS


@dataclass
class Window:
    """One training example: wordpiece ids with [CLS]/[SEP] and per-piece label ids.

    Only the first piece of each word carries its tag; other pieces and specials are ignored by the
    loss (``-100``), matching the first-wordpiece decoding at inference.
    """

    input_ids: list[int]
    labels: list[int]
    # Casing class of each piece (``spacy_nerzoo.casing``), fed as token_type_ids; None: no casing.
    type_ids: list[int] | None = None
    # Corpus-wide index of the word at each first piece, in order (the pieces whose label is not
    # ignored): how a teacher's per-word distributions find their pieces (``training.distill``).
    words: list[int] | None = None
    # Teacher distribution per first piece ([len(words), n_labels]); None: gold loss only.
    soft: np.ndarray | None = None
    # False for raw text (distillation only): ``labels`` then only mark the first pieces.
    gold: bool = True


def build_windows(
    docs: Sequence[Document],
    tokenizer: Any,
    max_length: int,
    labels: Sequence[str] = LABELS,
    casing: bool = False,
) -> list[Window]:
    """Pack each document's consecutive sentences greedily into windows of ``max_length`` pieces.

    Windows never cross documents (context from another article would be noise), so Few-NERD,
    read as one document per sentence, gets one window per sentence; a sentence longer than a
    window is split (:func:`alignment.pack_windows`). With ``casing`` each window also carries its
    pieces' casing classes. The special tokens around a window are those the tokenizer really
    adds to a sentence (``alignment.special_tokens``), as at inference.
    """
    specials = special_tokens(tokenizer)
    prefix, suffix = specials.prefix.tolist(), specials.suffix.tolist()
    size = max_length - len(prefix) - len(suffix)
    if size < 1:
        raise ValueError(f"max_length {max_length} leaves no room inside the special tokens")
    label2id = {label: i for i, label in enumerate(labels)}
    words = [w for doc in docs for s in doc.sentences for w in s.words]
    tags = [t for doc in docs for s in doc.sentences for t in s.tags]
    unknown = next((t for t in tags if t not in label2id), None)
    if unknown is not None:
        raise ValueError(f"Tag {unknown!r} is not among the labels {list(label2id)}")
    # The corpus as one stream of pieces, and per piece its word (corpus-wide index).
    pieces = word_pieces(tokenizer, words)
    counts = np.fromiter(map(len, pieces), np.int64, len(pieces))
    ids = np.fromiter(itertools.chain.from_iterable(pieces), np.int64, int(counts.sum()))
    piece_word = np.repeat(np.arange(len(words)), counts)
    word_start = np.r_[True, piece_word[1:] != piece_word[:-1]] if len(ids) else np.zeros(0, bool)
    piece_labels = np.where(
        word_start, np.asarray([label2id[t] for t in tags], np.int64)[piece_word], IGNORE_INDEX
    )
    piece_types = np.asarray([word_class(w) for w in words], np.int64)[piece_word]
    # Where each document's and each sentence's pieces start.
    word_bounds = np.cumsum([0, *(len(s.words) for doc in docs for s in doc.sentences)])
    piece_bounds = np.r_[0, np.cumsum(counts)][word_bounds]
    pre, post = [IGNORE_INDEX] * len(prefix), [IGNORE_INDEX] * len(suffix)
    windows: list[Window] = []
    first = 0
    for doc in docs:
        sent_pieces = np.diff(piece_bounds[first : first + len(doc.sentences) + 1]).tolist()
        p0 = int(piece_bounds[first])
        for start, end in pack_windows(sent_pieces, size, word_start[p0:]):
            a, b = p0 + start, p0 + end
            types = None
            if casing:
                types = [SPECIAL] * len(prefix) + piece_types[a:b].tolist()
                types += [SPECIAL] * len(suffix)
            windows.append(
                Window(
                    [*prefix, *ids[a:b].tolist(), *suffix],
                    [*pre, *piece_labels[a:b].tolist(), *post],
                    types,
                    piece_word[a:b][word_start[a:b]].tolist(),
                )
            )
        first += len(doc.sentences)
    return windows


def make_batches(
    windows: Sequence[Window], batch_size: int, rng: random.Random, bucket: int = 50
) -> list[list[int]]:
    """Shuffled batches of similar-length windows.

    Documents end in short windows and Few-NERD sentences vary in length; sorting within buckets
    of ``bucket`` batches cuts padding (padding halves CPU throughput) while the order of batches
    stays random.
    """
    order = list(range(len(windows)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    chunk = batch_size * bucket
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: len(windows[i].input_ids))
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def padding_fill(windows: Sequence[Window], batches: Sequence[Sequence[int]]) -> float:
    """Share of the padded batch tensors that holds real pieces (1.0: no padding at all)."""
    real = sum(len(windows[i].input_ids) for b in batches for i in b)
    padded = sum(len(b) * max(len(windows[i].input_ids) for i in b) for b in batches if b)
    return real / padded if padded else 1.0


def collate(windows: Sequence[Window], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest window."""
    n = max(len(w.input_ids) for w in windows)
    ids = torch.full((len(windows), n), pad_id, dtype=torch.long)
    labels = torch.full((len(windows), n), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(windows), n), dtype=torch.long)
    casing = windows[0].type_ids is not None
    types = torch.full((len(windows), n), SPECIAL, dtype=torch.long)
    for i, w in enumerate(windows):
        k = len(w.input_ids)
        ids[i, :k] = torch.tensor(w.input_ids)
        if w.gold:
            labels[i, :k] = torch.tensor(w.labels)
        mask[i, :k] = 1
        if casing:
            types[i, :k] = torch.tensor(w.type_ids)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if casing:
        batch["token_type_ids"] = types
    return batch
