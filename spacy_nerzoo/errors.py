"""Error types with messages a user can act on."""

from __future__ import annotations


class NerzooError(Exception):
    """Base class of the package's errors."""


class ModelLoadError(NerzooError):
    """Weights, tokenizer or config of a model could not be found or read.

    The message names the model, every place that was tried and how to supply the files, so users
    never have to read a traceback from deep inside transformers. (Not an ``OSError``: spaCy's
    ``initialize`` rewrites those into an unrelated message about vectors.)
    """


class SparkWorkerError(NerzooError):
    """Spark's Python workers cannot run spacy-nerzoo: another interpreter, or the package missing.

    Raised by ``spacy_nerzoo.spark.annotate`` on the driver, before any job, instead of a Py4J
    stack trace from every task; the message says which Python the workers run and how to point
    ``PYSPARK_PYTHON`` at one that has the package.
    """
