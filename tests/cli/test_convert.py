"""``nerzoo convert`` (spacy_nerzoo.cli.convert) and its old entry point."""

from __future__ import annotations

import subprocess
import sys

from spacy.tokens import DocBin
from spacy.vocab import Vocab

FEWNERD = "Paris\tlocation-GPE\nis\tO\nnice\tO\n\nTom\tperson-actor\nHanks\tperson-actor\n\n"


def test_convert_fewnerd_coarse(nerzoo, tmp_path):
    path = tmp_path / "fewnerd.txt"
    path.write_text(FEWNERD, encoding="utf-8")
    out = tmp_path / "fewnerd.spacy"
    result = nerzoo("convert", path, out, "--format", "fewnerd", "--label-level", "coarse")
    assert result.exit_code == 0, result.output
    assert "Wrote 2 docs" in result.output
    docs = list(DocBin().from_disk(out).get_docs(Vocab()))
    assert [[(e.text, e.label_) for e in d.ents] for d in docs] == [
        [("Paris", "location")],
        [("Tom Hanks", "person")],
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fewnerd.spacy", "fewnerd.txt"]


def test_missing_input_is_a_usage_error(nerzoo, tmp_path):
    result = nerzoo("convert", tmp_path / "missing.txt", tmp_path / "o.spacy")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_python_dash_m_converters(tmp_path):
    path = tmp_path / "fewnerd.txt"
    path.write_text(FEWNERD, encoding="utf-8")
    command = [sys.executable, "-m", "spacy_nerzoo.data.converters", str(path), str(tmp_path)]
    out = subprocess.run(command, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "fewnerd.spacy").exists() and "Wrote 2 docs" in out.stdout
