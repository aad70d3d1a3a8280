"""How much a casing model relies on its casing classes: F1 with them, and with them withheld.

The model is scored by the project's evaluator (as ``nerzoo evaluate MODEL CORPUS`` does: gold
words and sentence starts, conlleval phrase counts) twice: as it runs, and with every token type
0 (the class of special tokens, i.e. no case information). Usage::

    python scripts/withhold_casing.py minilm_conll03 corpus/conll2003-valid.spacy
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Literal

from spacy.tokens import DocBin

from spacy_nerzoo.api import load
from spacy_nerzoo.evaluation.report import evaluate_docs, fresh_doc


def f1_with_and_without(
    model: str, corpus: Path, scheme: Literal["iob", "io"]
) -> tuple[float, float]:
    """Phrase F1 (percent) of ``model`` on the gold Docs in ``corpus``, with and without casing."""
    nlp = load(model)
    runtime = nlp.get_pipe(nlp.pipe_names[0]).runtime
    if not runtime.casing:
        raise SystemExit(f"{model} takes no casing classes (config.nerzoo has no 'casing')")
    gold = list(DocBin().from_disk(corpus).get_docs(nlp.vocab))
    scores = []
    for casing in (True, False):
        runtime.casing = casing  # False: the backends get no token types, i.e. all zeros
        # nerzoo evaluate's batch size. (It mattered while int8 scaled activations per forward
        # pass; since export format 3 they are scaled per token and any batch size gives the
        # same entities.)
        pred = list(nlp.pipe((fresh_doc(doc, nlp.vocab) for doc in gold), batch_size=32))
        scores.append(evaluate_docs(gold, pred, scheme=scheme).phrase.overall.percentages()[2])
    return scores[0], scores[1]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="zoo name, pipeline or checkpoint folder of a casing model")
    parser.add_argument("corpus", type=Path, help=".spacy file of gold Docs (nerzoo convert)")
    parser.add_argument("--scheme", choices=["iob", "io"], default="iob")
    args = parser.parse_args(argv)
    with_casing, without = f1_with_and_without(args.model, args.corpus, args.scheme)
    print(f"F1 with casing classes:     {with_casing:.2f}")
    print(f"F1 with casing withheld:    {without:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
