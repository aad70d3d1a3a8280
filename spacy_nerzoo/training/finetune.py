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
"""

from __future__ import annotations

import json
import logging
import math
import platform
import random
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from spacy_nerzoo.casing import N_CLASSES as N_CASING_CLASSES
from spacy_nerzoo.casing import SCHEME as CASING_SCHEME
from spacy_nerzoo.casing import SPECIAL, word_class
from spacy_nerzoo.data.readers import Document, read_documents
from spacy_nerzoo.decoding import TagScheme
from spacy_nerzoo.serialization import (
    recover_folder,
    replace_folder,
    staging_folder,
    write_json_atomic,
)
from spacy_nerzoo.training.distill import distillation_loss, soft_targets
from spacy_nerzoo.training.settings import TrainSettings

if TYPE_CHECKING:
    from spacy.tokens import Doc

    from spacy_nerzoo.evaluation.conlleval import ConllevalResult

logger = logging.getLogger("spacy_nerzoo.training")

Format = Literal["conll03", "fewnerd"]
#: Tag scheme of each format, as ``TagScheme.from_labels`` names it.
SCHEMES: dict[str, str] = {"conll03": "IOB2", "fewnerd": "IO"}

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
# Sentences per tokenizer call when building windows (one call per sentence is ~3x slower).
_TOKENIZE_CHUNK = 2048
# Docs per ``nlp.pipe`` batch in validation: the component sorts a batch's windows by length.
_EVAL_DOCS_PER_BATCH = 256
# What a resumed run must share with the run that wrote the checkpoint (epochs and max_steps may
# change: they only move the end of the schedule).
_RESUME_KEYS = (
    "format",
    "base_model",
    "lr",
    "batch_size",
    "max_length",
    "seed",
    "warmup",
    "weight_decay",
    "clip",
    "bf16",
    "casing",
    "casing_lr",
    "head_lr",
    "soft_labels",
    "unlabelled",
    "unlabelled_soft",
    "unlabelled_limit",
    "distill_alpha",
    "temperature",
)


def default_base_model() -> str:
    """Path of the packaged all-MiniLM-L6-v2 encoder (works offline: no hub access needed)."""
    from spacy_nerzoo.training.encoders import minilm_path

    return str(minilm_path())


def set_seed(seed: int) -> None:
    """Seed every RNG that touches training (init of the head, dropout, shuffling)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------------
# Corpus format and label set
# --------------------------------------------------------------------------------------------------


def resolve_format(fmt: str, path: str | Path) -> Format:
    """``auto`` becomes the format of the file at ``path``; ``conll2003`` means ``conll03``."""
    from spacy_nerzoo.data.converters import detect_format

    if fmt == "auto":
        return detect_format(path)
    if fmt == "conll2003":
        return "conll03"
    if fmt not in SCHEMES:
        raise ValueError(f"Unknown format {fmt!r}: choose auto, conll03 or fewnerd")
    return fmt  # type: ignore[return-value]


def label_set(docs: Iterable[Document], fmt: Format) -> tuple[str, ...]:
    """The classifier's tags in id order, for the training data ``docs``.

    CoNLL-2003 data whose tags are all among ``LABELS`` gets ``LABELS`` (the fixed ids of the
    shipped model). Otherwise: ``O`` first, then the data's tags sorted (IO), or ``B-X``, ``I-X``
    for each type ``X`` in sorted order (IOB2). The set must read as the format's scheme in
    ``TagScheme`` (the component's reader), so a prefixed tag in IO data, or an ``E-``/``S-`` tag
    in IOB2 data, is an error here rather than a silently different model.
    """
    tags = {t for doc in docs for t in doc.tags}
    if fmt == "conll03" and tags <= set(LABELS):
        return LABELS
    if fmt == "fewnerd":
        labels = ("O", *sorted(tags - {"O"}))
    else:
        odd = sorted(t for t in tags if t != "O" and t[:2] not in ("B-", "I-"))
        if odd:
            raise ValueError(f"IOB2 data has tags without a B-/I- prefix: {odd[:5]}")
        types = sorted({t[2:] for t in tags if t != "O"})
        labels = ("O", *(f"{prefix}-{typ}" for typ in types for prefix in "BI"))
    scheme = TagScheme.from_labels(labels).name
    if scheme != SCHEMES[fmt]:
        raise ValueError(
            f"The {fmt} training data's tags read as {scheme}, not {SCHEMES[fmt]} (first tags: "
            f"{list(labels[1:6])}); check --format"
        )
    return labels


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
    # Casing class of each piece (``spacy_nerzoo.casing``), fed as token_type_ids; None: no casing.
    type_ids: list[int] | None = None
    # Corpus-wide index of the word at each first piece, in order (the pieces whose label is not
    # ignored): how a teacher's per-word distributions find their pieces (``training.distill``).
    words: list[int] | None = None
    # Teacher distribution per first piece ([len(words), n_labels]); None: gold loss only.
    soft: np.ndarray | None = None
    # False for raw text (distillation only): ``labels`` then only mark the first pieces.
    gold: bool = True


def _sentence_pieces(
    tokenizer: Any,
    sentences: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    label2id: dict[str, int],
) -> list[tuple[list[int], list[int], list[int], list[int]]]:
    """Wordpieces, piece labels, piece casing classes and first-piece word indices of each
    sentence (no special tokens).

    A piece's casing class is its word's, read from the original text before the tokenizer
    lowercases it (:func:`spacy_nerzoo.casing.word_class`).
    """
    if not sentences:
        return []
    enc = tokenizer(list(map(list, sentences)), is_split_into_words=True, add_special_tokens=False)
    out = []
    for i, sent_tags in enumerate(tags):
        ids = enc["input_ids"][i]
        word_ids = enc.word_ids(i)
        types = [SPECIAL if w is None else word_class(sentences[i][w]) for w in word_ids]
        labels, firsts = [], []
        prev = None
        for wid in word_ids:
            if wid is not None and wid != prev:
                tag = sent_tags[wid]
                if tag not in label2id:
                    raise ValueError(f"Tag {tag!r} is not among the labels {list(label2id)}")
                labels.append(label2id[tag])
                firsts.append(wid)
            else:
                labels.append(IGNORE_INDEX)
            prev = wid
        out.append((list(ids), labels, types, firsts))
    return out


def _split_long(
    ids: list[int], labels: list[int], types: list[int], words: list[int], size: int
) -> Iterable[tuple[list[int], list[int], list[int], list[int]]]:
    """Split a piece sequence longer than ``size``, preferring cuts at word starts."""
    while len(ids) > size:
        cut = size
        # Back off to the last word start so a word's pieces stay together (if one exists).
        while cut > 0 and labels[cut] == IGNORE_INDEX:
            cut -= 1
        if cut == 0:
            cut = size
        n_words = sum(label != IGNORE_INDEX for label in labels[:cut])
        yield ids[:cut], labels[:cut], types[:cut], words[:n_words]
        ids, labels, types, words = ids[cut:], labels[cut:], types[cut:], words[n_words:]
    if ids:
        yield ids, labels, types, words


def build_windows(
    docs: Sequence[Document],
    tokenizer: Any,
    max_length: int,
    labels: Sequence[str] = LABELS,
    casing: bool = False,
) -> list[Window]:
    """Pack each document's consecutive sentences greedily into windows of ``max_length`` pieces.

    Windows never cross documents (context from another article would be noise), so Few-NERD,
    read as one document per sentence, gets one window per sentence; a sentence longer than a
    window is split. With ``casing`` each window also carries its pieces' casing classes. The
    special tokens around a window are those the tokenizer really adds to a sentence
    (``alignment.special_tokens``), as at inference.
    """
    from spacy_nerzoo.alignment import special_tokens

    specials = special_tokens(tokenizer)
    prefix, suffix = specials.prefix.tolist(), specials.suffix.tolist()
    size = max_length - len(prefix) - len(suffix)
    if size < 1:
        raise ValueError(f"max_length {max_length} leaves no room inside the special tokens")
    label2id = {label: i for i, label in enumerate(labels)}
    sentences = [s for doc in docs for s in doc.sentences]
    pieces: list[tuple[list[int], list[int], list[int], list[int]]] = []
    for start in range(0, len(sentences), _TOKENIZE_CHUNK):
        part = sentences[start : start + _TOKENIZE_CHUNK]
        pieces += _sentence_pieces(
            tokenizer, [s.words for s in part], [s.tags for s in part], label2id
        )
    # Corpus-wide index of each sentence's first word.
    offsets = np.cumsum([0, *(len(s.words) for s in sentences)]).tolist()
    windows: list[Window] = []
    first = 0
    for doc in docs:
        sents = pieces[first : first + len(doc.sentences)]
        cur = Window([], [], [], [])
        for k, (sent_ids, sent_labels, sent_types, sent_words) in enumerate(sents):
            global_words = [offsets[first + k] + w for w in sent_words]
            for part in _split_long(sent_ids, sent_labels, sent_types, global_words, size):
                if cur.input_ids and len(cur.input_ids) + len(part[0]) > size:
                    windows.append(cur)
                    cur = Window([], [], [], [])
                cur.input_ids += part[0]
                cur.labels += part[1]
                cur.type_ids += part[2]  # type: ignore[operator]
                cur.words += part[3]  # type: ignore[operator]
        first += len(doc.sentences)
        if cur.input_ids:
            windows.append(cur)
    pre, post = len(prefix), len(suffix)
    return [
        Window(
            [*prefix, *w.input_ids, *suffix],
            [IGNORE_INDEX] * pre + w.labels + [IGNORE_INDEX] * post,
            [SPECIAL] * pre + w.type_ids + [SPECIAL] * post
            if casing and w.type_ids is not None
            else None,
            w.words,
        )
        for w in windows
    ]


def make_batches(
    windows: Sequence[Window], batch_size: int, rng: random.Random, bucket: int = 50
) -> list[list[int]]:
    """Shuffled batches of similar-length windows.

    Documents end in short windows and Few-NERD sentences vary in length; sorting within buckets
    of ``bucket`` batches cuts padding (padding halves CPU throughput) while the order of batches
    stays random.
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


def padding_fill(windows: Sequence[Window], batches: Sequence[Sequence[int]]) -> float:
    """Share of the padded batch tensors that holds real pieces (1.0: no padding at all)."""
    real = sum(len(windows[i].input_ids) for b in batches for i in b)
    padded = sum(len(b) * max(len(windows[i].input_ids) for i in b) for b in batches if b)
    return real / padded if padded else 1.0


def collate(windows: Sequence[Window], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest window."""
    n = max(len(w.input_ids) for w in windows)
    ids = torch.full((len(windows), n), pad_id, dtype=torch.long)
    labels = torch.full((len(windows), n), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(windows), n), dtype=torch.long)
    casing = windows[0].type_ids is not None
    types = torch.full((len(windows), n), SPECIAL, dtype=torch.long)
    for i, w in enumerate(windows):
        k = len(w.input_ids)
        ids[i, :k] = torch.tensor(w.input_ids)
        if w.gold:
            labels[i, :k] = torch.tensor(w.labels)
        mask[i, :k] = 1
        if casing:
            types[i, :k] = torch.tensor(w.type_ids)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if casing:
        batch["token_type_ids"] = types
    return batch


# --------------------------------------------------------------------------------------------------
# Validation: the spaCy component and the project's conlleval, as ``nerzoo evaluate``
# --------------------------------------------------------------------------------------------------


def read_gold(path: str | Path, fmt: Format, limit: int = 0) -> list[Doc]:
    """Gold Docs of a dev file as the converters make them (``nerzoo convert``), ``limit`` first.

    One Doc per CoNLL-2003 document (sentence starts set) or per Few-NERD sentence.
    """
    from itertools import islice

    from spacy_nerzoo.data.converters import docs_from_file

    return list(islice(docs_from_file(path, format=fmt), limit or None))


def _percent(result: ConllevalResult) -> dict[str, Any]:
    p, r, f = result.overall.percentages()
    per_type = {
        name: dict(zip(("p", "r", "f1"), counts.percentages(), strict=True))
        for name, counts in sorted(result.types.items())
    }
    return {"p": p, "r": r, "f1": f, "per_type": per_type}


def evaluate(
    checkpoint: str | Path,
    gold: Sequence[Doc],
    *,
    fmt: Format,
    max_length: int,
    stride: int | None,
    batch_size: int = 32,
    bf16: bool = False,
) -> dict[str, Any]:
    """Phrase-level P/R/F1 in percent of the checkpoint on ``gold``, overall and per type.

    The checkpoint runs in the ``token_classifier`` component (torch, fp32 or bf16) on fresh Docs
    with the gold words and sentence starts, and is scored by ``evaluate_docs``, the code behind
    ``nerzoo evaluate``. Few-NERD scores also hold ``coarse``: the same predictions scored by
    coarse type (``person-actor`` -> ``person``, adjacent same-coarse tokens forming one entity).
    """
    from spacy_nerzoo.api import load
    from spacy_nerzoo.evaluation.report import evaluate_docs, fresh_doc

    nlp = load(
        str(checkpoint),
        max_length=max_length,
        stride=stride,
        batch_size=batch_size,
        precision="bf16" if bf16 else "fp32",
    )
    pred = list(nlp.pipe((fresh_doc(d, nlp.vocab) for d in gold), batch_size=_EVAL_DOCS_PER_BATCH))
    scheme: Literal["iob", "io"] = "io" if SCHEMES[fmt] == "IO" else "iob"
    scores = _percent(evaluate_docs(gold, pred, scheme=scheme).phrase)
    if fmt == "fewnerd":
        coarse = evaluate_docs(gold, pred, scheme=scheme, label_level="coarse")
        scores["coarse"] = _percent(coarse.phrase)
    return scores


# --------------------------------------------------------------------------------------------------
# Checkpoints
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


def widen_token_types(model: Any, n: int) -> None:
    """Give the encoder ``n`` token types (casing classes), each starting as pretrained type 0.

    Copies rather than fresh random rows: the encoder's first forward pass is then exactly the
    pretrained one, and training learns only what each class should add (measured on this
    machine: extra embeddings initialised small next to the encoder's state were ignored).
    """
    embeddings = model.base_model.embeddings
    old = embeddings.token_type_embeddings
    new = torch.nn.Embedding(n, old.embedding_dim)
    with torch.no_grad():
        new.weight.copy_(old.weight[0].expand(n, -1))
    embeddings.token_type_embeddings = new
    # BERT keeps an all-zeros token_type_ids buffer for calls without them; it stays valid.
    model.config.type_vocab_size = n


def add_casing(model: Any, n: int) -> Any:
    """The model with ``n`` casing classes as token types, by the route its encoder allows.

    BERT-style encoders widen their token-type table (:func:`widen_token_types`); MPNet, which has
    none, becomes :mod:`spacy_nerzoo.backends.cased`'s MPNet with a zero-initialised casing
    embedding added to its input embeddings (same weights, same first forward pass).
    """
    embeddings = getattr(model.base_model, "embeddings", None)
    if hasattr(embeddings, "token_type_embeddings"):
        widen_token_types(model, n)
        return model
    if model.config.model_type == "mpnet":
        from spacy_nerzoo.backends.cased import cased_config_from, cased_model_class

        cased = cased_model_class()(cased_config_from(model.config, n))
        missing, unexpected = cased.load_state_dict(model.state_dict(), strict=False)
        if unexpected or set(missing) != {"casing_embeddings.weight"}:
            raise RuntimeError(f"cased MPNet: missing {missing}, unexpected {unexpected}")
        return cased
    raise ValueError(
        f"--casing: {model.config.model_type} has no token-type embeddings and no casing route; "
        "train it without --casing"
    )


_CASING_PARAMS = ("token_type_embeddings", "casing_embeddings")


def _optimizer(
    model: torch.nn.Module,
    lr: float,
    weight_decay: float,
    casing_lr: float | None = None,
    head_lr: float | None = None,
) -> torch.optim.AdamW:
    """AdamW without weight decay on biases and LayerNorm weights (the usual BERT recipe).

    ``casing_lr`` gives the casing table its own learning rate: MPNet's starts at zero and
    must grow to the scale of the word embeddings, which the encoder's small rate is too slow for.
    ``head_lr`` does the same for the new classifier: an encoder whose output is small (the
    sentence-transformers MPNet's hidden states are far smaller than MiniLM's) moves a head
    trained at the encoder's rate too slowly.
    """
    decay, no_decay, casing, head = [], [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if casing_lr is not None and any(key in name for key in _CASING_PARAMS):
            casing.append(p)
        elif head_lr is not None and name.startswith("classifier."):
            head.append(p)
        else:
            (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    groups: list[dict[str, Any]] = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if casing:
        groups.append({"params": casing, "weight_decay": 0.0, "lr": casing_lr})
    if head:
        groups.append({"params": head, "weight_decay": weight_decay, "lr": head_lr})
    return torch.optim.AdamW(groups, lr=lr)


def _write_model(model: Any, tokenizer: Any, folder: Path, info: dict[str, Any]) -> Path:
    """A self-contained HF folder, staged: ``replace_folder`` puts it in place once complete."""
    tmp = staging_folder(folder)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "nerzoo_training.json").write_text(json.dumps(info, indent=2))
    return tmp


def _rng_states() -> dict[str, Any]:
    """Python's and NumPy's global RNG states as JSON (torch's is saved as a tensor)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()  # type: ignore[misc]
    return {
        "python": [version, list(internal), gauss],
        "numpy": [name, np.asarray(keys).tolist(), pos, has_gauss, cached],
    }


def _set_rng_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def _save_checkpoint(
    folder: Path,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict[str, Any],
    info: dict[str, Any],
) -> None:
    """Everything ``--resume`` needs, written to a staging folder and swapped in
    (``serialization.replace_folder``).

    ``trainer_state.json`` is written last: a folder without it is never used.
    """
    tmp = _write_model(model, tokenizer, folder, info)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(torch.get_rng_state(), tmp / "torch_rng.pt")
    (tmp / "rng.json").write_text(json.dumps(_rng_states()))
    (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2))
    replace_folder(tmp, folder)


def _check_resume(saved: dict[str, Any] | None, now: dict[str, Any], last_dir: Path) -> None:
    """Refuse to continue a checkpoint made with other data or another recipe."""
    if not saved:  # written before settings were recorded
        return
    diffs = [k for k in _RESUME_KEYS if k in saved and saved[k] != now[k]]
    diffs += [
        k
        for k in ("train", "dev")
        if k in saved and Path(saved[k]).resolve() != Path(now[k]).resolve()
    ]
    if diffs:
        detail = ", ".join(f"{k}: {saved[k]!r} -> {now[k]!r}" for k in diffs)
        raise ValueError(
            f"--resume: {last_dir} was trained with other settings ({detail}); resume with the "
            "same settings, or start afresh with another --output"
        )


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


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
        _check_resume(state.get("hyperparameters"), hparams, last_dir)
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
    model.config.nerzoo = {"max_length": args.max_length, "stride": stride, "tag_scheme": scheme}
    if args.casing:
        if not resume:
            model = add_casing(model, N_CASING_CLASSES)  # keeps config.nerzoo
        model.config.nerzoo["casing"] = CASING_SCHEME

    dev_docs = read_gold(args.dev, fmt, args.eval_limit)
    windows = build_windows(train_docs, tokenizer, args.max_length, labels, casing=args.casing)
    distilling = bool(args.soft_labels or args.unlabelled)
    if distilling:
        windows += _distillation_windows(args, train_docs, windows, tokenizer, labels)
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
    optimizer = _optimizer(model, args.lr, args.weight_decay, args.casing_lr, args.head_lr)
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
        "versions": _versions(),
        "n_train_windows": len(windows),
        "n_train_pieces": n_pieces,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps,
        "n_dev_docs": len(dev_docs),
        "epochs": [],
        "best": None,
    }
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
        _save_checkpoint(last_dir, model, tokenizer, optimizer, scheduler, resume_state, info)
        metrics["wall_time_s"] = round(wall, 1)
        write_json_atomic(out / "metrics.json", metrics)
        logger.info("checkpoint at step %d -> %s (%.1f s)", step, last_dir, time.time() - t0)

    # Restored last, just before the loop, so nothing between can draw from them.
    if resume:
        torch.set_rng_state(torch.load(last_dir / "torch_rng.pt", weights_only=True))
        if (last_dir / "rng.json").exists():
            _set_rng_states(json.loads((last_dir / "rng.json").read_text()))

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
        replace_folder(_write_model(model, tokenizer, candidate_dir, {}), candidate_dir)
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


def _distillation_windows(
    args: TrainSettings,
    train_docs: Sequence[Document],
    windows: list[Window],
    tokenizer: Any,
    labels: Sequence[str],
) -> list[Window]:
    """Attach the teacher's rows to the training windows; return the raw-text windows to add."""
    from spacy_nerzoo.training.distill import attach, n_words, unlabelled

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
