"""Per-row activation scales: what the rewrite produces, that it removes the batch dependence of
dynamic int8, and that it refuses graphs it does not understand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from spacy_nerzoo.export import row_scales
from spacy_nerzoo.export.onnx import EXPORT_FORMAT_VERSION, export_onnx

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def graphs(tiny_model: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fp32 and int8 exports of a tiny DistilBERT, plus quantize_dynamic's raw output."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = tmp_path_factory.mktemp("row-scales")
    model = tiny_model("distilbert")
    export_onnx(model, folder / "fp32.onnx")
    export_onnx(model, folder / "int8.onnx", quantize=True)
    quantize_dynamic(
        str(folder / "fp32.onnx"),
        str(folder / "per_tensor.onnx"),
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    return folder


def logits(path: Path, ids: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    return np.asarray(session.run(["logits"], feed)[0])


def target_alone_and_with_a_loud_mate(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The same row on its own and next to a row of other tokens (other activation ranges)."""
    rng = np.random.default_rng(0)
    target = rng.integers(5, 200, size=(1, 12))
    mate = np.full((1, 12), 7)  # one token repeated: activations unlike the target's
    batch = np.concatenate([mate, target, rng.integers(5, 200, size=(2, 12))])
    return logits(path, target)[0], logits(path, batch)[1]


def test_export_writes_per_row_int8(graphs: Path) -> None:
    model = onnx.load(str(graphs / "int8.onnx"))
    ops = {n.op_type for n in model.graph.node}
    assert "DynamicQuantizeLinear" not in ops
    assert "MatMulIntegerToFloat" in ops
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta[row_scales.METADATA_KEY] == row_scales.PER_ROW
    assert meta["spacy_nerzoo.export_format"] == str(EXPORT_FORMAT_VERSION) == "3"


def test_per_tensor_int8_depends_on_the_batch_and_per_row_does_not(
    graphs: Path, tmp_path: Path
) -> None:
    alone, batched = target_alone_and_with_a_loud_mate(graphs / "per_tensor.onnx")
    assert np.abs(alone - batched).max() > 1e-4  # the defect this module fixes
    rewritten = tmp_path / "rewritten.onnx"
    count = row_scales.rewrite_file(graphs / "per_tensor.onnx", rewritten)
    assert count == sum(
        n.op_type == "DynamicQuantizeLinear"
        for n in onnx.load(str(graphs / "per_tensor.onnx")).graph.node
    )
    assert count > 0
    for path in (rewritten, graphs / "int8.onnx"):
        alone, batched = target_alone_and_with_a_loud_mate(path)
        np.testing.assert_array_equal(alone, batched)


def test_per_row_int8_stays_close_to_fp32(graphs: Path) -> None:
    ids = np.random.default_rng(1).integers(5, 200, size=(3, 20))
    ref = logits(graphs / "fp32.onnx", ids)
    spread = np.sqrt(np.mean((ref - ref.mean(-1, keepdims=True)) ** 2))
    for name in ("int8.onnx", "per_tensor.onnx"):
        err = np.sqrt(np.mean((logits(graphs / name, ids) - ref) ** 2)) / spread
        assert err < 0.1, (name, err)


def test_rewriting_twice_changes_nothing(graphs: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.onnx"
    assert row_scales.rewrite_file(graphs / "int8.onnx", again) == 0
    ids = np.arange(5, 25).reshape(2, 10)
    np.testing.assert_array_equal(logits(again, ids), logits(graphs / "int8.onnx", ids))


def test_unknown_consumer_is_refused_and_the_model_left_alone() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"], name="dql"),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="deq"),
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]))
    before = model.SerializeToString()
    with pytest.raises(row_scales.RowScaleError, match="dql"):
        row_scales.per_row_activation_scales(model)
    assert model.SerializeToString() == before


@pytest.mark.parametrize("name", ["minilm_conll03", "minilm_fewnerd"])
def test_shipped_models_quantise_activations_per_row(name: str) -> None:
    path = Path(row_scales.__file__).parents[1] / "models" / name / "model.int8.onnx"
    if not path.is_file():
        pytest.skip(f"{name} is not in this checkout")
    model = onnx.load(str(path), load_external_data=False)
    assert not any(n.op_type == "DynamicQuantizeLinear" for n in model.graph.node)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta[row_scales.METADATA_KEY] == row_scales.PER_ROW
    assert meta["spacy_nerzoo.export_format"] == str(EXPORT_FORMAT_VERSION)
