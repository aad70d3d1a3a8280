"""The driver side of Spark annotation: checks the request and adds the columns to the plan.

``annotate`` builds an iterator pandas UDF (Arrow batches in, Arrow batches out) over the text
column only, so the other columns never leave the JVM, whatever their types. The UDF is marked
nondeterministic: the three output columns are fields of one struct, and Spark could otherwise
inline the UDF into each field and run the model three times. Nothing of the annotation runs
until an action; the first ``annotate`` of a session runs one tiny job that checks that the Python
workers can import this package (``check_workers``), so a wrong worker interpreter is one clear
error on the driver rather than a Py4J stack trace from every task.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from spacy.language import Language

from ..api import check_config_keys, resolve_model
from ..backends.base import check_precision
from ..errors import ModelLoadError, SparkWorkerError
from .worker import (
    ENTITIES,
    ENTITY_FIELDS,
    ERROR,
    TOKEN_FIELDS,
    TOKENS,
    WorkerSettings,
    annotate_batches,
)

try:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.functions import pandas_udf
    from pyspark.sql.types import (
        ArrayType,
        BinaryType,
        DataType,
        DoubleType,
        IntegerType,
        StringType,
        StructField,
        StructType,
    )
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError(
        "spacy_nerzoo.spark needs pyspark with Arrow support: pip install 'spacy-nerzoo[spark]'"
    ) from e

DEFAULT_BATCH_SIZE = 128  # documents per nlp.pipe batch: the component's own pipe default
DEFAULT_MAX_CHARS = 1_000_000  # spaCy's default nlp.max_length
MAX_OFFSET = 2**31 - 1  # offsets are Spark ints

_FIELD_TYPES: dict[str, DataType] = {
    "text": StringType(),
    "label": StringType(),
    "tag": StringType(),
    "start": IntegerType(),
    "end": IntegerType(),
    "confidence": DoubleType(),
}
_RESULT = "__nerzoo_result__"
# (application id, worker Python) pairs whose workers imported the package: checked once each.
_WORKERS_OK: set[tuple[str, str]] = set()


def _struct(fields: tuple[str, ...]) -> StructType:
    return StructType([StructField(name, _FIELD_TYPES[name]) for name in fields])


ENTITY_TYPE = ArrayType(_struct(ENTITY_FIELDS))
TOKEN_TYPE = ArrayType(_struct(TOKEN_FIELDS))


def result_type(output_tokens: bool) -> StructType:
    """The struct the UDF returns: entities, optionally tokens, and the error message."""
    fields = [StructField(ENTITIES, ENTITY_TYPE)]
    if output_tokens:
        fields.append(StructField(TOKENS, TOKEN_TYPE))
    fields.append(StructField(ERROR, StringType()))
    return StructType(fields)


def component_config(
    backend: str | None, precision: str | None, config: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The component settings, ``backend``/``precision`` folded in, as plain JSON data."""
    settings = dict(config or {})
    for key, value in (("backend", backend), ("precision", precision)):
        if value is not None:
            if settings.get(key, value) != value:
                raise ValueError(f"{key} given twice: {value!r} and config {settings[key]!r}")
            settings[key] = value
    try:
        json.dumps(settings)
    except TypeError as e:
        raise TypeError(f"config must be plain JSON data (it is sent to every worker): {e}") from e
    return settings


def check_config(model: str, config: Mapping[str, Any]) -> None:
    """Refuse unknown keys and impossible backend/precision pairs on the driver, before any task.

    On a worker the same mistake would fail every task with a Java stack trace around it. Models
    that resolve only on the workers (a folder shipped with the job) and saved pipelines are
    checked there, when loaded.
    """
    try:
        source = resolve_model(model)
    except ModelLoadError:
        return
    if source.factory is None:
        return
    check_config_keys(dict(config), source.factory, f"'{source.factory}'")
    defaults = Language.get_factory_meta(source.factory).default_config or {}
    if "backend" in defaults:
        backend = config.get("backend", defaults["backend"])
        check_precision(str(backend), str(config.get("precision", defaults["precision"])))


def _positive(name: str, value: int, most: int = MAX_OFFSET) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise ValueError(f"{name} must be an integer from 1 to {most:,}, got {value!r}")
    return value


def _default_threads(df: DataFrame) -> int:
    """``spark.task.cpus``: each of the tasks Spark runs side by side gets its share of cores."""
    return int(df.sparkSession.conf.get("spark.task.cpus", "1") or 1)


def _warn_without_reuse(df: DataFrame) -> None:
    reuse = df.sparkSession.conf.get("spark.python.worker.reuse", "true")
    if str(reuse).lower() == "false":
        warnings.warn(
            "spark.python.worker.reuse is false: every task starts a new Python worker and "
            "loads the model again; leave it at its default (true)",
            stacklevel=3,
        )


def _probe_workers(spark: SparkSession) -> tuple[str, str | None]:
    """Run one task that imports the worker module; its Python and the import error, if any.

    The probe is defined here, inside a function, so that cloudpickle ships it by value: a
    worker without spacy_nerzoo can still run it and say what is missing. A worker that cannot
    start at all (no such program, another Python version) fails the job; its reason is returned.
    """

    def probe(_: Iterator[int]) -> Iterator[tuple[str, str | None]]:
        import importlib
        import sys as worker_sys

        try:  # the UDF's Arrow batches need pyarrow too
            for module in ("spacy_nerzoo.spark.worker", "pyarrow"):
                importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - whatever stops the import is the answer
            yield worker_sys.executable, f"{type(e).__name__}: {e}"
        else:
            yield worker_sys.executable, None

    sc = spark.sparkContext
    description = sc.getLocalProperty("spark.job.description")
    sc.setJobDescription("spacy-nerzoo: can the Python workers import spacy_nerzoo?")
    try:
        return sc.parallelize([0], 1).mapPartitions(probe).collect()[0]
    except Exception as e:  # noqa: BLE001 - a Py4J error around the worker's own reason
        return "", _failure_reason(str(e))
    finally:
        sc.setLocalProperty("spark.job.description", description)  # type: ignore[arg-type]


def _failure_reason(message: str) -> str:
    """The line of a failed job's message that says why the worker failed, without stack."""
    lines = [line.strip().removeprefix("Caused by: ") for line in message.splitlines()]
    causes = [line for line in lines if re.match(r"^(\w+\.)*\w+(Error|Exception): ", line)]
    # Python's own errors (ModuleNotFoundError, PySparkRuntimeError) say most: the last one is
    # where the worker's traceback ends. Java repeats its causes, shortened: the longest says most.
    python_errors = [line for line in causes if re.match(r"^(\w+\.)*\w+Error: ", line)]
    if python_errors:
        return python_errors[-1][:500]
    if causes:
        return max(causes, key=len)[:500]
    return next((line for line in lines if line), "unknown error")[:500]


def check_workers(spark: SparkSession) -> None:
    """Make sure Spark's Python workers can import spacy_nerzoo, or raise ``SparkWorkerError``.

    A local session starts its workers with ``$PYSPARK_PYTHON`` as it was when the session was
    created, or ``python3`` from ``PATH``; run from a virtual environment that is not activated,
    that is the system Python, and every task would fail with a long Py4J trace ending in
    ``No module named 'spacy'``. One tiny job (once per session and worker Python) finds out
    first; the error then names the exact ``PYSPARK_PYTHON`` to set. Spark Connect sessions,
    which have no SparkContext to probe with, are not checked.
    """
    try:
        sc = spark.sparkContext
    except AttributeError:  # Spark Connect: PySparkAttributeError, no JVM objects on the client
        return
    python = sc.pythonExec
    key = (sc.applicationId, python)
    if key in _WORKERS_OK:
        return
    executable, problem = _probe_workers(spark)
    if problem is None:
        _WORKERS_OK.add(key)
        return
    raise worker_error(sc.master, python, executable, problem)


def worker_error(master: str, python: str, executable: str, problem: str) -> SparkWorkerError:
    """The one error for workers that cannot run the package, with the fix for this setup.

    ``python`` is what Spark starts (``SparkContext.pythonExec``), ``executable`` the path the
    worker reported (empty when it could not start) and ``problem`` why it failed. For a local
    master the fix is exact: this driver's own interpreter has the package.
    """
    ran = f"'{python}'" + (f" ({executable})" if executable and executable != python else "")
    here = sys.executable
    if master.split("[", 1)[0] not in ("local", "local-cluster"):
        fix = (
            "Set PYSPARK_PYTHON (or spark.pyspark.python) to a Python that has spacy-nerzoo "
            "installed on every executor, e.g. ./environment/bin/python with --archives "
            "nerzoo_env.tar.gz#environment (see docs/spark.md)."
        )
    elif here in (executable, shutil.which(python)):
        fix = (
            f"That is this very Python ({here}): install spacy-nerzoo into it (a package "
            "imported from the current folder or a sys.path entry added by the script is not "
            "seen by the workers)."
        )
    else:
        fix = (
            "A local session starts its workers with $PYSPARK_PYTHON as it was when the session "
            "was created, or python3 from PATH when it was unset. Set "
            f"PYSPARK_PYTHON={shlex.quote(here)} before creating the SparkSession (e.g. "
            "os.environ['PYSPARK_PYTHON'] = sys.executable), so that they run this Python."
        )
    return SparkWorkerError(
        f"Spark's Python workers cannot run spacy_nerzoo: they run {ran}, which fails with "
        f"{problem}. {fix}"
    )


def annotate(
    df: DataFrame,
    model: str | Path,
    text_col: str = "text",
    *,
    output_tokens: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    threads: int | None = None,
    backend: str | None = None,
    precision: str | None = None,
    config: Mapping[str, Any] | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    entities_col: str = "entities",
    tokens_col: str = "tokens",
    error_col: str = "nerzoo_error",
) -> DataFrame:
    """``df`` with the entities of ``text_col``, found by a nerzoo pipeline on the executors.

    ``model`` is anything ``spacy_nerzoo.load`` accepts (zoo name, saved pipeline folder, Hugging
    Face checkpoint folder or hub id), resolved on each worker: a folder must exist there, or be
    shipped with the job (see docs/spark.md). Each Python worker loads it once and keeps it.

    Added columns: ``entities_col`` as ``array<struct<text, label, start, end, confidence>>``
    (character offsets, end exclusive), with ``output_tokens`` also ``tokens_col`` as
    ``array<struct<text, start, end, tag>>`` (IOB2 tags, like Spark NLP's ``ner`` column), and
    ``error_col``: null, or why the row could not be annotated (null text, invalid UTF-8, more
    than ``max_chars`` characters, an error in the pipeline), in which case its arrays are empty.

    ``batch_size`` is documents per ``nlp.pipe`` batch; ``threads`` the torch / onnxruntime
    intra-op threads of each worker (default ``spark.task.cpus``, so parallel tasks do not
    oversubscribe the cores); ``backend``, ``precision`` and ``config`` go to the component.
    """
    fields = dict(df.dtypes)
    if text_col not in fields:
        raise ValueError(f"No column {text_col!r}; the columns are {', '.join(df.columns)}")
    text_type = df.schema[text_col].dataType
    if not isinstance(text_type, StringType | BinaryType):
        raise TypeError(
            f"Column {text_col!r} is {text_type.simpleString()}; it must be string (or binary "
            "UTF-8)"
        )
    outputs = [entities_col, *([tokens_col] if output_tokens else []), error_col]
    taken = [name for name in outputs if name in fields]
    if taken or len(set(outputs)) < len(outputs):
        raise ValueError(
            f"Output column names must be new and distinct; already used: {taken or outputs}"
        )
    settings_config = component_config(backend, precision, config)
    check_config(str(model), settings_config)
    settings = WorkerSettings(
        model=str(model),
        config_json=json.dumps(settings_config, sort_keys=True),
        batch_size=_positive("batch_size", batch_size),
        threads=_positive("threads", _default_threads(df) if threads is None else threads, 1024),
        max_chars=_positive("max_chars", max_chars),
        output_tokens=output_tokens,
    )
    _warn_without_reuse(df)
    check_workers(df.sparkSession)

    def nerzoo(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        return annotate_batches(batches, settings)

    # pyspark's overloads do not cover Iterator[Series] -> Iterator[DataFrame] with a struct type.
    udf = pandas_udf(nerzoo, result_type(output_tokens))  # type: ignore[call-overload]
    udf = udf.asNondeterministic()
    result = F.col(_RESULT)
    internal = [ENTITIES, *([TOKENS] if output_tokens else []), ERROR]
    columns = [result.getField(f).alias(name) for f, name in zip(internal, outputs, strict=True)]
    annotated = df.withColumn(_RESULT, udf(F.col(text_col).cast("binary")))
    return annotated.select("*", *columns).drop(_RESULT)
