"""The ``nerzoo`` command line, run in-process with typer's CliRunner on tiny random models."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from spacy_nerzoo.api import load
from spacy_nerzoo.catalogue import ZOO
from spacy_nerzoo.cli.main import app, main, parse_config
from spacy_nerzoo.errors import ModelLoadError

TEXT = "Angela Merkel met Tim Cook in Berlin."
LINES = ["Angela Merkel met Tim Cook.", "", "Apple opened offices in London and Paris."]
GOLD = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP B-NP I-PER
"""


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


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


def run(runner, *args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nerzoo: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_list(runner):
    result = run(runner, "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "name",
        "architecture",
        "labels",
        "reference",
        "F1",
        "weights",
        "here",
    ]
    for name, entry in ZOO.items():
        row = next(line for line in lines if line.startswith(name + " "))
        assert entry.architecture in row
        assert f"{len(entry.labels)}: " in row
        assert re.search(r"\b(yes|no): ", row)
    assert "0.8878 (validation)" in result.stdout


def test_info(runner):
    result = run(runner, "info", "distilbert_fewnerd")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Labels (66):" in out and "person-*:" in out and "politician" in out
    assert "max_length:      512" in out and "tag scheme:      IO" in out
    assert "distilbert_base_token_classifier_few_nerd" in out
    assert "micro F1:  0.6753" in out and "location-GPE" in out
    albert = run(runner, "info", "albert_conll03").stdout
    assert "no (input is lowercased)" in albert and "ArBert/albert-base-v2-finetuned-ner" in albert
    assert "LOC, MISC, ORG, PER" in albert


def test_info_unknown_model(runner):
    assert_one_line_error(run(runner, "info", "nope"), "No zoo model named 'nope'")


def test_predict_table(runner, model):
    result = run(runner, "predict", model, TEXT)
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["doc", "start", "end", "label", "confidence", "text"]
    assert rows
    for row in rows:
        doc, start, end, label, conf, text = row.split(maxsplit=5)
        assert doc == "0" and TEXT[int(start) : int(end)] == text
        assert label in {"LOC", "MISC", "ORG", "PER"} and 0 <= float(conf) <= 1


def test_predict_jsonl_from_file(runner, model, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    result = run(
        runner, "predict", model, "--file", path, "--format", "jsonl", "-c", "batch_size=2"
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in records] == LINES  # one output line per input line
    for record in records:
        for ent in record["entities"]:
            assert set(ent) == {"text", "label", "start", "end", "confidence"}
            assert record["text"][ent["start"] : ent["end"]] == ent["text"]
    assert records[1]["entities"] == []


def test_predict_conll_from_stdin(runner, model):
    result = run(runner, "predict", model, "--format", "conll", input="\n".join(LINES[::2]))
    assert result.exit_code == 0, result.output
    blocks = result.stdout.split("\n\n")
    assert blocks[-1] == ""
    docs = [[line.split("\t") for line in block.splitlines()] for block in blocks[:-1]]
    assert [[tok for tok, _ in doc] for doc in docs] == [
        ["Angela", "Merkel", "met", "Tim", "Cook", "."],
        ["Apple", "opened", "offices", "in", "London", "and", "Paris", "."],
    ]
    for doc in docs:
        for i, (_, tag) in enumerate(doc):
            assert tag == "O" or re.fullmatch(r"[BI]-(LOC|MISC|ORG|PER)", tag)
            if tag.startswith("I-"):
                assert doc[i - 1][1][2:] == tag[2:]


def test_predict_html_doc_per_file(runner, model):
    result = run(runner, "predict", model, "--format", "html", "--doc-per-file", input="a\nb c\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<!DOCTYPE html>")
    assert result.stdout.count("<figure") == 1
    titled = run(runner, "predict", model, TEXT, "--format", "html").stdout
    assert re.search(r'<mark class="entity" title="(LOC|MISC|ORG|PER) [01]\.\d\d"', titled)


def test_predict_config_reaches_the_component(runner, checkpoint):
    result = run(runner, "predict", checkpoint, TEXT, "--format", "jsonl", "-c", 'labels=["PER"]')
    assert result.exit_code == 0, result.output
    labels = {e["label"] for e in json.loads(result.stdout)["entities"]}
    assert labels <= {"PER"}


def test_render_writes_a_page(runner, checkpoint, tmp_path):
    out = tmp_path / "page.html"
    result = run(runner, "render", checkpoint, TEXT, "--output", out)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    assert "<mark" in page and 'title="' in page
    assert "Wrote 1 document to" in result.stderr


def test_evaluate(runner, checkpoint, pipeline, tmp_path):
    gold = tmp_path / "gold.txt"
    gold.write_text(GOLD, encoding="utf-8")
    result = run(runner, "evaluate", checkpoint, gold)
    assert result.exit_code == 0, result.output
    assert "precision" in result.stdout and "processed 7 tokens with 3 phrases" in result.stdout
    spacy_gold = tmp_path / "gold.spacy"
    assert run(runner, "convert", gold, spacy_gold).exit_code == 0
    as_json = run(runner, "evaluate", pipeline, spacy_gold, "--json", "--types", "gold")
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    assert report["types"] == ["MISC", "ORG", "PER"]
    assert set(report) == {"token", "phrase", "types"}
    written = run(runner, "evaluate", checkpoint, gold, "--output", tmp_path / "out" / "r.txt")
    assert (tmp_path / "out" / "r.txt").read_text(
        encoding="utf-8"
    ).strip() == written.stdout.strip()


def test_save_writes_a_loadable_pipeline(runner, checkpoint, tmp_path):
    import spacy

    result = run(runner, "save", checkpoint, tmp_path / "p", "-c", "alignment=average")
    assert result.exit_code == 0, result.output
    nlp = spacy.load(tmp_path / "p")
    assert nlp.get_pipe("token_classifier").alignment == "average"
    expected = load(checkpoint, alignment="average")(TEXT)
    assert [(e.text, e.label_) for e in nlp(TEXT).ents] == [
        (e.text, e.label_) for e in expected.ents
    ]


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
def test_errors_are_one_line(runner, checkpoint, pipeline, args, fragments):
    args = [a.format(checkpoint=checkpoint, pipeline=pipeline) for a in args]
    assert_one_line_error(run(runner, *args), *fragments)


def test_debug_shows_the_traceback(runner, capsys):
    result = run(runner, "--debug", "predict", "/no/such/model", "x")
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
    ],
)
def test_help(runner, command):
    result = run(runner, *command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: nerzoo" in result.stdout and result.stderr == ""


def test_usage_errors_are_left_to_typer(runner):
    result = run(runner, "predict")
    assert result.exit_code == 2 and "Missing argument" in result.stderr


def test_python_dash_m(monkeypatch, capsys):
    import runpy

    monkeypatch.setattr("sys.argv", ["nerzoo", "info", "albert_conll03"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("spacy_nerzoo", run_name="__main__")
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("albert_conll03\n")


@pytest.mark.parametrize("source", ["checkpoint", "pipeline"])
def test_export_checkpoint_or_pipeline_component(runner, checkpoint, pipeline, tmp_path, source):
    import spacy

    model = checkpoint if source == "checkpoint" else pipeline
    result = run(runner, "export", model, tmp_path / "onnx", "--precision", "fp32")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "onnx" / "model.onnx").exists()
    nlp = spacy.blank("en")
    nlp.add_pipe("token_classifier", config={"model": str(tmp_path / "onnx"), "backend": "onnx"})
    expected = load(checkpoint)(TEXT)
    assert [(e.text, e.label_) for e in nlp(TEXT).ents] == [
        (e.text, e.label_) for e in expected.ents
    ]


def test_export_onnx_only_pipeline_says_why(runner, checkpoint, tmp_path):
    load(checkpoint, backend="onnx").to_disk(tmp_path / "p")
    assert_one_line_error(run(runner, "export", tmp_path / "p", tmp_path / "o"), "no torch weights")
