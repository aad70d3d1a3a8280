"""scripts/network_profile.py: kernel-time shares from onnxruntime's profiler, by op type and by
node group (the layers' numbered copies of one node folded together)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")


@pytest.fixture()
def script(repo_script: Callable[[str], ModuleType]) -> ModuleType:
    return repo_script("network_profile")


def test_shares_by_op_and_folded_node_names(script: ModuleType, tmp_path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Cast", ["input_ids"], ["x0"], name="cast", to=TensorProto.FLOAT)]
    for i in range(3):  # three "layers" of the same two nodes
        nodes += [
            helper.make_node("MatMul", [f"x{i}", "w"], [f"m{i}"], name=f"layer.{i}/MatMul"),
            helper.make_node("Sigmoid", [f"m{i}"], [f"x{i + 1}"], name=f"layer.{i}/Sigmoid"),
        ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", 64])],
        [helper.make_tensor_value_info("x3", TensorProto.FLOAT, ["b", 64])],
        [
            numpy_helper.from_array(np.eye(64, dtype=np.float32), "w"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    ids = np.ones((4, 64), np.int64)
    batches = [{"input_ids": ids, "attention_mask": ids}] * 3  # extra keys are not fed
    by_op, by_node = script.profile(path, batches, threads=1)
    assert set(by_op) == {"Cast", "MatMul", "Sigmoid"}
    assert set(by_node) == {"cast", "layer.#/MatMul", "layer.#/Sigmoid"}
    assert sum(by_op.values()) == pytest.approx(100.0)
    assert sum(by_node.values()) == pytest.approx(100.0)


def test_attention_graphs_compute_the_same(script: ModuleType) -> None:
    # The timing compares like with like only if the fused op computes the exported core.
    unfused, fused, diff = script.time_attention(batch=2, length=16, hidden=32, heads=4)
    assert unfused > 0 and fused > 0
    assert diff < 1e-4
