"""Failure paths: broken checkpoints, mismatched parts and bad settings fail early and clearly.

A clear error is a spacy_nerzoo error (``ModelLoadError``/``NerzooError``) or a ``ValueError`` for
settings, raised when the model is loaded (``nlp.initialize()``, ``spacy.load``) rather than deep
inside torch at the first document, with a message of a line or so that names the file or model
and the problem. Missing weights, a corrupt ``model.safetensors`` and bad hub ids are covered in
``tests/components/test_token_classifier.py``.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import spacy
from onnx import TensorProto, helper, numpy_helper
from spacy.language import Language

from spacy_nerzoo.errors import ModelLoadError, NerzooError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TEXT = "Angela Merkel met Tim Cook in Berlin on Monday."


def make_nlp(path: Path | str, **config: Any) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("token_classifier", config={"model": str(path), **config})
    return nlp


def copy_model(tiny_model: Callable[..., Path], kind: str, dest: Path) -> Path:
    shutil.copytree(tiny_model(kind), dest)
    return dest


def assert_clear(exc: BaseException, path: Path, *problem: str) -> str:
    """A spacy_nerzoo error (or ValueError) of a line or so naming ``path`` and ``problem``."""
    assert isinstance(exc, NerzooError | ValueError), type(exc)
    msg = str(exc)
    assert str(path) in msg, msg
    assert msg.strip().count("\n") <= 1 and len(msg) < 1200, msg
    assert "Traceback" not in msg
    for word in problem:
        assert word.lower() in msg.lower(), (word, msg)
    return msg


def load_fails(nlp: Language) -> BaseException:
    """The error of loading ``nlp``'s model; a second attempt must fail the same way."""
    with pytest.raises((NerzooError, ValueError)) as first:
        nlp.initialize()
    with pytest.raises(type(first.value)):
        nlp(TEXT)
    return first.value


# -- broken checkpoint files -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["distilbert", "albert"])
def test_truncated_weights(tiny_model, tmp_path, kind):
    path = copy_model(tiny_model, kind, tmp_path / "ckpt")
    weights = path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    err = load_fails(make_nlp(path))
    assert isinstance(err, ModelLoadError)
    assert_clear(err, path, "weights")


def test_truncated_tokenizer(tiny_model, tmp_path):
    path = copy_model(tiny_model, "longformer", tmp_path / "ckpt")
    tok = path / "tokenizer.json"
    tok.write_bytes(tok.read_bytes()[:1000])
    err = load_fails(make_nlp(path))
    assert isinstance(err, ModelLoadError)
    assert_clear(err, path, "tokenizer")


def test_corrupt_config(tiny_model, tmp_path):
    path = copy_model(tiny_model, "distilbert", tmp_path / "ckpt")
    (path / "config.json").write_text('{"model_type": "distilbert", ', encoding="utf8")
    err = load_fails(make_nlp(path))
    assert isinstance(err, ModelLoadError)
    assert_clear(err, path, "config")


# -- parts that do not fit together ----------------------------------------------------------


def _shrink_vocabulary(path: Path, vocab_size: int) -> None:
    """Replace the weights with a model whose embedding matrix has only ``vocab_size`` rows."""
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification

    config = AutoConfig.from_pretrained(path)
    config.vocab_size = vocab_size
    torch.manual_seed(0)
    AutoModelForTokenClassification.from_config(config).save_pretrained(path)


def test_tokenizer_larger_than_embeddings_fails_at_load(tiny_model, tmp_path):
    path = copy_model(tiny_model, "distilbert", tmp_path / "ckpt")
    _shrink_vocabulary(path, 50)  # the tokenizer has ~200 entries
    err = load_fails(make_nlp(path))
    assert isinstance(err, ModelLoadError)
    assert_clear(err, path, "vocab")


def _fewer_labels_in_config(path: Path, labels: list[str]) -> None:
    cfg = json.loads((path / "config.json").read_text(encoding="utf8"))
    cfg["id2label"] = {str(i): lab for i, lab in enumerate(labels)}
    cfg["label2id"] = {lab: i for i, lab in enumerate(labels)}
    (path / "config.json").write_text(json.dumps(cfg), encoding="utf8")


def test_label_map_smaller_than_classifier_head(tiny_model, tmp_path):
    path = copy_model(tiny_model, "distilbert", tmp_path / "ckpt")
    _fewer_labels_in_config(path, ["O", "B-PER", "I-PER"])  # the head has 9 outputs
    err = load_fails(make_nlp(path))
    assert isinstance(err, ModelLoadError)
    assert_clear(err, path)


def test_label_map_mismatch_message_says_what_does_not_match(tiny_model, tmp_path):
    path = copy_model(tiny_model, "distilbert", tmp_path / "head")
    _fewer_labels_in_config(path, ["O", "B-PER", "I-PER"])
    msg = assert_clear(load_fails(make_nlp(path)), path).replace(str(path), "")
    assert "size mismatch" in msg or re.search(r"\b3\b.*\b9\b|\b9\b.*\b3\b", msg), msg


# -- ONNX files ------------------------------------------------------------------------------


def write_onnx(
    path: Path,
    inputs: tuple[str, ...] = ("input_ids", "attention_mask"),
    *,
    n_labels: int = 9,
    vocab: int = 300,
    dtype: int = TensorProto.INT64,
) -> Path:
    """A hand-made token classifier: logits are rows of a table looked up by input id."""
    table = np.random.default_rng(0).normal(size=(vocab, n_labels)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["logits"], axis=0)],
        "toy",
        [helper.make_tensor_value_info(n, dtype, ["batch", "seq"]) for n in inputs],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", n_labels])],
        [numpy_helper.from_array(table, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime this project supports
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def onnx_checkpoint(tiny_model, tmp_path, monkeypatch) -> Path:
    """A checkpoint folder; ensure_onnx uses a model.onnx found in it as it is."""
    monkeypatch.setenv("SPACY_NERZOO_CACHE", str(tmp_path / "cache"))
    return copy_model(tiny_model, "distilbert", tmp_path / "ckpt")


def test_onnx_file_without_attention_mask(onnx_checkpoint):
    onnx_file = write_onnx(onnx_checkpoint / "model.onnx", ("input_ids",))
    err = load_fails(make_nlp(onnx_checkpoint, backend="onnx"))
    assert isinstance(err, ModelLoadError)
    assert_clear(err, onnx_file, "attention_mask")


def test_onnx_file_with_extra_input(onnx_checkpoint):
    onnx_file = write_onnx(
        onnx_checkpoint / "model.onnx", ("input_ids", "attention_mask", "position_ids")
    )
    err = load_fails(make_nlp(onnx_checkpoint, backend="onnx"))
    assert_clear(err, onnx_file, "position_ids")


def test_onnx_file_with_token_type_ids_runs(onnx_checkpoint):
    """A graph exported with token_type_ids (e.g. by another tool) is fed zeros, the default."""
    write_onnx(onnx_checkpoint / "model.onnx", ("input_ids", "attention_mask", "token_type_ids"))
    doc = make_nlp(onnx_checkpoint, backend="onnx")(TEXT)
    assert doc.text == TEXT and all(t.ent_iob_ in "BIO" for t in doc)


def test_casing_model_with_graph_without_token_types(onnx_checkpoint):
    """A casing model whose ONNX file cannot take the casing classes is refused, not run blind."""
    config_file = onnx_checkpoint / "config.json"
    config = json.loads(config_file.read_text())
    config.update(type_vocab_size=6, nerzoo={"casing": "word-shape-v1"})
    config_file.write_text(json.dumps(config))
    onnx_file = write_onnx(onnx_checkpoint / "model.onnx")
    err = load_fails(make_nlp(onnx_checkpoint, backend="onnx"))
    assert_clear(err, onnx_checkpoint, "token_type_ids", "casing")
    assert onnx_file.exists()


def test_onnx_file_with_int32_inputs(onnx_checkpoint):
    onnx_file = write_onnx(onnx_checkpoint / "model.onnx", dtype=TensorProto.INT32)
    err = load_fails(make_nlp(onnx_checkpoint, backend="onnx"))
    assert_clear(err, onnx_file, "int64")


def test_onnx_file_that_is_not_onnx(onnx_checkpoint):
    onnx_file = onnx_checkpoint / "model.onnx"
    onnx_file.write_bytes(b"\x08\x07garbage" * 50)
    err = load_fails(make_nlp(onnx_checkpoint, backend="onnx"))
    assert_clear(err, onnx_file)


def test_hand_made_onnx_file_with_right_inputs_runs(onnx_checkpoint):
    write_onnx(onnx_checkpoint / "model.onnx")
    doc = make_nlp(onnx_checkpoint, backend="onnx")(TEXT)
    assert doc.text == TEXT and all(t.ent_iob_ in "BIO" for t in doc)


def test_onnx_head_size_mismatch_names_the_model(onnx_checkpoint):
    write_onnx(onnx_checkpoint / "model.onnx", n_labels=5)
    err = load_fails(make_nlp(onnx_checkpoint, backend="onnx"))
    assert isinstance(err, ModelLoadError)
    assert_clear(err, onnx_checkpoint, "5", "9")


def test_onnx_pipeline_saves_after_from_bytes(onnx_checkpoint, tmp_path):
    write_onnx(onnx_checkpoint / "model.onnx")
    nlp = make_nlp(onnx_checkpoint, backend="onnx")
    nlp.initialize()
    restored = make_nlp(tmp_path / "not-used", backend="onnx")
    restored.get_pipe("token_classifier").from_bytes(nlp.get_pipe("token_classifier").to_bytes())
    expected = [(e.start, e.end, e.label_) for e in nlp(TEXT).ents]
    assert [(e.start, e.end, e.label_) for e in restored(TEXT).ents] == expected
    restored.to_disk(tmp_path / "saved")
    again = spacy.load(tmp_path / "saved")
    assert [(e.start, e.end, e.label_) for e in again(TEXT).ents] == expected


# -- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config,field",
    [
        ({"batch_size": -1}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"decoding": "crf"}, "decoding"),
        ({"backend": "tensorflow"}, "backend"),
        ({"backend": "onnx", "precision": "bf16"}, "precision"),
        ({"precision": "fp16"}, "precision"),
        ({"label_level": "medium"}, "label_level"),
        ({"max_length": 2}, "max_length"),
        ({"stride": -1}, "stride"),
    ],
)
def test_invalid_settings_rejected_when_the_pipe_is_added(config, field):
    # Before any model is looked at: the model path does not even exist.
    with pytest.raises(ValueError, match=field):
        make_nlp("/nonexistent/model", **config)


def test_stride_equal_to_window_rejected_at_load(tiny_model):
    # max_length 16 leaves a 14-wordpiece window after [CLS] and [SEP].
    nlp = make_nlp(tiny_model("distilbert"), max_length=16, stride=14)
    with pytest.raises(ValueError, match="stride=14"):
        nlp.initialize()


# -- saved pipelines -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_pipeline(tiny_model, tmp_path_factory) -> Path:
    nlp = make_nlp(tiny_model("albert"))
    nlp.initialize()
    path = tmp_path_factory.mktemp("saved") / "pipeline"
    nlp.to_disk(path)
    return path


def _copy(saved: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved, tmp_path / "pipeline"))


@pytest.mark.parametrize("version", [0, 2, 99, None])
def test_pipeline_saved_by_incompatible_version(saved_pipeline, tmp_path, version):
    path = _copy(saved_pipeline, tmp_path)
    cfg_file = path / "token_classifier" / "cfg.json"
    cfg = json.loads(cfg_file.read_text(encoding="utf8"))
    cfg["serial_version"] = version
    cfg_file.write_text(json.dumps(cfg), encoding="utf8")
    with pytest.raises(ModelLoadError) as info:
        spacy.load(path)
    assert_clear(info.value, path / "token_classifier", "incompatible", str(version))


def test_pipeline_without_component_cfg(saved_pipeline, tmp_path):
    path = _copy(saved_pipeline, tmp_path)
    (path / "token_classifier" / "cfg.json").unlink()
    with pytest.raises(ModelLoadError) as info:
        spacy.load(path)
    assert_clear(info.value, path / "token_classifier" / "cfg.json", "missing")


def test_pipeline_with_truncated_weights(saved_pipeline, tmp_path):
    path = _copy(saved_pipeline, tmp_path)
    weights = path / "token_classifier" / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:4096])
    with pytest.raises(ModelLoadError) as info:
        spacy.load(path)
    assert_clear(info.value, path / "token_classifier" / "model", "weights")


def test_intact_copy_of_saved_pipeline_loads(saved_pipeline, tmp_path):
    # The control for the tests above: the untouched copy loads and runs.
    doc = spacy.load(_copy(saved_pipeline, tmp_path))(TEXT)
    assert doc.text == TEXT


# -- one bad document ------------------------------------------------------------------------


def test_one_bad_document_does_not_lose_its_batch(tiny_model, monkeypatch):
    nlp = make_nlp(tiny_model("distilbert"))
    nlp.set_error_handler(lambda *args: None)  # skip documents that fail
    pipe = nlp.get_pipe("token_classifier")
    predict = pipe.predict

    def failing_predict(docs):
        docs = list(docs)
        if any(doc.text == "BAD" for doc in docs):
            raise RuntimeError("cannot annotate this document")
        return predict(docs)

    monkeypatch.setattr(pipe, "predict", failing_predict)
    texts = [TEXT, "BAD", "Paris and London."]
    out = [doc.text for doc in nlp.pipe(texts, batch_size=8)]
    assert out == [TEXT, "Paris and London."]
