"""``scripts/spark_benchmark.py`` runs end to end on a tiny corpus (no speed is asserted).

It starts its own Spark session (``local[1]``) in a subprocess, so it is marked slow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (the spark extra)")
if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
    pytest.skip("Java is not installed: Spark needs it", allow_module_level=True)

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "spark_benchmark.py"


@pytest.mark.slow
def test_tiny_run_reports_every_variant(tmp_path: Path) -> None:
    markdown = tmp_path / "spark.md"
    cmd = [sys.executable, str(SCRIPT), "--docs", "4", "--repeats", "1", "--warmup", "2"]
    cmd += ["--cores", "1", "--partitions-per-core", "1", "--markdown", str(markdown)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "nlp.pipe, one process, 1 thread(s)" in proc.stdout
    assert "Spark local[1]" in proc.stdout and "failed" not in proc.stdout
    text = markdown.read_text()
    assert "| variant |" in text and "words/s (median)" in text
