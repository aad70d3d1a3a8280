"""From per-token tag scores to entities: tag schemes, Viterbi, argmax and conlleval chunking."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

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

    @property
    def outside(self) -> int:
        return self.prefixes.index("O")

    @property
    def entity_types(self) -> list[str]:
        return sorted({t for t in self.types if t})

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

    One NumPy step per position for the whole batch instead of per sequence: the per-call
    overhead of a Python loop over every token of every Doc dominated decoding.
    """
    b, t, c = log_probs.shape
    path = np.zeros((b, t), np.int64)
    if b == 0 or t == 0:
        return path
    neg = np.float32(-1e30)
    # Floor scores well above the -1e30 of disallowed moves: an allowed tag whose probability
    # underflowed to 0 (log -inf) must still beat a disallowed one.
    log_probs = np.maximum(log_probs, np.log(_MIN_PROB))
    trans_w = np.where(trans, np.float32(0), neg)[None]
    score = np.where(start, log_probs[:, 0], neg)
    back = np.zeros((b, t, c), np.int64)
    rows = np.arange(b)
    for i in range(1, t):
        cand = score[:, :, None] + trans_w
        best = cand.argmax(axis=1)
        new = np.take_along_axis(cand, best[:, None, :], axis=1)[:, 0] + log_probs[:, i]
        active = (i < lengths)[:, None]
        score = np.where(active, new, score)
        back[:, i] = best
    last = np.where(end, score, neg).argmax(axis=1)
    path[rows, np.maximum(lengths - 1, 0)] = last
    for i in range(t - 1, 0, -1):
        inside = i < lengths
        prev = back[rows, i, path[rows, i]]
        path[inside, i - 1] = prev[inside]
    return path


_MIN_PROB = np.float32(1e-30)
# Upper bound on batch x length cells per batched Viterbi call, so one long Doc in a batch of
# short ones does not inflate the padded arrays.
_MAX_CELLS = 1 << 18


def decode_batch(
    token_probs: list[np.ndarray],
    forced_outside: list[np.ndarray],
    scheme: TagScheme,
    mode: Decoding,
) -> list[np.ndarray]:
    """Tags for several Docs from pooled probabilities (see ``decode``)."""
    if mode not in ("viterbi", "argmax"):
        raise ValueError(f"Unknown decoding {mode!r}: choose 'viterbi' or 'argmax'")
    probs = []
    for p, forced in zip(token_probs, forced_outside, strict=True):
        p = p.copy()
        if forced.any():
            p[forced] = 0.0
            p[forced, scheme.outside] = 1.0
        probs.append(p)
    # With no constraints (IO tags) the best path is the per-token argmax.
    if mode == "argmax" or scheme.name == "IO":
        return [p.argmax(axis=1) if len(p) else np.zeros(0, np.int64) for p in probs]
    out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(probs)
    order = sorted(range(len(probs)), key=lambda i: len(probs[i]))
    group: list[int] = []

    def flush() -> None:
        if not group:
            return
        width = len(probs[group[-1]])
        padded = np.zeros((len(group), width, len(scheme.prefixes)), np.float32)
        lengths = np.asarray([len(probs[i]) for i in group], np.int64)
        for row, i in enumerate(group):
            padded[row, : len(probs[i])] = np.log(np.maximum(probs[i], _MIN_PROB))
        paths = viterbi_batch(padded, lengths, *scheme.masks)
        for row, i in enumerate(group):
            out[i] = paths[row, : lengths[row]]
        group.clear()

    for i in order:
        if group and (len(group) + 1) * len(probs[i]) > _MAX_CELLS:
            flush()
        group.append(i)
    flush()
    return out


def decode(
    token_probs: np.ndarray, forced_outside: np.ndarray, scheme: TagScheme, mode: Decoding
) -> tuple[np.ndarray, list[Entity]]:
    """Tags and entities for one Doc from pooled probabilities.

    Tokens in ``forced_outside`` (whitespace, or tokens that yielded no wordpiece) are O.
    """
    tags = decode_batch([token_probs], [forced_outside], scheme, mode)[0]
    return tags, chunk(tags.tolist(), scheme)


def entity_confidences(token_probs: np.ndarray, tags: np.ndarray, ents: list[Entity]) -> np.ndarray:
    """Mean probability of the chosen tags over each entity's tokens."""
    if not ents:
        return np.zeros(0, np.float32)
    chosen = token_probs[np.arange(len(tags)), tags] if len(tags) else np.zeros(0)
    cums = np.concatenate([[0.0], np.cumsum(chosen, dtype=np.float64)])
    starts = np.fromiter((s for s, _, _ in ents), np.int64, len(ents))
    ends = np.fromiter((e for _, e, _ in ents), np.int64, len(ents))
    return ((cums[ends] - cums[starts]) / (ends - starts)).astype(np.float32)
