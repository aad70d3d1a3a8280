"""Fixtures shared by the reliability tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run the tiny models on one torch thread (restored afterwards).

    Intra-op threads buy nothing on networks this small, and when other processes hold the cores
    their spin-waiting made these tests five to twenty times slower.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
