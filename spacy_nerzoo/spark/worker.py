"""The Python-worker side of Spark annotation: one pipeline per worker process, errors per row.

Spark runs a pandas UDF in Python worker processes and, with ``spark.python.worker.reuse`` (its
default), keeps each process for later tasks. The module-level cache below therefore holds a
pipeline for the life of the worker: loading a transformer takes seconds and annotating a batch
milliseconds, so loading per row, batch or task would dominate the job.

A row that cannot be annotated (null, not a string, not UTF-8, longer than ``max_chars``, or an
exception inside the pipeline) gets empty results and a message, so one bad document never fails
a job of millions; a model that cannot be loaded does fail it, since every row would fail alike.

Nothing here imports pyspark at module level: the logic is plain pandas and spaCy, testable without
a JVM, and the driver side (``spacy_nerzoo.spark.driver``) only sends ``WorkerSettings``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from spacy.language import Language
from spacy.tokens import Doc

from ..api import chunk_rows, load, token_rows
from ..backends.onnx_backend import OnnxBackend
from ..components.token_classifier import TokenClassifierNER

ENTITY_FIELDS = ("text", "label", "start", "end", "confidence")
TOKEN_FIELDS = ("text", "start", "end", "tag")
# Field names of the struct the UDF returns; the driver renames them to the user's column names.
ENTITIES, TOKENS, ERROR = "entities", "tokens", "error"
# When set to a folder, each pipeline load appends a JSON line to <folder>/<host>-<pid>.jsonl:
# how a cluster's operator (or a test) sees that each worker loaded its model once, and how long
# that took.
LOAD_LOG_ENV = "SPACY_NERZOO_SPARK_LOAD_LOG"
MAX_ERROR_CHARS = 1000

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    """Everything a worker needs to annotate, small and picklable (it travels with every task).

    ``config_json`` is the component config as JSON: hashable for the cache key, and plain data
    by construction, so nothing unpicklable or driver-specific can ride along.
    """

    model: str
    config_json: str = "{}"
    batch_size: int = 128
    threads: int = 1
    max_chars: int = 1_000_000
    output_tokens: bool = False

    @property
    def cache_key(self) -> tuple[str, str]:
        """What identifies a loaded pipeline; batch size, threads and limits apply per call."""
        return (self.model, self.config_json)

    @property
    def config(self) -> dict[str, Any]:
        return dict(json.loads(self.config_json))


_PIPELINES: dict[tuple[str, str], Language] = {}


def locate_model(model: str) -> str:
    """The model as this worker can load it: a folder here, one shipped with the job, or a name.

    A pipeline shipped with ``SparkContext.addFile(folder, recursive=True)`` (or ``--files``)
    lands in the worker's ``SparkFiles`` root under its base name, so the driver's path or just
    that name both find it. ``--archives x.tar.gz#name`` unpacks into the worker's working
    directory, where the relative ``name`` is found by the first rule.
    """
    if Path(model).expanduser().exists():
        return model
    try:
        from pyspark import SparkFiles

        shipped = Path(SparkFiles.get(Path(model).name))
    except Exception:  # noqa: BLE001 - not inside Spark, or no files root: load by name
        return model
    return str(shipped) if shipped.is_dir() else model


def limit_threads(nlp: Language, threads: int) -> None:
    """Give every network of ``nlp`` ``threads`` intra-op threads (torch and onnxruntime).

    Spark runs one Python worker per task slot; left alone, each torch or onnxruntime pool takes
    every core of the machine and N workers oversubscribe the cores N times over. Touching the
    component's ``runtime`` also loads lazily loaded weights, so that cost falls at load time.
    """
    for _, proc in nlp.pipeline:
        if isinstance(proc, TokenClassifierNER):
            backend = proc.runtime.backend
            if isinstance(backend, OnnxBackend) and backend.num_threads != threads:
                _set_onnx_threads(backend, threads)
    if "torch" in sys.modules:  # torch backends and NerDL taggers; never import torch for ONNX
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def limit_tokenizer_threads(threads: int) -> None:
    """Cap Hugging Face tokenizers' batch-encoding pool too (one thread per core by default).

    It is configured through the environment, which is process-wide: only the UDF calls this,
    in a Spark Python worker (a process of its own) before the first document is tokenised.
    """
    os.environ["RAYON_NUM_THREADS"] = str(threads)  # read when the pool starts
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if threads > 1 else "false"


def _set_onnx_threads(backend: OnnxBackend, threads: int) -> None:
    # onnxruntime fixes intra-op threads when a session is created, and the component creates its
    # backend with onnxruntime's default (one thread per core): rebuild the session from the
    # model bytes the backend keeps, through its pickling protocol, with the thread count set.
    state = backend.__getstate__()
    state["num_threads"] = threads
    backend.__setstate__(state)


def get_pipeline(settings: WorkerSettings) -> Language:
    """The pipeline for ``settings``, loaded on the first call in this process and then reused."""
    nlp = _PIPELINES.get(settings.cache_key)
    if nlp is None:
        start = time.perf_counter()
        nlp = load(locate_model(settings.model), **settings.config)
        limit_threads(nlp, settings.threads)
        _PIPELINES[settings.cache_key] = nlp
        _record_load(nlp, settings, time.perf_counter() - start)
    return nlp


def describe_networks(nlp: Language) -> list[dict[str, Any]]:
    """Backend, precision and threads of each token classifier: what the worker really runs."""
    described = []
    for name, proc in nlp.pipeline:
        if isinstance(proc, TokenClassifierNER):
            backend = proc.runtime.backend
            if isinstance(backend, OnnxBackend):
                threads = backend.num_threads
            else:
                import torch

                threads = torch.get_num_threads()
            described.append(
                {
                    "name": name,
                    "backend": backend.name,
                    "precision": backend.precision,
                    "threads": threads,
                }
            )
    return described


def _record_load(nlp: Language, settings: WorkerSettings, seconds: float) -> None:
    logger.info("pid %d loaded %s in %.1f s", os.getpid(), settings.model, seconds)
    folder = os.environ.get(LOAD_LOG_ENV)
    if not folder:
        return
    record = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "time": time.time(),
        "seconds": round(seconds, 3),
        **asdict(settings),
        "components": describe_networks(nlp),
    }
    path = Path(folder) / f"{record['host']}-{record['pid']}.jsonl"
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def text_of(value: object, max_chars: int) -> tuple[str | None, str | None]:
    """``(text, None)`` for a value that can be annotated, ``(None, why not)`` otherwise.

    Texts arrive as bytes (the driver sends the column as binary) and are decoded here, strictly:
    Spark strings may hold invalid UTF-8, which Arrow's own conversion would raise on for the
    whole batch.
    """
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None, "no text (null)"
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as e:
            return None, f"text is not valid UTF-8: {e}"
    if not isinstance(value, str):
        return None, f"text is a {type(value).__name__}, not a string"
    if len(value) > max_chars:
        return None, f"text has {len(value):,} characters, more than max_chars={max_chars:,}"
    return value, None


def pipe_safely(nlp: Language, texts: Sequence[str]) -> list[Doc | str]:
    """A Doc for each text, or the error message of a text that fails on its own.

    The whole batch goes through ``nlp.pipe`` first (the fast path: windows of many documents
    share forward passes); if it raises, each text is retried alone so its batch-mates survive.
    """
    try:
        return list(nlp.pipe(texts, batch_size=max(len(texts), 1)))
    except Exception:  # noqa: BLE001 - find the culprit one document at a time
        pass
    results: list[Doc | str] = []
    for text in texts:
        try:
            results.append(nlp(text))
        except Exception as e:  # noqa: BLE001 - any failure becomes this row's error
            results.append(f"{type(e).__name__}: {e}"[:MAX_ERROR_CHARS])
    return results


def entity_structs(doc: Doc) -> list[dict[str, Any]]:
    """``doc.ents`` as the ``entities`` column's structs (character offsets into the text)."""
    return [{key: row[key] for key in ENTITY_FIELDS} for row in chunk_rows(doc, 0)]


def token_structs(doc: Doc) -> list[dict[str, Any]]:
    """One struct per token with its IOB2 tag, like Spark NLP's ``ner`` column."""
    return [
        {"text": row["token"], "start": row["start"], "end": row["end"], "tag": row["tag"]}
        for row in token_rows(doc, 0)
    ]


def annotate_values(
    nlp: Language, values: Sequence[object], settings: WorkerSettings
) -> pd.DataFrame:
    """The UDF's result for one batch: a row per value with entities, tokens and error."""
    entities: list[list[dict[str, Any]]] = [[] for _ in values]
    tokens: list[list[dict[str, Any]]] = [[] for _ in values]
    errors: list[str | None] = [None] * len(values)
    todo: list[tuple[int, str]] = []
    for i, value in enumerate(values):
        text, error = text_of(value, settings.max_chars)
        if text is None:
            errors[i] = error
        else:
            todo.append((i, text))
    nlp.max_length = max(nlp.max_length, settings.max_chars)  # our limit is the one that applies
    for start in range(0, len(todo), settings.batch_size):
        rows, texts = zip(*todo[start : start + settings.batch_size], strict=True)
        for i, result in zip(rows, pipe_safely(nlp, texts), strict=True):
            if isinstance(result, str):
                errors[i] = result
                continue
            entities[i] = entity_structs(result)
            if settings.output_tokens:
                tokens[i] = token_structs(result)
    columns: dict[str, list[Any]] = {ENTITIES: entities}
    if settings.output_tokens:
        columns[TOKENS] = tokens
    columns[ERROR] = errors
    # object columns: pandas 3 would store the messages as its string dtype, with NaN for None
    return pd.DataFrame({name: pd.Series(cells, dtype=object) for name, cells in columns.items()})


def annotate_batches(
    batches: Iterable[pd.Series], settings: WorkerSettings
) -> Iterator[pd.DataFrame]:
    """The body of the pandas UDF: the cached pipeline over each Arrow batch of one task.

    The pipeline is fetched at the first batch, so an empty partition loads nothing.
    """
    nlp: Language | None = None
    for batch in batches:
        if nlp is None:
            limit_tokenizer_threads(settings.threads)
            nlp = get_pipeline(settings)
            limit_threads(nlp, settings.threads)  # a cached pipeline may have had other settings
        yield annotate_values(nlp, batch.tolist(), settings)
