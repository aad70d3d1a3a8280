"""Fine-tune a BERT-style encoder for NER: CoNLL-2003 in document windows, Few-NERD by sentence.

Two corpus formats (``--format``, detected from the training file by default):

``conll03``
    CoNLL-2003 column files: ``-DOCSTART-`` documents, IOB2 tags. A sentence read together with
    its neighbours in the same document is tagged better (measured: +1.5 valid F1), and the spaCy
    component reads whole documents in overlapping windows at inference. Re-encoding every
    sentence with its own context costs ~6x; instead each document's wordpiece stream is cut into
    windows of consecutive sentences (up to ``max_length`` pieces with [CLS]/[SEP]) and the loss
    is taken on every word of the window, so each word is trained once per epoch, with context,
    at about the cost of plain sentence training.
``fewnerd``
    Few-NERD ``token<TAB>label`` files: IO tags (``person-actor``, no prefixes), sentences in a
    hashed order with no document structure. Each sentence is its own window (packing unrelated
    sentences would add noise, not context); batches are bucketed by length, so short sentences
    are not padded to long ones.

Labels: CoNLL-2003's nine IOB2 tags in a fixed order (``LABELS``, the ids of the shipped model);
otherwise ``O`` then the training data's tags, sorted (IO), or ``B-``/``I-`` per sorted type
(IOB2). They are saved as ``config.id2label``/``label2id`` and ``config.nerzoo`` records the window
length, stride and tag scheme. The component reads the scheme from the labels
(``spacy_nerzoo.decoding.TagScheme``); the trainer checks that it reads the one recorded.

Validation loads the checkpoint into the spaCy component and scores it with the project's
conlleval (``spacy_nerzoo.evaluation``), as ``nerzoo evaluate CHECKPOINT DEV -c max_length=L -c
stride=S`` does: the same windows, first-wordpiece pooling, constrained Viterbi (IOB2) or argmax
with adjacent same-type tokens merged into one entity (IO, as Few-NERD's official evaluation),
phrases counted per sentence. The dev F1 logged is therefore the number that command reports;
Few-NERD runs also report coarse-type F1. Test data is never read here: select on dev only.

Output: ``best/`` (selected on dev F1) and ``last/``, plain ``BertForTokenClassification``
folders (``AutoModelForTokenClassification`` loads them), and ``metrics.json``. ``last/`` also
holds the optimizer, scheduler, RNG states and the position in the epoch; it is written at the
end of every epoch, every ``--save-every`` steps and when the run stops early (``--stop-after``,
``--time-limit``), and replaced atomically, so a run killed at any moment continues with
``--resume`` from its last checkpoint as if it had never stopped (same batches, dropout masks and
learning rates).

Usage (``python -m spacy_nerzoo.training.finetune`` takes the same options)::

    nerzoo train --train train.txt --dev valid.txt --output DIR
    nerzoo train --format fewnerd --train train.txt --dev dev.txt \\
        --output DIR --max-length 128 --batch-size 32 --epochs 2 --save-every 250 --resume

From Python: ``train(TrainSettings(train=..., dev=..., output=...))``.

This module is the training loop; the rest of the trainer is split by concern: corpus formats and
labels (``training.corpus``), windows and batches (``training.windows``, on ``alignment``),
validation (``training.evaluate``), checkpoints and resuming (``training.checkpoints``), and the
network's casing and optimizer (``training.model``). Their public names stay importable from here.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spacy_nerzoo.casing import N_CLASSES as N_CASING_CLASSES
from spacy_nerzoo.casing import SCHEME as CASING_SCHEME
from spacy_nerzoo.casing import config_scheme
from spacy_nerzoo.data.readers import read_documents
from spacy_nerzoo.serialization import recover_folder, replace_folder, write_json_atomic
from spacy_nerzoo.training.checkpoints import (
    RESUME_KEYS,
    check_resume,
    rng_states,
    save_checkpoint,
    set_rng_states,
    versions,
    write_model,
)
from spacy_nerzoo.training.corpus import (
    IGNORE_INDEX,
    LABELS,
    SCHEMES,
    Format,
    label_set,
    resolve_format,
)
from spacy_nerzoo.training.distill import distillation_loss, distillation_windows, soft_targets
from spacy_nerzoo.training.evaluate import evaluate, read_gold
from spacy_nerzoo.training.model import (
    add_casing,
    keep_layers,
    make_optimizer,
    widen_token_types,
)
from spacy_nerzoo.training.settings import TrainSettings
from spacy_nerzoo.training.windows import (
    Window,
    build_windows,
    collate,
    make_batches,
    padding_fill,
)

__all__ = [
    "IGNORE_INDEX",
    "LABELS",
    "RESUME_KEYS",
    "SCHEMES",
    "Format",
    "Window",
    "add_casing",
    "build_windows",
    "check_resume",
    "collate",
    "default_base_model",
    "evaluate",
    "keep_layers",
    "label_set",
    "main",
    "make_batches",
    "make_optimizer",
    "padding_fill",
    "read_gold",
    "resolve_format",
    "rng_states",
    "set_rng_states",
    "set_seed",
    "train",
    "widen_token_types",
]

logger = logging.getLogger("spacy_nerzoo.training")


def default_base_model() -> str:
    """Path of the packaged all-MiniLM-L6-v2 encoder (works offline: no hub access needed)."""
    from spacy_nerzoo.training.encoders import minilm_path

    return str(minilm_path())


def set_seed(seed: int) -> None:
    """Seed every RNG that touches training (init of the head, dropout, shuffling)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _stop_reason(args: TrainSettings, run_steps: int, t_start: float) -> str | None:
    """Why this run should stop now (saving ``last`` to resume later), if it should."""
    if args.stop_after and run_steps >= args.stop_after:
        return f"--stop-after {args.stop_after} steps"
    if args.time_limit and time.time() - t_start >= 60 * args.time_limit:
        return f"--time-limit {args.time_limit:g} min"
    return None


def train(args: TrainSettings) -> dict[str, Any]:
    """Run the fine-tune described by ``args``; return the metrics written to ``metrics.json``.

    Logs through the ``spacy_nerzoo.training`` logger (``nerzoo train`` sends it to stdout). For
    the ``OMP_WAIT_POLICY`` the CLI sets, see ``spacy_nerzoo.cli.train``.
    """
    from transformers import (
        AutoConfig,
        AutoModelForTokenClassification,
        get_linear_schedule_with_warmup,
    )

    from spacy_nerzoo.alignment import pad_token_id
    from spacy_nerzoo.backends.loading import load_tokenizer

    t_start = time.time()
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    last_dir, best_dir, candidate_dir = out / "last", out / "best", out / "candidate"
    from spacy_nerzoo.backends.cased import register_model
    from spacy_nerzoo.training.encoders import resolve_encoder

    register_model()
    base = resolve_encoder(args.base_model)
    stride = args.stride if args.stride is not None else args.max_length // 4
    fmt = resolve_format(args.format, args.train)
    scheme = SCHEMES[fmt]

    recover_folder(last_dir)
    recover_folder(best_dir)
    resume = args.resume and (last_dir / "trainer_state.json").exists()
    hparams = asdict(args)
    hparams.update(base_model=base, stride=stride, format=fmt)
    state: dict[str, Any] = {}
    if resume:
        state = json.loads((last_dir / "trainer_state.json").read_text())
        check_resume(state.get("hyperparameters"), hparams, last_dir)
    src = str(last_dir) if resume else base
    # As the component loads it (prefix space for byte-level BPE, clear errors for tokenizers
    # this transformers cannot read), so words are encoded alike in training and inference.
    tokenizer = load_tokenizer(src, AutoConfig.from_pretrained(src))
    if not tokenizer.is_fast:
        raise ValueError(f"{src}: a fast tokenizer is needed (word_ids)")
    train_docs = read_documents(args.train)
    labels = label_set(train_docs, fmt)
    if resume:
        saved = json.loads((last_dir / "config.json").read_text())["id2label"]
        if [saved[str(i)] for i in range(len(saved))] != list(labels):
            raise ValueError(f"--resume: {last_dir} has other labels than the training data")
    model = AutoModelForTokenClassification.from_pretrained(
        src,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    if args.max_length > model.config.max_position_embeddings:
        raise ValueError(
            f"--max-length exceeds the encoder's {model.config.max_position_embeddings}"
        )
    base_casing = config_scheme(model.config)
    if base_casing is not None and (not args.casing or base_casing != CASING_SCHEME):
        raise ValueError(
            f"{src} was trained with casing classes {base_casing!r}; continue it with --casing "
            f"(this trainer's scheme is {CASING_SCHEME!r})"
        )
    model.config.nerzoo = {"max_length": args.max_length, "stride": stride, "tag_scheme": scheme}
    if args.layers and not resume:
        keep_layers(model, args.layers)
    if args.casing:
        # A trained nerzoo checkpoint as --base-model (continued or two-stage training) keeps
        # its learned casing rows; only a plain encoder gets new ones.
        if not resume and base_casing is None:
            model = add_casing(model, N_CASING_CLASSES)  # keeps config.nerzoo
        model.config.nerzoo["casing"] = CASING_SCHEME

    dev_docs = read_gold(args.dev, fmt, args.eval_limit)
    windows = build_windows(train_docs, tokenizer, args.max_length, labels, casing=args.casing)
    distilling = bool(args.soft_labels or args.unlabelled)
    if distilling:
        windows += distillation_windows(args, train_docs, windows, tokenizer, labels)
    n_pieces = sum(len(w.input_ids) for w in windows)
    steps_per_epoch = math.ceil(len(windows) / args.batch_size)
    total_steps = args.epochs * steps_per_epoch
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    logger.info(
        "%s (%s, %d labels) train: %d docs -> %d windows (%d pieces, %.1f%% of max_length), "
        "%d steps/epoch, %d steps; dev: %d docs",
        fmt,
        scheme,
        len(labels),
        len(train_docs),
        len(windows),
        n_pieces,
        100 * n_pieces / (len(windows) * args.max_length),
        steps_per_epoch,
        total_steps,
        len(dev_docs),
    )

    pad_id = pad_token_id(tokenizer, model.config)
    optimizer = make_optimizer(model, args.lr, args.weight_decay, args.casing_lr, args.head_lr)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(args.warmup * total_steps), total_steps
    )
    task = {
        "conll03": "CoNLL-2003 English NER, document-context windows, selected on valid",
        "fewnerd": "Few-NERD fine-grained NER (IO tags), one sentence per window, selected on dev",
    }[fmt]
    metrics: dict[str, Any] = {
        "task": task,
        "hyperparameters": hparams,
        "seed": args.seed,
        "precision": "bf16 autocast, fp32 master weights (AdamW)" if args.bf16 else "fp32",
        "format": fmt,
        "tag_scheme": scheme,
        "labels": list(labels),
        "versions": versions(),
        "n_train_windows": len(windows),
        "n_train_pieces": n_pieces,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps,
        "n_dev_docs": len(dev_docs),
        "epochs": [],
        "best": None,
    }
    base_info = Path(base) / "nerzoo_training.json"
    if base_info.is_file():  # continued from a trained checkpoint: keep its recipe too
        metrics["base_training"] = json.loads(base_info.read_text())
    start_epoch, start_batch, step, prior_wall = 0, 0, 0, 0.0
    ep_loss, ep_n, ep_time = 0.0, 0, 0.0
    if resume:
        optimizer.load_state_dict(torch.load(last_dir / "optimizer.pt", weights_only=True))
        scheduler.load_state_dict(torch.load(last_dir / "scheduler.pt", weights_only=True))
        start_epoch, step = state["epoch"], state["step"]
        start_batch = state.get("batch", 0)
        ep_loss, ep_n = state.get("epoch_loss", 0.0), state.get("epoch_steps", 0)
        ep_time = state.get("epoch_train_time_s", 0.0)
        metrics["epochs"], metrics["best"] = state["epochs"], state["best"]
        prior_wall = state.get("wall_time_s", 0.0)
        logger.info(
            "resumed from %s at epoch %d, batch %d, step %d",
            last_dir,
            start_epoch + 1,
            start_batch,
            step,
        )

    def save_last(epoch_done: int, batch: int, valid: dict[str, Any] | None) -> None:
        t0 = time.time()
        wall = prior_wall + time.time() - t_start
        resume_state = {
            "epoch": epoch_done,  # completed epochs
            "batch": batch,  # batches of the next epoch already trained
            "step": step,
            "epoch_loss": ep_loss,
            "epoch_steps": ep_n,
            "epoch_train_time_s": ep_time,
            "epochs": metrics["epochs"],
            "best": metrics["best"],
            "wall_time_s": wall,
            "hyperparameters": hparams,
        }
        info = {"epoch": epoch_done, "batch": batch, "step": step, "valid": valid}
        save_checkpoint(last_dir, model, tokenizer, optimizer, scheduler, resume_state, info)
        metrics["wall_time_s"] = round(wall, 1)
        write_json_atomic(out / "metrics.json", metrics)
        logger.info("checkpoint at step %d -> %s (%.1f s)", step, last_dir, time.time() - t0)

    # Restored last, just before the loop, so nothing between can draw from them.
    if resume:
        torch.set_rng_state(torch.load(last_dir / "torch_rng.pt", weights_only=True))
        if (last_dir / "rng.json").exists():
            set_rng_states(json.loads((last_dir / "rng.json").read_text()))

    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else nullcontext()
    model.train()
    run_steps, run_t0 = 0, time.time()
    eval_time = 0.0
    stop: str | None = None
    for epoch in range(start_epoch, args.epochs):
        if step >= total_steps:
            break
        t_epoch = time.time()
        # Per-epoch seed: the same batches whether or not the run was resumed.
        batches = make_batches(windows, args.batch_size, random.Random(args.seed * 1000 + epoch))
        first = start_batch if epoch == start_epoch else 0
        if first == 0:
            ep_loss, ep_n, ep_time = 0.0, 0, 0.0
            logger.info(
                "epoch %d: %d batches, %.1f%% of the padded tensors are real pieces",
                epoch + 1,
                len(batches),
                100 * padding_fill(windows, batches),
            )
        loss_sum, loss_n = 0.0, 0
        t_log = time.time()
        for b in range(first, len(batches)):
            batch_windows = [windows[i] for i in batches[b]]
            inputs = collate(batch_windows, pad_id)
            with autocast:
                if distilling:
                    gold = inputs.pop("labels")
                    soft = soft_targets(batch_windows, gold)
                    logits = model(**inputs).logits
                    loss = distillation_loss(
                        logits, gold, soft, args.distill_alpha, args.temperature
                    )
                else:
                    loss = model(**inputs).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            run_steps += 1
            loss_sum += loss.item()
            loss_n += 1
            ep_loss += loss.item()
            ep_n += 1
            if step % args.log_every == 0 or step == total_steps:
                now = time.time()
                rate = loss_n / (now - t_log)
                avg_step = (now - run_t0 - eval_time) / run_steps
                evals_left = args.epochs - epoch  # this epoch's eval included
                last_eval = (
                    metrics["epochs"][-1]["eval_time_s"] if metrics["epochs"] else 0.1 * avg_step
                )
                eta = (total_steps - step) * avg_step + evals_left * last_eval
                logger.info(
                    "epoch %d step %d/%d loss %.4f lr %.2e %.3f steps/s %.2f s/step ETA %s",
                    epoch + 1,
                    step,
                    total_steps,
                    loss_sum / loss_n,
                    scheduler.get_last_lr()[0],
                    rate,
                    1 / rate,
                    _fmt_time(eta),
                )
                loss_sum, loss_n, t_log = 0.0, 0, time.time()
            if step >= total_steps:
                break
            if b + 1 < len(batches):  # at an epoch's end, the epoch checkpoint follows
                stop = _stop_reason(args, run_steps, t_start)
                if stop or (args.save_every and step % args.save_every == 0):
                    ep_time += time.time() - t_epoch
                    t_epoch = time.time()
                    save_last(epoch, b + 1, None)
                    if stop:
                        break
        if stop:
            break
        ep_time += time.time() - t_epoch
        t_eval = time.time()
        replace_folder(write_model(model, tokenizer, candidate_dir, {}), candidate_dir)
        # Loading the copy must not draw from the RNG that drives dropout.
        with torch.random.fork_rng(devices=[]):
            scores = evaluate(
                candidate_dir,
                dev_docs,
                fmt=fmt,
                max_length=args.max_length,
                stride=stride,
                batch_size=args.eval_batch_size,
                bf16=args.eval_bf16,
            )
        torch.set_num_threads(args.threads)
        this_eval = time.time() - t_eval
        eval_time += this_eval
        record = {
            "epoch": epoch + 1,
            "step": step,
            "train_loss": ep_loss / max(ep_n, 1),
            "valid": scores,
            "train_time_s": round(ep_time, 1),
            "eval_time_s": round(this_eval, 1),
        }
        metrics["epochs"].append(record)
        improved = metrics["best"] is None or scores["f1"] > metrics["best"]["f1"]
        coarse = f" (coarse F1 {scores['coarse']['f1']:.2f})" if "coarse" in scores else ""
        logger.info(
            "epoch %d done: dev P %.2f R %.2f F1 %.2f%s%s | train %.0f s, eval %.0f s, loss %.4f",
            epoch + 1,
            scores["p"],
            scores["r"],
            scores["f1"],
            coarse,
            " (best)" if improved else "",
            ep_time,
            this_eval,
            record["train_loss"],
        )
        if improved:
            metrics["best"] = {"epoch": epoch + 1, "step": step, "f1": scores["f1"]}
            if "coarse" in scores:
                metrics["best"]["coarse_f1"] = scores["coarse"]["f1"]
            info = {"epoch": epoch + 1, "valid": scores, "hyperparameters": hparams}
            (candidate_dir / "nerzoo_training.json").write_text(json.dumps(info, indent=2))
            replace_folder(candidate_dir, best_dir)
        else:
            shutil.rmtree(candidate_dir)
        save_last(epoch + 1, 0, scores)
        stop = _stop_reason(args, run_steps, t_start)
        if stop:
            break
    metrics["wall_time_s"] = round(prior_wall + time.time() - t_start, 1)
    if stop and step < total_steps:
        metrics["stopped"] = {"reason": stop, "step": step}
        write_json_atomic(out / "metrics.json", metrics)
        logger.info("stopped (%s) at step %d/%d; continue with --resume", stop, step, total_steps)
        return metrics
    metrics.pop("stopped", None)
    metrics["finished"] = True
    write_json_atomic(out / "metrics.json", metrics)
    best = metrics["best"]
    logger.info(
        "done in %s; best dev F1 %.2f at epoch %d -> %s",
        _fmt_time(metrics["wall_time_s"]),
        best["f1"] if best else float("nan"),
        best["epoch"] if best else 0,
        best_dir,
    )
    return metrics


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m spacy_nerzoo.training.finetune ARGS``: ``nerzoo train ARGS``, kept for the
    command lines of project.yml and of runs started before the ``nerzoo train`` command."""
    from spacy_nerzoo.cli.train import run_as_module

    return run_as_module("train", argv)


if __name__ == "__main__":
    sys.exit(main())
