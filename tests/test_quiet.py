"""The package drops transformers' no-framework banner and nothing else (see spacy_nerzoo/quiet.py).

That the torch-free install's stderr is empty end to end is checked in
tests/components/test_backends_in_pipeline.py; this is the filter's own contract.
"""

from __future__ import annotations

import logging

import spacy_nerzoo  # noqa: F401 - importing the package installs the filter
from spacy_nerzoo.quiet import _BANNER, silence_framework_banner


def record(message: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("transformers", level, __file__, 1, message, None, None)


def test_the_banner_is_dropped_and_nothing_else() -> None:
    logger = logging.getLogger("transformers")
    banner = f"{_BANNER}. Models won't be available and only tokenizers, configuration ..."
    assert not logger.filter(record(banner))
    assert logger.filter(record("Some weights of the model checkpoint were not used"))
    assert logger.filter(record(f"An error mentioning it: {_BANNER}", logging.ERROR))


def test_installing_twice_adds_one_filter() -> None:
    before = list(logging.getLogger("transformers").filters)
    silence_framework_banner()
    assert logging.getLogger("transformers").filters == before
