"""The worker side of Spark annotation, in-process: no JVM needed, so these run without Java.

What a row's value becomes (text or error), the one-by-one retry that keeps a bad document from
costing its batch-mates, the per-process pipeline cache and the thread limit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from spacy.language import Language
from spacy.tokens import Doc

pytest.importorskip("pyspark", reason="pyspark is not installed (the spark extra)")

from spacy_nerzoo.api import load  # noqa: E402
from spacy_nerzoo.spark import worker  # noqa: E402
from spacy_nerzoo.spark.worker import (  # noqa: E402
    LOAD_LOG_ENV,
    WorkerSettings,
    annotate_batches,
    annotate_values,
    entity_structs,
    get_pipeline,
    limit_threads,
    text_of,
)

MARKER = "NERZOO_PLANTED_FAILURE"


@Language.component("nerzoo_test_fail_on_marker")
def fail_on_marker(doc: Doc) -> Doc:
    if MARKER in doc.text:
        raise RuntimeError("planted failure")
    return doc


@pytest.fixture(scope="module")
def nlp() -> Language:
    return load("minilm_conll03")


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(worker, "_PIPELINES", {})
    yield


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (None, "no text (null)"),
        (float("nan"), "no text (null)"),
        (pd.NA, "no text (null)"),
        (b"\xff\xfe", "not valid UTF-8"),
        (42, "text is a int, not a string"),
        ("x" * 11, "11 characters, more than max_chars=10"),
    ],
)
def test_values_that_cannot_be_annotated(value: object, error: str) -> None:
    text, message = text_of(value, max_chars=10)
    assert text is None and message is not None and error in message


@pytest.mark.parametrize("value", ["", "Paris", "Zürich".encode(), bytearray(b"Paris")])
def test_values_that_can(value: object) -> None:
    assert text_of(value, max_chars=10)[1] is None


def test_a_failing_document_spares_its_batch(nlp: Language) -> None:
    nlp.add_pipe("nerzoo_test_fail_on_marker")
    try:
        texts = ["Angela Merkel visited Paris.", f"{MARKER} in Berlin", None, "Tim Cook of Apple."]
        frame = annotate_values(nlp, texts, WorkerSettings("unused", batch_size=8))
    finally:
        nlp.remove_pipe("nerzoo_test_fail_on_marker")
    errors = frame[worker.ERROR].tolist()
    assert errors[0] is None and errors[3] is None
    assert "RuntimeError: planted failure" in errors[1] and errors[2] == "no text (null)"
    assert frame[worker.ENTITIES][1] == [] and frame[worker.ENTITIES][2] == []
    # After the batch failed, each text ran alone (int8 activations are quantised per batch,
    # so confidences depend slightly on batch-mates: compare with single-text runs).
    expected = [entity_structs(nlp(text)) for text in (texts[0], texts[3])]
    assert [frame[worker.ENTITIES][0], frame[worker.ENTITIES][3]] == expected
    assert all(e for e in expected)


def test_pipeline_loads_once_per_process(
    fresh_cache: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOAD_LOG_ENV, str(tmp_path))
    for name in ("TOKENIZERS_PARALLELISM", "RAYON_NUM_THREADS"):  # restored after the test
        monkeypatch.setenv(name, "")
    settings = WorkerSettings("minilm_conll03", batch_size=2, threads=1, output_tokens=True)
    batches = [pd.Series(["Angela Merkel visited Paris.", "Tim Cook"])] * 3
    for _ in range(2):  # two tasks in the same worker process
        frames = list(annotate_batches(batches, settings))
        assert len(frames) == 3 and list(frames[0].columns) == ["entities", "tokens", "error"]
    assert get_pipeline(settings) is get_pipeline(WorkerSettings("minilm_conll03", threads=2))
    (log,) = tmp_path.glob("*.jsonl")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 1 and records[0]["model"] == "minilm_conll03"
    assert records[0]["components"] == [
        {"name": "minilm_conll03", "backend": "onnx", "precision": "int8", "threads": 1}
    ]
    assert (
        os.environ["TOKENIZERS_PARALLELISM"] == "false" and os.environ["RAYON_NUM_THREADS"] == "1"
    )


def test_empty_partition_loads_nothing(fresh_cache: None) -> None:
    assert list(annotate_batches([], WorkerSettings("no-such-model"))) == []
    assert worker._PIPELINES == {}


def test_limit_threads_rebuilds_the_onnx_session(nlp: Language) -> None:
    backend = nlp.get_pipe("minilm_conll03").runtime.backend
    limit_threads(nlp, 1)
    assert backend.num_threads == 1
    assert backend.session.get_session_options().intra_op_num_threads == 1
    doc = nlp("Angela Merkel visited Paris.")
    assert [e.label_ for e in doc.ents] == ["PER", "LOC"]
