"""The ``nerzoo`` command: the typer app, its error handling and its commands.

One module per command group: ``zoo`` (list, info), ``annotate`` (predict, render), ``evaluate``
(evaluate, score), ``convert``, ``export`` (save, export, bundle, import-sparknlp), ``train``
(train, distill) and ``demo``. Every command resolves MODEL with ``spacy_nerzoo.api.
resolve_model`` (zoo name, saved pipeline folder or Hugging Face checkpoint folder), so the CLI
and ``spacy_nerzoo.load`` agree. The library modules import no CLI framework; modules that were
run with ``python -m`` (``training.finetune``, ``data.converters``, ...) hand over to
:func:`run_module`.

Errors a user can fix (a missing model, a bad ``--config`` key, an unreadable file) are printed as
one line on stderr with exit code 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ..errors import NerzooError
from . import annotate, convert, demo, evaluate, export, train, zoo
from .common import parse_config
from .train import restart_with_passive_openmp

__all__ = ["app", "error_message", "main", "parse_config", "run_module"]

# Failures with a message meant for users; anything else is a bug and says how to see more.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    NerzooError,
    ValueError,
    OSError,
    KeyError,
    ImportError,
)


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


app.command("list")(zoo.list_models)
app.command()(zoo.info)
app.command()(annotate.predict)
app.command()(annotate.render)
app.command()(evaluate.evaluate)
app.command()(evaluate.score)
app.command("convert")(convert.convert_command)
app.command()(export.save)
app.command()(export.export)
app.command()(export.bundle)
app.command()(export.calibrate)
app.command("import-sparknlp")(export.import_sparknlp_cli)
app.command()(train.train)
app.command()(train.distill)
app.command()(demo.demo)


def main(argv: Sequence[str] | None = None, *, process: bool | None = None) -> None:
    """Entry point of the ``nerzoo`` script; ``--debug`` is accepted anywhere before ``--``.

    ``process`` (default: ``argv is None``) says this call is the whole process, which training
    commands may restart once to set ``OMP_WAIT_POLICY`` (``cli.train``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    options = args[: args.index("--")] if "--" in args else args
    if "--debug" in options:
        args.remove("--debug")
        args.insert(0, "--debug")
    whole_process = argv is None if process is None else process
    if whole_process:
        restart_with_passive_openmp(args)
    app(args=args, prog_name="nerzoo")


def run_module(command: str) -> None:
    """``python -m spacy_nerzoo.<module> ARGS`` as ``nerzoo COMMAND ARGS`` (old entry points)."""
    main([command, *sys.argv[1:]], process=True)


if __name__ == "__main__":
    main()
