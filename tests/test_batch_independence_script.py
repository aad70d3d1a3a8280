"""scripts/batch_independence.py on a slice of CoNLL-2003 valid: the shipped int8 model gives the
same entities and confidences at every nlp.pipe batch size (the full run is in the docs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from spacy_nerzoo.api import availability
from spacy_nerzoo.catalogue import ZOO


@pytest.fixture()
def script(repo_script: Callable[[str], ModuleType]) -> ModuleType:
    return repo_script("batch_independence")


@pytest.mark.skipif(
    not availability(ZOO["minilm_conll03"]).available, reason="the built-in model is not here"
)
def test_shipped_model_same_entities_at_any_batch_size(
    script: ModuleType, shared_data: Path
) -> None:
    valid = shared_data / "conll2003" / "valid.txt"
    nlp = script.load("minilm_conll03", None)
    words = script.texts(valid, "sentences", 150)
    rows = script.compare("minilm_conll03", "sentences", nlp, words, [1, 8, 64])
    assert rows[0].ents > 100  # the slice has entities to lose
    for row in rows:
        assert (row.docs_differing, row.ents_differing) == (0, 0), row
        assert row.max_score_diff <= 1e-6, row
