"""``nerzoo train`` (fine-tune an encoder) and ``nerzoo distill`` (a teacher labels a corpus).

The commands only turn options into ``TrainSettings`` / ``LabelSettings`` and call the library
(``training.finetune.train``, ``training.distill.label``); the option defaults are the settings
classes' own. ``python -m spacy_nerzoo.training.finetune`` and ``...training.distill`` are the
same commands (:func:`run_as_module`), kept for project.yml and for runs that ``--resume`` with
the command line they started with.

OpenMP: with other jobs on the CPU, OpenMP threads that spin-wait at barriers made a bf16
training step several times slower (docs/benchmarks.md); passive waiting removes that. The
OpenMP runtime reads ``OMP_WAIT_POLICY`` once, when torch loads it, which importing this package
already does, so a training process started without the variable is restarted with
``OMP_WAIT_POLICY=PASSIVE`` before any work (:func:`restart_with_passive_openmp`). A value the
user set is kept, and library imports change no environment.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import fields
from enum import Enum
from typing import Annotated, Any

import typer

from ..training.settings import LabelSettings, TrainSettings

#: Commands that train or run a teacher, and so want passive OpenMP waiting.
TRAINING_COMMANDS = ("train", "distill")
_TRAIN = TrainSettings("", "", "")
_LABEL = LabelSettings("", "", "")


class TrainFormat(str, Enum):  # noqa: UP042 (StrEnum needs 3.11; we support 3.10)
    auto = "auto"
    conll03 = "conll03"
    conll2003 = "conll2003"
    fewnerd = "fewnerd"


_FORMAT = TrainFormat(_TRAIN.format)


def _settings(cls: Any, params: dict[str, Any]) -> Any:
    """A settings object from a command's parsed options (enums become their values)."""
    names = {f.name for f in fields(cls)}
    values = {k: v.value if isinstance(v, Enum) else v for k, v in params.items() if k in names}
    return cls(**values)


def _required(help: str) -> Any:
    """A required option (``--train FILE``), shown without a default."""
    return typer.Option(help=help, show_default=False)


def _log_to_stdout(fmt: str) -> None:
    logging.basicConfig(level=logging.INFO, format=fmt, stream=sys.stdout, force=True)


def train(
    ctx: typer.Context,
    train: Annotated[str, _required("Training file (CoNLL-2003 or Few-NERD).")],
    dev: Annotated[str, _required("Validation file, same format (model selection).")],
    output: Annotated[str, _required("Output folder (best/, last/, metrics.json).")],
    format: Annotated[
        TrainFormat, typer.Option(help="Corpus format (auto: detected from --train).")
    ] = _FORMAT,
    base_model: Annotated[
        str | None,
        typer.Option(
            help="Encoder: 'minilm' (default), 'mpnet' (all-mpnet-base-v2, the [teacher] "
            "extra), a folder or a hub id; a trained nerzoo checkpoint continues training "
            "from its weights, casing rows included."
        ),
    ] = _TRAIN.base_model,
    epochs: int = _TRAIN.epochs,
    lr: float = _TRAIN.lr,
    batch_size: Annotated[int, typer.Option(help="Windows per step.")] = _TRAIN.batch_size,
    max_length: Annotated[
        int, typer.Option(help="Window, incl. the special tokens.")
    ] = _TRAIN.max_length,
    stride: Annotated[
        int | None, typer.Option(help="Inference overlap (default: max_length // 4).")
    ] = _TRAIN.stride,
    seed: int = _TRAIN.seed,
    warmup: Annotated[float, typer.Option(help="Fraction of steps warming up.")] = _TRAIN.warmup,
    weight_decay: float = _TRAIN.weight_decay,
    clip: Annotated[float, typer.Option(help="Gradient-norm clip.")] = _TRAIN.clip,
    threads: int = _TRAIN.threads,
    bf16: Annotated[
        bool, typer.Option(help="bf16 autocast for training (fp32 master weights).")
    ] = _TRAIN.bf16,
    eval_bf16: bool = _TRAIN.eval_bf16,
    eval_batch_size: int = _TRAIN.eval_batch_size,
    eval_limit: Annotated[
        int, typer.Option(help="Validate on the first N dev docs; 0 = all.")
    ] = _TRAIN.eval_limit,
    log_every: Annotated[int, typer.Option(help="Steps between log lines.")] = _TRAIN.log_every,
    max_steps: Annotated[
        int, typer.Option(help="End training early (tests, timing); 0 = off.")
    ] = _TRAIN.max_steps,
    save_every: Annotated[
        int, typer.Option(help="Also checkpoint last/ every N steps; 0 = off.")
    ] = _TRAIN.save_every,
    stop_after: Annotated[
        int,
        typer.Option(help="Checkpoint and stop after N steps of this run (schedule unchanged)."),
    ] = _TRAIN.stop_after,
    time_limit: Annotated[
        float, typer.Option(help="Checkpoint and stop after this many minutes of this run.")
    ] = _TRAIN.time_limit,
    casing: Annotated[
        bool,
        typer.Option(help="Feed each word's casing class (spacy_nerzoo.casing) as token types."),
    ] = _TRAIN.casing,
    casing_lr: Annotated[
        float | None, typer.Option(help="Learning rate of the casing table (default: --lr).")
    ] = _TRAIN.casing_lr,
    soft_labels: Annotated[
        str | None,
        typer.Option(help="Teacher distributions of --train's words (.npy from nerzoo distill)."),
    ] = _TRAIN.soft_labels,
    unlabelled: Annotated[
        str | None,
        typer.Option(help="Raw text to distil on (CoNLL or Few-NERD file; tags never read)."),
    ] = _TRAIN.unlabelled,
    unlabelled_soft: Annotated[
        str | None, typer.Option(help="Teacher distributions of --unlabelled (.npy).")
    ] = _TRAIN.unlabelled_soft,
    unlabelled_limit: Annotated[
        int, typer.Option(help="First N documents of --unlabelled; 0 = all.")
    ] = _TRAIN.unlabelled_limit,
    distill_alpha: Annotated[
        float, typer.Option(help="Weight of the teacher term (1 - alpha: the gold term).")
    ] = _TRAIN.distill_alpha,
    temperature: Annotated[
        float, typer.Option(help="Distillation temperature.")
    ] = _TRAIN.temperature,
    head_lr: Annotated[
        float | None,
        typer.Option(help="Learning rate of the classifier head (default: --lr)."),
    ] = _TRAIN.head_lr,
    layers: Annotated[
        int,
        typer.Option(
            help="Keep only the encoder's first N layers: a smaller, faster student (0 = all)."
        ),
    ] = _TRAIN.layers,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from OUTPUT/last/.")
    ] = _TRAIN.resume,
) -> None:
    """Fine-tune an encoder for NER on CoNLL-2003 or Few-NERD; select on dev F1.

    Writes OUTPUT/best/ and OUTPUT/last/ (Hugging Face folders) and metrics.json. A run stopped
    by --stop-after or --time-limit, or killed, continues with --resume.
    """
    from ..training.finetune import train as run

    _log_to_stdout("%(asctime)s %(levelname)s %(message)s")
    run(_settings(TrainSettings, ctx.params))


def distill(
    ctx: typer.Context,
    teacher: Annotated[str, _required("Teacher checkpoint folder (trainer output).")],
    data: Annotated[str, _required("CoNLL-2003 or Few-NERD file (tags unused).")],
    output: Annotated[str, _required(".npy of per-word distributions.")],
    limit: Annotated[int, typer.Option(help="First N documents only; 0 = all.")] = _LABEL.limit,
    max_length: Annotated[
        int | None, typer.Option(help="Window length (default: the teacher's).")
    ] = _LABEL.max_length,
    batch_size: int = _LABEL.batch_size,
    bf16: bool = _LABEL.bf16,
    threads: int = _LABEL.threads,
) -> None:
    """Label a corpus with a teacher: its tag distribution for every word (for --soft-labels)."""
    from ..training.distill import label

    _log_to_stdout("%(asctime)s %(message)s")
    label(_settings(LabelSettings, ctx.params))


def restart_with_passive_openmp(args: Sequence[str]) -> None:
    """Re-run this process with ``OMP_WAIT_POLICY=PASSIVE`` if it is a training command without
    the variable set (see the module docstring). Returns when no restart is needed."""
    command = next((a for a in args if not a.startswith("-")), None)
    if command not in TRAINING_COMMANDS or "OMP_WAIT_POLICY" in os.environ:
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def run_as_module(command: str, argv: Sequence[str] | None) -> int:
    """``python -m spacy_nerzoo.training.{finetune,distill} ARGS`` as ``nerzoo COMMAND ARGS``.

    As a process (``argv`` None) this is the ``nerzoo`` command line, with its error messages. A
    call with ``argv`` (tests, notebooks) parses the options the same way, then runs the command
    with its exceptions propagating (``KeyboardInterrupt`` included), and returns 0.
    """
    from .main import app, run_module

    if argv is None:
        run_module(command)
        return 0
    group = typer.main.get_command(app)
    cmd = group.commands[command]  # type: ignore[attr-defined]
    with cmd.make_context(f"nerzoo {command}", list(argv)) as ctx:
        cmd.callback(**ctx.params)  # typer's callback: converts the values, then runs
    return 0
