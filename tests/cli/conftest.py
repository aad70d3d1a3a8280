"""Fixtures of the command-line tests: tiny random models and a ``nerzoo`` runner (typer's
CliRunner, in-process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from spacy_nerzoo.api import load
from spacy_nerzoo.cli.main import app


@pytest.fixture(scope="module")
def checkpoint(tiny_model):
    return str(tiny_model("distilbert"))


@pytest.fixture(scope="module")
def pipeline(checkpoint, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "pipeline"
    load(checkpoint).to_disk(path)
    return str(path)


@pytest.fixture(params=["checkpoint", "pipeline"])
def model(request, checkpoint, pipeline):
    return checkpoint if request.param == "checkpoint" else pipeline


@pytest.fixture(scope="session")
def nerzoo() -> Callable[..., Result]:
    """``nerzoo(*args, input=None)``: run the command line in-process; arguments may be paths."""
    runner = CliRunner()

    def run(*args: Any, input: str | None = None) -> Result:
        return runner.invoke(app, [str(a) for a in args], input=input)

    return run


@pytest.fixture(scope="session")
def one_line_error() -> Callable[..., None]:
    """``one_line_error(result, *fragments)``: exit code 1 and one error line holding each."""

    def check(result: Result, *fragments: str) -> None:
        assert result.exit_code == 1, result.output
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nerzoo: error: "), result.stderr
        for fragment in fragments:
            assert fragment in lines[0]

    return check
