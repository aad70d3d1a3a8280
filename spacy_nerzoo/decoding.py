"""From per-token tag scores to entities: tag schemes, Viterbi, argmax and conlleval chunking."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from .evaluation.conlleval import coarse_label

Decoding = Literal["viterbi", "argmax"]
Entity = tuple[int, int, str]  # token start, token end (exclusive), type

_PREFIXED = re.compile(r"^([BIESLU])[-_](.+)$")
_GENERIC = re.compile(r"^LABEL_\d+$")


@dataclass(frozen=True)
class TagScheme:
    """The model's tags split into prefix (B, I, E, S or O) and entity type.

    Unprefixed labels (Few-NERD's ``person-actor``) are IO tags: read as ``I-person-actor``, so a
    run of same-type tokens is one entity, as in Few-NERD's official evaluation.
    """

    prefixes: tuple[str, ...]
    types: tuple[str, ...]
    name: str  # "IOB2", "BIOES" or "IO"

    @classmethod
    def from_labels(cls, id2label: Mapping[int, str] | Sequence[str]) -> TagScheme:
        labels = [id2label[i] for i in range(len(id2label))]
        if labels and all(_GENERIC.match(lab) for lab in labels):
            raise ValueError(
                "The model's labels are generic (LABEL_0, LABEL_1, ...), so its tags cannot be "
                "read; fix id2label in the checkpoint's config.json (e.g. ['O', 'B-PER', ...])"
            )
        prefixes: list[str] = []
        types: list[str] = []
        for lab in labels:
            if lab == "O":
                prefixes.append("O")
                types.append("")
                continue
            m = _PREFIXED.match(lab)
            prefix, typ = (m.group(1), m.group(2)) if m else ("I", lab)
            prefixes.append({"L": "E", "U": "S"}.get(prefix, prefix))
            types.append(typ)
        if "O" not in prefixes:
            raise ValueError(f"The model's labels {labels} have no 'O' tag")
        has = set(prefixes)
        name = "BIOES" if has & {"E", "S"} else ("IOB2" if "B" in has else "IO")
        return cls(tuple(prefixes), tuple(types), name)

    def coarse(self) -> TagScheme:
        """The same tags, each Few-NERD ``coarse-fine`` type read as its coarse family.

        Tag ids are unchanged, so tags decoded under the fine scheme chunk at the coarse level
        directly: touching ``person-actor`` and ``person-director`` tokens are one ``person``
        entity, as Few-NERD's coarse evaluation (``coarse_label`` on the tags) counts them.
        """
        types = tuple(coarse_label(t) if t else "" for t in self.types)
        return TagScheme(self.prefixes, types, self.name)

    @property
    def outside(self) -> int:
        return self.prefixes.index("O")

    @property
    def entity_types(self) -> list[str]:
        return sorted({t for t in self.types if t})

    @cached_property
    def tag_arrays(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Per tag id: a mask for each prefix letter, and the index of its type in
        ``entity_types`` (-1 for O); what :func:`chunk_flat` reads."""
        prefixes = np.asarray(self.prefixes)
        by_letter = {letter: prefixes == letter for letter in "BIESO"}
        types = self.entity_types
        type_index = np.asarray([types.index(t) if t else -1 for t in self.types], np.int64)
        return by_letter, type_index

    @cached_property
    def masks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``transitions()``, computed once per scheme."""
        return self.transitions()

    def transitions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Allowed ``(start, transition[prev, next], end)`` masks for this scheme.

        IOB2: I-X only after B-X or I-X. BIOES additionally: B-X/I-X must continue with I-X/E-X.
        IO: everything allowed.
        """
        n = len(self.prefixes)
        p, t = self.prefixes, self.types
        start = np.ones(n, bool)
        end = np.ones(n, bool)
        trans = np.ones((n, n), bool)
        if self.name == "IO":
            return start, trans, end
        for j in range(n):
            if p[j] in "IE":
                start[j] = False
            if self.name == "BIOES" and p[j] in "BI":
                end[j] = False
        for i in range(n):
            for j in range(n):
                if p[j] in "IE":
                    trans[i, j] = p[i] in "BI" and t[i] == t[j]
                elif self.name == "BIOES" and p[i] in "BI":
                    trans[i, j] = False
        if self.name == "BIOES":
            for i in range(n):
                for j in range(n):
                    if p[i] in "BI" and p[j] in "IE":
                        trans[i, j] = t[i] == t[j]
        return start, trans, end


def viterbi(
    log_probs: np.ndarray, start: np.ndarray, trans: np.ndarray, end: np.ndarray
) -> np.ndarray:
    """Best tag sequence under hard transition constraints (masks of allowed moves)."""
    lengths = np.asarray([len(log_probs)], np.int64)
    return viterbi_batch(log_probs[None], lengths, start, trans, end)[0]


def chunk(tags: Sequence[int], scheme: TagScheme) -> list[Entity]:
    """Group tags into entities exactly as conlleval does.

    A B- or S- tag, an I-/E- tag after O/E/S, or a change of type starts an entity (so a stray
    I-X after O starts one, as in conlleval and Spark NLP's NerConverter).
    """
    ents: list[Entity] = []
    prev_p, prev_t = "O", ""
    begin = -1
    for i, tag in enumerate(tags):
        p, t = scheme.prefixes[tag], scheme.types[tag]
        ends = prev_p in "ES" or (prev_p in "BI" and p in "BSO") or (prev_p != "O" and prev_t != t)
        starts = p in "BS" or (prev_p in "ESO" and p in "IE") or (p != "O" and prev_t != t)
        if begin >= 0 and (ends or starts):
            ents.append((begin, i, prev_t))
            begin = -1
        if starts and p != "O":
            begin = i
        prev_p, prev_t = p, t
    if begin >= 0:
        ents.append((begin, len(tags), prev_t))
    return ents


def viterbi_batch(
    log_probs: np.ndarray,
    lengths: np.ndarray,
    start: np.ndarray,
    trans: np.ndarray,
    end: np.ndarray,
) -> np.ndarray:
    """``viterbi`` for a padded batch ``(batch, time, tags)`` of sequences of ``lengths``.

    Positions past a row's length are 0 in the result. See :func:`viterbi_flat`.
    """
    b, t, c = log_probs.shape
    lengths = np.asarray(lengths, np.int64)
    inside = np.arange(t) < lengths[:, None]
    path = np.zeros((b, t), np.int64)
    path[inside] = viterbi_flat(log_probs[inside], _offsets(lengths), start, trans, end)
    return path


def viterbi_flat(
    log_probs: np.ndarray,
    offsets: np.ndarray,
    start: np.ndarray,
    trans: np.ndarray,
    end: np.ndarray,
) -> np.ndarray:
    """``viterbi`` for sequences laid end to end: sequence ``d`` is
    ``log_probs[offsets[d]:offsets[d + 1]]``. Returns their tags, laid out the same way.

    One NumPy step per position for all sequences at once instead of per sequence: the per-call
    overhead of a Python loop over every token of every Doc dominated decoding. The scores are
    rearranged time-major, longest sequence first, so the sequences still running at step ``i``
    are the first ``running[i]`` and their scores one contiguous block: each step works on views,
    and no work or memory goes to padding.
    """
    n, c = log_probs.shape
    lengths = np.diff(offsets)
    order = np.argsort(-lengths, kind="stable")
    order = order[lengths[order] > 0]
    by_length = lengths[order]
    if not len(order):
        return np.zeros(n, np.int64)
    # running[i]: how many sequences are longer than i; block i of the time-major layout.
    running = np.searchsorted(-by_length, -np.arange(by_length[0]), side="left")
    block = _offsets(running)
    seq = np.repeat(np.arange(len(order)), by_length)
    time = np.arange(len(seq)) - np.repeat(_offsets(by_length)[:-1], by_length)
    source = np.repeat(offsets[order], by_length) + time
    where = block[time] + seq  # each token's column in the time-major layout
    # Tags along the first axis: the maximum over previous tags is then an element-wise maximum
    # of long rows, not one small reduction per sequence and tag.
    emissions = np.empty((c, len(seq)), np.result_type(log_probs.dtype, np.float32))
    # Floor scores well above the -1e30 of disallowed moves: an allowed tag whose probability
    # underflowed to 0 (log -inf) must still beat a disallowed one.
    emissions[:, where] = np.maximum(log_probs[source], np.log(_MIN_PROB)).T
    neg = np.float32(-1e30)
    trans_w = np.where(trans, np.float32(0), neg)  # [prev, next]
    score = np.where(start[:, None], emissions[:, : running[0]], neg)
    # The scores after every step: back-pointers are recomputed from them for the one tag the
    # best path takes, rather than stored for every tag.
    history = np.empty_like(score, shape=emissions.shape)
    history[:, : running[0]] = score
    bounds, running_ = block.tolist(), running.tolist()
    for i in range(1, len(running_)):
        k, at = running_[i], bounds[i]
        cand = score[:, None, :k] + trans_w[:, :, None]  # [prev, next, sequence]
        score[:, :k] = cand.max(axis=0) + emissions[:, at : at + k]
        history[:, at : at + k] = score[:, :k]
    path = np.zeros(len(seq), np.int64)
    last = np.where(end[:, None], score, neg).argmax(axis=0)
    path[block[by_length - 1] + np.arange(len(order))] = last
    for i in range(len(running_) - 1, 0, -1):
        k, at, before = running_[i], bounds[i], bounds[i - 1]
        cand = history[:, before : before + k] + trans_w[:, path[at : at + k]]  # [prev, sequence]
        path[before : before + k] = cand.argmax(axis=0)
    tags = np.zeros(n, np.int64)
    tags[source] = path[where]
    return tags


_MIN_PROB = np.float32(1e-30)


def _offsets(lengths: np.ndarray) -> np.ndarray:
    """``[0, l0, l0 + l1, ...]``: where each of consecutive runs of ``lengths`` items starts."""
    out = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def decode_flat(
    token_probs: np.ndarray,
    forced_outside: np.ndarray,
    offsets: np.ndarray,
    scheme: TagScheme,
    mode: Decoding,
) -> np.ndarray:
    """Tags for the tokens of several Docs laid end to end (see ``decode``).

    Doc ``d`` is ``token_probs[offsets[d]:offsets[d + 1]]``; each is decoded on its own, but
    every step runs once for the batch (see :func:`viterbi_flat`).
    """
    if mode not in ("viterbi", "argmax"):
        raise ValueError(f"Unknown decoding {mode!r}: choose 'viterbi' or 'argmax'")
    probs = np.array(token_probs)
    if forced_outside.any():
        probs[forced_outside] = 0.0
        probs[forced_outside, scheme.outside] = 1.0
    # With no constraints (IO tags) the best path is the per-token argmax.
    if mode == "argmax" or scheme.name == "IO":
        return probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
    log_probs = np.log(np.maximum(probs, _MIN_PROB))
    return viterbi_flat(log_probs, offsets, *scheme.masks)


def decode_batch(
    token_probs: list[np.ndarray],
    forced_outside: list[np.ndarray],
    scheme: TagScheme,
    mode: Decoding,
) -> list[np.ndarray]:
    """Tags for several Docs from pooled probabilities (see ``decode`` and ``decode_flat``)."""
    if mode not in ("viterbi", "argmax"):
        raise ValueError(f"Unknown decoding {mode!r}: choose 'viterbi' or 'argmax'")
    if not token_probs:
        return []
    offsets = _offsets(np.asarray([len(p) for p in token_probs], np.int64))
    n_tags = len(scheme.prefixes)
    flat = np.concatenate([np.reshape(p, (len(p), n_tags)) for p in token_probs])
    forced = np.concatenate([np.asarray(f, bool) for f in forced_outside]).reshape(-1)
    tags = decode_flat(flat, forced, offsets, scheme, mode)
    return np.split(tags, offsets[1:-1])


def decode(
    token_probs: np.ndarray, forced_outside: np.ndarray, scheme: TagScheme, mode: Decoding
) -> tuple[np.ndarray, list[Entity]]:
    """Tags and entities for one Doc from pooled probabilities.

    Tokens in ``forced_outside`` (whitespace, or tokens that yielded no wordpiece) are O.
    """
    tags = decode_batch([token_probs], [forced_outside], scheme, mode)[0]
    return tags, chunk(tags.tolist(), scheme)


def chunk_flat(
    tags: np.ndarray, offsets: np.ndarray, scheme: TagScheme
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``chunk`` for the tags of several Docs laid end to end, with array operations.

    Doc ``d`` is ``tags[offsets[d]:offsets[d + 1]]``. Returns each entity's start and end
    (exclusive) as positions in ``tags`` and its type as an index into ``scheme.entity_types``,
    Docs in order. The same rules as ``chunk`` (the reference, kept for its readability), read
    for all positions at once: an entity is open before position ``i`` exactly when tag ``i - 1``
    is not O, so it closes at ``i`` when ``i`` ends or starts one, or ends the Doc.
    """
    by_letter, type_of = scheme.tag_arrays

    def is_(letters: str) -> np.ndarray:
        mask = by_letter[letters[0]]
        for letter in letters[1:]:
            mask = mask | by_letter[letter]
        return mask

    tags = np.asarray(tags, np.int64)
    # The tag before each position; a Doc's first token follows an O (as in ``chunk``).
    prev = np.empty_like(tags)
    prev[1:] = tags[:-1]
    prev[offsets[:-1][offsets[:-1] < len(tags)]] = scheme.outside
    t, prev_t = type_of[tags], type_of[prev]
    inside, prev_inside = ~is_("O")[tags], ~is_("O")[prev]
    type_change = prev_t != t
    ends = is_("ES")[prev] | (is_("BI")[prev] & is_("BSO")[tags]) | (prev_inside & type_change)
    starts = is_("BS")[tags] | (is_("ESO")[prev] & is_("IE")[tags]) | (inside & type_change)
    begin = np.flatnonzero(starts & inside)
    last = offsets[1:][np.diff(offsets) > 0] - 1
    end = np.sort(np.r_[np.flatnonzero(prev_inside & (ends | starts)), last[inside[last]] + 1])
    return begin, end, t[begin]


def mean_tag_probs(
    token_probs: np.ndarray, tags: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Mean probability of the chosen tags over each span ``starts[i]:ends[i]`` (non-empty,
    sorted, disjoint), summed in float64: the confidence of each entity."""
    if not len(starts):
        return np.zeros(0, np.float32)
    chosen = np.zeros(len(tags) + 1)  # one more: reduceat needs every end to be an index
    chosen[:-1] = token_probs[np.arange(len(tags)), tags]
    bounds = np.empty(2 * len(starts), np.int64)
    bounds[0::2] = starts
    bounds[1::2] = ends
    sums = np.add.reduceat(chosen, bounds)[0::2]
    return (sums / (ends - starts)).astype(np.float32)
