"""``spacy_nerzoo.spark.annotate`` on a real local Spark (``local[2]``), against ``nlp.pipe``.

One Spark session serves the module (starting the JVM is most of the cost). Arrow batches are
set to 4 rows and the frames spread over several partitions, so a pipeline loaded per batch or
per task would show up in the load log the workers write (``SPACY_NERZOO_SPARK_LOAD_LOG``).
A small plugin on the workers' ``PYTHONPATH`` (a module plus a dist-info folder with a
``spacy_factories`` entry point, as an installed package would have) plants a component that
raises on one marker text, to show that a pipeline exception costs only its own row.
Everything skips when pyspark or Java is missing.

The built-in model is int8 with dynamic quantisation: activations are quantised per forward pass,
so a confidence depends slightly on which documents share a batch. Comparisons with ``nlp.pipe``
therefore give both sides the same batches (one document, or the same Arrow batch).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (the spark extra)")
pytest.importorskip("pyarrow", reason="pyarrow is not installed (the spark extra)")
if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
    pytest.skip("Java is not installed: Spark needs it", allow_module_level=True)

from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from spacy.language import Language  # noqa: E402

from spacy_nerzoo.api import load  # noqa: E402
from spacy_nerzoo.spark import ENTITY_TYPE, LOAD_LOG_ENV, TOKEN_TYPE, annotate  # noqa: E402
from spacy_nerzoo.spark.worker import entity_structs, limit_threads, token_structs  # noqa: E402

# pyspark 4.3 warns on every pandas UDF that pandas 3 is "not yet fully supported"; these tests
# are what shows the path used here works with it.
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")

MODEL = "minilm_conll03"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "spark_annotate.py"
MARKER = "NERZOO_PLANTED_FAILURE"
NEWS = [
    "Angela Merkel met Tim Cook of Apple in Berlin on Monday.",
    "The European Commission said on Thursday it disagreed with German advice.",
    "Peter Blackburn reported from Brussels for Reuters.",
    "Japan began the defence of their Asian Cup title with a 2-1 win against Syria.",
    "Emoji 😀 and “quotes” near Москва and 東京 should keep their character offsets.",
]
LONG_WORDS = 20_000
PLUGIN = f'''
from spacy.language import Language

@Language.factory("nerzoo_spark_test_fail")
def make_failing(nlp, name):
    def fail_on_marker(doc):
        if "{MARKER}" in doc.text:
            raise RuntimeError("planted failure")
        return doc
    return fail_on_marker
'''


def long_text() -> str:
    words = " ".join(NEWS[:4]).split()
    return " ".join(words[i % len(words)] for i in range(LONG_WORDS))


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A spaCy plugin installed the way pip would, importable here and on the workers."""
    path = tmp_path_factory.mktemp("plugin")
    (path / "nerzoo_spark_test_plugin.py").write_text(PLUGIN)
    info = path / "nerzoo_spark_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: nerzoo-spark-test-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[spacy_factories]\nnerzoo_spark_test_fail = nerzoo_spark_test_plugin:make_failing\n"
    )
    sys.path.insert(0, str(path))
    # Here the entry point is too late (spaCy read the entry points at import): import it.
    importlib.import_module("nerzoo_spark_test_plugin")
    yield path
    sys.path.remove(str(path))


@pytest.fixture(scope="module")
def load_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("loads")


@pytest.fixture(scope="module")
def spark(plugin_dir: Path, load_log: Path) -> Iterator[SparkSession]:
    # Local-mode workers run $PYSPARK_PYTHON (default: python3 on PATH); spark.pyspark.python only
    # reaches spark-submit. Without this, `make test` (venv not activated) ran workers in the
    # system Python, which has no spacy.
    saved = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    # py4j logs "Closing down clientserver connection" from __del__ at interpreter exit, after
    # pytest has closed its capture streams: a "--- Logging error ---" traceback in CI's output.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("spacy-nerzoo-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "4")
        .config("spark.python.worker.reuse", "true")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config(f"spark.executorEnv.{LOAD_LOG_ENV}", str(load_log))
        .config("spark.executorEnv.PYTHONPATH", str(plugin_dir))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    if saved is None:
        os.environ.pop("PYSPARK_PYTHON", None)
    else:
        os.environ["PYSPARK_PYTHON"] = saved


@pytest.fixture(scope="module")
def reference() -> Language:
    """The same model in this process, on one thread as the workers run it."""
    nlp = load(MODEL)
    limit_threads(nlp, 1)
    return nlp


def frame(spark: SparkSession, texts: list[Any], partitions: int = 4) -> DataFrame:
    rows = list(enumerate(texts))
    rdd = spark.sparkContext.parallelize(rows, partitions)  # no shuffle: partitions stay put
    return spark.createDataFrame(rdd, "id int, text string")


def by_id(df: DataFrame) -> dict[int, dict[str, Any]]:
    return {row["id"]: row.asDict(recursive=True) for row in df.collect()}


def assert_same_entities(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    def key(e: dict[str, Any]) -> tuple[Any, ...]:
        return (e["text"], e["label"], e["start"], e["end"])

    assert [key(e) for e in got] == [key(e) for e in expected]
    assert [e["confidence"] for e in got] == pytest.approx(
        [e["confidence"] for e in expected], abs=1e-6
    )


def loads(load_log: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in load_log.glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]


def test_entities_equal_nlp_pipe(spark: SparkSession, reference: Language) -> None:
    texts = [*NEWS, "", "  \n ", long_text(), None, *NEWS[::-1]]
    out = annotate(frame(spark, texts), MODEL, batch_size=1)
    assert out.schema["entities"].dataType == ENTITY_TYPE
    assert out.columns == ["id", "text", "entities", "nerzoo_error"]
    got = by_id(out)
    assert len(got) == len(texts)
    present = [i for i, t in enumerate(texts) if t is not None]
    docs = reference.pipe((texts[i] for i in present), batch_size=1)
    for i, doc in zip(present, docs, strict=True):
        assert got[i]["nerzoo_error"] is None
        assert_same_entities(got[i]["entities"], entity_structs(doc))
        for entity in got[i]["entities"]:  # Python offsets are Spark's character offsets
            assert texts[i][entity["start"] : entity["end"]] == entity["text"]
    null = texts.index(None)
    assert got[null]["entities"] == [] and got[null]["nerzoo_error"] == "no text (null)"
    assert len(got[texts.index(long_text())]["entities"]) > 1000
    assert got[0]["entities"], "the model should find entities in news text"


def test_substring_in_spark_matches_offsets(spark: SparkSession) -> None:
    out = annotate(frame(spark, NEWS[3:]), MODEL).select("text", F.explode("entities").alias("e"))
    checked = out.select(
        (F.expr("substring(text, e.start + 1, e.end - e.start)") == F.col("e.text")).alias("ok")
    ).collect()
    assert checked and all(row.ok for row in checked)


def test_tokens_column(spark: SparkSession, reference: Language) -> None:
    texts = NEWS[:3]
    out = annotate(
        frame(spark, texts, 2), MODEL, output_tokens=True, tokens_col="ner", batch_size=1
    )
    assert out.schema["ner"].dataType == TOKEN_TYPE
    got = by_id(out)
    for i, doc in enumerate(reference.pipe(texts, batch_size=1)):
        assert got[i]["ner"] == token_structs(doc)
    # Real tags of several types come through (over the three texts: which text holds an ORG is
    # the model's call; the distilled model reads "Tim Cook of Apple" as a place).
    tags = {t["tag"] for i in range(len(texts)) for t in got[i]["ner"]}
    assert tags >= {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC"}


def test_failing_rows_never_fail_the_job(
    spark: SparkSession, reference: Language, tmp_path: Path
) -> None:
    # A saved pipeline with the plugin's component, shipped with the job and named by its folder.
    nlp = load(MODEL)
    nlp.add_pipe("nerzoo_spark_test_fail")
    shipped = tmp_path / "nerzoo_failing_pipeline"
    nlp.to_disk(shipped)
    spark.sparkContext.addFile(str(shipped), recursive=True)
    texts = [NEWS[0], f"{MARKER} near Paris", None, "x" * 5_001, NEWS[1], NEWS[2]]
    out = annotate(frame(spark, texts, 1), shipped.name, batch_size=8, max_chars=5_000)
    got = by_id(out)
    errors = [got[i]["nerzoo_error"] for i in range(len(texts))]
    assert "RuntimeError: planted failure" in errors[1]
    assert errors[2] == "no text (null)"
    assert "5,001 characters, more than max_chars=5,000" in errors[3]
    assert all(got[i]["entities"] == [] for i in (1, 2, 3))
    # One partition, Arrow batches of 4 rows: rows 0-1 go to nlp.pipe together, fail, and are
    # retried alone; rows 4-5 form the next batch. The failing row's batch-mate is annotated.
    expected = {0: reference(texts[0])}
    expected.update(zip((4, 5), reference.pipe([texts[4], texts[5]]), strict=True))
    for i, doc in expected.items():
        assert errors[i] is None
        assert_same_entities(got[i]["entities"], entity_structs(doc))


def test_invalid_utf8_is_a_row_error(spark: SparkSession) -> None:
    binary = spark.createDataFrame(
        [(0, bytearray(b"\xff\xfe Paris")), (1, bytearray("Paris et Zürich".encode()))],
        "id int, text binary",
    )
    got = by_id(annotate(binary, MODEL))
    assert "not valid UTF-8" in got[0]["nerzoo_error"] and got[0]["entities"] == []
    assert got[1]["nerzoo_error"] is None and got[1]["entities"]
    # A string column holding invalid bytes (Spark allows it): the row may fail, the job not.
    strings = spark.range(1).select(
        F.lit(0).alias("id"), F.unhex(F.lit("FF20426572")).cast("string").alias("text")
    )
    (row,) = annotate(strings, MODEL).collect()
    assert row.nerzoo_error is None or "UTF-8" in row.nerzoo_error


def test_settings_reach_the_workers(
    spark: SparkSession, reference: Language, load_log: Path
) -> None:
    texts = NEWS[:2]
    out = annotate(
        frame(spark, texts, 2),
        MODEL,
        backend="onnx",
        precision="int8",
        threads=2,
        batch_size=1,
        config={"labels": ["PER"]},
    )
    got = by_id(out)
    only_per = load(MODEL, labels=["PER"])
    limit_threads(only_per, 2)
    for i, doc in enumerate(only_per.pipe(texts, batch_size=1)):
        assert_same_entities(got[i]["entities"], entity_structs(doc))
    assert {e["label"] for i in got for e in got[i]["entities"]} == {"PER"}
    ours = [r for r in loads(load_log) if json.loads(r["config_json"]).get("labels") == ["PER"]]
    assert ours and all(
        r["components"] == [{"name": MODEL, "backend": "onnx", "precision": "int8", "threads": 2}]
        for r in ours
    )


def test_each_worker_loads_the_pipeline_once(spark: SparkSession, load_log: Path) -> None:
    # A config of its own, so only this job's loads count: 12 partitions x 3 Arrow batches.
    config = {"spans_key": "nerzoo_load_once"}
    texts = [NEWS[i % len(NEWS)] for i in range(12 * 12)]
    df = frame(spark, texts, 12)
    assert df.rdd.getNumPartitions() == 12
    assert annotate(df, MODEL, config=config).filter("nerzoo_error IS NULL").count() == len(texts)
    ours = [r for r in loads(load_log) if json.loads(r["config_json"]) == config]
    pids = [(r["host"], r["pid"]) for r in ours]
    assert 1 <= len(ours) <= 2, ours  # local[2]: at most two Python workers, each loads once
    assert len(set(pids)) == len(pids)


def test_the_udf_runs_once_per_row(spark: SparkSession) -> None:
    out = annotate(frame(spark, NEWS[:1], 1), MODEL, output_tokens=True)
    plan = out._jdf.queryExecution().executedPlan().toString()
    assert plan.count("ArrowEvalPython") == 1, plan


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"text_col": "missing"}, "No column 'missing'"),
        ({"text_col": "id"}, "must be string"),
        ({"precision": "bf16"}, "precision='bf16' is not available with backend='onnx'"),
        ({"config": {"no_such_key": 1}}, "Unknown config key no_such_key"),
        ({"entities_col": "text"}, "already used: ['text']"),
        ({"batch_size": 0}, "batch_size must be an integer from 1"),
        ({"config": {"backend": "torch"}, "backend": "onnx"}, "backend given twice"),
    ],
)
def test_mistakes_fail_on_the_driver(
    spark: SparkSession, kwargs: dict[str, Any], error: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=re.escape(error)):
        annotate(frame(spark, ["Paris"], 1), MODEL, **kwargs)


def test_worked_example_script(spark: SparkSession, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("spark_annotate_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    source = tmp_path / "news.txt"
    source.write_text("\n".join(NEWS[:3]) + "\n", encoding="utf-8")
    annotated = example.annotate_corpus(
        spark, str(source), str(tmp_path / "out.parquet"), tokens=True
    )
    assert annotated.count() == 3 and "tokens" in annotated.columns
    labels, errors = example.summary(annotated)
    assert errors == 0 and labels["PER"] >= 2 and labels["ORG"] >= 1
