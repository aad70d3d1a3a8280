"""The driver side of Spark annotation: checks the request and adds the columns to the plan.

``annotate`` builds an iterator pandas UDF (Arrow batches in, Arrow batches out) over the text
column only, so the other columns never leave the JVM, whatever their types. The UDF is marked
nondeterministic: the three output columns are fields of one struct, and Spark could otherwise
inline the UDF into each field and run the model three times. Nothing runs until an action.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from spacy.language import Language

from ..api import check_config_keys, resolve_model
from ..backends.base import check_precision
from ..errors import ModelLoadError
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
    from pyspark.sql import DataFrame
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
