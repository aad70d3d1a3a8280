"""``nerzoo list`` and ``nerzoo info`` (spacy_nerzoo.cli.zoo).

Named test_cli_*: pytest's default import mode needs unique test-file basenames.
"""

from __future__ import annotations

import re

from spacy_nerzoo.catalogue import ZOO


def test_list(nerzoo):
    result = nerzoo("list")
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


def test_info(nerzoo):
    result = nerzoo("info", "distilbert_fewnerd")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Labels (66):" in out and "person-*:" in out and "politician" in out
    assert "max_length:      512" in out and "tag scheme:      IO" in out
    assert "distilbert_base_token_classifier_few_nerd" in out
    assert "micro F1:  0.6753" in out and "location-GPE" in out
    albert = nerzoo("info", "albert_conll03").stdout
    assert "no (input is lowercased)" in albert and "ArBert/albert-base-v2-finetuned-ner" in albert
    assert "LOC, MISC, ORG, PER" in albert


def test_info_gives_every_seed_download_and_its_import_commands(nerzoo):
    """NerDL seeds need two downloads (tagger and embeddings) and two imports, in order."""
    out = nerzoo("info", "elmo_conll03").stdout
    assert "ner_conll_elmo_en_3.2.2_2.4_1630419727678.zip" in out
    assert "its embeddings:     elmo_en_2.4.0_2.4_1580488815299.zip" in out
    first = out.index("nerzoo import-sparknlp elmo_en_2.4.0_2.4_1580488815299.zip")
    second = out.index("--embeddings elmo_conll03-embeddings")
    assert first < second
    albert = nerzoo("info", "albert_conll03").stdout
    assert "its embeddings" not in albert
    assert "import it with:     nerzoo import-sparknlp albert_base_token_classifier" in albert


def test_info_unknown_model(nerzoo, one_line_error):
    one_line_error(nerzoo("info", "nope"), "No zoo model named 'nope'")
