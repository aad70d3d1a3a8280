"""Library chatter the package keeps off the user's terminal, and only that.

The default install runs ONNX models without torch, and uses transformers only to read configs and
tokenizers. On import without torch, TensorFlow or Flax, transformers logs an advisory: "None of
PyTorch, TensorFlow >= 2.0, or Flax have been found. Models won't be available...". In that install
it is expected, not a fault, yet every ``spacy.load`` of an ONNX pipeline printed it. A filter on
transformers' root logger drops exactly that record; every other warning and error, from
transformers or anywhere else, still shows. When torch is needed and missing, the torch backend
raises its own ``ModelLoadError`` that says so.
"""

from __future__ import annotations

import logging

_BANNER = "None of PyTorch, TensorFlow >= 2.0, or Flax have been found"


class _NoFrameworkBanner(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_BANNER)


_FILTER = _NoFrameworkBanner()


def silence_framework_banner() -> None:
    """Drop transformers' no-framework advisory (idempotent; set before transformers' import).

    The advisory is logged once, when transformers is first imported, on its ``transformers``
    logger; the filter sits on that logger, so it works whichever module imports transformers.
    """
    logging.getLogger("transformers").addFilter(_FILTER)
