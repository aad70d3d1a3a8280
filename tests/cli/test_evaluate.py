"""``nerzoo evaluate`` and ``nerzoo score`` (spacy_nerzoo.cli.evaluate)."""

from __future__ import annotations

import json

GOLD = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP B-NP I-PER
"""


def test_evaluate(nerzoo, checkpoint, pipeline, tmp_path):
    gold = tmp_path / "gold.txt"
    gold.write_text(GOLD, encoding="utf-8")
    result = nerzoo("evaluate", checkpoint, gold)
    assert result.exit_code == 0, result.output
    assert "precision" in result.stdout and "processed 7 tokens with 3 phrases" in result.stdout
    spacy_gold = tmp_path / "gold.spacy"
    assert nerzoo("convert", gold, spacy_gold).exit_code == 0
    as_json = nerzoo("evaluate", pipeline, spacy_gold, "--json", "--types", "gold")
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    assert report["types"] == ["MISC", "ORG", "PER"]
    assert set(report) == {"token", "phrase", "types"}
    written = nerzoo("evaluate", checkpoint, gold, "--output", tmp_path / "out" / "r.txt")
    assert (tmp_path / "out" / "r.txt").read_text(
        encoding="utf-8"
    ).strip() == written.stdout.strip()


def test_score_a_prediction_file(nerzoo, tmp_path):
    gold = tmp_path / "gold.txt"
    gold.write_text(GOLD, encoding="utf-8")
    pred = tmp_path / "pred.txt"
    pred.write_text(GOLD.replace("B-MISC", "O"), encoding="utf-8")
    result = nerzoo("score", gold, pred, "--json", "--types", "ORG,PER")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["types"] == ["ORG", "PER"]
    text = nerzoo("score", gold, gold).stdout
    assert "processed 7 tokens with 3 phrases; found: 3 phrases; correct: 3." in text
