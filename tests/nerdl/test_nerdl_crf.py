"""The CRF against brute force over every tag sequence, with and without scheme constraints."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from spacy_nerzoo.decoding import TagScheme
from spacy_nerzoo.nerdl.crf import CRF, DISALLOWED

IOB2 = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def make_crf(n_tags: int, constrained: bool, seed: int) -> CRF:
    torch.manual_seed(seed)
    allowed = TagScheme.from_labels(IOB2[:n_tags]).transitions() if constrained else None
    crf = CRF(n_tags, allowed)
    with torch.no_grad():
        for p in (crf.start, crf.end, crf.transitions):
            p.normal_()
    return crf


def brute_scores(crf: CRF, emissions: torch.Tensor, length: int) -> dict[tuple[int, ...], float]:
    """Score of every tag sequence of ``length`` for one row, straight from the definition."""
    start, trans, end = (
        x.detach().double().numpy() for x in (crf._start(), crf._trans(), crf._end())
    )
    em = emissions.detach().double().numpy()
    out = {}
    for seq in itertools.product(range(crf.n_tags), repeat=length):
        s = start[seq[0]] + end[seq[-1]] + sum(em[t, k] for t, k in enumerate(seq))
        s += sum(trans[a, b] for a, b in itertools.pairwise(seq))
        out[seq] = float(s)
    return out


def random_batch(seed: int, lengths: list[int], n_tags: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    emissions = torch.randn(len(lengths), width, n_tags, generator=g, dtype=torch.float64) * 2
    mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
    return emissions, mask


@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crf_matches_brute_force(constrained: bool, seed: int) -> None:
    n_tags = 5 if constrained else 3
    crf = make_crf(n_tags, constrained, seed).double()
    lengths = [4, 1, 3, 2]  # padded rows of several lengths in one batch
    emissions, mask = random_batch(seed, lengths, n_tags)
    with torch.no_grad():
        log_z = crf.log_partition(emissions, mask)
        paths = crf.viterbi(emissions, mask)
        marg = crf.marginals(emissions, mask)
    for b, length in enumerate(lengths):
        scores = brute_scores(crf, emissions[b], length)
        values = torch.tensor(list(scores.values()), dtype=torch.float64)
        assert float(log_z[b]) == pytest.approx(float(torch.logsumexp(values, 0)), abs=1e-8)
        best = max(scores, key=lambda s: scores[s])
        assert tuple(paths[b]) == best
        # Marginals from brute force: sum of path probabilities through each (t, tag).
        probs = torch.softmax(values, 0)
        expected = torch.zeros(length, n_tags, dtype=torch.float64)
        for p, seq in zip(probs, scores, strict=True):
            for t, k in enumerate(seq):
                expected[t, k] += p
        assert torch.allclose(marg[b, :length], expected, atol=1e-8)
        assert torch.allclose(marg[b, :length].sum(-1), torch.ones(length, dtype=torch.float64))
        assert float(marg[b, length:].abs().sum()) == 0.0  # padding carries no mass


def test_constrained_paths_are_valid_iob2() -> None:
    crf = make_crf(5, True, 3)
    emissions, mask = random_batch(3, [6, 6, 6], 5)
    # Push hard towards I- tags, which IOB2 forbids at the start and after O.
    emissions[:, :, 2] += 5.0
    paths = crf.viterbi(emissions.float(), mask)
    for path in paths:
        assert IOB2[path[0]] != "I-PER"
        for a, b in itertools.pairwise(path):
            if IOB2[b].startswith("I-"):
                assert IOB2[a][2:] == IOB2[b][2:] and IOB2[a] != "O"


def test_nll_is_score_minus_partition_and_padding_ignored() -> None:
    crf = make_crf(5, True, 4).double()
    emissions, mask = random_batch(4, [3, 5], 5)
    tags = torch.tensor([[1, 2, 0, 4, 4], [0, 3, 4, 0, 1]])
    nll = crf.nll(emissions, tags, mask).detach()
    for b, length in enumerate([3, 5]):
        scores = brute_scores(crf, emissions[b], length)
        log_z = torch.logsumexp(torch.tensor(list(scores.values()), dtype=torch.float64), 0)
        gold = scores[tuple(tags[b, :length].tolist())]
        assert float(nll[b]) == pytest.approx(float(log_z) - gold, abs=1e-8)
    # Garbage in the padded part changes nothing.
    emissions2 = emissions.clone()
    emissions2[0, 3:] = 100.0
    assert torch.allclose(crf.nll(emissions2, tags, mask), nll)


def test_unknown_tags_marginalise() -> None:
    crf = make_crf(3, False, 5).double()
    emissions, mask = random_batch(5, [3], 3)
    tags = torch.tensor([[1, -1, 0]])
    scores = brute_scores(crf, emissions[0], 3)
    log_z = torch.logsumexp(torch.tensor(list(scores.values()), dtype=torch.float64), 0)
    through = [v for s, v in scores.items() if s[0] == 1 and s[2] == 0]
    num = torch.logsumexp(torch.tensor(through, dtype=torch.float64), 0)
    assert float(crf.nll(emissions, tags, mask).detach()[0]) == pytest.approx(
        float(log_z - num), abs=1e-8
    )


def test_empty_rows_and_gradients() -> None:
    crf = make_crf(5, True, 6)
    emissions, mask = random_batch(6, [4, 2], 5)
    emissions = emissions.float()
    mask[1] = False  # a row with no tokens at all
    emissions.requires_grad_(True)
    tags = torch.tensor([[1, 2, 0, 3], [0, 0, 0, 0]])
    loss = crf.nll(emissions, tags, mask)
    assert float(loss[1].detach()) == 0.0
    loss.sum().backward()
    assert emissions.grad is not None and torch.isfinite(emissions.grad).all()
    assert crf.viterbi(emissions, mask)[1] == []
    assert float(crf.marginals(emissions, mask)[1].detach().abs().sum()) == 0.0
    assert crf.viterbi(emissions[:, :0], mask[:, :0]) == [[], []]


def test_disallowed_gold_is_finite() -> None:
    """A gold sequence breaking the scheme (stray I- after O) gives a large but finite loss."""
    crf = make_crf(5, True, 7)
    emissions, mask = random_batch(7, [3], 5)
    loss = crf.nll(emissions.float(), torch.tensor([[0, 2, 2]]), mask)
    assert torch.isfinite(loss).all() and float(loss[0].detach()) > -DISALLOWED / 2
    assert np.isfinite(crf.marginals(emissions.float(), mask).detach().numpy()).all()
