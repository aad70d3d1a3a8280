"""scripts/avx2_saturation.py: the emulated AVX2 product equals a pair-by-pair reference of the
saturating kernel, differs from the exact product exactly where a pair saturates, and the two
7-bit guards make saturation impossible."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture()
def script(repo_script: Callable[[str], ModuleType]) -> ModuleType:
    return repo_script("avx2_saturation")


def _product_model(weight: np.ndarray, w_scale: np.ndarray) -> Any:
    """One per-row-style product: u8 activations (zero point 128) times constant s8 weights."""
    from onnx import TensorProto, helper, numpy_helper

    k, n = weight.shape
    node = helper.make_node(
        "MatMulIntegerToFloat",
        ["a", "w", "a_scale", "w_scale", "a_zp", "w_zp"],
        ["y"],
        name="product",
        domain="com.microsoft",
    )
    inits = [
        numpy_helper.from_array(weight, "w"),
        numpy_helper.from_array(np.array(1.0, np.float32), "a_scale"),
        numpy_helper.from_array(w_scale.astype(np.float32), "w_scale"),
        numpy_helper.from_array(np.array(128, np.uint8), "a_zp"),
        numpy_helper.from_array(np.zeros(n, np.int8), "w_zp"),
    ]
    graph = helper.make_graph(
        [node],
        "product",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, ["rows", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", n])],
        inits,
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


def _run(model: Any, a: np.ndarray, outputs: list[str] | None = None) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(outputs, {"a": a})


@pytest.fixture()
def case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    weight = rng.integers(-127, 128, size=(64, 24)).astype(np.int8)
    weight[:, 0] = 127  # a column of large positive weights: high codes must saturate here
    scale = rng.uniform(0.01, 0.1, size=24).astype(np.float32)
    a = rng.integers(1, 256, size=(10, 64)).astype(np.uint8)
    a[0] = 250  # a row of large positive activations
    return a, weight, scale


def test_emulated_product_matches_the_pairwise_reference(script: ModuleType, case: Any) -> None:
    a, weight, scale = case
    model = _product_model(weight, scale)
    (exact,) = _run(model, a)
    assert script.add_saturation(model, count=True) == 1
    emulated, clipped = _run(model, a, ["y", "nerzoo_avx2/0/saturated"])
    reference = script.reference_avx2_product(a, weight, 128) * scale
    np.testing.assert_allclose(emulated, reference, rtol=1e-5, atol=1e-3)
    exact_int = (a.astype(np.int64) - 128) @ weight.astype(np.int64) * scale
    np.testing.assert_allclose(exact, exact_int, rtol=1e-5, atol=1e-3)
    # row 0 times column 0: 250 * 127 * 2 per pair, far over int16
    assert emulated[0, 0] < exact[0, 0] - 1.0
    assert clipped > 0
    differs = ~np.isclose(emulated, exact, rtol=1e-5, atol=1e-3)
    assert differs.any() and not differs.all()


def test_small_codes_never_saturate(script: ModuleType, case: Any) -> None:
    _, weight, scale = case
    a = np.random.default_rng(1).integers(1, 128, size=(10, 64)).astype(np.uint8)
    model = _product_model(weight, scale)
    (exact,) = _run(model, a)
    script.add_saturation(model, count=True)
    emulated, clipped = _run(model, a, ["y", "nerzoo_avx2/0/saturated"])
    assert clipped == 0
    np.testing.assert_allclose(emulated, exact, rtol=1e-6, atol=1e-4)


def test_seven_bit_weights_keep_the_values_and_fit_in_63(script: ModuleType, case: Any) -> None:
    from onnx import numpy_helper

    a, weight, scale = case
    model = _product_model(weight, scale)
    (before,) = _run(model, a)
    script.seven_bit_weights(model)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert np.abs(inits["w"]).max() == 63
    np.testing.assert_allclose(inits["w"] * inits["w_scale"], weight * scale, atol=scale.max())
    script.add_saturation(model, count=True)
    after, clipped = _run(model, a, ["y", "nerzoo_avx2/0/saturated"])
    assert clipped == 0  # 255 * 63 * 2 < 32,767
    assert np.abs(after - before).max() < 0.05 * np.abs(before).max()


def test_seven_bit_activations_refuse_a_graph_without_row_scales(
    script: ModuleType, case: Any
) -> None:
    _, weight, scale = case
    with pytest.raises(ValueError, match="per-row"):
        script.seven_bit_activations(_product_model(weight, scale))


def test_main_reports_the_emulated_shipped_model(script: ModuleType, tmp_path: Path) -> None:
    import spacy
    from spacy.tokens import Doc, DocBin

    from spacy_nerzoo.api import availability
    from spacy_nerzoo.catalogue import ZOO

    if not availability(ZOO["minilm_conll03"]).available:
        pytest.skip("the built-in model is not here")
    vocab = spacy.blank("en").vocab
    words = "Angela Merkel met Emmanuel Macron in Paris on Monday .".split()
    doc = Doc(
        vocab, words=words, ents=["B-PER", "I-PER", "O", "B-PER", "I-PER", "O", "B-LOC"] + ["O"] * 3
    )
    gold = tmp_path / "gold.spacy"
    DocBin(docs=[doc]).to_disk(gold)
    out = tmp_path / "out.md"
    argv = [
        "--gold",
        str(gold),
        "--count-docs",
        "1",
        "--variants",
        "shipped-avx2",
        "--markdown",
        str(out),
    ]
    assert script.main(argv) == 0
    text = out.read_text()
    assert "Clipped pair sums" in text and "F1 on IOB tags" in text
    rows = [line for line in text.splitlines() if line.startswith("| shipped")]
    assert [r.split(" | ")[0] for r in rows] == [
        "| shipped, exact (VNNI / AMX)",
        "| shipped, AVX2 kernel (emulated)",
    ]
    assert rows[0].split(" | ")[2] == "100.00"  # the reference agrees with itself


def test_main_refuses_an_unknown_variant(script: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        script.main(["--gold", str(tmp_path / "x.spacy"), "--variants", "nope"])
