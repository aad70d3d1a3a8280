"""scripts/batch_independence.py on a slice of CoNLL-2003 valid: the shipped int8 model gives the
same entities and confidences at every nlp.pipe batch size (the full run is in the docs)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from spacy_nerzoo.api import availability
from spacy_nerzoo.catalogue import ZOO

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "batch_independence.py"


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("batch_independence", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(
    not availability(ZOO["minilm_conll03"]).available, reason="the built-in model is not here"
)
def test_shipped_model_same_entities_at_any_batch_size(shared_data: Path) -> None:
    script = _script()
    valid = shared_data / "conll2003" / "valid.txt"
    nlp = script.load("minilm_conll03", None)
    words = script.texts(valid, "sentences", 150)
    rows = script.compare("minilm_conll03", "sentences", nlp, words, [1, 8, 64])
    assert rows[0].ents > 100  # the slice has entities to lose
    for row in rows:
        assert (row.docs_differing, row.ents_differing) == (0, 0), row
        assert row.max_score_diff <= 1e-6, row
