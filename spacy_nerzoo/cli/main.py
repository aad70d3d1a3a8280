"""The ``nerzoo`` command: browse the zoo, annotate text, render pages, convert and score corpora.

Every command resolves MODEL with ``spacy_nerzoo.api.resolve_model`` (zoo name, saved pipeline
folder or Hugging Face checkpoint folder), so the CLI and ``spacy_nerzoo.load`` agree. Input is
streamed: ``--file`` and stdin are read line by line (one document per line) into ``nlp.pipe`` and
written out as each batch is done, so memory stays bounded however long the input is.

Errors a user can fix (a missing model, a bad ``--config`` key, an unreadable file) are printed as
one line on stderr with exit code 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from itertools import tee
from pathlib import Path
from typing import IO, Annotated, Any, Literal, cast

import typer
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from typer.core import TyperGroup

from ..api import availability, chunk_rows, load
from ..backends.onnx_backend import ONNX_FILE_NAMES
from ..catalogue import FEWNERD_LABELS, ZOO, ZooEntry, get_entry
from ..choices import LevelChoice, PrecisionChoice, SchemeChoice
from ..data.converters import convert_cli, detect_format, docs_from_file
from ..displacy import entity_labels, iter_html
from ..errors import NerzooError
from ..evaluation.conlleval import LabelLevel
from ..evaluation.report import TypesOption, doc_tags, evaluate_docs, fresh_doc, score_cli

# Failures with a message meant for users; anything else is a bug and says how to see more.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    NerzooError,
    ValueError,
    OSError,
    KeyError,
    ImportError,
)
FEWNERD_TYPES = frozenset(FEWNERD_LABELS) | {label.split("-", 1)[0] for label in FEWNERD_LABELS}
WRAP = 100


def error_message(exc: BaseException) -> str:
    """One line saying what went wrong, without spaCy's config dumps or Python reprs."""
    from confection import ConfigValidationError

    if isinstance(exc, ConfigValidationError):
        parts = [
            f"{'.'.join(str(x) for x in err.get('loc', []))}: {err.get('msg')}"
            for err in exc.errors or []
        ]
        title = (exc.title or "Config validation error").strip()
        text = f"{title}: {'; '.join(parts)}" if parts else title
    elif isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    elif isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.strerror}: {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(text.split())
    if not isinstance(exc, EXPECTED_ERRORS):
        text = f"{type(exc).__name__}: {text} (run with --debug for the traceback)"
    return text


# Exceptions the command-line machinery handles itself (--help, usage errors, Ctrl-C). Recent
# typer versions vendor click, so these are typer's classes, not the click package's.
_CLICK_EXCEPTIONS: tuple[type[BaseException], ...] = (
    typer.Exit,
    typer.Abort,
    next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"),
)


class NerzooGroup(TyperGroup):
    """The command group; turns any failure of a subcommand into one line and exit code 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _CLICK_EXCEPTIONS:
            raise
        except BrokenPipeError:  # the reader went away (`| head`); typer exits quietly
            raise
        except Exception as e:
            if ctx.params.get("debug"):
                raise
            typer.echo(f"nerzoo: error: {error_message(e)}", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="nerzoo",
    cls=NerzooGroup,
    help="A zoo of named-entity recognisers for spaCy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback when a command fails.")
    ] = False,
) -> None:
    """A zoo of named-entity recognisers for spaCy."""


# -- shared options ----------------------------------------------------------------------------

ModelArg = Annotated[
    str,
    typer.Argument(
        help="Zoo name (see `nerzoo list`), saved spaCy pipeline folder or Hugging Face "
        "checkpoint folder.",
        show_default=False,
    ),
]
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
BatchOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Documents per nlp.pipe batch.")]
ConfigOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--config",
        "-c",
        help="Component setting key=value (repeatable); the value is parsed as JSON when it "
        "can be, e.g. -c backend=onnx -c batch_size=16 -c 'labels=[\"PER\"]'.",
    ),
]


def parse_config(items: Sequence[str] | None) -> dict[str, Any]:
    """``["key=value", ...]`` to a dict; values are JSON when they parse, else strings."""
    config: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--config expects key=value, got {item!r}")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            config[key] = value
    return config


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


# -- commands ----------------------------------------------------------------------------------


def _labels_summary(labels: Sequence[str], n: int = 4) -> str:
    shown = ", ".join(labels[:n])
    return f"{len(labels)}: {shown}{', ...' if len(labels) > n else ''}"


def _reference(entry: ZooEntry) -> str:
    ref = entry.reference
    if ref is None or ref.micro_f1 is None:
        return "-"
    return f"{ref.micro_f1:.4f} ({ref.split})"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


@app.command("list")
def list_models() -> None:
    """List the zoo: architecture, labels, reference F1 and whether the weights are here."""
    rows = [["name", "architecture", "labels", "reference F1", "weights here"]]
    for entry in ZOO.values():
        here = availability(entry)
        rows.append(
            [
                entry.name,
                entry.architecture,
                _labels_summary(entry.labels),
                _reference(entry),
                f"{'yes' if here.available else 'no'}: {here.where}",
            ]
        )
    typer.echo(_table(rows))


def _wrap(text: str, indent: str = "  ", first: str | None = None) -> str:
    return textwrap.fill(
        text,
        WRAP,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_on_hyphens=False,
        break_long_words=False,
    )


def _label_lines(labels: Sequence[str]) -> list[str]:
    """Labels wrapped; Few-NERD style ``coarse-fine`` labels one line per coarse family."""
    if not all("-" in label for label in labels):
        return [_wrap(", ".join(labels))]
    families: dict[str, list[str]] = {}
    for label in labels:
        coarse, fine = label.split("-", 1)
        families.setdefault(coarse, []).append(fine)
    width = max(len(c) for c in families) + 4
    return [
        _wrap(", ".join(fine), " " * (width + 2), f"  {coarse + '-*:':<{width}}")
        for coarse, fine in families.items()
    ]


@app.command()
def info(
    name: Annotated[str, typer.Argument(help="Zoo model name.", show_default=False)],
) -> None:
    """Show a model card: labels, settings, sources and reference scores."""
    entry = get_entry(name)
    here = availability(entry)
    out = [entry.name, "=" * len(entry.name)]
    if entry.description:
        out += [textwrap.fill(entry.description, WRAP), ""]
    out += [
        f"Architecture:  {entry.architecture} (base encoder: {entry.base_encoder})",
        f"Labels ({len(entry.labels)}):",
        *_label_lines(entry.labels),
        "Settings:",
        f"  max_length:      {entry.max_length} wordpieces",
        f"  case sensitive:  {'yes' if entry.case_sensitive else 'no (input is lowercased)'}",
        f"  tag scheme:      {entry.tag_scheme}",
        "Sources:",
        f"  Spark NLP model:    {entry.spark_nlp_model or '-'}",
        f"  public checkpoint:  {entry.checkpoint or 'none'}",
    ]
    if entry.spark_nlp_download:
        out += [
            f"  Spark NLP download: {entry.spark_nlp_download}",
            f"                      {entry.spark_nlp_url}",
            f"  import it with:     nerzoo import-sparknlp {entry.spark_nlp_download} "
            f"{entry.name}-sparknlp",
        ]
    if entry.bundled:
        out.append(f"  bundled:            {entry.bundled}")
    out.append(f"  weights here:       {'yes' if here.available else 'no'}: {here.where}")
    if entry.checkpoint_note:
        out.append(_wrap(entry.checkpoint_note, "    "))
    ref = entry.reference
    if ref is not None:
        out += ["Reference scores:", f"  source:  {ref.source}", f"  split:   {ref.split}"]
        if ref.micro_f1 is not None:
            out.append(f"  micro F1:  {ref.micro_f1:.4f}")
        if ref.per_type_f1:
            width = max(len(t) for t in ref.per_type_f1)
            out += [f"    {t:<{width}}  {f1:.4f}" for t, f1 in ref.per_type_f1.items()]
        if ref.note:
            out.append(_wrap(ref.note, "  "))
    if entry.licence:
        out += ["Licence:", _wrap(entry.licence)]
    typer.echo("\n".join(out))


@app.command()
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


@app.command()
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


@app.command()
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
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
    types: Annotated[
        str | None,
        typer.Option(help="Comma-separated types to score, or 'gold' for the gold file's own."),
    ] = None,
    label_level: Annotated[
        LevelChoice, typer.Option(help="'coarse' scores Few-NERD types by their coarse part.")
    ] = LevelChoice.fine,
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
    chosen: TypesOption
    if types is None or types == "gold":
        chosen = types
    else:
        chosen = [t.strip() for t in types.split(",") if t.strip()]
    # Gold docs are read once and paired with predictions as they come; tee buffers only the
    # docs of the batch in flight.
    for_gold, for_pred = tee(_gold_docs(gold, nlp, level))
    pred = nlp.pipe((fresh_doc(doc, nlp.vocab) for doc in for_pred), batch_size=batch_size)
    report = evaluate_docs(
        for_gold, pred, scheme=_scheme(scheme, gold, nlp), types=chosen, label_level=level
    )
    text = json.dumps(report.to_dict(), indent=2) if json_output else report.format()
    typer.echo(text)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n", encoding="utf8")


@app.command()
def save(
    model: ModelArg,
    output: Annotated[Path, typer.Argument(help="Folder to write the pipeline to.")],
    config: ConfigOpt = None,
) -> None:
    """Save MODEL as a spaCy pipeline folder (weights inside), ready for `spacy package`."""
    nlp = load(model, **parse_config(config))
    nlp.to_disk(output)
    typer.echo(f"Saved {model} to {output}")


@app.command()
def export(
    model: ModelArg,
    output: Annotated[Path, typer.Argument(help="Folder to write (config, tokenizer, ONNX).")],
    precision: Annotated[
        PrecisionChoice, typer.Option(help="int8 (dynamic quantisation) or fp32.")
    ] = PrecisionChoice.int8,
    component: Annotated[
        str | None, typer.Option(help="Component to export, for a pipeline with several.")
    ] = None,
) -> None:
    """Export a checkpoint or a pipeline's token classifier to ONNX, checked against torch.

    The folder written works as `model` with backend="onnx" (dynamic batch and sequence axes).
    """
    from ..export.bundle import bundle_model, export_source

    out = bundle_model(export_source(model, component), output, precision=precision.value)
    typer.echo(f"Wrote {out / ONNX_FILE_NAMES[precision.value]}")


@app.command("import-sparknlp")
def import_sparknlp_cli(
    source: Annotated[
        Path, typer.Argument(help="A Spark NLP 3.x model download (zip) or its unzipped folder.")
    ],
    output: Annotated[Path, typer.Argument(help="Folder to write the converted model to.")],
    embeddings: Annotated[
        str | None,
        typer.Option(
            help="NerDL only: the embedding source, a Hugging Face encoder (hub id or folder) "
            "or ELMO_OPTIONS.json,ELMO_WEIGHTS.hdf5. Default: the one its storageRef names."
        ),
    ] = None,
    num_attention_heads: Annotated[
        int | None, typer.Option(help="Token classifiers: override the heads read off the graph.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace OUTPUT if it exists.")] = False,
) -> None:
    """Convert a Spark NLP download into a model our components load (needs [sparknlp]).

    Token classifiers become a Hugging Face folder: config={"model": OUTPUT}. A NerDLModel becomes
    a spaCy pipeline: spacy.load(OUTPUT).
    """
    from ..sparknlp import component_config, import_sparknlp

    out = import_sparknlp(
        source,
        output,
        overwrite=overwrite,
        num_attention_heads=num_attention_heads,
        embeddings=_embeddings_option(embeddings),
    )
    settings = component_config(out)
    if settings.get("@architectures"):
        typer.echo(f"Wrote {out}; import a NerDL model over it with --embeddings {out}")
    elif settings:
        typer.echo(f"Wrote {out}; use it with nlp.add_pipe('token_classifier', config={settings})")
    else:
        typer.echo(f"Wrote {out}; load it with spacy.load('{out}')")


def _embeddings_option(value: str | None) -> dict[str, Any] | None:
    """``--embeddings``: an ELMo options/weights pair or a Hugging Face encoder."""
    if value is None:
        return None
    if (Path(value) / "sparknlp.json").exists():  # a converted DistilBertEmbeddings download
        from ..sparknlp import embeddings_config

        return embeddings_config(value)
    if "," in value:
        options, weights = (v.strip() for v in value.split(",", 1))
        return {
            "@architectures": "spacy_nerzoo.ElmoEmbeddings.v1",
            "options_file": options,
            "weight_file": weights,
            "pooling_layer": "elmo",
        }
    return {"@architectures": "spacy_nerzoo.TransformerEmbeddings.v1", "name": value}


app.command("convert")(convert_cli)
app.command("score")(score_cli)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``nerzoo`` script; ``--debug`` is accepted anywhere before ``--``."""
    args = list(sys.argv[1:] if argv is None else argv)
    options = args[: args.index("--")] if "--" in args else args
    if "--debug" in options:
        args.remove("--debug")
        args.insert(0, "--debug")
    app(args=args, prog_name="nerzoo")


if __name__ == "__main__":
    main()
