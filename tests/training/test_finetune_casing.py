"""Casing classes as token types: trainer, component (torch and ONNX) and export agree."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from spacy_nerzoo.api import load  # noqa: E402
from spacy_nerzoo.casing import N_CLASSES, SCHEME, SPECIAL, TITLE, UPPER  # noqa: E402
from spacy_nerzoo.data.readers import read_documents  # noqa: E402
from spacy_nerzoo.training import finetune  # noqa: E402


def test_windows_carry_casing_classes(tmp_path: Path, tokenizer) -> None:
    path = tmp_path / "train.txt"
    path.write_text(
        "-DOCSTART- -X- -X- O\n\nNATO X X B-ORG\nmet X X O\nParis X X B-LOC\n. X X O\n\n",
        encoding="utf-8",
    )
    docs = read_documents(path)
    (plain,) = finetune.build_windows(docs, tokenizer, max_length=32)
    (cased,) = finetune.build_windows(docs, tokenizer, max_length=32, casing=True)
    assert plain.type_ids is None
    assert cased.input_ids == plain.input_ids and cased.labels == plain.labels
    assert cased.type_ids is not None and len(cased.type_ids) == len(cased.input_ids)
    assert cased.type_ids[0] == cased.type_ids[-1] == SPECIAL
    first = [t for t, lab in zip(cased.type_ids, cased.labels, strict=True) if lab >= 0]
    assert first[0] == UPPER and first[2] == TITLE
    batch = finetune.collate([cased], tokenizer.pad_token_id)
    assert batch["token_type_ids"].tolist()[0] == cased.type_ids
    assert "token_type_ids" not in finetune.collate([plain], tokenizer.pad_token_id)


@pytest.fixture(scope="module")
def casing_model(
    tmp_path_factory: pytest.TempPathFactory,
    trainer_args: Callable[..., list[str]],
    write_conll: Callable[..., Path],
) -> Path:
    """A tiny casing model from the trainer, its token-type rows then made clearly different."""
    tmp = tmp_path_factory.mktemp("casing")
    train, dev = tmp / "train.txt", tmp / "dev.txt"
    write_conll(train, 4, seed=2)
    write_conll(dev, 2, seed=3)
    out = tmp / "out"
    assert finetune.main(trainer_args(train, dev, out, "--epochs", "1", "--casing")) == 0
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["type_vocab_size"] == N_CLASSES
    assert config["nerzoo"]["casing"] == SCHEME
    model = transformers.AutoModelForTokenClassification.from_pretrained(out / "best")
    with torch.no_grad():  # one training epoch moves the rows only a little
        model.base_model.embeddings.token_type_embeddings.weight.normal_(0, 1.0)
    folder = tmp / "model"
    model.save_pretrained(folder)
    files = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
    for name in (*files, "nerzoo_training.json"):
        (folder / name).write_bytes((out / "best" / name).read_bytes())
    return folder


def _probs(nlp, text: str) -> np.ndarray:
    comp = nlp.get_pipe(nlp.pipe_names[0])
    doc = nlp.make_doc(text)
    rt = comp.runtime
    from spacy_nerzoo.alignment import encode_batch
    from spacy_nerzoo.networks.hf_token_classifier import network_inputs

    batch = encode_batch(rt.tokenizer, [doc], lowercase=True, casing=rt.casing)
    one_window = np.array([0]), np.array([len(batch.piece_ids)])
    ids, mask, types = network_inputs(rt, batch.piece_ids, batch.piece_types, *one_window)
    return rt.backend.predict(ids, mask, types)


def test_component_feeds_casing(casing_model: Path) -> None:
    """An uncased tokenizer sees "paris" twice; only the casing classes tell them apart."""
    nlp = load(str(casing_model), max_length=32)
    assert nlp.get_pipe(nlp.pipe_names[0]).runtime.casing
    lower, title = _probs(nlp, "paris"), _probs(nlp, "Paris")
    assert lower.shape == title.shape
    assert not np.allclose(lower, title, atol=1e-4)
    # The same text gives the same result through nlp.pipe, batched with other Docs.
    texts = ["Paris hired NATO staff .", "paris", "A b C d " * 20]
    alone = [[(e.start, e.end, e.label_) for e in nlp(t).ents] for t in texts]
    together = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts)]
    assert alone == together


def test_onnx_export_and_backend_match_torch(casing_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from spacy_nerzoo.backends.onnx_backend import OnnxBackend
    from spacy_nerzoo.export.onnx import export_onnx

    onnx_path = export_onnx(casing_model, tmp_path / "model.onnx")  # parity-checked vs torch
    backend = OnnxBackend(onnx_path)
    assert backend.takes_token_types
    torch_nlp = load(str(casing_model), max_length=32)
    onnx_nlp = load(str(casing_model), max_length=32, backend="onnx")
    for text in ("Paris", "NATO met the Mayor of paris in BERLIN ."):
        np.testing.assert_allclose(
            _probs(onnx_nlp, text), _probs(torch_nlp, text), atol=1e-4, rtol=1e-4
        )
    text = "Peter Blackburn visited PARIS for Reuters . " * 3
    assert [(e.start, e.end, e.label_) for e in onnx_nlp(text).ents] == [
        (e.start, e.end, e.label_) for e in torch_nlp(text).ents
    ]


def test_spacy_update_trains_the_casing_rows(casing_model: Path) -> None:
    """Inside spaCy's loop (``nlp.update``) a casing model gets its casing classes too: the
    token-type rows of the classes in the batch receive gradient and move."""
    import spacy
    from spacy.training import Example
    from thinc.api import Adam

    nlp = spacy.blank("en")
    config = {"model": str(casing_model), "max_length": 32}
    nlp.add_pipe("token_classifier", name="ner", config=config)
    ref = nlp.make_doc("NATO met paris")
    ref.ents = [ref.char_span(0, 4, label="ORG"), ref.char_span(9, 14, label="LOC")]
    egs = [Example(nlp.make_doc(ref.text), ref)]
    nlp.initialize(lambda: egs)
    pipe = nlp.get_pipe("ner")
    (window,) = pipe.training_windows(egs)
    assert window.piece_types is not None and UPPER in window.piece_types.tolist()
    table = pipe.runtime.backend.model.base_model.embeddings.token_type_embeddings.weight
    before = table.detach().clone()
    losses = [nlp.update(egs, sgd=Adam(1e-2))["ner"] for _ in range(3)]
    assert all(np.isfinite(losses))
    moved = (table.detach() - before).abs().sum(dim=1) > 0
    assert moved[UPPER] and not moved[N_CLASSES - 1]  # no word without letters in the batch


def test_continuing_from_a_cased_checkpoint_keeps_its_casing_rows(
    casing_model: Path,
    trainer_args: Callable[..., list[str]],
    write_conll: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """A trained casing checkpoint as ``--base-model`` (two-stage distillation) starts from its
    learned casing rows, not from fresh copies of row 0; without ``--casing`` it is refused."""
    train, dev = write_conll(tmp_path / "t.txt", 2, seed=4), write_conll(tmp_path / "d.txt", 1, 5)
    out = tmp_path / "continued"
    args = trainer_args(train, dev, out, "--epochs", "1", "--casing", lr="1e-12")
    args[args.index("--base-model") + 1] = str(casing_model)
    assert finetune.main(args) == 0

    def rows(folder: Path) -> torch.Tensor:
        model = transformers.AutoModelForTokenClassification.from_pretrained(folder)
        return model.base_model.embeddings.token_type_embeddings.weight.detach()

    before, after = rows(casing_model), rows(out / "last")
    metrics = json.loads((out / "metrics.json").read_text())
    assert "hyperparameters" in metrics["base_training"]  # the first stage's recipe is kept
    assert not torch.allclose(before[UPPER], before[0])  # the fixture's rows differ
    torch.testing.assert_close(after, before, atol=1e-6, rtol=0)
    plain = [a for a in args if a != "--casing"]
    plain[plain.index("--output") + 1] = str(tmp_path / "plain")
    with pytest.raises(ValueError, match="--casing"):
        finetune.main(plain)
