"""Validation: a checkpoint in the spaCy component, scored with the project's conlleval.

The same path as ``nerzoo evaluate CHECKPOINT DEV -c max_length=L -c stride=S``: the component's
windows, pooling and decoding, and ``evaluation.report.evaluate_docs``; so the dev F1 the trainer
logs and selects on is the number that command reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from spacy_nerzoo.training.corpus import SCHEMES, Format

if TYPE_CHECKING:
    from spacy.tokens import Doc

    from spacy_nerzoo.evaluation.conlleval import ConllevalResult

# Docs per ``nlp.pipe`` batch in validation: the component sorts a batch's windows by length.
EVAL_DOCS_PER_BATCH = 256


def read_gold(path: str | Path, fmt: Format, limit: int = 0) -> list[Doc]:
    """Gold Docs of a dev file as the converters make them (``nerzoo convert``), ``limit`` first.

    One Doc per CoNLL-2003 document (sentence starts set) or per Few-NERD sentence.
    """
    from itertools import islice

    from spacy_nerzoo.data.converters import docs_from_file

    return list(islice(docs_from_file(path, format=fmt), limit or None))


def percent_scores(result: ConllevalResult) -> dict[str, Any]:
    p, r, f = result.overall.percentages()
    per_type = {
        name: dict(zip(("p", "r", "f1"), counts.percentages(), strict=True))
        for name, counts in sorted(result.types.items())
    }
    return {"p": p, "r": r, "f1": f, "per_type": per_type}


def evaluate(
    checkpoint: str | Path,
    gold: Sequence[Doc],
    *,
    fmt: Format,
    max_length: int,
    stride: int | None,
    batch_size: int = 32,
    bf16: bool = False,
) -> dict[str, Any]:
    """Phrase-level P/R/F1 in percent of the checkpoint on ``gold``, overall and per type.

    The checkpoint runs in the ``token_classifier`` component (torch, fp32 or bf16) on fresh Docs
    with the gold words and sentence starts, and is scored by ``evaluate_docs``, the code behind
    ``nerzoo evaluate``. Few-NERD scores also hold ``coarse``: the same predictions scored by
    coarse type (``person-actor`` -> ``person``, adjacent same-coarse tokens forming one entity).
    """
    from spacy_nerzoo.api import load
    from spacy_nerzoo.evaluation.report import evaluate_docs, fresh_doc

    nlp = load(
        str(checkpoint),
        max_length=max_length,
        stride=stride,
        batch_size=batch_size,
        precision="bf16" if bf16 else "fp32",
    )
    pred = list(nlp.pipe((fresh_doc(d, nlp.vocab) for d in gold), batch_size=EVAL_DOCS_PER_BATCH))
    scheme: Literal["iob", "io"] = "io" if SCHEMES[fmt] == "IO" else "iob"
    scores = percent_scores(evaluate_docs(gold, pred, scheme=scheme).phrase)
    if fmt == "fewnerd":
        coarse = evaluate_docs(gold, pred, scheme=scheme, label_level="coarse")
        scores["coarse"] = percent_scores(coarse.phrase)
    return scores
