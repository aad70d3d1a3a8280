"""``nerzoo demo`` (spacy_nerzoo.cli.demo) on a tiny random model."""

from __future__ import annotations


def test_demo_prints_a_table_and_writes_a_page(nerzoo, checkpoint, tmp_path):
    text = tmp_path / "sample.txt"
    text.write_text("Angela Merkel met Tim Cook.\n\nApple opened offices in London.\n")
    page = tmp_path / "out" / "demo.html"
    result = nerzoo("demo", "--model", checkpoint, "--file", text, "--output", page)
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())  # rich wraps to the terminal width
    assert "in 2 paragraphs" in out and "displaCy page written" in out
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
