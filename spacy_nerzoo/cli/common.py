"""What several ``nerzoo`` commands share: the MODEL argument, batch and ``--config`` options."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from ..evaluation.report import TypesOption

ModelArg = Annotated[
    str,
    typer.Argument(
        help="Zoo name (see `nerzoo list`), saved spaCy pipeline folder or Hugging Face "
        "checkpoint folder.",
        show_default=False,
    ),
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


def parse_types(types: str | None) -> TypesOption:
    """``--types``: None (all), ``gold`` (the gold data's own) or a comma-separated list."""
    if types is None or types == "gold":
        return types
    return [t.strip() for t in types.split(",") if t.strip()]
