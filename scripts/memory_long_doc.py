"""Peak memory and time of annotating one very long document (default: 1,000,000 tokens).

The component cuts a document into overlapping wordpiece windows and keeps every window's logits
until the document is decoded, so its memory grows with the document; this script measures by
how much. It builds the Doc from words (a 1M-token text would exceed ``nlp.max_length``), loads
the model and warms it up, then annotates the Doc once and reports:

- RSS after loading the model, after building the Doc, and after annotating;
- peak RSS of the process (``ru_maxrss``), and peak minus the RSS before annotating: the memory
  the annotation itself needed on top of the Doc;
- wall time, tokens/s and the number of entities.

Usage::

    python scripts/memory_long_doc.py                        # tiny random DistilBERT
    python scripts/memory_long_doc.py --kind longformer      # tiny byte-level BPE model
    python scripts/memory_long_doc.py --model DIR --max-length 512 --tokens 1000000 --json

Without ``--model`` a tiny random token classifier of ``--kind`` is built in a temporary folder
with the test suite's builder (``spacy_nerzoo.testing``), so the numbers show the component's own
overhead rather than a big network's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WORDS = (
    "Angela Merkel met Tim Cook in Berlin on Monday . The European Commission said on Thursday "
    "it disagreed with German advice to consumers , and Apple opened offices in London , Paris "
    "and New York . Peter Blackburn reported from Brussels for Reuters . Москва 東京 😀 1996-08-22"
).split()


def rss_mb() -> float:
    """Current resident set size in MiB (from /proc, so no dependency is needed)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux: fall back to psutil if it is there
        import psutil

        return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def tiny_model(kind: str, folder: Path) -> Path:
    """A tiny random token classifier of ``kind`` built by the test suite's fixture builder."""
    from spacy_nerzoo.testing import build_tiny_model

    return build_tiny_model(folder, kind)


def make_words(n: int, seed: int) -> tuple[list[str], list[bool]]:
    """``n`` words drawn from a small vocabulary, with a newline token now and then."""
    rng = random.Random(seed)
    words = rng.choices(WORDS, k=n)
    for i in range(0, n, 997):
        words[i] = "\n"
    spaces = [w != "\n" for w in words]
    return words, spaces


def measure(args: argparse.Namespace, model: Path) -> dict[str, Any]:
    import spacy
    from spacy.tokens import Doc
    from transformers.utils import logging as hf_logging

    # The tokenizer warns that the document is longer than the model's limit; the component
    # windows it, so the warning is noise here.
    hf_logging.set_verbosity_error()
    nlp = spacy.blank("en")
    config = {
        "model": str(model),
        "backend": args.backend,
        "precision": args.precision,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
    }
    nlp.add_pipe("token_classifier", config=config)
    nlp("Angela Merkel met Tim Cook in Berlin.")  # load and warm up outside the measurement
    after_load = rss_mb()
    words, spaces = make_words(args.tokens, args.seed)
    doc = Doc(nlp.vocab, words=words, spaces=spaces)
    del words, spaces
    before = rss_mb()
    start = time.perf_counter()
    doc = nlp(doc)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    tagged = sum(1 for t in doc if t.ent_iob_ in ("B", "I", "O"))
    return {
        "model": str(model) if args.model else f"tiny random {args.kind}",
        "backend": args.backend,
        "precision": args.precision,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "tokens": len(doc),
        "tagged_tokens": tagged,
        "entities": len(doc.ents),
        "seconds": round(seconds, 2),
        "tokens_per_second": round(len(doc) / seconds),
        "rss_after_load_mb": round(after_load, 1),
        "rss_with_doc_mb": round(before, 1),
        "rss_after_annotation_mb": round(rss_mb(), 1),
        "peak_rss_mb": round(peak, 1),
        "annotation_overhead_mb": round(peak - before, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="checkpoint folder (default: tiny model)")
    parser.add_argument(
        "--kind", default="distilbert", choices=["distilbert", "albert", "longformer", "bert"]
    )
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or tiny_model(args.kind, Path(tmp))
        result = measure(args, model)
    if args.json:
        print(json.dumps(result))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0 if result["tagged_tokens"] == result["tokens"] else 1


if __name__ == "__main__":
    sys.exit(main())
