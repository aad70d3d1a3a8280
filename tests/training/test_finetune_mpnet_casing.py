"""Casing for MPNet (no token-type table): the cased architecture, trainer, component and ONNX."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from test_finetune_casing import _probs  # noqa: E402

from spacy_nerzoo.api import load  # noqa: E402
from spacy_nerzoo.backends.cased import MODEL_TYPE, cased_model_class  # noqa: E402
from spacy_nerzoo.casing import LOWER, N_CLASSES, SCHEME, SPECIAL, TITLE, UPPER  # noqa: E402
from spacy_nerzoo.training import finetune  # noqa: E402

# The files of a checkpoint folder that are its tokenizer (the rest: config and weights).
NOT_TOKENIZER = shutil.ignore_patterns("config.json", "*.safetensors", "*.onnx", "*.bin")


@pytest.fixture(scope="module")
def tiny_mpnet(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random MPNet encoder with the MiniLM tokenizer, saved as a base encoder is."""
    folder = tmp_path_factory.mktemp("tiny_mpnet") / "base"
    shutil.copytree(tiny_base, folder, ignore=NOT_TOKENIZER)
    config = transformers.MPNetConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
    )
    transformers.set_seed(0)
    transformers.MPNetModel(config).save_pretrained(folder)
    return folder


def _batch() -> dict[str, torch.Tensor]:
    ids = torch.tensor([[101, 2000, 3000, 4000, 102], [101, 2500, 102, 0, 0]])
    mask = (torch.arange(5) < torch.tensor([[5], [3]])).long()
    return {"input_ids": ids, "attention_mask": mask}


def test_zero_casing_table_is_the_plain_model(tiny_mpnet: Path) -> None:
    """Made from MPNet, the cased model computes exactly what MPNet computes (padded rows too),
    whatever casing ids it gets, until training moves the table."""
    plain = transformers.MPNetForTokenClassification.from_pretrained(tiny_mpnet, num_labels=3)
    cased = finetune.add_casing(plain, N_CLASSES).eval()
    plain.eval()
    assert cased.config.model_type == MODEL_TYPE
    batch = _batch()
    types = torch.tensor([[0, UPPER, TITLE, 1, 0], [0, UPPER, 0, 0, 0]])
    with torch.no_grad():
        want = plain(**batch).logits
        got = cased(**batch, token_type_ids=types).logits
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(got[mask], want[mask], atol=1e-6, rtol=1e-6)
    with torch.no_grad():
        cased.casing_embeddings.weight.normal_()
        moved = cased(**batch, token_type_ids=types).logits
    assert not torch.allclose(moved[mask], want[mask], atol=1e-3)


def test_models_without_a_casing_route_are_refused() -> None:
    config = transformers.DistilBertConfig(dim=16, n_layers=1, n_heads=2, hidden_dim=16)
    model = transformers.DistilBertForTokenClassification(config)
    with pytest.raises(ValueError, match="no casing route"):
        finetune.add_casing(model, N_CLASSES)


@pytest.fixture(scope="module")
def mpnet_casing_model(
    tiny_mpnet: Path,
    tmp_path_factory: pytest.TempPathFactory,
    trainer_args: Callable[..., list[str]],
    write_conll: Callable[..., Path],
) -> Path:
    tmp = tmp_path_factory.mktemp("mpnet_casing")
    train, dev = tmp / "train.txt", tmp / "dev.txt"
    write_conll(train, 4, seed=2)
    write_conll(dev, 2, seed=3)
    out = tmp / "out"
    args = trainer_args(train, dev, out, "--epochs", "1", "--casing", "--casing-lr", "0.05")
    assert finetune.main([*args, "--base-model", str(tiny_mpnet)]) == 0
    return out / "best"


def test_trainer_makes_a_cased_mpnet(mpnet_casing_model: Path) -> None:
    config = json.loads((mpnet_casing_model / "config.json").read_text())
    assert config["model_type"] == MODEL_TYPE
    assert config["type_vocab_size"] == N_CLASSES
    assert config["nerzoo"]["casing"] == SCHEME
    model = transformers.AutoModelForTokenClassification.from_pretrained(mpnet_casing_model)
    assert isinstance(model, cased_model_class())
    table = model.casing_embeddings.weight.detach()
    # The casing rate moved the zero-initialised rows of the classes in the data (the templated
    # corpus has Title-case names, lower-case words and the specials around each window).
    for cls in (SPECIAL, LOWER, TITLE):
        assert table[cls].abs().sum() > 0


def test_component_and_onnx_feed_mpnet_casing(mpnet_casing_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    folder = tmp_path / "model"
    model = transformers.AutoModelForTokenClassification.from_pretrained(mpnet_casing_model)
    with torch.no_grad():  # one tiny epoch moves the rows only a little: make them decisive
        model.casing_embeddings.weight.normal_(0, 1.0)
    shutil.copytree(mpnet_casing_model, folder, ignore=NOT_TOKENIZER)
    model.save_pretrained(folder)
    torch_nlp = load(str(folder), max_length=32)
    rt = torch_nlp.get_pipe(torch_nlp.pipe_names[0]).runtime
    assert rt.casing
    onnx_nlp = load(str(folder), max_length=32, backend="onnx")
    assert onnx_nlp.get_pipe(onnx_nlp.pipe_names[0]).runtime.backend.takes_token_types

    def scores(nlp, text: str) -> list:
        doc = nlp(text)
        return [(e.start, e.end, e.label_, round(e._.confidence, 4)) for e in doc.ents]

    text = "Peter Blackburn visited PARIS for Reuters . paris NATO nato " * 3
    assert scores(onnx_nlp, text) == scores(torch_nlp, text)
    # Casing reaches the network on both backends: "paris" and "Paris" are the same pieces.
    for nlp in (torch_nlp, onnx_nlp):
        assert not np.allclose(_probs(nlp, "paris"), _probs(nlp, "Paris"), atol=1e-4)
    np.testing.assert_allclose(
        _probs(onnx_nlp, "NATO met paris"), _probs(torch_nlp, "NATO met paris"), atol=1e-4
    )


def test_casing_table_and_head_get_their_own_rates(tiny_mpnet: Path) -> None:
    plain = transformers.MPNetForTokenClassification.from_pretrained(tiny_mpnet, num_labels=3)
    model = finetune.add_casing(plain, N_CLASSES)
    opt = finetune.make_optimizer(model, 5e-5, 0.01, casing_lr=1e-3, head_lr=2e-3)
    rates = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert rates[id(model.casing_embeddings.weight)] == 1e-3
    assert rates[id(model.classifier.weight)] == rates[id(model.classifier.bias)] == 2e-3
    assert rates[id(model.mpnet.embeddings.word_embeddings.weight)] == 5e-5
    assert len(rates) == sum(1 for p in model.parameters() if p.requires_grad)
    default = finetune.make_optimizer(model, 5e-5, 0.01)
    assert {g["lr"] for g in default.param_groups} == {5e-5}
