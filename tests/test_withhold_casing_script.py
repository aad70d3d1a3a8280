"""scripts/withhold_casing.py: the with-casing score is nerzoo evaluate's, and non-casing models
are refused."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin, Span

from spacy_nerzoo.api import availability
from spacy_nerzoo.catalogue import ZOO

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "withhold_casing.py"
TEXTS = [
    ("NATO met in Brussels on Monday .", [(0, 1, "ORG"), (3, 4, "LOC")]),
    ("Angela Merkel visited PARIS and the EU .", [(0, 2, "PER"), (3, 4, "LOC"), (6, 7, "ORG")]),
]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True)


@pytest.mark.skipif(
    not availability(ZOO["minilm_conll03"]).available, reason="the built-in model is not here"
)
def test_with_casing_score_is_nerzoo_evaluates(tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    docs = []
    for text, ents in TEXTS:
        doc = nlp(text)
        doc.ents = [Span(doc, s, e, label=lab) for s, e, lab in ents]
        docs.append(doc)
    corpus = tmp_path / "gold.spacy"
    DocBin(docs=docs).to_disk(corpus)
    out = _run(str(SCRIPT), "minilm_conll03", str(corpus))
    assert out.returncode == 0, out.stderr[-2000:]
    scores = [float(x) for x in re.findall(r"F1 with casing \w+:\s+([\d.]+)", out.stdout)]
    assert len(scores) == 2
    evaluated = _run("-m", "spacy_nerzoo", "evaluate", "minilm_conll03", str(corpus))
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    (fb1,) = re.findall(r"^accuracy:.*FB1:\s+([\d.]+)", evaluated.stdout, re.MULTILINE)
    assert scores[0] == float(fb1)


def test_model_without_casing_is_refused(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    corpus = tmp_path / "gold.spacy"
    DocBin(docs=[spacy.blank("en")("Paris .")]).to_disk(corpus)
    out = _run(str(SCRIPT), str(tiny_model("distilbert")), str(corpus))
    assert out.returncode != 0
    assert "takes no casing classes" in out.stderr
