"""``annotate`` checks, before any job, that Spark's Python workers can run spacy_nerzoo.

The case from the field: a virtual environment's Python run without activating the environment.
``PYSPARK_PYTHON`` is unset, so a local session starts its workers with ``python3`` from ``PATH``,
an interpreter without the package, and every task used to fail with a Py4J stack trace ending in
``No module named 'spacy'``. Here that ``python3`` is a bare virtual environment made for the test
(Spark puts pyspark on the workers' path itself, so only the package is missing), first on the
``PATH`` of a child process that runs the driver with this interpreter. One child runs every
session, one after the other, so the JVM starts once.

The message itself is checked in-process, without Spark, for each kind of master.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from typing import Any

import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (the spark extra)")
pytest.importorskip("pyarrow", reason="pyarrow is not installed (the spark extra)")

from pyspark.errors import PySparkAttributeError  # noqa: E402

from spacy_nerzoo.errors import SparkWorkerError  # noqa: E402
from spacy_nerzoo.spark.driver import check_workers, worker_error  # noqa: E402

HAS_JAVA = bool(shutil.which("java") or os.environ.get("JAVA_HOME"))
needs_java = pytest.mark.skipif(not HAS_JAVA, reason="Java is not installed: Spark needs it")

DRIVER = r"""
import json, os, sys, warnings
warnings.simplefilter("ignore")
from pyspark.sql import SparkSession
from spacy_nerzoo.errors import SparkWorkerError
from spacy_nerzoo.spark import annotate

def session():
    spark = (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("OFF")
    return spark

def attempt(spark):
    df = spark.createDataFrame([(1, "Angela Merkel met Tim Cook.")], "id int, text string")
    tracker = spark.sparkContext.statusTracker()
    result = {"python": spark.sparkContext.pythonExec}
    try:
        out = annotate(df, "minilm_conll03")
    except SparkWorkerError as e:
        result["error"] = str(e)
        return result
    jobs = len(tracker.getJobIdsForGroup())
    annotate(df, "minilm_conll03")
    result["second_call_jobs"] = len(tracker.getJobIdsForGroup()) - jobs
    result["columns"] = out.columns
    return result

results = {}
spark = session()
results["unset"] = attempt(spark)
spark.stop()
os.environ["PYSPARK_PYTHON"] = "/nonexistent/python3"
spark = session()
results["missing"] = attempt(spark)
spark.stop()
os.environ["PYSPARK_PYTHON"] = sys.executable
spark = session()
results["advised"] = attempt(spark)
spark.stop()
print("RESULTS " + json.dumps(results))
"""


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the driver in a child whose PATH starts with a python3 that lacks the package."""
    bare = tmp_path_factory.mktemp("bare") / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(bare)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "VIRTUAL_ENV")
    }
    env["PATH"] = f"{bare / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER],
        capture_output=True,
        text=True,
        env=env,
        cwd=bare.parent,  # workers start here too: no package folder to import by accident
        timeout=600,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULTS ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(json.loads(lines[-1][len("RESULTS ") :]))


@needs_java
def test_workers_without_the_package_get_one_clear_error(sessions: dict[str, Any]) -> None:
    result = sessions["unset"]
    assert result["python"] == "python3"
    message = result.get("error")
    assert message is not None, f"annotate did not check the workers: {result}"
    assert re.search(r"ModuleNotFoundError: No module named 'spacy(_nerzoo)?'", message)
    assert f"PYSPARK_PYTHON={shlex.quote(sys.executable)} " in message
    assert "Py4J" not in message and "\n" not in message


@needs_java
def test_a_worker_python_that_cannot_start_is_named(sessions: dict[str, Any]) -> None:
    message = sessions["missing"].get("error")
    assert message is not None
    assert "'/nonexistent/python3'" in message and "Cannot run program" in message
    assert f"PYSPARK_PYTHON={shlex.quote(sys.executable)} " in message


@needs_java
def test_the_advice_works_and_is_checked_once(sessions: dict[str, Any]) -> None:
    result = sessions["advised"]
    assert "error" not in result, result
    assert result["columns"] == ["id", "text", "entities", "nerzoo_error"]
    assert result["second_call_jobs"] == 0


def test_cluster_advice_points_at_the_executors_environment() -> None:
    error = worker_error("yarn", "python3", "/usr/bin/python3", "ModuleNotFoundError: spacy")
    assert isinstance(error, SparkWorkerError)
    message = str(error)
    assert "'python3' (/usr/bin/python3)" in message
    assert "every executor" in message and "docs/spark.md" in message
    assert sys.executable not in message


def test_local_advice_names_this_interpreter() -> None:
    message = str(worker_error("local[4]", "python3", "/usr/bin/python3", "ModuleNotFoundError"))
    assert f"PYSPARK_PYTHON={shlex.quote(sys.executable)} " in message


def test_local_workers_on_this_interpreter_need_the_package_installed() -> None:
    message = str(worker_error("local", sys.executable, sys.executable, "ModuleNotFoundError"))
    assert "install spacy-nerzoo into it" in message
    assert "PYSPARK_PYTHON=" not in message


def test_spark_connect_sessions_are_not_probed() -> None:
    """A Connect client has no SparkContext (and no pythonExec) to check with: no error."""

    class ConnectSession:
        @property
        def sparkContext(self) -> None:
            raise PySparkAttributeError(
                errorClass="JVM_ATTRIBUTE_NOT_SUPPORTED",
                messageParameters={"attr_name": "sparkContext"},
            )

    check_workers(ConnectSession())  # type: ignore[arg-type]
