"""Are a built-in model's entities the same whatever the ``nlp.pipe`` batch size?

Runs zoo models over CoNLL-2003 valid (words as given, so tokenisation is fixed) with each
``--batch-sizes`` value and compares every Doc with the run at the first batch size: how many
Docs and entities differ, and the largest confidence difference of an entity found in both.
Exits 1 if any entity differs or a confidence moves by more than ``--score-tol``.

    python scripts/batch_independence.py                       # both models, 1/8/64/1000
    python scripts/batch_independence.py minilm_conll03 --limit 300 --batch-sizes 1,8,64
    python scripts/batch_independence.py minilm_conll03 --onnx-file old.int8.onnx  # another file

``--onnx-file`` swaps the network of the (single) model for another int8 ONNX file with the same
inputs, e.g. the model before a re-quantisation, to show what changed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VALID = ROOT.parent / "shared" / "data" / "conll2003" / "valid.txt"
MODELS = ("minilm_conll03", "minilm_fewnerd")
UNITS = ("sentences", "documents")
# Entities as (start token, end token, label) with their confidence.
Ents = dict[tuple[int, int, str], float]


@dataclass
class Row:
    """One model, unit and batch size, compared with the reference batch size."""

    model: str
    unit: str
    docs: int
    batch_size: int
    docs_differing: int
    ents_differing: int
    ents: int
    max_score_diff: float


def texts(path: Path, unit: str, limit: int | None) -> list[list[str]]:
    """Word lists: one per sentence, or one per document (its sentences concatenated)."""
    sys.path.insert(0, str(ROOT))
    from spacy_nerzoo.data.readers import read_documents, read_sentences

    if unit == "sentences":
        out = [s.words for _, s in read_sentences(path)]
    else:
        out = [[w for s in d.sentences for w in s.words] for d in read_documents(path)]
    return out[:limit] if limit else out


def annotate(nlp: Any, words: list[list[str]], batch_size: int) -> list[Ents]:
    from spacy.tokens import Doc

    docs = (Doc(nlp.vocab, words=w) for w in words)
    return [
        {(e.start, e.end, e.label_): float(e._.confidence) for e in doc.ents}
        for doc in nlp.pipe(docs, batch_size=batch_size)
    ]


def compare(model: str, unit: str, nlp: Any, words: list[list[str]], sizes: list[int]) -> list[Row]:
    reference = annotate(nlp, words, sizes[0])
    rows = []
    for size in sizes:
        got = reference if size == sizes[0] else annotate(nlp, words, size)
        docs_diff = ents_diff = 0
        max_diff = 0.0
        for ref, new in zip(reference, got, strict=True):
            changed = len(ref.keys() ^ new.keys())
            docs_diff += changed > 0
            ents_diff += changed
            for key in ref.keys() & new.keys():
                max_diff = max(max_diff, abs(ref[key] - new[key]))
        total = sum(len(r) for r in reference)
        rows.append(Row(model, unit, len(words), size, docs_diff, ents_diff, total, max_diff))
    return rows


def load(model: str, onnx_file: Path | None) -> Any:
    from spacy_nerzoo.api import load as load_model

    nlp = load_model(model)
    if onnx_file is not None:
        from spacy_nerzoo.backends.onnx_backend import OnnxBackend

        runtime = next(p for _, p in nlp.pipeline if hasattr(p, "runtime")).runtime
        runtime.backend = OnnxBackend(onnx_file, precision="int8")
    return nlp


def markdown(rows: list[Row], ref_size: int) -> str:
    lines = [
        f"| model | unit | Docs | batch size | Docs differing from batch {ref_size} | "
        "entities differing | entities | max confidence difference |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.model} | {r.unit} | {r.docs} | {r.batch_size} | {r.docs_differing} | "
        f"{r.ents_differing} | {r.ents} | {r.max_score_diff:.2g} |"
        for r in rows
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=list(MODELS))
    parser.add_argument("--data", type=Path, default=VALID, help="a CoNLL-2003 column file")
    parser.add_argument("--batch-sizes", default="1,8,64,1000")
    parser.add_argument("--units", default=",".join(UNITS))
    parser.add_argument("--limit", type=int, default=None, help="first N sentences / documents")
    parser.add_argument("--onnx-file", type=Path, default=None)
    parser.add_argument("--score-tol", type=float, default=1e-3)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    units = args.units.split(",")
    if args.onnx_file is not None and len(args.models) != 1:
        parser.error("--onnx-file replaces one model's network: name exactly one model")
    rows: list[Row] = []
    for model in args.models:
        nlp = load(model, args.onnx_file)
        for unit in units:
            rows += compare(model, unit, nlp, texts(args.data, unit, args.limit), sizes)
    print(markdown(rows, sizes[0]))
    bad = [r for r in rows if r.ents_differing or r.max_score_diff > args.score_tol]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
