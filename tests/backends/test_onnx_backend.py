"""OnnxBackend on small hand-built ONNX graphs: no torch, so these run where only onnxruntime is.

The toy graph is an embedding lookup masked by ``attention_mask``; its logits are easy to compute
in NumPy, so predictions can be checked exactly. Parity with real exported models is tested in
``tests/export/test_onnx.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from spacy_nerzoo.backends.base import Backend
from spacy_nerzoo.backends.onnx_backend import (
    ACTIVATION_SCALES_KEY,
    SPINNING_KEY,
    OnnxBackend,
    OnnxModelError,
)

VOCAB, LABELS = 50, 9
_TABLE = np.random.default_rng(0).normal(size=(VOCAB, LABELS)).astype(np.float32)


def toy_graph(
    path: Path,
    inputs: tuple[str, ...] = ("input_ids", "attention_mask"),
    *,
    labels_dim: int | str = LABELS,
    output_name: str = "logits",
) -> Path:
    """Write ``logits[b, t] = TABLE[input_ids[b, t]] * attention_mask[b, t]`` as an ONNX file.

    Inputs beyond the first two are declared but unused, to model a graph exported with
    ``token_type_ids``.
    """
    ids_name, mask_name = inputs[0], inputs[1] if len(inputs) > 1 else None
    nodes = [helper.make_node("Gather", ["table", ids_name], ["emb"], axis=0)]
    if mask_name is not None:
        nodes += [
            helper.make_node("Cast", [mask_name], ["mask_f"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["mask_f", "last"], ["mask_3d"]),
            helper.make_node("Mul", ["emb", "mask_3d"], [output_name]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["emb"], [output_name]))
    graph = helper.make_graph(
        nodes,
        "toy",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in inputs],
        [
            helper.make_tensor_value_info(
                output_name, TensorProto.FLOAT, ["batch", "seq", labels_dim]
            )
        ],
        initializer=[
            numpy_helper.from_array(_TABLE, "table"),
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "last"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def expected(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return _TABLE[ids] * mask[..., None].astype(np.float32)


def padded_batch(rows: int, length: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB, size=(rows, length), dtype=np.int64)
    mask = np.zeros_like(ids)
    for r in range(rows):
        mask[r, : max(1, length - r)] = 1
    return ids * mask, mask


@pytest.fixture()
def toy(tmp_path: Path) -> Path:
    return toy_graph(tmp_path / "toy.onnx")


@pytest.mark.parametrize("shape", [(1, 1), (3, 17), (8, 64)])
def test_predict_matches_reference(toy: Path, shape: tuple[int, int]) -> None:
    backend = OnnxBackend(toy)
    ids, mask = padded_batch(*shape)
    logits = backend.predict(ids, mask)
    assert logits.dtype == np.float32
    assert logits.shape == (*shape, LABELS)
    np.testing.assert_allclose(logits, expected(ids, mask), rtol=1e-6)


def test_protocol_and_attributes(toy: Path) -> None:
    backend = OnnxBackend(toy, precision="int8", num_threads=1)
    assert isinstance(backend, Backend)
    assert (backend.name, backend.precision, backend.num_labels) == ("onnx", "int8", LABELS)
    assert backend.session.get_session_options().intra_op_num_threads == 1


def test_intra_op_threads_do_not_spin(toy: Path) -> None:
    """Spin-waiting threads burn the CPU time other work needs (issue 17), also after unpickling."""
    import pickle

    for backend in (OnnxBackend(toy), pickle.loads(pickle.dumps(OnnxBackend(toy)))):
        options = backend.session.get_session_options()
        assert options.get_session_config_entry(SPINNING_KEY) == "0"


def test_accepts_int32_and_lists(toy: Path) -> None:
    ids, mask = padded_batch(2, 5)
    logits = OnnxBackend(toy).predict(ids.astype(np.int32), mask.tolist())  # type: ignore[arg-type]
    np.testing.assert_allclose(logits, expected(ids, mask), rtol=1e-6)


def test_empty_batch(toy: Path) -> None:
    backend = OnnxBackend(toy)
    empty = np.zeros((0, 4), dtype=np.int64)
    assert backend.predict(empty, empty).shape == (0, 4, LABELS)


def test_num_labels_from_symbolic_output(tmp_path: Path) -> None:
    path = toy_graph(tmp_path / "sym.onnx", labels_dim="labels")
    assert OnnxBackend(path).num_labels == LABELS
    assert OnnxBackend(path, num_labels=LABELS).num_labels == LABELS


def test_refuses_bf16(toy: Path) -> None:
    with pytest.raises(ValueError, match="bf16"):
        OnnxBackend(toy, precision="bf16")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OnnxModelError, match="does not exist"):
        OnnxBackend(tmp_path / "nothing.onnx")


def test_extra_required_input_is_refused(tmp_path: Path) -> None:
    path = toy_graph(tmp_path / "bert.onnx", ("input_ids", "attention_mask", "position_ids"))
    with pytest.raises(OnnxModelError) as info:
        OnnxBackend(path)
    message = str(info.value)
    assert str(path) in message
    assert "position_ids" in message and "unexpected" in message


def test_token_type_ids_input_is_fed(tmp_path: Path) -> None:
    """Casing models export token_type_ids: given ids are fed, zeros when none are given."""
    path = toy_graph(tmp_path / "cased.onnx", ("input_ids", "attention_mask", "token_type_ids"))
    backend = OnnxBackend(path)
    assert backend.takes_token_types
    ids = np.array([[1, 2, 3]], np.int64)
    mask = np.ones_like(ids)
    expected = _TABLE[ids]
    np.testing.assert_allclose(backend.predict(ids, mask), expected, rtol=1e-6)
    np.testing.assert_allclose(backend.predict(ids, mask, ids * 0 + 2), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="token_type_ids"):
        backend.predict(ids, mask, np.zeros((1, 2), np.int64))
    # A graph without the input ignores casing ids instead of failing.
    plain = OnnxBackend(toy_graph(tmp_path / "plain.onnx"))
    assert not plain.takes_token_types
    np.testing.assert_allclose(plain.predict(ids, mask, ids), expected, rtol=1e-6)


def test_missing_input_is_refused(tmp_path: Path) -> None:
    path = toy_graph(tmp_path / "ids_only.onnx", ("input_ids",))
    with pytest.raises(OnnxModelError, match="missing \\['attention_mask'\\]") as info:
        OnnxBackend(path)
    assert "input_ids (tensor(int64))" in str(info.value)


def test_refusal_is_a_value_error(tmp_path: Path) -> None:
    # The component turns ValueErrors from backends into its one clear load error.
    path = toy_graph(tmp_path / "renamed.onnx", ("ids", "mask"))
    with pytest.raises(ValueError, match="renamed.onnx"):
        OnnxBackend(path)


def test_output_named_logits_is_preferred(tmp_path: Path) -> None:
    path = toy_graph(tmp_path / "out.onnx", output_name="scores")
    backend = OnnxBackend(path)  # falls back to the first output
    ids, mask = padded_batch(2, 3)
    np.testing.assert_allclose(backend.predict(ids, mask), expected(ids, mask), rtol=1e-6)


def test_not_an_onnx_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(OnnxModelError, match="could not load"):
        OnnxBackend(path)


def _with_metadata(path: Path, **meta: str) -> Path:
    model = onnx.load(str(path))
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("mode", ["per_row", "static"])
def test_both_int8_activation_modes_load(tmp_path: Path, mode: str) -> None:
    path = _with_metadata(toy_graph(tmp_path / "m.onnx"), **{ACTIVATION_SCALES_KEY: mode})
    backend = OnnxBackend(path, precision="int8")
    assert backend.activation_scales == mode
    ids, mask = padded_batch(2, 3)
    np.testing.assert_allclose(backend.predict(ids, mask), expected(ids, mask), rtol=1e-6)


def test_unmarked_file_has_no_activation_mode(toy: Path) -> None:
    assert OnnxBackend(toy).activation_scales is None  # fp32, or int8 from before format 3


def test_unknown_activation_mode_is_refused(tmp_path: Path) -> None:
    path = _with_metadata(toy_graph(tmp_path / "m.onnx"), **{ACTIVATION_SCALES_KEY: "per_gpu"})
    with pytest.raises(OnnxModelError, match="'per_gpu'.*does not know"):
        OnnxBackend(path, precision="int8")


@pytest.mark.parametrize(
    ("precision", "name"), [("fp32", "model.onnx"), ("int8", "model.int8.onnx")]
)
def test_save_copies_file(toy: Path, tmp_path: Path, precision: str, name: str) -> None:
    folder = tmp_path / "pipeline" / "ner"
    OnnxBackend(toy, precision=precision).save(folder)
    assert (folder / name).read_bytes() == toy.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == [name]  # no temporary files left
    reloaded = OnnxBackend(folder / name, precision=precision)
    ids, mask = padded_batch(2, 4)
    np.testing.assert_allclose(reloaded.predict(ids, mask), expected(ids, mask), rtol=1e-6)
    # Saving a backend onto its own file must not truncate it.
    reloaded.save(folder)
    assert (folder / name).read_bytes() == toy.read_bytes()


def test_runs_without_torch(toy: Path) -> None:
    """The ONNX path must not need torch or transformers (a pipeline can be served without)."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None  # any import of torch now raises ImportError
        sys.modules["transformers"] = None
        import numpy as np
        from spacy_nerzoo.backends.onnx_backend import OnnxBackend
        backend = OnnxBackend({str(toy)!r})
        out = backend.predict(np.ones((2, 3), np.int64), np.ones((2, 3), np.int64))
        assert out.shape == (2, 3, {LABELS}), out.shape
        """
    )
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
