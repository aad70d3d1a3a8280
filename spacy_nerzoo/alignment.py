"""Where wordpieces become spaCy tokens: encoding, windows over long inputs, and pooling.

We encode a Doc's tokens as pre-split words (``is_split_into_words=True``). That is how CoNLL-style
token classifiers are fine-tuned, and the fast tokenizer's ``word_ids()`` then gives the exact
wordpiece -> token alignment by construction. spacy-alignments (and spacy-transformers' offset
alignment) solve a harder problem, aligning two independent tokenisations of the same text, which
never arises here, so we do not use them on this path.

spacy-transformers' span getters (``strided_spans``) cut windows in spaCy tokens; a model's limit is
in wordpieces, and one spaCy token can yield thousands of them (a 10,000-character token through a
byte-level BPE), so our windows are cut in wordpieces instead: no input is ever truncated.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from spacy.attrs import IS_SPACE, LOWER, ORTH
from spacy.tokens import Doc

Alignment = Literal["first", "average", "max"]


@dataclass
class DocEncoding:
    """The wordpieces of one Doc and the spaCy token each belongs to."""

    piece_ids: np.ndarray  # (n_pieces,) int64, without special tokens
    piece_token: np.ndarray  # (n_pieces,) int64 index of the spaCy token, non-decreasing
    n_tokens: int


def model_words(doc: Doc, lowercase: bool) -> tuple[list[str], np.ndarray]:
    """The words the model sees (every non-whitespace token) and their token indices.

    Whitespace tokens are never shown to the model and never part of an entity. Reads token
    attributes in bulk with ``to_array``: creating a ``Token`` object per token was the largest
    cost outside the network. Lowercasing is per word: it can change a string's length.
    """
    if not len(doc):
        return [], np.zeros(0, np.int64)
    # LOWER is the lexeme's text.lower(), exactly what lowercasing each word gives; reading
    # strings by id avoids doc.text, which is rebuilt token by token.
    attrs = doc.to_array([IS_SPACE, LOWER if lowercase else ORTH])
    index = np.flatnonzero(attrs[:, 0] == 0).astype(np.int64)
    strings = doc.vocab.strings
    words = [strings[h] for h in attrs[index, 1].tolist()]
    return words, index


_RAW: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def raw_tokenizer(tokenizer: Any) -> Any | None:
    """The fast tokenizer's Rust backend, without truncation, padding or special tokens.

    Calling it directly is what ``tokenizer(words, is_split_into_words=True)`` does, minus the
    Python overhead and the "sequence longer than the maximum" warning: long inputs are expected
    here, because windows are cut afterwards. A copy, so the HF tokenizer is left unchanged.
    """
    if not getattr(tokenizer, "is_fast", False):
        return None
    if tokenizer not in _RAW:
        from tokenizers import Tokenizer

        raw = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        raw.no_truncation()
        raw.no_padding()
        _RAW[tokenizer] = raw
    return _RAW[tokenizer]


def encode_docs(tokenizer: Any, docs: Sequence[Doc], lowercase: bool = False) -> list[DocEncoding]:
    """Tokenize a batch of Docs into wordpieces in one call to the (Rust) fast tokenizer."""
    prepared = [model_words(doc, lowercase) for doc in docs]
    non_empty = [i for i, (words, _) in enumerate(prepared) if words]
    result = [DocEncoding(np.zeros(0, np.int64), np.zeros(0, np.int64), len(doc)) for doc in docs]
    if not non_empty:
        return result
    batch = [prepared[i][0] for i in non_empty]
    backend = raw_tokenizer(tokenizer)
    if backend is not None:
        for i, enc in zip(
            non_empty,
            backend.encode_batch(batch, is_pretokenized=True, add_special_tokens=False),
            strict=True,
        ):
            word_ids = np.asarray([-1 if w is None else w for w in enc.word_ids], np.int64)
            ids = np.asarray(enc.ids, np.int64)
            keep = word_ids >= 0
            result[i] = DocEncoding(ids[keep], prepared[i][1][word_ids[keep]], len(docs[i]))
    else:
        # Slow tokenizers have no word_ids(): encode word by word (correct, just slower).
        for i in non_empty:
            words, index = prepared[i]
            ids: list[int] = []
            owner: list[int] = []
            for w, tok_i in zip(words, index, strict=True):
                pieces = tokenizer(w, add_special_tokens=False)["input_ids"]
                ids.extend(pieces)
                owner.extend([int(tok_i)] * len(pieces))
            result[i] = DocEncoding(
                np.asarray(ids, np.int64), np.asarray(owner, np.int64), len(docs[i])
            )
    return result


def plan_windows(n_pieces: int, window: int, stride: int) -> list[tuple[int, int]]:
    """Cut ``n_pieces`` into windows of at most ``window`` pieces overlapping by ``stride``.

    The last window is aligned to the end, so every window but possibly a lone one is full.
    """
    if window < 1 or not 0 <= stride < window:
        raise ValueError(f"Need window >= 1 and 0 <= stride < window (got {window=}, {stride=})")
    if n_pieces <= window:
        return [(0, n_pieces)] if n_pieces else []
    step = window - stride
    starts = list(range(0, n_pieces - window, step)) + [n_pieces - window]
    return [(s, s + window) for s in starts]


def best_window(n_pieces: int, windows: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """For each piece, the window where it has the most context, and its offset in that window.

    Context is the distance to the nearer window edge; ties go to the earlier window, so the
    choice is deterministic.
    """
    best_w = np.zeros(n_pieces, np.int64)
    best_ctx = np.full(n_pieces, -1, np.int64)
    for w, (s, e) in enumerate(windows):
        pos = np.arange(s, e)
        ctx = np.minimum(pos - s, e - 1 - pos)
        better = ctx > best_ctx[s:e]
        best_ctx[s:e][better] = ctx[better]
        best_w[s:e][better] = w
    offsets = np.arange(n_pieces) - np.asarray([s for s, _ in windows], np.int64)[best_w]
    return best_w, offsets


def softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


def pool_pieces(
    piece_probs: np.ndarray, piece_token: np.ndarray, n_tokens: int, mode: Alignment
) -> tuple[np.ndarray, np.ndarray]:
    """Pool wordpiece probabilities onto spaCy tokens.

    Returns ``(token_probs, has_pieces)``: ``(n_tokens, n_labels)`` probabilities (rows of tokens
    without pieces are zero) and a mask of the tokens that had at least one piece.
    """
    n_labels = piece_probs.shape[1] if piece_probs.ndim == 2 else 0
    out = np.zeros((n_tokens, n_labels), np.float32)
    has = np.zeros(n_tokens, bool)
    if len(piece_token) == 0:
        return out, has
    starts = np.flatnonzero(np.r_[True, piece_token[1:] != piece_token[:-1]])
    tokens = piece_token[starts]
    if mode == "first":
        pooled = piece_probs[starts]
    elif mode == "average":
        counts = np.diff(np.r_[starts, len(piece_token)])[:, None]
        pooled = np.add.reduceat(piece_probs, starts, axis=0) / counts
    elif mode == "max":
        pooled = np.maximum.reduceat(piece_probs, starts, axis=0)
        pooled = pooled / pooled.sum(axis=1, keepdims=True)
    else:
        raise ValueError(f"Unknown alignment {mode!r}: choose 'first', 'average' or 'max'")
    out[tokens] = pooled
    has[tokens] = True
    return out, has
