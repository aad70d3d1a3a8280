"""Distillation: per-word teacher distributions, the mixed loss, and the trainer's use of both."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from spacy_nerzoo.data.readers import read_documents  # noqa: E402
from spacy_nerzoo.training import distill, finetune  # noqa: E402


def test_windows_name_every_word_once_in_order(tmp_path: Path, tokenizer, write_conll) -> None:
    docs = read_documents(write_conll(tmp_path / "t.txt", 5, seed=1))
    for max_length in (12, 32, 128):  # short windows split sentences, long ones pack several
        windows = finetune.build_windows(docs, tokenizer, max_length)
        words = [w for window in windows for w in window.words]
        assert words == list(range(distill.n_words(docs)))
        for window in windows:
            assert len(window.words) == sum(label != -100 for label in window.labels)


def test_loss_mixes_gold_and_teacher_terms() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 4)
    gold = torch.tensor([[-100, 1, 2, -100, 3], [-100, 0, -100, -100, -100]])
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 4), gold.reshape(-1))
    one_hot = torch.zeros(2, 5, 4)
    for b, t in zip(*torch.nonzero(gold != -100, as_tuple=True), strict=True):
        one_hot[b, t, gold[b, t]] = 1.0
    # A teacher that agrees with gold: every mix is plain cross-entropy.
    for alpha in (0.0, 0.3, 1.0):
        got = distill.distillation_loss(logits, gold, one_hot, alpha)
        torch.testing.assert_close(got, ce)
    soft = torch.softmax(torch.randn(2, 5, 4), dim=-1) * (gold != -100).unsqueeze(-1)
    kd = -(soft * torch.log_softmax(logits, -1)).sum(-1)[gold != -100].mean()
    torch.testing.assert_close(distill.distillation_loss(logits, gold, soft, 1.0), kd)
    torch.testing.assert_close(
        distill.distillation_loss(logits, gold, soft, 0.25), 0.75 * ce + 0.25 * kd
    )
    # Raw text (no gold anywhere): the teacher term alone, at full weight.
    none = torch.full_like(gold, -100)
    torch.testing.assert_close(distill.distillation_loss(logits, none, soft, 0.25), kd)


@pytest.fixture(scope="module")
def teacher(
    tmp_path_factory: pytest.TempPathFactory,
    trainer_args: Callable[..., list[str]],
    write_conll: Callable[..., Path],
) -> Path:
    tmp = tmp_path_factory.mktemp("teacher")
    train, dev = write_conll(tmp / "train.txt", 4, seed=2), write_conll(tmp / "dev.txt", 2, seed=3)
    out = tmp / "out"
    assert finetune.main(trainer_args(train, dev, out, "--epochs", "1", "--casing")) == 0
    return out / "best"


def test_teacher_rows_are_its_first_piece_distributions(
    teacher: Path, tmp_path: Path, write_conll
) -> None:
    docs = read_documents(write_conll(tmp_path / "raw.txt", 3, seed=7))
    dist = distill.word_distributions(teacher, docs, max_length=32)
    assert dist.shape == (distill.n_words(docs), 9)
    np.testing.assert_allclose(dist.sum(axis=1), 1.0, atol=1e-5)
    # The same as running the teacher on each window by hand.
    tok = transformers.AutoTokenizer.from_pretrained(teacher)
    model = transformers.AutoModelForTokenClassification.from_pretrained(teacher).eval()
    window = finetune.build_windows(distill.unlabelled(docs), tok, 32, casing=True)[1]
    batch = finetune.collate([window], tok.pad_token_id)
    gold = batch.pop("labels")[0]
    with torch.no_grad():
        probs = torch.softmax(model(**batch).logits[0], -1)[gold != -100].numpy()
    np.testing.assert_allclose(dist[window.words], probs, atol=1e-5)


def test_trainer_distils_on_gold_and_raw_text(
    teacher: Path,
    tmp_path: Path,
    trainer_args: Callable[..., list[str]],
    write_conll: Callable[..., Path],
) -> None:
    train, dev = write_conll(tmp_path / "train.txt", 3, seed=4), write_conll(tmp_path / "d", 2, 5)
    raw = write_conll(tmp_path / "raw.txt", 4, seed=6)
    for src, name in ((train, "train.npy"), (raw, "raw.npy")):
        argv = ["--teacher", str(teacher), "--data", str(src), "--output", str(tmp_path / name)]
        assert distill.main([*argv, "--no-bf16", "--threads", "1"]) == 0
    info = json.loads((tmp_path / "raw.json").read_text())
    assert info["labels"][0] == "O" and info["words_without_pieces"] == 0
    out = tmp_path / "student"
    extra = [
        "--epochs", "1", "--casing", "--soft-labels", str(tmp_path / "train.npy"),
        "--unlabelled", str(raw), "--unlabelled-soft", str(tmp_path / "raw.npy"),
        "--unlabelled-limit", "3", "--distill-alpha", "0.5",
    ]  # fmt: skip
    assert finetune.main(trainer_args(train, dev, out, *extra)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["finished"] and metrics["hyperparameters"]["unlabelled_limit"] == 3
    # Distributions of another file are refused, not silently misaligned.
    bad = trainer_args(
        train, dev, tmp_path / "bad", "--soft-labels", str(tmp_path / "raw.npy"), "--casing"
    )
    np.save(tmp_path / "short.npy", np.full((5, 9), 1 / 9, np.float16))
    bad[bad.index("--soft-labels") + 1] = str(tmp_path / "short.npy")
    with pytest.raises(ValueError, match="words x 9 labels"):
        finetune.main(bad)


def test_raw_text_labels_never_reach_the_gold_loss(tmp_path: Path, tokenizer) -> None:
    path = tmp_path / "raw.txt"
    path.write_text("-DOCSTART- -X- -X- O\n\nNATO X X B-ORG\nmet X X O\n\n", encoding="utf-8")
    (window,) = finetune.build_windows(read_documents(path), tokenizer, 16)
    window.gold = False
    window.soft = np.full((2, 9), 1 / 9, np.float32)
    batch = finetune.collate([window], tokenizer.pad_token_id)
    assert (batch["labels"] == -100).all()
    soft = distill.soft_targets([window], batch["labels"])
    assert soft is not None and soft.sum().item() == pytest.approx(2.0)
