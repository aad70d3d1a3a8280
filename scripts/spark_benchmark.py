"""Throughput of ``spacy_nerzoo.spark.annotate`` on local Spark against ``nlp.pipe`` in one process.

The same corpus for every variant: the CoNLL-2003 test documents as raw text (words joined by
spaces, sentences by newlines, one row per document; ``scripts/benchmark.py``'s ``builtin``
corpus), or copies of a built-in news text when ``../shared`` is absent. Variants:

- ``nlp.pipe`` in this process, torch / onnxruntime limited to 1 thread, then to every core;
- Spark ``local[N]`` for each ``--cores`` N, one intra-op thread per task (``annotate``'s
  default, ``spark.task.cpus``), so N tasks use N cores.

How it measures. ``nlp.pipe`` variants: load, one warm-up pass over the first ``--warmup`` texts,
then ``--repeats`` timed passes. Spark variants: a fresh session per N; a first job with N
partitions makes every Python worker load the pipeline (its wall time is the "first job"
column: worker start-up plus model load), then ``--repeats`` timed jobs over the cached input
frame in ``--partitions-per-core`` x N partitions, written to Spark's ``noop`` sink so every row is
annotated and nothing is collected. The table gives the median; words/s counts corpus words.
CPU s / 1k words: CPU time of this benchmark's process tree (this process, the Spark JVM and
its Python workers) per timed pass and 1,000 words: the cost of the work itself, which contention
changes far less than wall time. Others' CPU: CPU time of every other process during the timed
runs, as a share of all cores; non-zero means the machine was shared and the words/s figures are
pessimistic. ``--quiet 0.05`` waits (up to ``--quiet-timeout`` s) before each variant until
others use at most 5% of the cores.

    python scripts/spark_benchmark.py --repeats 3 --markdown outputs/spark_benchmark.md
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from benchmark import (  # noqa: E402 - the sibling script: one corpus and one report format
    DATA,
    TextSet,
    document_texts,
    machine_info,
    render_markdown,
    render_text,
    wait_until_quiet,
)

HEADER = [
    "variant",
    "cores",
    "threads / task",
    "words/s (median)",
    "range",
    "vs nlp.pipe 1 thread",
    "CPU s / 1k words",
    "first job s",
    "others' CPU",
]


@dataclass
class Result:
    """Timed passes of one variant over the whole corpus."""

    name: str
    cores: int
    threads: int
    seconds: list[float] = field(default_factory=list)
    first_job_s: float | None = None
    cpu_s: float | None = None  # CPU time of this process tree over the timed runs
    others_cpu: float | None = None
    error: str | None = None

    def words_per_s(self, words: int) -> float:
        return words / statistics.median(self.seconds)


def _tree_cpu_s() -> float:
    """CPU seconds of this process and all its descendants (the JVM and its Python workers)."""
    total = 0.0
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _busy_s() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def timed(result: Result, run: Callable[[], Any], repeats: int) -> None:
    """Run ``run`` ``repeats`` times, recording wall times, our CPU and the CPU others used."""
    busy0, tree0, wall0 = _busy_s(), _tree_cpu_s(), time.perf_counter()
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        result.seconds.append(time.perf_counter() - start)
    wall = time.perf_counter() - wall0
    result.cpu_s = _tree_cpu_s() - tree0
    others = (_busy_s() - busy0) - result.cpu_s
    result.others_cpu = max(others, 0.0) / (wall * psutil.cpu_count())


def bench_pipe(result: Result, texts: TextSet, args: argparse.Namespace) -> None:
    from spacy_nerzoo.api import load
    from spacy_nerzoo.spark.worker import limit_threads

    nlp = load(args.model)
    limit_threads(nlp, result.threads)
    for _ in nlp.pipe(texts.texts[: args.warmup], batch_size=args.batch_size):
        pass
    timed(result, lambda: list(nlp.pipe(texts.texts, batch_size=args.batch_size)), args.repeats)


def bench_spark(result: Result, texts: TextSet, args: argparse.Namespace) -> None:
    from pyspark.sql import SparkSession

    from spacy_nerzoo.spark import annotate

    cores = result.cores
    # Local-mode workers run $PYSPARK_PYTHON (default: python3 on PATH), not spark.pyspark.python.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("spacy-nerzoo-spark-benchmark")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.python.worker.reuse", "true")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        rows = list(enumerate(texts.texts))
        parts = cores * args.partitions_per_core
        frame = spark.createDataFrame(
            spark.sparkContext.parallelize(rows, parts), "id int, text string"
        ).cache()
        frame.count()
        warm = spark.createDataFrame(
            spark.sparkContext.parallelize(rows[: args.warmup], cores), "id int, text string"
        )
        start = time.perf_counter()
        _run_job(annotate(warm, args.model, batch_size=args.batch_size, threads=1))
        result.first_job_s = time.perf_counter() - start
        job = annotate(frame, args.model, batch_size=args.batch_size, threads=1)
        timed(result, lambda: _run_job(job), args.repeats)
    finally:
        spark.stop()


def _run_job(df: Any) -> None:
    # The noop sink evaluates every row (the UDF is nondeterministic, so nothing is pruned)
    # and keeps the results in the executors: we time annotation, not collecting.
    df.write.format("noop").mode("overwrite").save()


def table_rows(results: list[Result], words: int) -> list[list[str]]:
    base = next((r for r in results if r.name.startswith("nlp.pipe") and r.threads == 1), None)
    rows = []
    for r in results:
        if r.error or not r.seconds:
            rows.append([r.name, str(r.cores), str(r.threads), "failed", *["-"] * 5])
            continue
        wps = r.words_per_s(words)
        spread = f"{words / max(r.seconds):,.0f}–{words / min(r.seconds):,.0f}"
        ratio = f"{wps / base.words_per_s(words):.2f}x" if base and base.seconds else "-"
        first = "-" if r.first_job_s is None else f"{r.first_job_s:.1f}"
        others = "-" if r.others_cpu is None else f"{r.others_cpu:.1%}"
        cpu = "-" if r.cpu_s is None else f"{r.cpu_s / len(r.seconds) / words * 1000:.2f}"
        rows.append([r.name, str(r.cores), str(r.threads), f"{wps:,.0f}", spread, ratio])
        rows[-1] += [cpu, first, others]
    return rows


def report_markdown(results: list[Result], texts: TextSet, args: argparse.Namespace) -> str:
    info = machine_info()
    lines = [
        f"- Command: `{' '.join(shlex.quote(a) for a in ['python', *sys.argv])}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- CPU: {info['cpu']}; {info['cores']}; memory {info['memory']}",
        f"- Python {info['python']}; {info['versions']}; pyspark {_pyspark_version()}",
        f"- Model: {args.model}; {args.batch_size} documents per `nlp.pipe` batch; Spark jobs over "
        f"{args.partitions_per_core} partitions per core; median of {args.repeats} timed runs",
        f"- Load average (1 min) before / after: {args.load_before:.2f} / {os.getloadavg()[0]:.2f}",
        f"- Texts: {texts.description} ({texts.words:,} words)",
        "",
        render_markdown(HEADER, table_rows(results, texts.words)),
        "",
    ]
    for r in results:
        if r.error:
            lines += [f"- {r.name} failed: `{r.error}`"]
    return "\n".join(lines)


def _pyspark_version() -> str:
    try:
        import pyspark
    except ImportError:
        return "not installed"
    return str(pyspark.__version__)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm_conll03")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with CoNLL test.txt")
    parser.add_argument("--docs", type=int, default=None, help="only the first N documents")
    parser.add_argument("--cores", type=int, nargs="+", default=[1, 2], help="Spark local[N]")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=20, help="texts of the warm-up pass/job")
    parser.add_argument("--batch-size", type=int, default=128, help="documents per nlp.pipe batch")
    parser.add_argument("--partitions-per-core", type=int, default=4)
    parser.add_argument(
        "--quiet",
        type=float,
        default=0.0,
        help="before each variant, wait until others use at most this share of the cores",
    )
    parser.add_argument("--quiet-timeout", type=float, default=600.0, help="seconds")
    parser.add_argument("--markdown", type=Path, default=None, help="also write a Markdown report")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    args.load_before = os.getloadavg()[0]
    texts = document_texts(args.data, args.docs)
    print(f"texts: {texts.description}\nwords: {texts.words:,}", flush=True)
    every = psutil.cpu_count() or 1
    variants = [Result(f"nlp.pipe, one process, {n} thread(s)", n, n) for n in sorted({1, every})]
    variants += [Result(f"Spark local[{n}]", n, 1) for n in args.cores]
    for result in variants:
        bench = bench_spark if result.name.startswith("Spark") else bench_pipe
        waited = wait_until_quiet(args.quiet, args.quiet_timeout)
        if waited:
            print(f"waited {waited:.0f} s for a quiet machine", flush=True)
        try:
            bench(result, texts, args)
        except Exception as e:  # noqa: BLE001 - report the failure, go on with the others
            result.error = f"{type(e).__name__}: {e}"[:500]
        print(f"done: {result.name}", flush=True)
    results = variants
    print(render_text(HEADER, table_rows(results, texts.words)))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(report_markdown(results, texts, args))
        print(f"wrote {args.markdown}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
