"""The ``nerzoo`` command line: ``list``, ``info``, ``predict``, ``render``, ``evaluate``,
``convert`` and ``score``. ``main`` is the console-script entry point; ``app`` the typer app.
"""

from .main import app, main

__all__ = ["app", "main"]
