"""From per-token tag scores to entities: tag schemes, Viterbi, argmax and conlleval chunking."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    n, c = log_probs.shape
    if n == 0:
        return np.zeros(0, np.int64)
    neg = np.float32(-1e30)
    trans_w = np.where(trans, np.float32(0), neg)
    score = np.where(start, log_probs[0], neg)
    back = np.zeros((n, c), np.int64)
    for i in range(1, n):
        cand = score[:, None] + trans_w
        back[i] = cand.argmax(axis=0)
        score = cand[back[i], np.arange(c)] + log_probs[i]
    score = np.where(end, score, neg)
    path = np.empty(n, np.int64)
    path[-1] = int(score.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


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


def decode(
    token_probs: np.ndarray, forced_outside: np.ndarray, scheme: TagScheme, mode: Decoding
) -> tuple[np.ndarray, list[Entity]]:
    """Tags and entities for one Doc from pooled probabilities.

    Tokens in ``forced_outside`` (whitespace, or tokens that yielded no wordpiece) are O.
    """
    probs = token_probs.copy()
    if forced_outside.any():
        probs[forced_outside] = 0.0
        probs[forced_outside, scheme.outside] = 1.0
    if mode == "argmax":
        tags = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
    elif mode == "viterbi":
        with np.errstate(divide="ignore"):
            log_probs = np.log(probs).astype(np.float32)
        tags = viterbi(log_probs, *scheme.transitions())
    else:
        raise ValueError(f"Unknown decoding {mode!r}: choose 'viterbi' or 'argmax'")
    return tags, chunk(tags.tolist(), scheme)
