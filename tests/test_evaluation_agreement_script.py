"""scripts/evaluation_agreement.py: every way of scoring, and agreement where the tokens agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "evaluation_agreement.py"
CONLL = """-DOCSTART- -X- -X- O

SOCCER NN B-NP O
- : O O
NATIONAL NNP B-NP B-ORG
HOCKEY NNP I-NP I-ORG

LEAGUE NNP B-NP B-ORG
results NNS I-NP O
from IN B-PP O
Chester-le-Street NNP B-NP B-LOC
. . O O

Angela NNP B-NP B-PER
Merkel NNP I-NP I-PER
visited VBD B-VP O
Paris NNP B-NP B-LOC
. . O O
"""


def test_prints_every_row_and_the_scorers_agree_on_sentence_split_input(tmp_path: Path) -> None:
    data = tmp_path / "tiny.txt"
    data.write_text(CONLL, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "minilm_conll03", str(data)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in out.stdout.splitlines() if line.startswith("| ")]
    by_name = {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}
    assert list(by_name) == [
        "sentence-split",
        "no sentence starts, lines kept",
        "no sentence starts, lines lost",
        "raw text, lines kept",
        "raw text, lines lost",
    ]
    tokens, conll, spacy_f = by_name["sentence-split"]
    assert tokens == "gold" and conll == spacy_f  # no entity crosses a sentence start
    assert by_name["raw text, lines kept"][1] == ""  # no conlleval on spaCy's tokens
