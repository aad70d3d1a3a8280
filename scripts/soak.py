"""Soak test: many documents through ``nlp.pipe``, watching the process's memory for growth.

Documents of mixed lengths (``--min-tokens``..``--max-tokens`` tokens, log-uniform by default, so
most are short and some long, as in a real stream; fixed seed) are produced by a generator, never
a list, and streamed through ``nlp.pipe``; the Docs are dropped as soon as they are checked. Every
``--report-every`` documents the script prints the RSS (after ``gc.collect()``), the throughput
and the size of the StringStore. The RSS after the warm-up (``--warmup`` documents, default the
first report) is the baseline; the script exits with status 1 if a later report exceeds it by
more than ``--max-growth`` percent, or if a document came back untagged.

Words come from a fixed vocabulary, so spaCy's StringStore stops growing after the warm-up; with
an open vocabulary it grows by design (spaCy interns every new string), which is not a leak of
this package.

Usage::

    python scripts/soak.py                                   # 100,000 docs, tiny DistilBERT
    python scripts/soak.py --docs 20000 --report-every 2000 --kind albert
    python scripts/soak.py --model DIR --backend onnx --docs 50000 --max-growth 5
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory_long_doc import rss_mb  # noqa: E402  (one RSS reader for both scripts)

BASE_WORDS = (
    "Angela Merkel met Tim Cook in Berlin on Monday . The European Commission said on Thursday "
    "it disagreed with German advice to consumers , and Apple opened offices in London , Paris "
    "and New York . Peter Blackburn reported from Brussels for Reuters . Москва 東京 😀 1996-08-22 "
    "( ) \" ' ! ?"
).split()


def vocabulary(seed: int, size: int = 3000) -> list[str]:
    """A fixed vocabulary: the base words plus seeded pseudo-words of varied scripts."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéüßøñабвгдежзкл東京大阪"
    extra = {"".join(rng.choices(letters, k=rng.randint(1, 12))) for _ in range(size)}
    return BASE_WORDS + sorted(extra)


def documents(args: argparse.Namespace, vocab: Any) -> Iterator[Any]:
    """Yield ``args.docs`` Docs of mixed lengths; nothing is kept after it is yielded."""
    from spacy.tokens import Doc

    rng = random.Random(args.seed)
    words = vocabulary(args.seed)
    lo, hi = math.log(args.min_tokens), math.log(args.max_tokens + 1)
    for _ in range(args.docs):
        if args.lengths == "uniform":
            n = rng.randint(args.min_tokens, args.max_tokens)
        else:
            n = min(args.max_tokens, int(math.exp(rng.uniform(lo, hi))))
        toks = rng.choices(words, k=n)
        # Some paragraph breaks: whitespace tokens are never part of an entity.
        for i in range(rng.randrange(40), n, 40):
            toks[i] = "\n"
        yield Doc(vocab, words=toks, spaces=[t != "\n" for t in toks])


def tiny_model(kind: str, folder: Path) -> Path:
    from spacy_nerzoo.testing import build_tiny_model

    return build_tiny_model(folder, kind)


def soak(args: argparse.Namespace, model: Path) -> int:
    import spacy
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "sequence longer than the model's limit": we window
    nlp = spacy.blank("en")
    config = {
        "model": str(model),
        "backend": args.backend,
        "precision": args.precision,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
    }
    nlp.add_pipe("token_classifier", config=config)
    nlp("Angela Merkel met Tim Cook in Berlin.")
    gc.collect()
    print(
        f"model={model if args.model else 'tiny random ' + args.kind} backend={args.backend} "
        f"docs={args.docs} lengths={args.lengths}[{args.min_tokens},{args.max_tokens}] "
        f"pipe_batch={args.pipe_batch_size} n_process={args.n_process} "
        f"rss_after_load={rss_mb():.1f}MiB",
        flush=True,
    )
    print(f"{'docs':>8} {'tokens':>11} {'rss_MiB':>8} {'growth':>7} {'tok/s':>8} {'strings':>8}")
    warmup = args.warmup if args.warmup is not None else args.report_every
    baseline: float | None = None
    worst = 0.0
    n_docs = n_tokens = untagged = 0
    start = time.perf_counter()
    stream = nlp.pipe(
        documents(args, nlp.vocab), batch_size=args.pipe_batch_size, n_process=args.n_process
    )
    for doc in stream:
        n_docs += 1
        n_tokens += len(doc)
        untagged += sum(1 for t in doc if t.ent_iob_ not in ("B", "I", "O"))
        del doc
        if n_docs % args.report_every and n_docs != args.docs:
            continue
        gc.collect()
        rss = rss_mb()
        if baseline is None and n_docs >= warmup:
            baseline = rss
        growth = (rss / baseline - 1) * 100 if baseline else 0.0
        if baseline is not None and n_docs > warmup:
            worst = max(worst, growth)
        speed = n_tokens / (time.perf_counter() - start)
        strings = len(nlp.vocab.strings)
        print(
            f"{n_docs:>8} {n_tokens:>11} {rss:>8.1f} {growth:>6.1f}% {speed:>8.0f} {strings:>8}",
            flush=True,
        )
    ok = n_docs == args.docs and untagged == 0 and worst <= args.max_growth
    print(
        f"done: {n_docs} docs, {n_tokens} tokens in {time.perf_counter() - start:.0f}s; "
        f"untagged tokens {untagged}; largest RSS growth after warm-up {worst:.1f}% "
        f"(allowed {args.max_growth}%): {'OK' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="checkpoint folder (default: tiny model)")
    parser.add_argument(
        "--kind", default="distilbert", choices=["distilbert", "albert", "longformer", "bert"]
    )
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--min-tokens", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=2000)
    parser.add_argument("--lengths", choices=["loguniform", "uniform"], default="loguniform")
    parser.add_argument("--report-every", type=int, default=10_000)
    parser.add_argument(
        "--warmup", type=int, help="docs before the baseline (default: first report)"
    )
    parser.add_argument("--max-growth", type=float, default=10.0, help="percent over baseline")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8, help="component forward batch")
    parser.add_argument("--pipe-batch-size", type=int, default=64, help="nlp.pipe batch_size")
    parser.add_argument("--n-process", type=int, default=1)
    parser.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 1 <= args.min_tokens <= args.max_tokens:
        parser.error("need 1 <= --min-tokens <= --max-tokens")
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or tiny_model(args.kind, Path(tmp))
        return soak(args, model)


if __name__ == "__main__":
    sys.exit(main())
