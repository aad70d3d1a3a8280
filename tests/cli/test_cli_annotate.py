"""``nerzoo predict`` and ``nerzoo render`` (spacy_nerzoo.cli.annotate), on tiny random models."""

from __future__ import annotations

import json
import re

TEXT = "Angela Merkel met Tim Cook in Berlin."
LINES = ["Angela Merkel met Tim Cook.", "", "Apple opened offices in London and Paris."]


def test_predict_table(nerzoo, model):
    result = nerzoo("predict", model, TEXT)
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["doc", "start", "end", "label", "confidence", "text"]
    assert rows
    for row in rows:
        doc, start, end, label, conf, text = row.split(maxsplit=5)
        assert doc == "0" and TEXT[int(start) : int(end)] == text
        assert label in {"LOC", "MISC", "ORG", "PER"} and 0 <= float(conf) <= 1


def test_predict_jsonl_from_file(nerzoo, model, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    result = nerzoo("predict", model, "--file", path, "--format", "jsonl", "-c", "batch_size=2")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in records] == LINES  # one output line per input line
    for record in records:
        for ent in record["entities"]:
            assert set(ent) == {"text", "label", "start", "end", "confidence"}
            assert record["text"][ent["start"] : ent["end"]] == ent["text"]
    assert records[1]["entities"] == []


def test_predict_conll_from_stdin(nerzoo, model):
    result = nerzoo("predict", model, "--format", "conll", input="\n".join(LINES[::2]))
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


def test_predict_html_doc_per_file(nerzoo, model):
    result = nerzoo("predict", model, "--format", "html", "--doc-per-file", input="a\nb c\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<!DOCTYPE html>")
    assert result.stdout.count("<figure") == 1
    titled = nerzoo("predict", model, TEXT, "--format", "html").stdout
    assert re.search(r'<mark class="entity" title="(LOC|MISC|ORG|PER) [01]\.\d\d"', titled)


def test_predict_config_reaches_the_component(nerzoo, checkpoint):
    result = nerzoo("predict", checkpoint, TEXT, "--format", "jsonl", "-c", 'labels=["PER"]')
    assert result.exit_code == 0, result.output
    labels = {e["label"] for e in json.loads(result.stdout)["entities"]}
    assert labels <= {"PER"}


def test_render_writes_a_page(nerzoo, checkpoint, tmp_path):
    out = tmp_path / "page.html"
    result = nerzoo("render", checkpoint, TEXT, "--output", out)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    assert "<mark" in page and 'title="' in page
    assert "Wrote 1 document to" in result.stderr
