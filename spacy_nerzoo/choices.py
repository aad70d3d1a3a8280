"""Enumerated command-line choices shared by the CLI commands (typer needs Enum classes)."""

from __future__ import annotations

from enum import Enum


class FormatChoice(str, Enum):  # noqa: UP042 (StrEnum needs 3.11; we support 3.10)
    auto = "auto"
    conll03 = "conll03"
    fewnerd = "fewnerd"


class LevelChoice(str, Enum):  # noqa: UP042
    fine = "fine"
    coarse = "coarse"


class SchemeChoice(str, Enum):  # noqa: UP042
    auto = "auto"
    iob = "iob"
    io = "io"


class PrecisionChoice(str, Enum):  # noqa: UP042
    int8 = "int8"
    fp32 = "fp32"
