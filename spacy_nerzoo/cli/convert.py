"""``nerzoo convert``: CoNLL-2003 / Few-NERD column files to ``.spacy`` DocBins."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from ..choices import FormatChoice, LevelChoice
from ..data.converters import Format, convert
from ..evaluation.conlleval import LabelLevel


def convert_command(
    input_path: Annotated[
        Path, typer.Argument(help="CoNLL-2003 or Few-NERD column file.", exists=True)
    ],
    output_path: Annotated[Path, typer.Argument(help="Output .spacy file or directory.")],
    format: Annotated[
        FormatChoice, typer.Option("--format", "-f", help="Input format; 'auto' detects it.")
    ] = FormatChoice.auto,
    per_sentence: Annotated[
        bool, typer.Option("--per-sentence", help="One Doc per sentence, not per document.")
    ] = False,
    label_level: Annotated[
        LevelChoice,
        typer.Option("--label-level", help="'coarse' maps person-actor to person (Few-NERD)."),
    ] = LevelChoice.fine,
    newlines: Annotated[
        bool,
        typer.Option(
            "--newlines",
            help="End each sentence with a newline token: the text keeps the source's lines, "
            "for raw-text evaluation (spacy evaluate).",
        ),
    ] = False,
) -> None:
    """Convert a CoNLL-2003 or Few-NERD file to a .spacy DocBin with gold entities."""
    n = convert(
        input_path,
        output_path,
        format=cast(Format, format.value),
        per_sentence=per_sentence,
        label_level=cast(LabelLevel, label_level.value),
        newlines=newlines,
    )
    typer.echo(f"Wrote {n} docs to {output_path}")
