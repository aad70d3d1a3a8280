"""ONNX export: parity with torch, int8, refusals, atomic writes and the export cache.

Tiny random DistilBERT and ALBERT token classifiers are built in the test session (seconds), so
nothing is downloaded. The builders are local to this file on purpose (no shared conftest).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from spacy_nerzoo.backends.onnx_backend import OnnxBackend
from spacy_nerzoo.export import onnx as export
from spacy_nerzoo.export.onnx import (
    OnnxParityError,
    UnsupportedExportError,
    ensure_onnx,
    export_onnx,
    quantize_onnx,
)

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

LABELS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
VOCAB = 300
WORDS = "the of and in to a EU German British call boycott lamb Peter Brussels Tuesday".split()


def _label_maps() -> dict[str, Any]:
    return {
        "id2label": dict(enumerate(LABELS)),
        "label2id": {label: i for i, label in enumerate(LABELS)},
    }


def _save_tokenizer(folder: Path, fixed_padding: int | None = None) -> None:
    """A small WordPiece tokenizer.json over VOCAB ids, so the export check can tokenise text."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(c) for c in range(33, 127)]
    pieces = [f"##{c}" for c in chars]
    vocab_list = list(dict.fromkeys(specials + [w.lower() for w in WORDS] + chars + pieces))
    vocab = {tok: i for i, tok in enumerate(vocab_list[:VOCAB])}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    if fixed_padding:  # as sentence-transformers checkpoints ship theirs
        tokenizer.enable_padding(length=fixed_padding, pad_id=0, pad_token="[PAD]")
    tokenizer.save(str(folder / "tokenizer.json"))


def build_distilbert(folder: Path) -> Path:
    torch.manual_seed(0)
    config = transformers.DistilBertConfig(
        vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
        max_position_embeddings=128, **_label_maps(),
    )  # fmt: skip
    transformers.DistilBertForTokenClassification(config).save_pretrained(folder)
    _save_tokenizer(folder)
    return folder


def build_albert(folder: Path) -> Path:
    torch.manual_seed(0)
    config = transformers.AlbertConfig(
        vocab_size=VOCAB, embedding_size=16, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, max_position_embeddings=128, **_label_maps(),
    )  # fmt: skip
    transformers.AlbertForTokenClassification(config).save_pretrained(folder)
    return folder


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "distilbert": build_distilbert,
    "albert": build_albert,
}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def exported(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("onnx")
    return {
        "fp32": export_onnx(checkpoint, out / "model.onnx"),
        "int8": export_onnx(checkpoint, out / "model.int8.onnx", quantize=True),
    }


def torch_logits(checkpoint: Path, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    model = transformers.AutoModelForTokenClassification.from_pretrained(checkpoint).eval()
    with torch.inference_mode():
        out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    return out.logits.numpy()


def padded_batch(rows: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB, size=(rows, length), dtype=np.int64)
    lengths = rng.integers(1, length + 1, size=rows)
    lengths[0] = length  # one row fills the batch, as in a real padded batch
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int64)
    return ids * mask, mask


@pytest.mark.parametrize(("rows", "length"), [(1, 1), (1, 9), (4, 23), (7, 100), (2, 128)])
def test_fp32_matches_torch(
    checkpoint: Path, exported: dict[str, Path], rows: int, length: int
) -> None:
    ids, mask = padded_batch(rows, length, seed=rows * 1000 + length)
    got = OnnxBackend(exported["fp32"]).predict(ids, mask)
    want = torch_logits(checkpoint, ids, mask)
    assert got.shape == want.shape == (rows, length, len(LABELS))
    real = mask.astype(bool)
    assert np.abs(got - want)[real].max() <= 1e-4


def test_graph_signature_and_metadata(exported: dict[str, Path]) -> None:
    model = onnx.load(str(exported["fp32"]))
    assert [i.name for i in model.graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in model.graph.output] == ["logits"]
    for value in model.graph.input:
        assert value.type.tensor_type.elem_type == onnx.TensorProto.INT64
        dims = [d.dim_param for d in value.type.tensor_type.shape.dim]
        assert dims == ["batch", "sequence"]
    assert {o.domain: o.version for o in model.opset_import}[""] == 17
    meta = OnnxBackend(exported["fp32"]).metadata
    assert meta["precision"] == "fp32"
    assert list(json.loads(meta["id2label"]).values()) == LABELS
    assert not list(exported["fp32"].parent.glob(".*"))  # no temporary files left behind


def test_int8_runs(checkpoint: Path, exported: dict[str, Path]) -> None:
    backend = OnnxBackend(exported["int8"], precision="int8")
    assert backend.num_labels == len(LABELS)
    assert backend.metadata["precision"] == "int8"
    ops = {node.op_type for node in onnx.load(str(exported["int8"])).graph.node}
    # Integer products with per-row activation scales (export format 3; see row_scales).
    assert "MatMulIntegerToFloat" in ops and "DynamicQuantizeLinear" not in ops
    ids, mask = padded_batch(5, 40, seed=1)
    got = backend.predict(ids, mask)
    assert got.shape == (5, 40, len(LABELS)) and got.dtype == np.float32
    assert np.isfinite(got).all()
    # Close to torch relative to the logits' spread (dynamic int8 is typically ~1-5% here).
    want = torch_logits(checkpoint, ids, mask)[mask.astype(bool)]
    err = np.sqrt(np.mean((got[mask.astype(bool)] - want) ** 2)) / want.std()
    assert err < 0.25


def test_check_batches_use_tokenizer(tmp_path: Path) -> None:
    folder = build_distilbert(tmp_path / "m")
    config = transformers.AutoConfig.from_pretrained(folder)
    text, random = export._check_batches(folder, config)
    assert len(text) == 2 and len(random) == 3
    for ids, mask in text + random:
        assert ids.max() < VOCAB and mask[:, 0].all()
    ids, mask = text[0]
    assert ids[0, 0] == 2  # [CLS] from the tokenizer's post-processor
    assert not mask.all()  # sentences of different lengths: padding included
    # A tokenizer saved with fixed-length padding must not turn pad tokens into real ones.
    _save_tokenizer(folder, fixed_padding=128)
    for ids, mask in export._check_batches(folder, config)[0]:
        assert not (ids[mask.astype(bool)] == 0).any()
    (folder / "tokenizer.json").unlink()
    assert export._check_batches(folder, config)[0] == []


def test_longformer_is_refused(tmp_path: Path) -> None:
    config = transformers.LongformerConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
        intermediate_size=64, attention_window=8, **_label_maps(),
    )  # fmt: skip
    config.save_pretrained(tmp_path)  # no weights needed: it is refused before loading them
    for call in (
        lambda: export_onnx(tmp_path, tmp_path / "model.onnx"),
        lambda: ensure_onnx(tmp_path, tmp_path / "cache", quantize=False),
    ):
        with pytest.raises(UnsupportedExportError) as info:
            call()
        assert isinstance(info.value, ValueError)
        message = str(info.value)
        assert "Longformer does not export to ONNX with dynamic shapes" in message
        assert "backend='torch'" in message and "bf16" in message
    assert not (tmp_path / "model.onnx").exists()


def test_failed_check_leaves_nothing(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mismatch raises OnnxParityError and the output file is never created."""
    real_export = export._torch_export

    def export_other_weights(model: Any, path: Path, opset: int, **kwargs: Any) -> None:
        with torch.no_grad():
            model.classifier.bias.add_(1.0)  # the graph no longer matches the checked model
        real_export(model, path, opset, **kwargs)
        with torch.no_grad():
            model.classifier.bias.sub_(1.0)

    monkeypatch.setattr(export, "_torch_export", export_other_weights)
    output = tmp_path / "out" / "model.onnx"
    with pytest.raises(OnnxParityError, match="does not match torch"):
        export_onnx(checkpoint, output)
    assert list(output.parent.iterdir()) == []


def test_int8_check_catches_a_broken_graph(tmp_path: Path) -> None:
    """The int8 check fails a graph that computes something else (here: another model)."""
    a = export_onnx(build_distilbert(tmp_path / "a"), tmp_path / "a.onnx")
    torch.manual_seed(1)
    config = transformers.DistilBertConfig(
        vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
        max_position_embeddings=128, **_label_maps(),
    )  # fmt: skip
    transformers.DistilBertForTokenClassification(config).save_pretrained(tmp_path / "b")
    b = export_onnx(tmp_path / "b", tmp_path / "b.onnx")
    batches = export._random_batches(VOCAB)
    export._check_int8(a, a, batches)  # identical graphs pass
    with pytest.raises(OnnxParityError, match="int8 quantisation changed"):
        export._check_int8(a, b, batches)


def test_quantize_onnx_without_torch_export(exported: dict[str, Path], tmp_path: Path) -> None:
    out = quantize_onnx(exported["fp32"], tmp_path / "q" / "model.int8.onnx")
    backend = OnnxBackend(out, precision="int8")
    assert backend.metadata["precision"] == "int8"
    assert "id2label" in backend.metadata  # carried over from the fp32 file


@pytest.fixture()
def count_exports(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = export.export_onnx

    def counting(model_dir: Path, output: Path, **kwargs: Any) -> Path:
        calls.append(output)
        return real(model_dir, output, **kwargs)

    monkeypatch.setattr(export, "export_onnx", counting)
    return calls


def test_ensure_onnx_exports_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count_exports: list[Path]
) -> None:
    folder = build_albert(tmp_path / "ckpt")
    monkeypatch.setenv("SPACY_NERZOO_CACHE", str(tmp_path / "cache"))
    first = ensure_onnx(folder, None, quantize=False)
    assert first.name == "model.onnx"
    assert first.is_relative_to(tmp_path / "cache" / "onnx")
    mtime = first.stat().st_mtime_ns
    assert ensure_onnx(folder, None, quantize=False) == first
    assert len(count_exports) == 1 and first.stat().st_mtime_ns == mtime
    # int8 is a separate file in the same cache entry, also made once.
    q = ensure_onnx(folder, None, quantize=True)
    assert q.name == "model.int8.onnx" and q.parent == first.parent
    assert ensure_onnx(folder, None, quantize=True) == q
    assert len(count_exports) == 2
    OnnxBackend(q, precision="int8")


def test_ensure_onnx_notices_new_weights(
    tmp_path: Path, count_exports: list[Path], checkpoint: Path
) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for f in checkpoint.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    cache = tmp_path / "cache"
    first = ensure_onnx(folder, cache, quantize=False)
    weights = folder / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # as if re-saved
    second = ensure_onnx(folder, cache, quantize=False)
    assert second != first and len(count_exports) == 2


def test_ensure_onnx_prefers_shipped_files(
    exported: dict[str, Path], tmp_path: Path, count_exports: list[Path]
) -> None:
    folder = tmp_path / "shipped"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(exported["fp32"].read_bytes())
    cache = tmp_path / "cache"
    assert ensure_onnx(folder, cache, quantize=False) == folder / "model.onnx"
    # int8 requested, only fp32 shipped (and no config.json): quantised from it, once.
    q = ensure_onnx(folder, cache, quantize=True)
    assert q.is_relative_to(cache) and q.name == "model.int8.onnx"
    assert ensure_onnx(folder, cache, quantize=True) == q
    (folder / "model.int8.onnx").write_bytes(q.read_bytes())
    assert ensure_onnx(folder, cache, quantize=True) == folder / "model.int8.onnx"
    assert count_exports == []


def test_ensure_onnx_needs_something_to_export(tmp_path: Path, checkpoint: Path) -> None:
    with pytest.raises(export.OnnxExportError, match="neither model.onnx nor"):
        ensure_onnx(tmp_path, tmp_path / "cache", quantize=False)
    # A shipped int8-only folder (config + tokenizer + model.int8.onnx) asked for fp32.
    (tmp_path / "config.json").write_bytes((checkpoint / "config.json").read_bytes())
    (tmp_path / "model.int8.onnx").write_bytes(b"")
    with pytest.raises(export.OnnxExportError, match="It ships model.int8.onnx"):
        ensure_onnx(tmp_path, tmp_path / "cache", quantize=False)


def test_written_files_are_not_private(exported: dict[str, Path]) -> None:
    """Temporary files are created 0600 by mkstemp; the published model must not keep that."""
    umask = os.umask(0o022)
    os.umask(umask)
    for path in exported.values():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SPACY_NERZOO_CACHE", raising=False)
    assert export.onnx_cache_dir() == Path.home() / ".cache" / "spacy_nerzoo" / "onnx"
    monkeypatch.setenv("SPACY_NERZOO_CACHE", str(tmp_path))
    assert export.onnx_cache_dir() == tmp_path / "onnx"
    assert export.onnx_cache_dir(tmp_path / "x") == tmp_path / "x"


def _float_weight_matmuls(path: Path) -> list[str]:
    """MatMuls left in fp32 on a weight: an initializer, directly or through Identity nodes."""
    graph = onnx.load(str(path)).graph
    weights = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    source = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    left = []
    for node in graph.node:
        if node.op_type == "MatMul":
            b = node.input[1]
            while b in source:
                b = source[b]
            if b in weights:
                left.append(node.name)
    return left


def test_int8_quantises_every_weight_matmul(exported: dict[str, Path]) -> None:
    # ALBERT's shared layer reaches its MatMuls through Identity nodes; they must not stay fp32.
    assert _float_weight_matmuls(exported["fp32"])
    assert _float_weight_matmuls(exported["int8"]) == []
