"""The ``nerzoo`` command line (typer), one module per command group; ``main`` is the
console-script entry point, ``app`` the typer app. See ``cli.main`` for the list."""

from .main import app, main

__all__ = ["app", "main"]
