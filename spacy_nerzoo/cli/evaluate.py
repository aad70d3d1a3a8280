"""``nerzoo evaluate`` (run a model on gold data) and ``nerzoo score`` (score a prediction file):
the token-level table and conlleval's phrase-level block of ``evaluation.report``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import tee
from pathlib import Path
from typing import Annotated, Literal, cast

import typer
from spacy.language import Language
from spacy.tokens import Doc, DocBin

from ..api import load
from ..catalogue import FEWNERD_LABELS
from ..choices import LevelChoice, SchemeChoice
from ..data.converters import detect_format, docs_from_file
from ..displacy import entity_labels
from ..evaluation.conlleval import LabelLevel, Scheme
from ..evaluation.report import evaluate_docs, fresh_doc, score_files
from ..serialization import write_text_atomic
from .common import BatchOpt, ConfigOpt, ModelArg, parse_config, parse_types

FEWNERD_TYPES = frozenset(FEWNERD_LABELS) | {label.split("-", 1)[0] for label in FEWNERD_LABELS}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead.")]
TypesOpt = Annotated[
    str | None,
    typer.Option(help="Comma-separated types to score, or 'gold' for the gold file's own."),
]
LevelOpt = Annotated[
    LevelChoice, typer.Option(help="'coarse' scores Few-NERD types by their coarse part.")
]


def _gold_docs(path: Path, nlp: Language, label_level: LabelLevel) -> Iterator[Doc]:
    if path.suffix == ".spacy":
        return DocBin().from_disk(path).get_docs(nlp.vocab)
    return docs_from_file(path, nlp.vocab, label_level=label_level)


def _scheme(choice: SchemeChoice, gold: Path, nlp: Language) -> Literal["iob", "io"]:
    """IO for Few-NERD (its official evaluation merges adjacent same-type tokens), else IOB."""
    if choice != SchemeChoice.auto:
        return cast(Literal["iob", "io"], choice.value)
    if gold.suffix != ".spacy":
        return "io" if detect_format(gold) == "fewnerd" else "iob"
    labels = entity_labels(nlp)
    return "io" if labels and set(labels) <= FEWNERD_TYPES else "iob"


def evaluate(
    model: ModelArg,
    gold: Annotated[
        Path,
        typer.Argument(
            help="Gold data: a .spacy file or a CoNLL-2003 / Few-NERD column file.",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ],
    json_output: JsonOpt = False,
    types: TypesOpt = None,
    label_level: LevelOpt = LevelChoice.fine,
    scheme: Annotated[
        SchemeChoice,
        typer.Option(help="Tags to score: iob, io (Few-NERD) or auto (from the data/model)."),
    ] = SchemeChoice.auto,
    batch_size: BatchOpt = 32,
    config: ConfigOpt = None,
    output: Annotated[
        Path | None, typer.Option(help="Also write the report to this file.", dir_okay=False)
    ] = None,
) -> None:
    """Run MODEL on the words of a gold corpus and print token-level and conlleval scores."""
    nlp = load(model, **parse_config(config))
    level = cast(LabelLevel, label_level.value)
    # Gold docs are read once and paired with predictions as they come; tee buffers only the
    # docs of the batch in flight.
    for_gold, for_pred = tee(_gold_docs(gold, nlp, level))
    pred = nlp.pipe((fresh_doc(doc, nlp.vocab) for doc in for_pred), batch_size=batch_size)
    report = evaluate_docs(
        for_gold,
        pred,
        scheme=_scheme(scheme, gold, nlp),
        types=parse_types(types),
        label_level=level,
    )
    text = json.dumps(report.to_dict(), indent=2) if json_output else report.format()
    typer.echo(text)
    if output is not None:
        write_text_atomic(output, text + "\n")


def score(
    gold_path: Annotated[Path, typer.Argument(help="Gold CoNLL-format file.", exists=True)],
    pred_path: Annotated[
        Path, typer.Argument(help="Predictions: same tokens, predicted tag last.", exists=True)
    ],
    scheme: Annotated[
        SchemeChoice, typer.Option(help="Tag scheme: IOB1/IOB2/IOBES, IO or detect.")
    ] = SchemeChoice.auto,
    types: TypesOpt = None,
    label_level: LevelOpt = LevelChoice.fine,
    json_output: JsonOpt = False,
) -> None:
    """Print the token table and conlleval block for a prediction file against a gold file."""
    report = score_files(
        gold_path,
        pred_path,
        scheme=cast(Scheme, scheme.value),
        types=parse_types(types),
        label_level=cast(LabelLevel, label_level.value),
    )
    typer.echo(json.dumps(report.to_dict(), indent=2) if json_output else report.format())
