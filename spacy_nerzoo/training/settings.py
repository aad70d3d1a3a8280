"""The settings of a training run and of a teacher's labelling run, as typed objects.

``nerzoo train`` and ``nerzoo distill`` (``spacy_nerzoo.cli.train``) build these from their
options; Python code builds them directly and calls ``finetune.train`` / ``distill.label``. The
defaults here are the recipe of the built-in MiniLM CoNLL-2003 model and the only copy of it: the
command-line options take theirs from these classes. Field names are the option names with ``_``
for ``-``, and ``asdict(settings)`` is what ``metrics.json`` records as ``hyperparameters`` (and
what ``--resume`` compares), so renaming a field changes both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: ``--format`` values: ``auto`` detects the format from the training file; ``conll2003`` is an
#: alias of ``conll03``.
FormatOption = Literal["auto", "conll03", "conll2003", "fewnerd"]
FORMAT_OPTIONS: tuple[str, ...] = ("auto", "conll03", "conll2003", "fewnerd")


@dataclass
class TrainSettings:
    """One fine-tuning run (``finetune.train``); see ``nerzoo train --help`` for each field."""

    train: str  # training file (CoNLL-2003 or Few-NERD)
    dev: str  # validation file, same format (model selection)
    output: str  # output folder (best/, last/, metrics.json)
    format: FormatOption = "auto"
    base_model: str | None = None  # 'minilm' (default), 'mpnet', a folder or a hub id
    epochs: int = 8
    lr: float = 1e-4
    batch_size: int = 16  # windows per step
    max_length: int = 256  # window, incl. the special tokens
    stride: int | None = None  # inference overlap; None: max_length // 4
    seed: int = 0
    warmup: float = 0.1  # fraction of steps warming up
    weight_decay: float = 0.01
    clip: float = 1.0  # gradient-norm clip
    threads: int = 2
    bf16: bool = False  # bf16 autocast for training (fp32 master weights)
    eval_bf16: bool = False
    eval_batch_size: int = 32
    eval_limit: int = 0  # validate on the first N dev docs; 0 = all
    log_every: int = 20
    max_steps: int = 0  # end training early; 0 = off
    save_every: int = 0  # also checkpoint last/ every N steps; 0 = off
    stop_after: int = 0  # checkpoint and stop after N steps of this run; 0 = off
    time_limit: float = 0  # checkpoint and stop after this many minutes of this run; 0 = off
    casing: bool = False  # feed each word's casing class as token_type_ids
    casing_lr: float | None = None  # learning rate of the casing table (None: lr)
    soft_labels: str | None = None  # teacher distributions of the training words (.npy)
    unlabelled: str | None = None  # raw text to distil on (its tags are never read)
    unlabelled_soft: str | None = None  # teacher distributions of it (.npy)
    unlabelled_limit: int = 0  # first N documents of it; 0 = all
    distill_alpha: float = 0.5  # weight of the teacher term (1 - alpha: the gold term)
    temperature: float = 1.0  # distillation temperature
    head_lr: float | None = None  # learning rate of the classifier head (None: lr)
    layers: int = 0  # keep the encoder's first N layers (a smaller, faster student); 0 = all
    resume: bool = False  # continue from OUTPUT/last/

    def __post_init__(self) -> None:
        if self.format not in FORMAT_OPTIONS:
            raise ValueError(f"Unknown format {self.format!r}: choose one of {FORMAT_OPTIONS}")


@dataclass
class LabelSettings:
    """One teacher labelling run (``distill.label``): per-word distributions of a corpus."""

    teacher: str  # teacher checkpoint folder (trainer output)
    data: str  # CoNLL-2003 or Few-NERD file (tags unused)
    output: str  # .npy of per-word distributions
    limit: int = 0  # first N documents only; 0 = all
    max_length: int | None = None  # None: the teacher's
    batch_size: int = 16
    bf16: bool = True
    threads: int = 2
