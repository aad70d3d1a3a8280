"""Knowledge distillation: a large teacher's tag distributions train the small shipped model.

Two steps, so the expensive one runs once:

1. ``label``: the teacher (any checkpoint the trainer wrote, e.g. the cased MPNet) reads a corpus
   in the trainer's own windows and writes, for every word of the corpus in order, its tag
   distribution at the word's first piece (``.npy``, float16, ``[n_words, n_labels]``; a word the
   teacher's tokenizer gives no piece is a row of NaN and is skipped). Words, not pieces, are the
   unit, so teacher and student may split words differently.
2. The trainer (``--soft-labels`` for its training file, ``--unlabelled FILE --unlabelled-soft
   NPY`` for raw text such as Few-NERD's sentences, whose gold tags are never read) attaches those
   rows to its windows and minimises ``(1 - alpha) * gold cross-entropy + alpha * T^2 *
   cross-entropy to the teacher's distribution at temperature T`` (:func:`distillation_loss`).

Usage (``python -m spacy_nerzoo.training.distill`` takes the same options)::

    nerzoo distill --teacher training/mpnet_teacher_conll03/best \\
        --data ../shared/data/conll2003/train.txt --output training/soft/conll-train.npy
    nerzoo distill --teacher ... --data ../shared/data/fewnerd/train.txt --limit 5000 \\
        --output training/soft/fewnerd-train.npy

From Python: ``label(LabelSettings(teacher=..., data=..., output=...))``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spacy_nerzoo.casing import config_scheme
from spacy_nerzoo.data.readers import Document, Sentence, read_documents
from spacy_nerzoo.serialization import atomic_path, write_json_atomic
from spacy_nerzoo.training.settings import LabelSettings, TrainSettings
from spacy_nerzoo.training.windows import Window, build_windows, collate

logger = logging.getLogger("spacy_nerzoo.training")


def unlabelled(docs: Sequence[Document]) -> list[Document]:
    """The same words with every tag ``O``: raw text, whatever labels the file carried."""
    return [
        Document([Sentence(list(s.words), ["O"] * len(s.words)) for s in doc.sentences])
        for doc in docs
    ]


def n_words(docs: Sequence[Document]) -> int:
    return sum(len(s.words) for doc in docs for s in doc.sentences)


def teacher_labels(config: Any) -> list[str]:
    return [config.id2label[i] for i in range(config.num_labels)]


def word_distributions(
    teacher: str | Path,
    docs: Sequence[Document],
    *,
    max_length: int | None = None,
    batch_size: int = 16,
    bf16: bool = False,
) -> np.ndarray:
    """The teacher's tag distribution for every word of ``docs``, in corpus order.

    The teacher reads the corpus in the windows it was trained on (``build_windows``: a
    document's consecutive sentences packed up to ``max_length`` pieces, default the length it
    recorded), with its casing classes if it was trained with them. Rows of words without a
    piece are NaN.
    """
    from transformers import AutoModelForTokenClassification

    from spacy_nerzoo.alignment import pad_token_id
    from spacy_nerzoo.backends.cased import register_model
    from spacy_nerzoo.backends.loading import load_tokenizer, recorded_max_length

    register_model()
    model = AutoModelForTokenClassification.from_pretrained(str(teacher)).eval()
    tokenizer = load_tokenizer(teacher, model.config)
    config = model.config
    labels = teacher_labels(config)
    length = max_length or recorded_max_length(config)
    casing = config_scheme(config) is not None
    windows = build_windows(unlabelled(docs), tokenizer, length, labels, casing=casing)
    out = np.full((n_words(docs), len(labels)), np.nan, dtype=np.float32)
    order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
    pad_id = pad_token_id(tokenizer, config)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    t0, done = time.time(), 0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [windows[i] for i in order[start : start + batch_size]]
            inputs = collate(batch, pad_id)
            gold = inputs.pop("labels")
            with autocast:
                logits = model(**inputs).logits
            probs = torch.softmax(logits.float(), dim=-1)
            for row, window in enumerate(batch):
                firsts = gold[row] != -100
                out[window.words] = probs[row][firsts].numpy()
            done += len(batch)
            if start // batch_size % 50 == 0:
                logger.info("teacher: %d/%d windows, %.0f s", done, len(windows), time.time() - t0)
    return out


def attach(windows: Sequence[Any], distributions: np.ndarray) -> int:
    """Give each window the teacher rows of its words (``Window.soft``); return rows attached.

    Rows the teacher could not produce (NaN) become all-zero, which the loss skips.
    """
    attached = 0
    for window in windows:
        rows = np.nan_to_num(distributions[window.words].astype(np.float32), nan=0.0)
        window.soft = rows
        attached += int((rows.sum(axis=1) > 0).sum())
    return attached


def soft_targets(windows: Sequence[Any], labels: torch.Tensor) -> torch.Tensor | None:
    """``[batch, length, n_labels]`` teacher targets at the first pieces (zeros elsewhere)."""
    if all(w.soft is None for w in windows):
        return None
    n_labels = next(w.soft.shape[1] for w in windows if w.soft is not None)
    out = torch.zeros((*labels.shape, n_labels))
    for row, window in enumerate(windows):
        if window.soft is None:
            continue
        # First pieces (raw text keeps placeholder labels there; collate hides them from the loss).
        positions = [i for i, label in enumerate(window.labels) if label != -100]
        out[row, positions] = torch.from_numpy(window.soft)
    return out


def distillation_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    soft: torch.Tensor | None,
    alpha: float,
    temperature: float = 1.0,
) -> torch.Tensor:
    """``(1 - alpha) * CE(gold) + alpha * T^2 * CE(teacher_T, student_T)``, each a mean over the
    positions that have that target (gold tags: labelled first pieces; teacher: rows that sum to
    one). A batch with only one kind of target gets that term alone, at full weight.
    """
    flat = logits.float().reshape(-1, logits.shape[-1])
    gold = labels.reshape(-1)
    has_gold = gold != -100
    terms, weights = [], []
    if has_gold.any():
        terms.append(torch.nn.functional.cross_entropy(flat[has_gold], gold[has_gold]))
        weights.append(1.0 - alpha)
    if soft is not None and alpha > 0:
        target = soft.reshape(-1, soft.shape[-1])
        has_soft = target.sum(dim=-1) > 0.5
        if has_soft.any():
            log_p = torch.log_softmax(flat[has_soft] / temperature, dim=-1)
            t = target[has_soft]
            if temperature != 1.0:
                t = torch.softmax(torch.log(t.clamp_min(1e-8)) / temperature, dim=-1)
            terms.append(-(t * log_p).sum(dim=-1).mean() * temperature**2)
            weights.append(alpha)
    if not terms:
        return logits.sum() * 0.0
    total = sum(weights)
    return sum(w / total * term for w, term in zip(weights, terms, strict=True))  # type: ignore[return-value]


def distillation_windows(
    args: TrainSettings,
    train_docs: Sequence[Document],
    windows: list[Window],
    tokenizer: Any,
    labels: Sequence[str],
) -> list[Window]:
    """Attach the teacher's rows to the training windows (``--soft-labels``); return the
    raw-text windows to add (``--unlabelled``), as ``finetune.train`` does."""

    def load(path: str, docs: Sequence[Document]) -> np.ndarray:
        dist = np.load(path)
        info_file = Path(path).with_suffix(".json")
        teacher = json.loads(info_file.read_text()).get("labels") if info_file.exists() else None
        if teacher is not None and list(teacher) != list(labels):
            raise ValueError(f"{path}: the teacher's labels {teacher} are not {list(labels)}")
        need = n_words(docs)
        if dist.ndim != 2 or dist.shape[0] < need or dist.shape[1] != len(labels):
            raise ValueError(
                f"{path} holds {dist.shape} distributions; {need} words x {len(labels)} labels "
                "are needed: label the same file with spacy_nerzoo.training.distill"
            )
        return dist[:need]

    if args.soft_labels:
        rows = attach(windows, load(args.soft_labels, train_docs))
        logger.info("distillation: teacher rows for %d training words", rows)
    if not args.unlabelled:
        return []
    if not args.unlabelled_soft:
        raise ValueError("--unlabelled needs --unlabelled-soft (the teacher's distributions)")
    raw_docs = read_documents(args.unlabelled)
    if args.unlabelled_limit:
        raw_docs = raw_docs[: args.unlabelled_limit]
    raw = build_windows(
        unlabelled(raw_docs), tokenizer, args.max_length, labels, casing=args.casing
    )
    for window in raw:
        window.gold = False
    rows = attach(raw, load(args.unlabelled_soft, raw_docs))
    logger.info(
        "distillation: %d raw-text documents -> %d windows, %d words with teacher rows",
        len(raw_docs),
        len(raw),
        rows,
    )
    return raw


def label(args: LabelSettings) -> dict[str, Any]:
    """Write the teacher's per-word distributions of ``args.data`` to ``args.output`` (``.npy``)
    and a ``.json`` beside it describing them; return that description."""
    torch.set_num_threads(args.threads)
    docs = read_documents(args.data)
    if args.limit:
        docs = docs[: args.limit]
    t0 = time.time()
    dist = word_distributions(
        args.teacher, docs, max_length=args.max_length, batch_size=args.batch_size, bf16=args.bf16
    )
    out = Path(args.output)
    with atomic_path(out, suffix=".tmp.npy") as tmp:  # np.save adds .npy to other names
        np.save(tmp, dist.astype(np.float16))
    missing = int(np.isnan(dist[:, 0]).sum())
    from transformers import AutoConfig

    from spacy_nerzoo.backends.cased import register

    register()
    info = {
        "teacher": str(args.teacher),
        "labels": teacher_labels(AutoConfig.from_pretrained(str(args.teacher))),
        "data": str(args.data),
        "limit": args.limit,
        "n_docs": len(docs),
        "n_words": int(dist.shape[0]),
        "words_without_pieces": missing,
        "seconds": round(time.time() - t0, 1),
    }
    write_json_atomic(out.with_suffix(".json"), info)
    logger.info("wrote %s: %s", out, info)
    return info


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m spacy_nerzoo.training.distill ARGS``: ``nerzoo distill ARGS``, kept for the
    command lines of project.yml and of runs started before the ``nerzoo distill`` command."""
    from spacy_nerzoo.cli.train import run_as_module

    return run_as_module("distill", argv)


if __name__ == "__main__":
    sys.exit(main())
