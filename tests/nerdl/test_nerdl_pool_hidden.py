"""NerDL's piece -> word pooling is the component's (``alignment.pool_pieces``) on every device."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from spacy_nerzoo.alignment import pool_pieces  # noqa: E402
from spacy_nerzoo.nerdl.embeddings import pool_hidden, pool_hidden_torch  # noqa: E402

# Tokens 0 (2 pieces), 2 (1), 3 (3), 5 (1): tokens 1, 4 and 6 have no piece.
PIECE_TOKEN = np.array([0, 0, 2, 3, 3, 3, 5], np.int64)
N_TOKENS = 7


def _hidden() -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32))


@pytest.mark.parametrize("mode", ["first", "average"])
def test_torch_path_is_pool_pieces(mode: str) -> None:
    """The device path (used off the CPU) gives what ``pool_pieces`` gives on the CPU."""
    hidden = _hidden()
    want, _ = pool_pieces(hidden.numpy(), PIECE_TOKEN, N_TOKENS, mode)  # type: ignore[arg-type]
    got = pool_hidden_torch(hidden, PIECE_TOKEN, N_TOKENS, mode)  # type: ignore[arg-type]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)
    assert torch.equal(pool_hidden(hidden, PIECE_TOKEN, N_TOKENS, mode), torch.from_numpy(want))  # type: ignore[arg-type]


def test_max_is_elementwise_and_not_renormalised() -> None:
    """Vectors are not probabilities: ``max`` keeps each dimension's largest value."""
    hidden = _hidden()
    got = pool_hidden(hidden, PIECE_TOKEN, N_TOKENS, "max").numpy()
    h = hidden.numpy()
    for token in range(N_TOKENS):
        rows = h[PIECE_TOKEN == token]
        want = rows.max(axis=0) if len(rows) else np.zeros(5, np.float32)
        np.testing.assert_array_equal(got[token], want)


def test_no_pieces() -> None:
    empty = torch.zeros((0, 5))
    for mode in ("first", "average", "max"):
        out = pool_hidden(empty, np.zeros(0, np.int64), 3, mode)  # type: ignore[arg-type]
        assert out.shape == (3, 5) and not out.any()
