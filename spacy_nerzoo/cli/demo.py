"""``nerzoo demo`` (``make demo``): the built-in model on a few paragraphs of sample text, offline.

Prints the entities as a table (text, label, confidence) and writes a displaCy page.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ..api import load
from ..displacy import render_html
from ..serialization import write_text_atomic

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TEXT = REPO / "assets" / "sample_text.txt"
DEFAULT_OUTPUT = REPO / "outputs" / "demo.html"


def demo(
    model: Annotated[str, typer.Option(help="zoo name, checkpoint or pipeline folder")] = (
        "minilm_conll03"
    ),
    text_file: Annotated[
        Path, typer.Option("--file", help="paragraphs separated by blank lines")
    ] = DEFAULT_TEXT,
    output: Annotated[Path, typer.Option(help="where to write the displaCy page")] = DEFAULT_OUTPUT,
) -> None:
    """Run MODEL over the sample paragraphs and show what it finds."""
    from rich.console import Console
    from rich.table import Table

    paragraphs = [p.strip() for p in text_file.read_text(encoding="utf8").split("\n\n")]
    paragraphs = [p for p in paragraphs if p]
    start = time.perf_counter()
    nlp = load(model)
    docs = list(nlp.pipe(paragraphs))
    elapsed = time.perf_counter() - start
    table = Table(title=f"Entities found by {model}")
    for column in ("paragraph", "entity", "label", "confidence"):
        table.add_column(column, justify="right" if column in ("paragraph", "confidence") else None)
    for i, doc in enumerate(docs, start=1):
        for ent in doc.ents:
            conf = ent._.confidence
            table.add_row(str(i), ent.text, ent.label_, "" if conf is None else f"{conf:.3f}")
    console = Console()
    console.print(table)
    n_words = sum(len(d) for d in docs)
    write_text_atomic(output, render_html(docs, nlp))
    console.print(
        f"{sum(len(d.ents) for d in docs)} entities in {len(docs)} paragraphs ({n_words} tokens, "
        f"{elapsed:.1f} s including loading). displaCy page written to {output.resolve()}"
    )
