"""Shared fixtures: the tiny random models of ``spacy_nerzoo.testing``, built once per session.

``tiny_model`` gives small token classifiers of three tokenizer families (WordPiece, Unigram,
byte-level BPE); ``parity_model`` the parity matrix's checkpoints (tests/components/
test_parity_matrix.py, docs/parity.md); ``slow_model`` a checkpoint with a slow-only tokenizer.
The builders live in the package so the measuring scripts use the same models.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from spacy_nerzoo.testing import (
    build_parity_model,
    build_parity_weights,
    build_slow_model,
    build_tiny_model,
)

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``tiny_model(kind, labels=None)`` -> folder; each kind is built once per session."""
    cache: dict[tuple[str, tuple[str, ...] | None], Path] = {}

    def get(kind: str, labels: list[str] | None = None) -> Path:
        key = (kind, tuple(labels) if labels else None)
        if key not in cache:
            path = tmp_path_factory.mktemp(f"tiny-{kind}")
            cache[key] = build_tiny_model(path, kind, labels)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def parity_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``parity_model(name, tokenizer="own", post=None, add_prefix_space=True)`` -> folder.

    Each architecture's weights are made once per session and shared by its tokenizer variants.
    """
    weights: dict[str, Path] = {}
    cache: dict[tuple[Any, ...], Path] = {}

    def get(name: str, tokenizer: str = "own", **kwargs: Any) -> Path:
        key = (name, tokenizer, *sorted(kwargs.items()))
        if key not in cache:
            if name not in weights:
                weights[name] = build_parity_weights(
                    tmp_path_factory.mktemp(f"weights-{name}"), name
                )
            folder = tmp_path_factory.mktemp(f"parity-{name}-{tokenizer}")
            cache[key] = build_parity_model(
                folder, weights[name], name, tokenizer=tokenizer, **kwargs
            )
        return cache[key]

    return get


@pytest.fixture(scope="session")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`build_slow_model`, once per session."""
    return build_slow_model(tmp_path_factory.mktemp("slow-phobert"))


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the repo; tests that need it skip when it is absent."""
    path = SHARED / "data"
    if not path.exists():
        pytest.skip("../shared/data is absent")
    return path.resolve()


@pytest.fixture(scope="session")
def repo_script() -> Callable[[str], ModuleType]:
    """``repo_script("int8_options")`` -> ``scripts/int8_options.py`` imported as a module (the
    measuring scripts are not part of the package)."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module

    return load
