"""One model, one number: the same model scored the ways users score it, side by side.

``nerzoo evaluate`` (conlleval over the gold sentences), ``spacy evaluate`` (spaCy's span scorer
over Docs re-tokenised from the reference text, without sentence starts) and whole-document
``nlp.pipe`` differ only in what the model is given. This prints each way's F1 for one split:

- sentence-split: gold tokens with the gold sentence starts (what ``nerzoo evaluate`` runs);
- no sentence starts, lines kept: gold tokens, each sentence ending in a newline token, as the
  text of a raw article (``nerzoo convert --newlines``);
- no sentence starts, lines lost: gold tokens joined by spaces (``nerzoo convert``'s text);
- raw text, lines kept / lost: the reference text re-tokenised by spaCy, which is exactly what
  ``spacy evaluate`` does with the two DocBins.

Each row is scored by conlleval over the gold sentences (where the tokens are the gold ones) and
by spaCy's NER scorer (``nlp.evaluate``, the code behind ``spacy evaluate``).

Usage::

    python scripts/evaluation_agreement.py minilm_conll03 ../shared/data/conll2003/valid.txt
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

from spacy_nerzoo.api import load
from spacy_nerzoo.data.converters import docs_from_file
from spacy_nerzoo.evaluation.report import evaluate_docs, fresh_doc


def _spacy_f(nlp: Language, preds: Iterable[Doc], golds: Iterable[Doc]) -> float:
    """spaCy's NER scorer, as ``spacy evaluate`` runs it (the component's registered scorer)."""
    examples = [Example(p, g) for p, g in zip(preds, golds, strict=True)]
    pipe = nlp.get_pipe(nlp.pipe_names[0])
    return float(pipe.score(examples)["ents_f"]) * 100  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("model", help="zoo name or checkpoint folder")
    p.add_argument("data", help="CoNLL-2003 file (valid or test)")
    p.add_argument("--batch-size", type=int, default=64, help="Docs per nlp.pipe batch")
    args = p.parse_args(argv)
    nlp = load(args.model)
    plain = list(docs_from_file(args.data, nlp.vocab))
    lined = list(docs_from_file(args.data, nlp.vocab, newlines=True))

    def run(docs: Iterable[Doc]) -> list[Doc]:
        return list(nlp.pipe(docs, batch_size=args.batch_size))

    def conll(gold: list[Doc], pred: list[Doc]) -> float:
        return evaluate_docs(gold, pred).phrase.overall.percentages()[2]

    rows: list[tuple[str, str, float | None, float]] = []
    split = run(fresh_doc(g, nlp.vocab) for g in plain)
    rows.append(("sentence-split", "gold", conll(plain, split), _spacy_f(nlp, split, plain)))
    for name, gold in (("lines kept", lined), ("lines lost", plain)):
        pred = run(fresh_doc(g, nlp.vocab, sentences=False) for g in gold)
        rows.append(
            (f"no sentence starts, {name}", "gold", conll(gold, pred), _spacy_f(nlp, pred, gold))
        )
    for name, gold in (("lines kept", lined), ("lines lost", plain)):
        pred = run(nlp.make_doc(g.text) for g in gold)
        rows.append((f"raw text, {name}", "spaCy", None, _spacy_f(nlp, pred, gold)))
    print(f"{args.model} on {args.data}")
    print("| input | tokens | conlleval F1 | spaCy scorer F1 |")
    print("|---|---|---|---|")
    for name, tokens, c, s in rows:
        print(f"| {name} | {tokens} | {'' if c is None else f'{c:.2f}'} | {s:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
