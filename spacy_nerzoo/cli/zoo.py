"""``nerzoo list`` and ``nerzoo info``: browse the zoo's models and their cards."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Annotated

import typer

from ..api import availability
from ..catalogue import ZOO, ZooEntry, get_entry
from ..sparknlp.zoo import import_commands

WRAP = 100


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
        ]
        if entry.spark_nlp_embeddings_download:
            out += [
                f"  its embeddings:     {entry.spark_nlp_embeddings_download}",
                f"                      {entry.spark_nlp_embeddings_url}",
            ]
        commands = import_commands(entry)
        out += [f"  {'import it with:' if i == 0 else '':<20}{c}" for i, c in enumerate(commands)]
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
