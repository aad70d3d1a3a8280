"""Prediction at scale on Apache Spark: ``annotate`` a text column of a Spark DataFrame.

Needs the ``spark`` extra (``pip install 'spacy-nerzoo[spark]'``). ``driver`` builds the query on
the driver; ``worker`` is what runs in the executors' Python workers. See docs/spark.md.
"""

from .driver import DEFAULT_BATCH_SIZE, DEFAULT_MAX_CHARS, ENTITY_TYPE, TOKEN_TYPE, annotate
from .worker import LOAD_LOG_ENV

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_CHARS",
    "ENTITY_TYPE",
    "LOAD_LOG_ENV",
    "TOKEN_TYPE",
    "annotate",
]
