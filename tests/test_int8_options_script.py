"""scripts/int8_options.py: the float graph rebuilt from an int8 export computes what the int8
weights say (the source every int8 recipe there is made from)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort
import pytest


@pytest.fixture()
def script(repo_script: Callable[[str], ModuleType]) -> ModuleType:
    return repo_script("int8_options")


def _logits(model: bytes | str, ids: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    feed = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64)}
    return np.asarray(session.run(["logits"], feed)[0])


def test_dequantized_graph_matches_fp32(
    script: ModuleType, tiny_model: Callable[..., Path], tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    from spacy_nerzoo.export.onnx import export_onnx

    model = tiny_model("distilbert")
    fp32 = export_onnx(model, tmp_path / "fp32.onnx")
    int8 = export_onnx(model, tmp_path / "int8.onnx", quantize=True)
    model_proto = onnx.load(str(int8))
    n_products = sum(n.op_type == "MatMulIntegerToFloat" for n in model_proto.graph.node)
    assert script.dequantize(model_proto) == n_products > 0
    ops = {n.op_type for n in model_proto.graph.node}
    assert not ops & {"MatMulIntegerToFloat", "QuantizeLinear", "ReduceMax"}
    ids = np.random.default_rng(0).integers(5, 200, size=(2, 16))
    ref, got = _logits(str(fp32), ids), _logits(model_proto.SerializeToString(), ids)
    # Only the weights are rounded: much closer to fp32 than int8 activations get.
    assert np.sqrt(np.mean((got - ref) ** 2)) / ref.std() < 0.05


def test_agreement_f1_counts_exact_entities(script: ModuleType) -> None:
    ref = [{(0, 1, "PER"), (3, 5, "ORG")}, set()]
    assert script.agreement_f1(ref, ref) == 100.0
    assert script.agreement_f1(ref, [{(0, 1, "PER")}, {(2, 3, "LOC")}]) == 50.0  # 2*1 / (2+2)
    assert script.agreement_f1([set()], [set()]) == 100.0


def test_off_domain_sets_keep_the_sentence_shapes(script: ModuleType, shared_data: Path) -> None:
    sets = script.off_domain_sets(20)
    valid = sets["CoNLL-2003 valid (in domain)"]
    assert len(valid) == 20 and len(sets["Few-NERD dev"]) == 20
    for name in ("lower-cased valid", "ALL-CAPS valid", "valid in Greek letters"):
        assert [len(s) for s in sets[name]] == [len(s) for s in valid], name
    assert not any(
        c.isascii() and c.isalpha() for s in sets["valid in Cyrillic letters"] for w in s for c in w
    )
    digits = [w for s in sets["valid, long digit strings"] for w in s if w.isdigit()]
    assert digits and all(12 <= len(w) <= 40 for w in digits)
