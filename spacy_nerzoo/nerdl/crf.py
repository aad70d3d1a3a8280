"""A linear-chain CRF in torch, constrained by the tag scheme's allowed transitions.

Disallowed moves (``I-X`` after ``O`` in IOB2, an ``I-`` start, ...) come from
``TagScheme.transitions()`` and get a fixed score of ``-1e4`` added. That is low enough that no
decoded path ever uses one and their probability mass is ``exp(-1e4) == 0`` in float32, but finite,
so the forward algorithm never produces ``inf - inf`` NaNs (``-inf`` would on a sentence whose only
paths are disallowed, e.g. a gold sequence written with a stray ``I-``).

All functions take emissions ``(batch, T, n_tags)`` and a prefix mask ``(batch, T)`` (True for real
tokens; each row's tokens come first). Rows of length 0 have log partition 0 and empty paths.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

DISALLOWED = -1e4


class CRF(nn.Module):
    """Linear-chain CRF: learned start, end and transition scores plus hard scheme constraints.

    ``nll`` is the training loss; ``viterbi`` the best paths; ``marginals`` the per-token tag
    posteriors (forward-backward), which give an entity its confidence.
    """

    def __init__(
        self,
        n_tags: int,
        allowed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        self.n_tags = n_tags
        self.start = nn.Parameter(torch.zeros(n_tags))
        self.end = nn.Parameter(torch.zeros(n_tags))
        self.transitions = nn.Parameter(torch.zeros(n_tags, n_tags))
        if allowed is None:
            ones = np.ones(n_tags, bool)
            allowed = (ones, np.ones((n_tags, n_tags), bool), ones)
        start, trans, end = (torch.as_tensor(np.asarray(a, bool)) for a in allowed)
        if start.shape != (n_tags,) or trans.shape != (n_tags, n_tags) or end.shape != (n_tags,):
            raise ValueError(f"Transition masks do not match {n_tags} tags")
        # Buffers, not parameters: the constraints are part of the model but never trained.
        self.register_buffer("start_penalty", (~start).float() * DISALLOWED)
        self.register_buffer("trans_penalty", (~trans).float() * DISALLOWED)
        self.register_buffer("end_penalty", (~end).float() * DISALLOWED)

    # Scores with constraints applied -------------------------------------------------------

    def _start(self) -> Tensor:
        return self.start + self.start_penalty

    def _end(self) -> Tensor:
        return self.end + self.end_penalty

    def _trans(self) -> Tensor:
        return self.transitions + self.trans_penalty

    # Core algorithms -----------------------------------------------------------------------

    def _forward_alphas(self, emissions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Forward log-scores ``alpha (batch, T, n)``; padded steps repeat the last real one."""
        batch, length, _ = emissions.shape
        trans = self._trans()
        alpha = self._start() + emissions[:, 0]
        alphas = [alpha]
        for t in range(1, length):
            nxt = torch.logsumexp(alpha[:, :, None] + trans[None], dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t, None], nxt, alpha)
            alphas.append(alpha)
        return torch.stack(alphas, dim=1), alpha

    def log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """``log Z`` per row ``(batch,)``, by the forward algorithm."""
        if emissions.shape[1] == 0:
            return emissions.new_zeros(emissions.shape[0])
        _, last = self._forward_alphas(emissions, mask)
        log_z = torch.logsumexp(last + self._end(), dim=1)
        return torch.where(mask.any(dim=1), log_z, torch.zeros_like(log_z))

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Unnormalised log-score of the given tag sequences ``(batch,)``."""
        batch, length, _ = emissions.shape
        if length == 0:
            return emissions.new_zeros(batch)
        tags = tags.clamp(min=0)  # padding may hold any value; it is masked below
        m = mask.to(emissions.dtype)
        emit = emissions.gather(2, tags[:, :, None])[:, :, 0]
        total = (emit * m).sum(dim=1)
        total = total + self._start()[tags[:, 0]] * m[:, 0]
        if length > 1:
            trans = self._trans()[tags[:, :-1], tags[:, 1:]]
            total = total + (trans * m[:, 1:]).sum(dim=1)
        lengths = mask.sum(dim=1)
        last = tags.gather(1, (lengths - 1).clamp(min=0)[:, None])[:, 0]
        return total + self._end()[last] * (lengths > 0).to(emissions.dtype)

    def nll(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Negative log-likelihood per row ``(batch,)``.

        A tag of ``-1`` means unknown (missing annotation): the numerator then sums over every
        tag at that position (a constrained partition), so partly annotated data trains soundly
        instead of teaching ``O`` where the annotation is missing.
        """
        log_z = self.log_partition(emissions, mask)
        unknown = (tags < 0) & mask
        if not bool(unknown.any()):
            return log_z - self.score(emissions, tags, mask)
        allowed = torch.nn.functional.one_hot(tags.clamp(min=0), self.n_tags).bool()
        allowed |= unknown[:, :, None]
        clamped = emissions.masked_fill(~allowed, DISALLOWED)
        return log_z - self.log_partition(clamped, mask)

    def marginals(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Posteriors ``P(tag_t = k | x)`` ``(batch, T, n)`` by forward-backward; 0 at padding."""
        batch, length, n = emissions.shape
        if length == 0:
            return emissions.new_zeros(batch, 0, n)
        alphas, last = self._forward_alphas(emissions, mask)
        trans = self._trans()
        end = self._end()
        lengths = mask.sum(dim=1)
        # beta_t(i): log-score of completing the path from tag i at t. At each row's last real
        # step it is the end score; padded steps after it also hold the end score, so the
        # recursion can run over the full width and stay correct for every row.
        beta = end.expand(batch, n)
        betas = [beta]
        for t in range(length - 2, -1, -1):
            nxt = torch.logsumexp(trans[None] + (emissions[:, t + 1] + beta)[:, None, :], dim=2)
            real_next = mask[:, t + 1, None]
            beta = torch.where(real_next, nxt, end.expand(batch, n))
            betas.append(beta)
        betas_t = torch.stack(betas[::-1], dim=1)
        log_z = torch.logsumexp(last + end, dim=1)
        probs = torch.exp(alphas + betas_t - log_z[:, None, None])
        return probs * mask[:, :, None].to(probs.dtype) * (lengths > 0)[:, None, None]

    def viterbi(self, emissions: Tensor, mask: Tensor) -> list[list[int]]:
        """Best tag sequence of each row (length = its number of real tokens)."""
        batch, length, n = emissions.shape
        lengths = mask.sum(dim=1).tolist()
        if length == 0:
            return [[] for _ in range(batch)]
        trans = self._trans()
        score = self._start() + emissions[:, 0]
        back = []
        for t in range(1, length):
            cand = score[:, :, None] + trans[None]
            best, idx = cand.max(dim=1)
            nxt = best + emissions[:, t]
            score = torch.where(mask[:, t, None], nxt, score)
            back.append(idx)
        score = score + self._end()
        best_last = score.argmax(dim=1).tolist()
        back_np = torch.stack(back, dim=1).cpu().numpy() if back else None
        paths: list[list[int]] = []
        for b in range(batch):
            n_real = int(lengths[b])
            if n_real == 0:
                paths.append([])
                continue
            path = [int(best_last[b])]
            for t in range(n_real - 1, 0, -1):
                assert back_np is not None
                path.append(int(back_np[b, t - 1, path[-1]]))
            paths.append(path[::-1])
        return paths
