"""One process with onnxruntime's two intra-op threads, or one thread per process?

The built-in model on the CoNLL-2003 test documents (raw text, as ``benchmark.py builtin``
feeds them), three ways: the default (one process, onnxruntime's default intra-op threads), one
intra-op thread in one process, and one intra-op thread in each of ``n_process`` = 2 spaCy worker
processes (how spaCy's own models use several cores). Median of ``--repeats`` passes; CPU time
includes the workers (``RUSAGE_CHILDREN``).

    python scripts/threads_vs_processes.py --repeats 3
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def median_pass(nlp: Any, texts: list[str], repeats: int, **pipe: Any) -> tuple[float, float]:
    """Median wall and CPU seconds (workers included) of ``repeats`` passes of
    ``nlp.pipe(texts, **pipe)``, after an untimed warm-up on the first 20 texts."""
    for _ in nlp.pipe(texts[:20], **pipe):
        pass
    runs = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), cpu_seconds()
        for _ in nlp.pipe(texts, **pipe):
            pass
        runs.append((time.perf_counter() - wall, cpu_seconds() - cpu))
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm_conll03")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--documents", type=int, default=0, help="default: all")
    args = parser.parse_args(argv)

    from benchmark import (  # type: ignore[import-not-found]
        DATA,
        cpu_class,
        cpu_flags,
        document_texts,
        worker_batch_size,
    )
    from int8_options import _runtime  # type: ignore[import-not-found]

    from spacy_nerzoo.api import load
    from spacy_nerzoo.backends.onnx_backend import OnnxBackend

    texts = document_texts(DATA, args.documents or None)
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {cpu_class(cpu_flags()[1])}; {texts.description}"
    )
    print("\n| way | words/s (wall) | words / CPU-s |\n|---|---:|---:|")
    for label, one_thread, n_process in (
        ("one process, default intra-op threads", False, 1),
        ("one process, 1 intra-op thread", True, 1),
        ("n_process = 2, 1 intra-op thread each", True, 2),
    ):
        nlp = load(args.model)
        runtime = _runtime(nlp)
        if one_thread:
            runtime.backend = OnnxBackend(runtime.backend.path, precision="int8", num_threads=1)
        size = worker_batch_size(len(texts.texts), n_process)
        pipe = {"n_process": n_process, "batch_size": size} if n_process > 1 else {}
        wall, cpu = median_pass(nlp, texts.texts, args.repeats, **pipe)
        print(f"| {label} | {texts.words / wall:,.0f} | {texts.words / cpu:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
