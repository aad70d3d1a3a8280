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

import itertools
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from spacy.attrs import IS_PUNCT, IS_SPACE, LOWER, ORTH, SPACY
from spacy.strings import get_string_id
from spacy.tokens import Doc

from .casing import orth_classes, word_class

Alignment = Literal["first", "average", "max"]


@dataclass
class DocEncoding:
    """The wordpieces of one Doc and the spaCy token each belongs to."""

    piece_ids: np.ndarray  # (n_pieces,) int64, without special tokens
    piece_token: np.ndarray  # (n_pieces,) int64 index of the spaCy token, non-decreasing
    n_tokens: int
    # (n_pieces,) int64 casing class of each piece's word (``spacy_nerzoo.casing``), if asked for
    piece_types: np.ndarray | None = None
    joined: np.ndarray | None = None  # (n_tokens,) bool, see :class:`BatchEncoding`


# The hyphens a compound is joined by when spaCy splits it (its infix rule splits "pro-Western").
COMPOUND_HYPHENS = ("-", "\u2010", "\u2011")
_HYPHEN_IDS = np.asarray([get_string_id(h) for h in COMPOUND_HYPHENS], np.uint64)
# The token attributes the words of a batch are read from, in one ``Doc.to_array`` per Doc
# (column 1 is ORTH or LOWER: see :func:`batch_words`).
_ATTRS = [IS_SPACE, ORTH, ORTH, SPACY, IS_PUNCT]


def joined_tokens(docs: Sequence[Doc]) -> np.ndarray:
    """For each token of a batch (batch-level index), whether it continues the word before it.

    spaCy's English tokenizer splits a hyphenated compound at the hyphen ("pro-Western" -> "pro",
    "-", "Western"; "Mercedes-Benz", "state-of-the-art"), while CoNLL-2003, Few-NERD and most NER
    corpora keep it one token, labelled as one word. A model trained on those corpora then sees
    three words it never saw as such, and its entity covers "Western" where the gold covers
    "pro-Western". The hyphen and the part after it are marked here so that the model reads the
    compound as the one word it was trained on (:func:`batch_words` with ``joined``), and the
    entity covers all of it. A hyphen counts when nothing separates it from a word on either side
    (no whitespace, and neither neighbour is punctuation): "Smith - Jones" and "(-" are not joined.
    """
    arrays = [doc.to_array(_ATTRS) for doc in docs]
    attrs = np.concatenate(arrays) if arrays else np.zeros((0, len(_ATTRS)), np.uint64)
    return _joined(attrs, _offsets([len(a) for a in arrays]))


def _joined(attrs: np.ndarray, token_offsets: np.ndarray) -> np.ndarray:
    """:func:`joined_tokens` from a batch's :data:`_ATTRS` rows, for the whole batch at once."""
    n = len(attrs)
    joined = np.zeros(n, bool)
    if n < 3:
        return joined
    hyphen = np.isin(attrs[:, 2], _HYPHEN_IDS)
    tight = attrs[:, 3] == 0  # no whitespace after the token
    word = (attrs[:, 0] == 0) & (attrs[:, 4] == 0)  # neither whitespace nor punctuation
    first = np.zeros(n + 1, bool)
    first[token_offsets] = True  # a Doc starts here: its neighbours to the left are another Doc's
    mid = np.flatnonzero(
        hyphen[1:-1]
        & tight[:-2]
        & tight[1:-1]
        & word[:-2]
        & word[2:]
        & ~first[1 : n - 1]
        & ~first[2:n]
    )
    joined[mid + 1] = True
    joined[mid + 2] = True
    return joined


def word_heads(joined: np.ndarray | None) -> np.ndarray | None:
    """The tokens that start a word, where some tokens are joined to the one before them
    (:func:`joined_tokens`); None when none are, and every token is its own word."""
    if joined is None or not joined.any():
        return None
    return np.flatnonzero(~joined)


def heads_at(heads: np.ndarray, token_positions: np.ndarray) -> np.ndarray:
    """Token positions (e.g. where Docs and sentences start) as positions in the sequence of
    ``heads``; a position on a joined token moves to the next word."""
    return np.searchsorted(heads, token_positions).astype(np.int64)


def model_words(doc: Doc, lowercase: bool) -> tuple[list[str], np.ndarray]:
    """The words the model sees (every non-whitespace token) and their token indices.

    Whitespace tokens are never shown to the model and never part of an entity. See
    :func:`batch_words`, which this is for a batch of one Doc.
    """
    words, index, _, _, _ = batch_words([doc], lowercase)
    return words, index


def batch_words(
    docs: Sequence[Doc], lowercase: bool, casing: bool = False, join_hyphens: bool = False
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """:func:`model_words` for a batch: the words of all Docs one after another, the batch-level
    index of each word's token (Doc ``d``'s tokens are numbered from the number of tokens before
    it), where each Doc's words start (``n_docs + 1`` offsets), and with ``casing`` each word's
    casing class (``spacy_nerzoo.casing``) from its original text, else None.

    Reads token attributes in bulk with ``to_array``, and filters them for the whole batch at
    once: creating a ``Token`` object per token, and then a few small arrays per Doc, were the
    largest costs outside the network. LOWER is the lexeme's ``text.lower()``, exactly what
    lowercasing each word gives (per word: it can change a string's length), and reading strings
    by id avoids ``doc.text``, which is rebuilt token by token.

    With ``join_hyphens`` a compound spaCy split at its hyphen (:func:`joined_tokens`) is one
    word, the tokens' texts run together, read and cased as one, at its first token's index; the
    fifth value marks the tokens joined to the one before them (else None).
    """
    names = [IS_SPACE, LOWER if lowercase else ORTH, *_ATTRS[2:]]
    arrays = [doc.to_array(names) for doc in docs]
    attrs = np.concatenate(arrays) if arrays else np.zeros((0, len(names)), np.uint64)
    token_offsets = _offsets([len(a) for a in arrays])
    joined = _joined(attrs, token_offsets) if join_hyphens else None
    starts = attrs[:, 0] == 0
    if joined is not None:
        starts &= ~joined
    word_token = np.flatnonzero(starts).astype(np.int64)
    hashes = attrs[word_token, 1].tolist()
    orths = attrs[word_token, 2].tolist() if casing else []
    word_offsets = np.searchsorted(word_token, token_offsets)
    bounds = word_offsets.tolist()
    words: list[str] = []
    classes: list[int] = []
    for d, doc in enumerate(docs):
        words.extend(map(doc.vocab.strings.__getitem__, hashes[bounds[d] : bounds[d + 1]]))
        if casing:
            classes.extend(orth_classes(orths[bounds[d] : bounds[d + 1]], doc.vocab.strings))
    if joined is not None and joined.any():
        _join_words(docs, attrs, joined, word_token, words, classes if casing else None)
    class_array = np.asarray(classes, np.int64) if casing else None
    return words, word_token, word_offsets.astype(np.int64), class_array, joined


def _join_words(
    docs: Sequence[Doc],
    attrs: np.ndarray,
    joined: np.ndarray,
    word_token: np.ndarray,
    words: list[str],
    classes: list[int] | None,
) -> None:
    """Rewrite, in place, each word that ``joined`` tokens continue (see :func:`batch_words`)."""
    strings = docs[0].vocab.strings
    heads = np.flatnonzero(joined[1:] & ~joined[:-1])  # tokens followed by a continuation
    ends = np.r_[np.flatnonzero(~joined[1:]) + 1, len(joined)]
    for head in heads.tolist():
        end = int(ends[np.searchsorted(ends, head + 1)])
        w = int(np.searchsorted(word_token, head))
        words[w] = "".join(strings[int(h)] for h in attrs[head:end, 1])
        if classes is not None:
            classes[w] = word_class("".join(strings[int(h)] for h in attrs[head:end, 2]))


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


# Words encoded to find a tokenizer's special tokens (:func:`special_tokens`). Any words would do:
# one a vocabulary lacks still yields an unknown piece that belongs to the word.
_PROBE_WORDS = ("Hello", "world", "1996")


@dataclass(frozen=True)
class SpecialTokens:
    """The special tokens a tokenizer puts around one sequence of words, and their token types.

    ``prefix`` and ``suffix`` are the ids before and after the words' pieces ([CLS] and [SEP],
    <s> and </s>, or nothing). ``prefix_types``, ``word_type`` and ``suffix_types`` are the token
    type ids the tokenizer gives them and the words' pieces; they are all 0 for nearly every
    model, which is what a network assumes when it gets no ``token_type_ids`` (see ``typed``).
    """

    prefix: np.ndarray  # (n_prefix,) int64
    suffix: np.ndarray  # (n_suffix,) int64
    prefix_types: np.ndarray  # (n_prefix,) int64
    word_type: int
    suffix_types: np.ndarray  # (n_suffix,) int64

    @property
    def typed(self) -> bool:
        """Whether any token type is not 0, so the network must be given them."""
        return bool(self.word_type or self.prefix_types.any() or self.suffix_types.any())


def pad_token_id(tokenizer: Any, config: Any) -> int:
    """The id that pads a batch: the tokenizer's, else the model config's, else 0.

    Some checkpoints' tokenizers name no pad token (GPT-2-style vocabularies); the model's config
    then says which embedding row padding uses. Padded positions are masked either way.
    """
    found = tokenizer.pad_token_id
    if found is None:
        found = getattr(config, "pad_token_id", None)
    return int(found) if found is not None else 0


def special_tokens(tokenizer: Any) -> SpecialTokens:
    """The special tokens ``tokenizer`` adds around one sequence of pre-split words, read from a
    real encoding with ``add_special_tokens=True``: what ``tokenizer(words,
    is_split_into_words=True)`` gives, so what transformers feeds the model.

    ``tokenizer.build_inputs_with_special_tokens`` is not that: the generic
    ``PreTrainedTokenizerFast`` (the class many checkpoints name, ModernBERT's among them)
    implements it as "add nothing" while its Rust post-processor adds [CLS]/[SEP], and a model
    class's own implementation adds them when its tokenizer.json has no post-processor at all.
    A fast tokenizer's special tokens are the pieces that belong to no word; a slow tokenizer's
    are found around the words' pieces. Raises ``ValueError`` when the special tokens are not a
    fixed prefix and suffix around the words (windows could not be built from them).
    """
    words = list(_PROBE_WORDS)
    backend = raw_tokenizer(tokenizer)
    if backend is not None:
        enc = backend.encode(words, is_pretokenized=True, add_special_tokens=True)
        ids, types = list(enc.ids), list(enc.type_ids)
        inside = [i for i, w in enumerate(enc.word_ids) if w is not None]
        # The words' pieces must be one run (not compared with word_pieces: BPE dropout would
        # split the words differently each time).
        start, end = (inside[0], inside[-1] + 1) if inside else (0, 0)
        run = inside == list(range(start, end))
    else:
        pieces = [i for word in word_pieces(tokenizer, words) for i in word]
        enc = tokenizer(
            words, is_split_into_words=True, add_special_tokens=True, return_token_type_ids=True
        )
        ids = list(enc["input_ids"])
        types = list(enc.get("token_type_ids") or [0] * len(ids))
        n = len(pieces)
        start = next((i for i in range(len(ids) - n + 1) if ids[i : i + n] == pieces), -1)
        end = start + n
        run = start >= 0
    if not run or end <= start:
        raise ValueError(
            f"with special tokens the tokenizer encodes the words {words} as {ids}, which does "
            "not hold the words' pieces in one run, so windows of pieces cannot be wrapped in "
            "the special tokens the way it wraps a sentence"
        )
    word_types = set(types[start:end])
    if len(word_types) != 1:
        raise ValueError(f"the tokenizer gives one sentence's pieces several token types {types}")
    return SpecialTokens(
        np.asarray(ids[:start], np.int64),
        np.asarray(ids[end:], np.int64),
        np.asarray(types[:start], np.int64),
        word_types.pop(),
        np.asarray(types[end:], np.int64),
    )


@dataclass
class BatchEncoding:
    """The wordpieces of a batch of Docs in one set of arrays, so per-Doc work runs once per batch.

    Doc ``d`` owns pieces ``piece_offsets[d]:piece_offsets[d + 1]`` and, in ``piece_token``,
    batch-level token indices ``token_offsets[d]:token_offsets[d + 1]`` (its own token index plus
    ``token_offsets[d]``). With tokens numbered across the batch, pooling the pieces of all Docs
    is one :func:`pool_pieces` call: no group of pieces spans two Docs.
    """

    piece_ids: np.ndarray  # (n_pieces,) int64, without special tokens
    piece_token: np.ndarray  # (n_pieces,) int64 batch-level token index, non-decreasing
    piece_offsets: np.ndarray  # (n_docs + 1,) int64
    token_offsets: np.ndarray  # (n_docs + 1,) int64
    piece_types: np.ndarray | None = None  # (n_pieces,) int64 casing classes, if asked for
    # (n_tokens,) bool: tokens read as part of the word before them (:func:`joined_tokens`)
    joined: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.piece_offsets) - 1

    def doc(self, d: int) -> DocEncoding:
        """Doc ``d``'s encoding (views of the batch's arrays), its token indices its own."""
        a, b = int(self.piece_offsets[d]), int(self.piece_offsets[d + 1])
        first = int(self.token_offsets[d])
        return DocEncoding(
            self.piece_ids[a:b],
            self.piece_token[a:b] - first,
            int(self.token_offsets[d + 1]) - first,
            None if self.piece_types is None else self.piece_types[a:b],
            None if self.joined is None else self.joined[first : int(self.token_offsets[d + 1])],
        )


def _offsets(counts: Sequence[int] | np.ndarray) -> np.ndarray:
    """``[0, c0, c0 + c1, ...]``: where each of consecutive runs of ``counts`` items starts."""
    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def encode_batch(
    tokenizer: Any,
    docs: Sequence[Doc],
    lowercase: bool = False,
    casing: bool = False,
    join_hyphens: bool = False,
) -> BatchEncoding:
    """Tokenize a batch of Docs into wordpieces (:func:`word_pieces`), in one set of arrays.

    The pieces of all Docs are read into NumPy at once: converting them Doc by Doc (a few small
    arrays each) cost more than the tokenizer itself on sentence-length Docs. With ``casing``,
    each piece also gets its word's casing class (``spacy_nerzoo.casing``), read from the
    original text even when the words are lowercased for the tokenizer. With ``join_hyphens``,
    a compound spaCy split at its hyphen is one word (:func:`joined_tokens`): its pieces belong
    to its first token, and ``joined`` marks the others.
    """
    words, word_token, word_offsets, classes, joined = batch_words(
        docs, lowercase, casing, join_hyphens
    )
    pieces = word_pieces(tokenizer, words)
    counts = np.fromiter(map(len, pieces), np.int64, len(pieces))
    ids = np.fromiter(itertools.chain.from_iterable(pieces), np.int64, int(counts.sum()))
    return BatchEncoding(
        ids,
        np.repeat(word_token, counts),
        _offsets(counts)[word_offsets],
        _offsets([len(doc) for doc in docs]),
        None if classes is None else np.repeat(classes, counts),
        joined,
    )


_PIECES: weakref.WeakKeyDictionary[Any, dict[str, tuple[int, ...]]] = weakref.WeakKeyDictionary()
# Words whose pieces are kept per tokenizer; the cache starts again when it would grow past this.
MAX_CACHED_WORDS = 100_000


def word_pieces(tokenizer: Any, words: Sequence[str]) -> list[Sequence[int]]:
    """The wordpiece ids of each word (no special tokens), as the model's tokenizer splits it.

    For a fast tokenizer this is exactly what encoding the words as one pre-split input gives
    (``tokenizer(words, is_split_into_words=True)``): in that mode the Rust tokenizer normalises,
    pre-tokenizes and splits every word on its own, so a word's pieces never depend on its
    neighbours. That makes a cache of words seen before exact, and it is kept per tokenizer:
    most words of running text recur, and the Rust tokenizer's per-word cost was the largest one
    outside the network. A tokenizer with BPE dropout (random splits) is not cached. Slow
    tokenizers have no ``word_ids()``: they encode word by word, each as a pre-split input of one
    word, which is how they encode pre-split words (correct, just slower).
    """
    backend = raw_tokenizer(tokenizer)
    if backend is None:
        return [
            tokenizer([w], is_split_into_words=True, add_special_tokens=False)["input_ids"]
            for w in words
        ]
    random = bool(getattr(backend.model, "dropout", None))
    cache = {} if random else _PIECES.setdefault(tokenizer, {})
    found = [cache.get(w) for w in words]
    missing = [w for w, p in zip(words, found, strict=True) if p is None]
    if not missing:
        return found  # type: ignore[return-value]
    if not random:
        missing = list(dict.fromkeys(missing))
    encs = backend.encode_batch(
        [[w] for w in missing], is_pretokenized=True, add_special_tokens=False
    )
    # A piece with no word would be a special token, if the tokenizer added one anyway.
    new = [
        tuple(i for i, w in zip(enc.ids, enc.word_ids, strict=True) if w is not None)
        for enc in encs
    ]
    if random:
        return list(new)  # nothing was cached: every word was missing, in order
    computed = dict(zip(missing, new, strict=True))
    if len(cache) + len(computed) > MAX_CACHED_WORDS:
        cache.clear()
    cache.update(computed)
    return [computed[w] if p is None else p for w, p in zip(words, found, strict=True)]


def encode_docs(
    tokenizer: Any,
    docs: Sequence[Doc],
    lowercase: bool = False,
    casing: bool = False,
    join_hyphens: bool = False,
) -> list[DocEncoding]:
    """Tokenize a batch of Docs into wordpieces (:func:`encode_batch`), one encoding per Doc."""
    batch = encode_batch(tokenizer, docs, lowercase, casing, join_hyphens)
    return [batch.doc(d) for d in range(len(batch))]


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


def pack_windows(
    sentence_lengths: Sequence[int], size: int, word_start: np.ndarray
) -> list[tuple[int, int]]:
    """Windows of at most ``size`` pieces over a document's pieces, made of whole sentences.

    The pieces are the document's sentences one after another (``sentence_lengths`` pieces each;
    ``word_start`` marks the first piece of every word). Sentences are packed greedily: a window
    takes the next sentence while it fits, so consecutive sentences are read as each other's
    context, the way the trainer's windows were always cut. A sentence longer than ``size`` is cut
    into parts of ``size`` pieces, each cut moved back to the start of the word it would split
    (unless that word alone is longer than a window), and the parts are packed like sentences.
    Unlike :func:`plan_windows`, windows do not overlap: each piece is in exactly one window, so
    a training epoch sees each word once.
    """
    if size < 1:
        raise ValueError(f"Need size >= 1 (got {size=})")
    windows: list[tuple[int, int]] = []
    cur_start = cur_end = 0
    pos = 0
    for length in sentence_lengths:
        end = pos + length
        while pos < end:
            cut = min(size, end - pos)
            if end - pos > size:
                # Back off to the last word start so a word's pieces stay together.
                while cut > 0 and not word_start[pos + cut]:
                    cut -= 1
                if cut == 0:
                    cut = size
            if cur_end > cur_start and cur_end - cur_start + cut > size:
                windows.append((cur_start, cur_end))
                cur_start = pos
            elif cur_end == cur_start:
                cur_start = pos
            cur_end = pos + cut
            pos += cut
    if cur_end > cur_start:
        windows.append((cur_start, cur_end))
    return windows


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


@dataclass
class BatchWindows:
    """The windows of every Doc of a :class:`BatchEncoding`, and where each piece is read.

    Windows are listed Doc by Doc, each Doc's as :func:`plan_windows` cuts them, in batch-level
    pieces; ``best`` and ``offset`` are :func:`best_window`'s answer for every piece (``best``
    numbering the batch's windows).
    """

    starts: np.ndarray  # (n_windows,) int64 first piece of each window
    ends: np.ndarray  # (n_windows,) int64
    best: np.ndarray  # (n_pieces,) int64 the window each piece is read from
    offset: np.ndarray  # (n_pieces,) int64 the piece's position in that window

    @property
    def lengths(self) -> np.ndarray:
        return self.ends - self.starts

    def rows(self, order: np.ndarray) -> np.ndarray:
        """Each piece's row in the windows' outputs (pieces only) concatenated in ``order``."""
        lengths = self.lengths[order]
        first = np.empty(len(order), np.int64)
        first[order] = _offsets(lengths)[:-1]
        return first[self.best] + self.offset


def plan_batch_windows(batch: BatchEncoding, window: int, stride: int) -> BatchWindows:
    """:func:`plan_windows` and :func:`best_window` for every Doc of a batch.

    A Doc that fits one window (nearly always, for sentences) needs no per-Doc work: its one
    window is all its pieces, each read at its own position. Only longer Docs are planned one by
    one.
    """
    counts = np.diff(batch.piece_offsets)
    if len(counts):
        plan_windows(0, window, stride)  # the same error as plan_windows for bad settings
    n_pieces = int(batch.piece_offsets[-1])
    n_windows = (counts > 0).astype(np.int64)
    long_docs = np.flatnonzero(counts > window).tolist()
    plans = {d: plan_windows(int(counts[d]), window, stride) for d in long_docs}
    for d, plan in plans.items():
        n_windows[d] = len(plan)
    first_window = _offsets(n_windows)
    starts = np.repeat(batch.piece_offsets[:-1], n_windows)
    ends = np.repeat(batch.piece_offsets[1:], n_windows)
    doc_of = np.repeat(np.arange(len(counts)), counts)
    best = first_window[doc_of]
    offset = np.arange(n_pieces, dtype=np.int64) - batch.piece_offsets[doc_of]
    for d, plan in plans.items():
        w0, p0 = int(first_window[d]), int(batch.piece_offsets[d])
        local = np.asarray(plan, np.int64)
        starts[w0 : w0 + len(plan)] = p0 + local[:, 0]
        ends[w0 : w0 + len(plan)] = p0 + local[:, 1]
        which, off = best_window(int(counts[d]), plan)
        best[p0 : p0 + len(off)] = w0 + which
        offset[p0 : p0 + len(off)] = off
    return BatchWindows(starts, ends, best, offset)


def pad_windows(
    piece_ids: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    prefix: np.ndarray,
    suffix: np.ndarray,
    pad_id: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs for the windows ``piece_ids[starts[i]:ends[i]]``: ids and attention mask.

    Each row is ``prefix + window + suffix`` (the model's special tokens), right-padded with
    ``pad_id`` to the longest row; built with a few array operations, not one per row.
    """
    n_prefix = len(prefix)
    lengths = ends - starts
    span = int(lengths.max()) if len(lengths) else 0
    width = n_prefix + span + len(suffix)
    ids = np.full((len(lengths), width), pad_id, np.int64)
    ids[:, :n_prefix] = prefix
    inside = np.arange(span) < lengths[:, None]
    ids[:, n_prefix : n_prefix + span][inside] = piece_ids[
        (starts[:, None] + np.arange(span))[inside]
    ]
    rows = np.arange(len(lengths))
    for k, token in enumerate(suffix.tolist()):
        ids[rows, n_prefix + lengths + k] = token
    mask = np.arange(width) < (n_prefix + lengths + len(suffix))[:, None]
    return ids, mask.astype(np.int64)


def window_pieces(logits: np.ndarray, lengths: np.ndarray, n_prefix: int) -> np.ndarray:
    """The outputs of the windows' pieces from padded ``(rows, width, ...)`` model outputs,
    concatenated row by row (special tokens and padding left out)."""
    if not len(lengths):
        return logits[:0, 0]
    span = int(lengths.max())
    inside = np.arange(span) < lengths[:, None]
    return logits[:, n_prefix : n_prefix + span][inside]


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
