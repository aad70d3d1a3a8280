"""The one error a Spark NLP import raises for input it cannot use."""

from __future__ import annotations

from ..errors import NerzooError


class SparkNLPFormatError(NerzooError):
    """The file is not a Spark NLP 3.x model this importer supports, or is damaged.

    The message says what was expected and what was found (a missing ``metadata/part-00000``, an
    unknown annotator class, a missing field), so a user never has to read a traceback.
    """
