"""The ``nerzoo`` app (spacy_nerzoo.cli.main): one-line errors, ``--debug``, help, ``python -m``."""

from __future__ import annotations

import pytest

from spacy_nerzoo.cli.main import main, parse_config
from spacy_nerzoo.errors import ModelLoadError


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["predict", "/no/such/model", "x"], ["does not exist"]),
        (["predict", "no_such_zoo_model", "x"], ["Unknown model 'no_such_zoo_model'"]),
        (["predict", "longformer_conll03", "x"], ["longformer_conll03"]),
        (["predict", "{checkpoint}", "x", "-c", "foo=1"], ["Unknown config key foo", "batch_size"]),
        (["predict", "{checkpoint}", "x", "-c", "backend=tf"], ["backend"]),
        (["predict", "{pipeline}", "x", "-c", "foo=1"], ["Unknown config key foo"]),
        (["predict", "{checkpoint}", "-c", "novalue"], ["key=value"]),
        (["predict", "{checkpoint}", "--file", "/no/such/file.txt"], ["/no/such/file.txt"]),
        (["predict", "{checkpoint}", "x", "--file", "/tmp"], ["not both"]),
    ],
)
def test_errors_are_one_line(nerzoo, one_line_error, checkpoint, pipeline, args, fragments):
    args = [a.format(checkpoint=checkpoint, pipeline=pipeline) for a in args]
    one_line_error(nerzoo(*args), *fragments)


def test_debug_shows_the_traceback(nerzoo, capsys):
    result = nerzoo("--debug", "predict", "/no/such/model", "x")
    assert result.exit_code == 1 and isinstance(result.exception, ModelLoadError)
    # main() accepts --debug after the command too, and re-raises.
    with pytest.raises(ModelLoadError):
        main(["predict", "/no/such/model", "x", "--debug"])
    with pytest.raises(SystemExit) as exit_info:
        main(["info", "nope"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_parse_config():
    assert parse_config(["a=1", "b=true", 'c=["x"]', "d=onnx", "e=", "f=a=b"]) == {
        "a": 1,
        "b": True,
        "c": ["x"],
        "d": "onnx",
        "e": "",
        "f": "a=b",
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_config(["=1"])


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["list"],
        ["info"],
        ["predict"],
        ["render"],
        ["evaluate"],
        ["convert"],
        ["score"],
        ["save"],
        ["export"],
        ["bundle"],
        ["import-sparknlp"],
        ["train"],
        ["distill"],
        ["demo"],
    ],
)
def test_help(nerzoo, command):
    result = nerzoo(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: nerzoo" in result.stdout and result.stderr == ""


def test_usage_errors_are_left_to_typer(nerzoo):
    result = nerzoo("predict")
    assert result.exit_code == 2 and "Missing argument" in result.stderr


def test_python_dash_m(monkeypatch, capsys):
    import runpy

    monkeypatch.setattr("sys.argv", ["nerzoo", "info", "albert_conll03"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("spacy_nerzoo", run_name="__main__")
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("albert_conll03\n")
