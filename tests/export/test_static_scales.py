"""Static (calibrated) activation scales: the export option, the rewrite of an already-quantised
file, calibration, batch independence and the refusals."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from spacy_nerzoo.backends.onnx_backend import OnnxBackend
from spacy_nerzoo.export import row_scales, static_scales
from spacy_nerzoo.export.onnx import export_onnx
from spacy_nerzoo.export.static_scales import Calibration, StaticScaleError

pytest.importorskip("torch")

TEXTS = [
    "The European Union asked Germany to review its rules on beef .",
    "Maria Lopez spoke to reporters in Madrid on Monday .",
    "Shares of Microsoft rose 3 percent in New York .",
    "Kenya beat Ghana 2-1 in Nairobi .",
] * 3


@pytest.fixture(scope="module")
def graphs(tiny_model: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny DistilBERT exported as fp32, per-row int8 and static int8 (calibrated on TEXTS)."""
    folder = tmp_path_factory.mktemp("static-scales")
    model = tiny_model("distilbert")
    export_onnx(model, folder / "fp32.onnx")
    export_onnx(model, folder / "per_row.onnx", quantize=True)
    export_onnx(
        model,
        folder / "static.onnx",
        quantize=True,
        activation_scales="static",
        calibration=Calibration(TEXTS),
    )
    (folder / "model").symlink_to(model)
    return folder


def logits(path: Path, ids: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids) if mask is None else mask}
    return np.asarray(session.run(["logits"], feed)[0])


def text_batch(graphs: Path) -> dict[str, np.ndarray]:
    words = [t.split() for t in TEXTS[:4]]
    return static_scales.corpus_batches(graphs / "model", words, max_length=64)[0]


def test_export_writes_format_4_with_fixed_scales(graphs: Path) -> None:
    model = onnx.load(str(graphs / "static.onnx"))
    ops = [n.op_type for n in model.graph.node]
    per_row_ops = [n.op_type for n in onnx.load(str(graphs / "per_row.onnx")).graph.node]
    # One QuantizeLinear per quantised input, no per-row min/max, every product still integer.
    assert "ReduceMax" not in ops and "DynamicQuantizeLinear" not in ops
    assert ops.count("QuantizeLinear") == per_row_ops.count("ReduceMax") > 0
    assert ops.count("MatMulIntegerToFloat") == per_row_ops.count("MatMulIntegerToFloat")
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta[row_scales.METADATA_KEY] == static_scales.STATIC
    assert meta[static_scales.FORMAT_KEY] == "4"
    note = json.loads(meta[static_scales.CALIBRATION_KEY])
    assert note == {"method": "minmax", "corpus": "12 texts", "documents": None}
    assert OnnxBackend(graphs / "static.onnx", precision="int8").activation_scales == "static"
    assert OnnxBackend(graphs / "per_row.onnx", precision="int8").activation_scales == "per_row"
    assert OnnxBackend(graphs / "fp32.onnx").activation_scales is None


def test_static_int8_does_not_depend_on_the_batch(graphs: Path) -> None:
    rng = np.random.default_rng(0)
    target = rng.integers(5, 200, size=(1, 12))
    mate = np.full((1, 12), 7)  # activations unlike the target's
    batch = np.concatenate([mate, target, rng.integers(5, 200, size=(2, 12))])
    path = graphs / "static.onnx"
    np.testing.assert_array_equal(logits(path, target)[0], logits(path, batch)[1])


def test_static_int8_stays_close_to_fp32_on_text(graphs: Path) -> None:
    batch = text_batch(graphs)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    real = mask.astype(bool)
    ref = logits(graphs / "fp32.onnx", ids, mask)[real]
    spread = np.sqrt(np.mean((ref - ref.mean(-1, keepdims=True)) ** 2))
    for name in ("static.onnx", "per_row.onnx"):
        got = logits(graphs / name, ids, mask)[real]
        assert np.sqrt(np.mean((got - ref) ** 2)) / spread < 0.1, name


def test_rewriting_a_quantised_file_keeps_its_int8_weights(graphs: Path, tmp_path: Path) -> None:
    batches = [text_batch(graphs)]
    out = tmp_path / "static.onnx"
    count = static_scales.rewrite_file(graphs / "per_row.onnx", batches, out)
    before = onnx.load(str(graphs / "per_row.onnx"))
    assert count == sum(n.op_type == "ReduceMax" for n in before.graph.node)

    def int8_weights(model: onnx.ModelProto) -> dict[str, bytes]:
        return {
            i.name: numpy_helper.to_array(i).tobytes()
            for i in model.graph.initializer
            if i.data_type == onnx.TensorProto.INT8
        }

    assert int8_weights(onnx.load(str(out))) == int8_weights(before) != {}
    # Every calibrated input got a stored range that covers its calibrated one (nothing seen in
    # calibration is clipped) and is wider only by the rounding that makes zero exact.
    ranges = static_scales.calibrate(before, batches)
    stored = static_scales.stored_ranges(onnx.load(str(out)))
    assert stored.keys() == ranges.keys()
    for name, r in ranges.items():
        low, high = min(r.low, 0.0), max(r.high, 0.0)
        step = (high - low) / 255
        assert stored[name].low <= low * (1 - 1e-6) and stored[name].high >= high * (1 - 1e-6)
        assert stored[name].high - stored[name].low <= high - low + 2 * step


def test_a_per_tensor_dynamic_file_is_rewritten_too(graphs: Path, tmp_path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    per_tensor = tmp_path / "per_tensor.onnx"
    quantize_dynamic(
        str(graphs / "fp32.onnx"), str(per_tensor), weight_type=QuantType.QInt8, per_channel=True
    )
    out = tmp_path / "static.onnx"
    assert static_scales.rewrite_file(per_tensor, [text_batch(graphs)], out) > 0
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "DynamicQuantizeLinear" not in ops and "MatMulIntegerToFloat" in ops


def test_percentile_ranges_lie_inside_minmax(graphs: Path) -> None:
    model = onnx.load(str(graphs / "per_row.onnx"))
    batches = [text_batch(graphs)]
    full = static_scales.calibrate(model, batches)
    top = static_scales.calibrate(model, batches, method="percentile", percentile=100.0)
    inner = static_scales.calibrate(model, batches, method="percentile", percentile=99.0)
    assert top == full
    for name, r in full.items():
        assert r.low <= inner[name].low <= inner[name].high <= r.high
    assert any(inner[n].high < r.high for n, r in full.items())


def test_files_that_are_not_per_row_or_dynamic_int8_are_refused(graphs: Path) -> None:
    batches = [text_batch(graphs)]
    with pytest.raises(StaticScaleError, match="neither a per-row"):
        static_scales.calibrate(onnx.load(str(graphs / "fp32.onnx")), batches)
    with pytest.raises(StaticScaleError, match="already has static"):
        static_scales.rewrite_file(graphs / "static.onnx", batches, graphs / "again.onnx")
    assert not (graphs / "again.onnx").exists()


def test_export_options_are_checked(graphs: Path) -> None:
    model = graphs / "model"
    with pytest.raises(ValueError, match="needs calibration"):
        export_onnx(model, graphs / "x.onnx", quantize=True, activation_scales="static")
    with pytest.raises(ValueError, match="quantize=True"):
        export_onnx(
            model, graphs / "x.onnx", activation_scales="static", calibration=Calibration(TEXTS)
        )
    with pytest.raises(ValueError, match="only used with"):
        export_onnx(model, graphs / "x.onnx", quantize=True, calibration=Calibration(TEXTS))
    assert not (graphs / "x.onnx").exists()


def test_corpus_words_reads_column_files_docbins_and_texts(tmp_path: Path) -> None:
    import spacy
    from spacy.tokens import Doc, DocBin

    conll = tmp_path / "train.txt"
    conll.write_text(
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
        "-DOCSTART- -X- -X- O\n\nPeter NNP B-NP B-PER\n"
    )
    assert static_scales.corpus_words(conll) == [["EU", "rejects"], ["Peter"]]
    assert static_scales.corpus_words(conll, 1) == [["EU", "rejects"]]
    vocab = spacy.blank("en").vocab
    docbin = DocBin(docs=[Doc(vocab, words=["Tom", "Hanks"])])
    docbin.to_disk(tmp_path / "c.spacy")
    assert static_scales.corpus_words(tmp_path / "c.spacy") == [["Tom", "Hanks"]]
    assert static_scales.corpus_words(["a b", ""]) == [["a", "b"]]
    with pytest.raises(FileNotFoundError):
        static_scales.corpus_words(tmp_path / "missing.txt")


def test_calibration_windows_follow_the_model(graphs: Path) -> None:
    words = [("word " * 150).split()]
    (batch,) = static_scales.corpus_batches(graphs / "model", words, max_length=64)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.shape[1] == 64 and mask.sum(1).max() == 64  # windows of the requested length
    assert "token_type_ids" not in batch  # no casing classes for this model


def test_a_hybrid_keeps_per_row_scales_where_asked(graphs: Path) -> None:
    model = onnx.load(str(graphs / "per_row.onnx"))
    batches = [text_batch(graphs)]
    ranges = static_scales.calibrate(model, batches)
    keep = list(ranges)[:2]
    assert static_scales.static_activation_scales(model, ranges, per_row=keep) == len(ranges) - 2
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("ReduceMax") == 2 and ops.count("QuantizeLinear") == len(ranges)
    assert static_scales.stored_ranges(model).keys() == set(ranges) - set(keep)
    with pytest.raises(StaticScaleError, match="does not quantise"):
        static_scales.static_activation_scales(
            onnx.load(str(graphs / "per_row.onnx")), ranges, per_row=["no_such_tensor"]
        )


def test_the_backend_knows_every_mode_the_exporters_write() -> None:
    from spacy_nerzoo.backends.onnx_backend import ACTIVATION_SCALES, ACTIVATION_SCALES_KEY

    assert row_scales.METADATA_KEY == ACTIVATION_SCALES_KEY
    assert set(ACTIVATION_SCALES) == {row_scales.PER_ROW, static_scales.STATIC}


def test_calibration_windows_are_the_components(graphs: Path) -> None:
    # A checkpoint that records no window runs in 512-piece windows in the component; the
    # calibration cut it into 256-piece ones (its own fallback), so the ranges were measured on
    # other inputs than the ones the file then quantises.
    from spacy_nerzoo.api import load

    nlp = load(str(graphs / "model"), backend="onnx")
    window = nlp.pipeline[-1][1].max_length
    assert window == 512
    (batch,) = static_scales.corpus_batches(graphs / "model", [["the"] * 400])
    assert batch["input_ids"].shape == (1, 402)  # one window: 400 pieces and the specials
