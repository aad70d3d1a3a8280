"""How fast are the built-in model and en_core_web_sm at each ``nlp.pipe(batch_size=...)``?

spaCy's default batch is 1,000 texts; on long documents that is en_core_web_sm's slow setting,
so a comparison at the default flatters whoever is not slowed by it. One process each, the
CoNLL-2003 test documents as ``benchmark.py builtin`` feeds them, median of ``--repeats`` passes
(wall clock and process CPU time).

    python scripts/pipe_batch_sizes.py --sizes 1000,128,64,32,16,4,1
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,128,64,32,16,4,1")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spacy-model", default=None)
    args = parser.parse_args(argv)

    import spacy
    from benchmark import (  # type: ignore[import-not-found]
        DATA,
        SPACY_EXCLUDE,
        cpu_class,
        cpu_flags,
        document_texts,
        spacy_peer,
    )
    from threads_vs_processes import median_pass  # type: ignore[import-not-found]

    from spacy_nerzoo.api import load

    texts = document_texts(DATA, None)
    sizes = [int(s) for s in args.sizes.split(",")]
    pipelines = {"minilm_conll03": load("minilm_conll03")}
    peer = spacy_peer(args.spacy_model)
    if peer:
        pipelines["en_core_web_sm (tok2vec+ner)"] = spacy.load(peer, exclude=list(SPACY_EXCLUDE))
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {cpu_class(cpu_flags()[1])}; {texts.description}"
    )
    print("\n| pipeline | nlp.pipe batch_size | words/s (wall) | words / CPU-s |")
    print("|---|---:|---:|---:|")
    for name, nlp in pipelines.items():
        for size in sizes:
            wall, cpu = median_pass(nlp, texts.texts, args.repeats, batch_size=size)
            row = f"| {name} | {size} | {texts.words / wall:,.0f} | {texts.words / cpu:,.0f} |"
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
