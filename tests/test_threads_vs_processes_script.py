"""scripts/threads_vs_processes.py's timing helper, shared with scripts/pipe_batch_sizes.py."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
import spacy


@pytest.fixture()
def script(repo_script: Callable[[str], ModuleType]) -> ModuleType:
    return repo_script("threads_vs_processes")


def test_median_pass_times_every_text(script: ModuleType) -> None:
    seen: list[str] = []
    nlp = spacy.blank("en")

    @spacy.Language.component("nerzoo_test_count_texts")
    def count(doc):  # type: ignore[no-untyped-def]
        seen.append(doc.text)
        return doc

    nlp.add_pipe("nerzoo_test_count_texts")
    texts = [f"text {i}" for i in range(30)]
    wall, cpu = script.median_pass(nlp, texts, 3, batch_size=4)
    assert wall > 0 and cpu >= 0
    assert len(seen) == 20 + 3 * 30  # warm-up on the first 20, then every text each pass
