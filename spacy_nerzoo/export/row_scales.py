"""Per-row activation scales for dynamic int8, so a token's result never depends on its batch.

``onnxruntime.quantization.quantize_dynamic`` puts a ``DynamicQuantizeLinear`` in front of every
int8 MatMul. That op picks one scale and zero point for the whole activation tensor, from its
minimum and maximum over every token of every window in the forward pass. So the rounding of one
Doc's activations depends on which other Docs share its ``nlp.pipe`` batch, and an entity can
appear or vanish with its batch-mates (about 0.1 F1 between batch sizes on CoNLL-2003 valid).

``per_row_activation_scales`` rewrites each such op into a symmetric quantisation with one scale
per row of the MatMul's left operand (per token: the maximum of ``|x|`` over the hidden axis,
divided by 127) and the fixed zero point 128, which is exactly what the downstream
``MatMulInteger`` -> ``Cast`` -> ``Mul(scale_x * scale_w)`` chain needs: the row scale, of shape
``(..., 1)``, broadcasts against the per-channel weight scales, so nothing downstream changes.
A token's quantised activations are then a function of that token's own values only.

It works on an already-quantised file (the shipped models carry no fp32 source), needs only the
``onnx`` package, and is applied by the exporter to every new int8 export.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.onnx_backend import ACTIVATION_SCALES_KEY

# The metadata key and value that mark a rewritten file (export format 3 and later); the backend
# reads the key, so it is defined there.
METADATA_KEY = ACTIVATION_SCALES_KEY
PER_ROW = "per_row"
# A row of zeros would give scale 0 and 0/0 = NaN; any positive floor gives q = zero point there.
_EPS = np.float32(1e-12)
_PREFIX = "nerzoo_rowq"
_MS_DOMAIN = "com.microsoft"


class RowScaleError(ValueError):
    """A ``DynamicQuantizeLinear`` feeds something other than the MatMul pattern this rewrites."""


@dataclass
class _Chain:
    """One int8 product fed by a DynamicQuantizeLinear, as ``quantize_dynamic`` writes it:
    ``MatMulInteger(q, w, zp, w_zp) -> Cast -> Mul(., Mul(scale, w_scale)) -> out``."""

    matmul: Any
    cast: Any
    product: Any
    scale_mul: Any
    weight_scale: str


def per_row_activation_scales(model: Any) -> int:
    """Rewrite every ``DynamicQuantizeLinear`` of ``model`` (an ``onnx.ModelProto``) in place.

    Returns how many were rewritten. Raises ``RowScaleError``, leaving ``model`` unchanged, if
    one feeds anything but the pattern ``quantize_dynamic`` writes (see ``_Chain``), since a
    per-row scale would be wrong for another consumer.

    Each product becomes onnxruntime's ``MatMulIntegerToFloat`` (integer GEMM with the
    per-column weight scales applied in its output stage) followed by a ``Mul`` by the row
    scale. Why not keep ``MatMulInteger -> Cast -> Mul``: onnxruntime fuses that chain into the
    same op only when the scale is ``Mul(a_scale, b_scale)``, and then treats ``a_scale`` as one
    number per tensor, so a per-row scale there computes garbage, while a constant scale is
    folded away first and the chain stays unfused (three extra passes over every product).
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    targets = [n for n in graph.node if n.op_type == "DynamicQuantizeLinear" and n.domain == ""]
    if not targets:
        return 0
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    chains = {id(node): _chains(node, consumers) for node in targets}

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if not any(o.domain == _MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(_MS_DOMAIN, 1))
    shared = {
        "eps": np.array(_EPS),
        "inv127": np.array(1.0 / 127.0, np.float32),
        "one": np.array(1.0, np.float32),
        "zp": np.array(128, np.uint8),
        "axes": np.array([-1], np.int64),
        "flat": np.array([-1], np.int64),
    }
    existing = {i.name for i in graph.initializer}
    graph.initializer.extend(
        numpy_helper.from_array(v, f"{_PREFIX}_{k}")
        for k, v in shared.items()
        if f"{_PREFIX}_{k}" not in existing
    )

    def reduce(op: str, x: str, out: str) -> Any:
        if opset >= 18:  # Reduce* took their axes as an attribute until opset 18
            return helper.make_node(op, [x, f"{_PREFIX}_axes"], [out], keepdims=1)
        return helper.make_node(op, [x], [out], axes=[-1], keepdims=1)

    replaced: dict[int, list[Any]] = {}
    for k, node in enumerate(targets):
        x = node.input[0]
        q, scale, zero_point = node.output
        p = f"{_PREFIX}/{k}"
        # scale: (..., 1), max |x| of the row / 127. x is flattened to (rows, hidden) so that
        # QuantizeLinear's per-axis mode (axis 0: one scale and zero point per row) quantises
        # in one pass; the zero points are 128 (a symmetric range stored as uint8, so the u8s8
        # integer kernels apply).
        new_nodes = [
            reduce("ReduceMax", x, f"{p}/max"),
            reduce("ReduceMin", x, f"{p}/min"),
            helper.make_node("Neg", [f"{p}/min"], [f"{p}/neg_min"]),
            helper.make_node("Max", [f"{p}/max", f"{p}/neg_min", f"{_PREFIX}_eps"], [f"{p}/amax"]),
            helper.make_node("Mul", [f"{p}/amax", f"{_PREFIX}_inv127"], [scale]),
            helper.make_node("Reshape", [scale, f"{_PREFIX}_flat"], [f"{p}/row_scale"]),
            helper.make_node("Shape", [f"{p}/row_scale"], [f"{p}/rows"]),
            helper.make_node("Expand", [f"{_PREFIX}_zp", f"{p}/rows"], [f"{p}/row_zp"]),
            helper.make_node("Flatten", [x], [f"{p}/x2d"], axis=-1),
            helper.make_node(
                "QuantizeLinear",
                [f"{p}/x2d", f"{p}/row_scale", f"{p}/row_zp"],
                [f"{p}/q2d"],
                axis=0,
            ),
            helper.make_node("Shape", [x], [f"{p}/x_shape"]),
            helper.make_node("Reshape", [f"{p}/q2d", f"{p}/x_shape"], [q]),
        ]
        for i, n in enumerate(new_nodes):
            n.name = f"{p}/{i}_{n.op_type}"
        replaced[id(node)] = new_nodes
        for j, chain in enumerate(chains[id(node)]):
            w, w_zp = chain.matmul.input[1], chain.matmul.input[3]
            per_column = f"{p}/{j}/per_column"
            fused = helper.make_node(
                "MatMulIntegerToFloat",
                [q, w, f"{_PREFIX}_one", chain.weight_scale, f"{_PREFIX}_zp", w_zp],
                [per_column],
                name=f"{p}/{j}/MatMulIntegerToFloat",
                domain=_MS_DOMAIN,
            )
            row = helper.make_node(
                "Mul", [per_column, scale], [chain.product.output[0]], name=f"{p}/{j}/row_Mul"
            )
            replaced[id(chain.matmul)] = [fused, row]
            replaced[id(chain.cast)] = []
            replaced[id(chain.product)] = []
            replaced[id(chain.scale_mul)] = []
        _drop_value_info(graph, (q, scale, zero_point))
    replace_nodes(graph, replaced)
    _drop_unused_initializers(graph)
    _set_metadata(model, METADATA_KEY, PER_ROW)
    return len(targets)


def replace_nodes(graph: Any, replaced: dict[int, list[Any]]) -> None:
    """Put each node whose ``id`` is a key of ``replaced`` by its list (empty: removed), in
    place, keeping the order (the replacements take the place of the node they replace)."""
    kept: list[Any] = []
    for node in graph.node:
        kept.extend(replaced.get(id(node), [node]))
    del graph.node[:]
    graph.node.extend(kept)


def _chains(node: Any, consumers: dict[str, list[Any]]) -> list[_Chain]:
    """The products a DynamicQuantizeLinear feeds; ``RowScaleError`` if any use is unexpected."""
    q, scale, zero_point = node.output

    def only(name: str, op: str) -> Any:
        found = consumers.get(name, [])
        if len(found) != 1 or found[0].op_type != op:
            kinds = [c.op_type for c in found]
            raise RowScaleError(f"{node.name}: {name} feeds {kinds}, expected one {op}")
        return found[0]

    chains: list[_Chain] = []
    scale_muls = consumers.get(scale, [])
    for mm in consumers.get(q, []):
        if mm.op_type != "MatMulInteger" or len(mm.input) != 4 or mm.input[0] != q:
            raise RowScaleError(f"{node.name}: its quantised output feeds {mm.op_type} {mm.name}")
        if mm.input[2] != zero_point:
            raise RowScaleError(f"{mm.name} does not take {node.name}'s zero point")
        cast = only(mm.output[0], "Cast")
        product = only(cast.output[0], "Mul")
        other = next(i for i in product.input if i != cast.output[0])
        scale_mul = next((m for m in scale_muls if m.output[0] == other), None)
        if scale_mul is None or scale_mul.op_type != "Mul":
            raise RowScaleError(f"{product.name} is not scaled by {node.name}'s scale")
        only(scale_mul.output[0], "Mul")
        weight_scale = next(i for i in scale_mul.input if i != scale)
        chains.append(_Chain(mm, cast, product, scale_mul, weight_scale))
    uses = {id(c) for c in consumers.get(zero_point, [])} | {id(c) for c in scale_muls}
    if uses != {id(c.matmul) for c in chains} | {id(c.scale_mul) for c in chains}:
        raise RowScaleError(f"{node.name}: its scale or zero point has other uses")
    return chains


def _drop_unused_initializers(graph: Any) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def rewrite_file(path: Path, output: Path | None = None) -> int:
    """Apply ``per_row_activation_scales`` to the ONNX file ``path``, writing ``output`` (default:
    ``path`` itself, through a temporary file and a rename). Returns the count rewritten."""
    import onnx

    path = Path(path)
    output = Path(output) if output is not None else path
    model = onnx.load(str(path))
    count = per_row_activation_scales(model)
    save_checked(model, output)
    return count


def save_checked(model: Any, output: Path) -> None:
    """Check ``model`` and write it to ``output`` through a temporary file and a rename, so
    that rewriting a file in place never leaves it half-written."""
    import onnx

    from ..serialization import atomic_path

    onnx.checker.check_model(model)
    with atomic_path(output) as tmp:
        onnx.save(model, str(tmp))


def _drop_value_info(graph: Any, names: tuple[str, ...]) -> None:
    """Shapes recorded for the old outputs (scalars) would be wrong for the per-row ones."""
    keep = [v for v in graph.value_info if v.name not in names]
    del graph.value_info[:]
    graph.value_info.extend(keep)


def _set_metadata(model: Any, key: str, value: str) -> None:
    for prop in model.metadata_props:
        if prop.key == key:
            prop.value = value
            return
    model.metadata_props.add(key=key, value=value)
