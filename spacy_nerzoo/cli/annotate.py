"""``nerzoo predict`` and ``nerzoo render``: annotate text, a file or stdin, streamed.

``--file`` and stdin are read line by line (one document per line) into ``nlp.pipe`` and written
out as each batch is done, so memory stays bounded however long the input is.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import IO, Annotated, cast

import typer
from spacy.language import Language
from spacy.tokens import Doc

from ..api import chunk_rows, load
from ..displacy import entity_labels, iter_html
from ..evaluation.report import doc_tags
from .common import BatchOpt, ConfigOpt, ModelArg, parse_config

TextArg = Annotated[
    str | None,
    typer.Argument(
        help="Text to annotate. Without it, --file or stdin is read.", show_default=False
    ),
]
FileOpt = Annotated[
    Path | None,
    typer.Option("--file", help="Read documents from this file, one per line ('-' for stdin)."),
]
DocPerFileOpt = Annotated[
    bool, typer.Option("--doc-per-file", help="Read the whole input as one document.")
]

# -- input -------------------------------------------------------------------------------------


@contextmanager
def progress_bar(total: int | None) -> Iterator[Callable[[int], object]]:
    """``advance(n_bytes)`` for a progress bar on stderr: tqdm or rich if installed, on a TTY.

    Progress is counted in bytes of input read, the one measure known in advance for a file.
    """
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    try:
        from tqdm import tqdm
    except ImportError:
        pass
    else:
        bar = tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, leave=False)
        try:
            yield bar.update
        finally:
            bar.close()
        return
    try:
        from rich.console import Console
        from rich.progress import Progress
    except ImportError:
        yield lambda n: None
        return
    with Progress(console=Console(stderr=True), transient=True) as rich_bar:
        task = rich_bar.add_task("annotating", total=total)
        yield lambda n: rich_bar.advance(task, n)


def _lines(stream: IO[bytes], advance: Callable[[int], object]) -> Iterator[str]:
    for raw in stream:
        advance(len(raw))
        yield raw.decode("utf-8").rstrip("\r\n")


def check_input(text: str | None, file: Path | None) -> None:
    """Fail on bad input arguments before a model is loaded, not after."""
    if text is not None and file is not None:
        raise ValueError("give either TEXT or --file, not both")
    if file is not None and str(file) != "-":
        if not file.exists():
            raise FileNotFoundError(2, "No such file", str(file))
        if file.is_dir():
            raise IsADirectoryError(21, "Is a directory, not a file", str(file))


@contextmanager
def input_texts(text: str | None, file: Path | None, doc_per_file: bool) -> Iterator[Iterator[str]]:
    """The documents to annotate, lazily: TEXT, else ``--file``, else stdin.

    Files and stdin give one document per line (blank lines are empty documents, so output lines
    stay aligned with input lines), or one document in all with ``doc_per_file``.
    """
    check_input(text, file)
    if text is not None:
        yield iter([text])
        return
    use_stdin = file is None or str(file) == "-"
    if use_stdin and sys.stdin.isatty():
        typer.echo("Reading documents from stdin, one per line (end with Ctrl-D).", err=True)
    total = None if use_stdin else cast(Path, file).stat().st_size
    with progress_bar(total) as advance:
        if use_stdin:
            stream = typer.get_binary_stream("stdin")
            yield _read(stream, doc_per_file, advance)
        else:
            with cast(Path, file).open("rb") as stream:
                yield _read(stream, doc_per_file, advance)


def _read(stream: IO[bytes], doc_per_file: bool, advance: Callable[[int], object]) -> Iterator[str]:
    if not doc_per_file:
        return _lines(stream, advance)
    data = stream.read()
    advance(len(data))
    return iter([data.decode("utf-8")])


# -- output ------------------------------------------------------------------------------------


class OutputFormat(str, Enum):  # noqa: UP042 (StrEnum needs 3.11; we support 3.10)
    table = "table"
    jsonl = "jsonl"
    conll = "conll"
    html = "html"


def _confidence(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def write_table(docs: Iterable[Doc], out: IO[str], nlp: Language) -> None:
    """Entities as an aligned table, written as they come (the text column is last)."""
    width = min(max([len("label"), *(len(lab) for lab in entity_labels(nlp))]), 40)
    out.write(
        f"{'doc':>5}  {'start':>7}  {'end':>7}  {'label':<{width}}  {'confidence':>10}  text\n"
    )
    for i, doc in enumerate(docs):
        for row in chunk_rows(doc, i):
            text = " ".join(row["text"].split())
            out.write(
                f"{i:>5}  {row['start']:>7}  {row['end']:>7}  {row['label']:<{width}}  "
                f"{_confidence(row['confidence']):>10}  {text}\n"
            )


def write_jsonl(docs: Iterable[Doc], out: IO[str], nlp: Language) -> None:
    """One JSON object per document: ``{"text": ..., "entities": [...]}``."""
    for i, doc in enumerate(docs):
        entities = [
            {key: row[key] for key in ("text", "label", "start", "end", "confidence")}
            for row in chunk_rows(doc, i)
        ]
        out.write(json.dumps({"text": doc.text, "entities": entities}, ensure_ascii=False))
        out.write("\n")


def write_conll(docs: Iterable[Doc], out: IO[str], nlp: Language) -> None:
    """``token<TAB>IOB2-tag`` lines, a blank line after each document; whitespace tokens skipped."""
    for doc in docs:
        for token, tag in zip(doc, doc_tags(doc), strict=True):
            if not token.is_space:
                out.write(f"{token.text}\t{tag}\n")
        out.write("\n")


def write_html(docs: Iterable[Doc], out: IO[str], nlp: Language) -> None:
    """A displaCy page with confidences on hover, streamed one document at a time."""
    for chunk in iter_html(docs, nlp):
        out.write(chunk)


WRITERS: dict[OutputFormat, Callable[[Iterable[Doc], IO[str], Language], None]] = {
    OutputFormat.table: write_table,
    OutputFormat.jsonl: write_jsonl,
    OutputFormat.conll: write_conll,
    OutputFormat.html: write_html,
}


def predict(
    model: ModelArg,
    text: TextArg = None,
    file: FileOpt = None,
    doc_per_file: DocPerFileOpt = False,
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", help="table, jsonl (one object per document), conll or html."),
    ] = OutputFormat.table,
    batch_size: BatchOpt = 32,
    config: ConfigOpt = None,
) -> None:
    """Annotate TEXT, a file or stdin (one document per line) and print the entities."""
    check_input(text, file)
    nlp = load(model, **parse_config(config))
    with input_texts(text, file, doc_per_file) as texts:
        out = sys.stdout
        WRITERS[output_format](nlp.pipe(texts, batch_size=batch_size), out, nlp)
        out.flush()


def render(
    model: ModelArg,
    text: TextArg = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The HTML page to write.", show_default=False)
    ] = Path("nerzoo.html"),
    file: FileOpt = None,
    doc_per_file: DocPerFileOpt = False,
    batch_size: BatchOpt = 32,
    config: ConfigOpt = None,
) -> None:
    """Write a self-contained displaCy page of the entities, with confidences on hover."""
    check_input(text, file)
    nlp = load(model, **parse_config(config))
    count = 0

    def counted(docs: Iterable[Doc]) -> Iterator[Doc]:
        nonlocal count
        for doc in docs:
            count += 1
            yield doc

    with input_texts(text, file, doc_per_file) as texts:
        with output.open("w", encoding="utf-8") as out:
            write_html(counted(nlp.pipe(texts, batch_size=batch_size)), out, nlp)
    typer.echo(f"Wrote {count} document{'s' if count != 1 else ''} to {output}", err=True)
