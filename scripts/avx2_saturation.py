"""Would the shipped int8 network give other entities on an AVX2 CPU? An exact emulation.

onnxruntime's u8s8 integer GEMM (MLAS) has three x86 kernels. With AVX-512 VNNI or AMX
(``vpdpbusd``, ``tdpbusd``) every product is accumulated exactly in 32 bits. With AVX2 only, and
with AVX-512 without VNNI, it uses ``vpmaddubsw``: the u8 activation bytes of a pair of
neighbouring inputs ``k, k+1`` are multiplied by their s8 weights and the two products are added
**with saturation to int16** before ``vpmaddwd`` widens them to 32 bits. A pair sum over 32,767
(e.g. two activation codes of 200 with two weights of 90) is cut short there, silently. The
shipped per-row graphs store activations as uint8 with zero point 128 (codes 1-255) and weights
as per-column s8 (each column's largest weight is +-127), so such pairs can occur, but only for
large positive activations meeting large same-sign weights. No AVX2 machine was available, and
MLAS cannot be made to use its AVX2 kernel on an AVX-512 CPU, so this script emulates it:

``add_saturation`` rewrites every ``MatMulIntegerToFloat`` of an int8 graph so that its integer
accumulator gets the correction ``sum over pairs of (clip(p, -32768, 32767) - p)``, computed from
the pair sums ``p = a[k] w[k] + a[k+1] w[k+1]`` in float32 (exact: |p| <= 64,770). That is what
the AVX2 kernel computes, since MLAS packs four consecutive k of the weights per 32-bit lane
(``vpmaddubsw`` pairs k, k+1 and k+2, k+3; ``vpmaddwd`` with ones then adds the two pairs in 32
bits, where nothing saturates) and subtracts the zero points' terms exactly afterwards. The
emulated graph runs with onnxruntime on any CPU; on a VNNI/AMX CPU its original products are
exact, so the result is the AVX2 result.

Two guards make saturation impossible (``max |p| <= 32,767``), and are measured here:

- ``seven_bit_activations``: the per-row scale becomes ``max |x| / 63`` with zero point 64, so
  the codes stay in 1-127 (``127 * 127 * 2 = 32,258``): half the activation resolution;
- ``seven_bit_weights``: every weight column requantised to +-63 (onnxruntime's
  ``reduce_range``): half the weight resolution.

    python scripts/avx2_saturation.py --gold corpus/conll2003-valid.spacy --markdown out.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

_MS = "com.microsoft"
_PREFIX = "nerzoo_avx2"
INT16_MIN, INT16_MAX = -32768.0, 32767.0


# -- graph rewrites ----------------------------------------------------------------------------


def _products(model: Any) -> list[tuple[Any, np.ndarray]]:
    """Each ``MatMulIntegerToFloat`` with a constant s8 weight matrix, and that matrix."""
    from onnx import TensorProto, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type != "MatMulIntegerToFloat" or node.domain != _MS:
            continue
        weight = inits.get(node.input[1])
        if weight is None or weight.data_type != TensorProto.INT8 or len(weight.dims) != 2:
            raise ValueError(
                f"{node.name}: the emulation needs a constant 2-D int8 weight matrix, "
                f"got {node.input[1]!r}"
            )
        found.append((node, numpy_helper.to_array(weight)))
    return found


def add_saturation(model: Any, count: bool = False) -> int:
    """Make every u8s8 product of ``model`` (an ``onnx.ModelProto``) compute as MLAS's AVX2
    kernel does, in place; returns how many were rewritten.

    With ``count``, each product also gets a graph output ``<prefix>/<i>/saturated``: how many
    of its pair sums were clipped in the forward pass (for the statistics; the backend reads
    only the logits output).
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    products = _products(model)
    shared = {
        "lo": np.array(INT16_MIN, np.float32),
        "hi": np.array(INT16_MAX, np.float32),
        "axis0": np.array([0], np.int64),
    }
    if count:
        shared["zero"] = np.array(0.0, np.float32)
    graph.initializer.extend(
        numpy_helper.from_array(v, f"{_PREFIX}_{k}") for k, v in shared.items()
    )
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    new_nodes: dict[int, list[Any]] = {}
    for i, (node, weight) in enumerate(products):
        k, n = weight.shape
        if k % 2:
            raise ValueError(f"{node.name}: odd inner dimension {k} is not emulated")
        p = f"{_PREFIX}/{i}"
        graph.initializer.append(
            numpy_helper.from_array(weight.astype(np.float32).reshape(k // 2, 2, n), f"{p}/w_pairs")
        )
        graph.initializer.append(
            numpy_helper.from_array(np.array([-1, k // 2, 2], np.int64), f"{p}/pair_shape")
        )
        a, y = node.input[0], node.output[0]
        exact = f"{p}/exact"
        node.output[0] = exact
        sum_axes = (
            helper.make_node(
                "ReduceSum", [f"{p}/diff", f"{_PREFIX}_axis0"], [f"{p}/correction"], keepdims=0
            )
            if opset >= 13
            else helper.make_node(
                "ReduceSum", [f"{p}/diff"], [f"{p}/correction"], axes=[0], keepdims=0
            )
        )
        nodes = [
            helper.make_node("Cast", [a], [f"{p}/a_float"], to=TensorProto.FLOAT),
            helper.make_node("Reshape", [f"{p}/a_float", f"{p}/pair_shape"], [f"{p}/a_pairs"]),
            helper.make_node("Transpose", [f"{p}/a_pairs"], [f"{p}/a_t"], perm=[1, 0, 2]),
            # (k/2, rows, 2) @ (k/2, 2, n): every pair sum, exact in float32
            helper.make_node("MatMul", [f"{p}/a_t", f"{p}/w_pairs"], [f"{p}/pair_sums"]),
            helper.make_node(
                "Clip", [f"{p}/pair_sums", f"{_PREFIX}_lo", f"{_PREFIX}_hi"], [f"{p}/clipped"]
            ),
            helper.make_node("Sub", [f"{p}/clipped", f"{p}/pair_sums"], [f"{p}/diff"]),
            sum_axes,
            # the accumulator is scaled like the exact one: a_scale * b_scale (per column)
            helper.make_node("Mul", [f"{p}/correction", node.input[2]], [f"{p}/c1"]),
            helper.make_node("Mul", [f"{p}/c1", node.input[3]], [f"{p}/c2"]),
            helper.make_node("Shape", [exact], [f"{p}/y_shape"]),
            helper.make_node("Reshape", [f"{p}/c2", f"{p}/y_shape"], [f"{p}/c3"]),
            helper.make_node("Add", [exact, f"{p}/c3"], [y]),
        ]
        if count:
            nodes += [
                helper.make_node("Abs", [f"{p}/diff"], [f"{p}/abs"]),
                helper.make_node("Greater", [f"{p}/abs", f"{_PREFIX}_zero"], [f"{p}/hit"]),
                helper.make_node("Cast", [f"{p}/hit"], [f"{p}/hit_f"], to=TensorProto.FLOAT),
                helper.make_node("ReduceSum", [f"{p}/hit_f"], [f"{p}/saturated"], keepdims=0),
            ]
            graph.output.append(
                helper.make_tensor_value_info(f"{p}/saturated", TensorProto.FLOAT, [])
            )
        for j, made in enumerate(nodes):
            made.name = made.name or f"{p}/{j}_{made.op_type}"
        new_nodes[id(node)] = nodes
    order = []
    for node in graph.node:
        order.append(node)
        order.extend(new_nodes.get(id(node), []))
    del graph.node[:]
    graph.node.extend(order)
    return len(products)


def seven_bit_activations(model: Any) -> None:
    """Per-row activation codes 1-127 (scale ``max |x| / 63``, zero point 64), in place."""
    from onnx import numpy_helper

    found = 0
    for init in model.graph.initializer:
        if init.name == "nerzoo_rowq_inv127":
            init.CopyFrom(numpy_helper.from_array(np.array(1.0 / 63.0, np.float32), init.name))
            found += 1
        elif init.name == "nerzoo_rowq_zp":
            init.CopyFrom(numpy_helper.from_array(np.array(64, np.uint8), init.name))
            found += 1
    if found != 2:
        raise ValueError("not a per-row int8 graph (export format 3): no row-scale constants")


def seven_bit_weights(model: Any) -> None:
    """Requantise every s8 weight column to +-63 (twice the scale), in place."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    for node, weight in _products(model):
        scale_init = inits[node.input[3]]
        scale = numpy_helper.to_array(scale_init).astype(np.float32)
        real = weight.astype(np.float32) * scale  # the int8 weights as the file holds them
        amax = np.abs(real).max(axis=0)
        new_scale = np.where(amax > 0, amax / 63.0, scale).astype(np.float32)
        new = np.clip(np.round(real / new_scale), -63, 63).astype(np.int8)
        inits[node.input[1]].CopyFrom(numpy_helper.from_array(new, node.input[1]))
        scale_init.CopyFrom(numpy_helper.from_array(new_scale, node.input[3]))


def reference_avx2_product(a: np.ndarray, w: np.ndarray, a_zp: int) -> np.ndarray:
    """The int32 accumulator of the AVX2 kernel for u8 ``a`` (rows x k) and s8 ``w`` (k x n),
    written out pair by pair (slow; for tests): saturating pair sums, exact zero-point term."""
    a32, w32 = a.astype(np.int64), w.astype(np.int64)
    k = a.shape[1]
    acc = np.zeros((a.shape[0], w.shape[1]), np.int64)
    for j in range(0, k, 2):
        pair = a32[:, j : j + 1] * w32[j : j + 1]
        if j + 1 < k:
            pair = pair + a32[:, j + 1 : j + 2] * w32[j + 1 : j + 2]
        acc += np.clip(pair, -32768, 32767)
    return acc - a_zp * w32.sum(axis=0, keepdims=True)


# -- measuring ----------------------------------------------------------------------------------


class WindowByWindow:
    """A backend that runs a forward pass one window at a time (the emulated products hold a
    (k/2 x rows x n) tensor). Exact for per-row graphs: a window's result does not depend on
    the others."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def predict(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray | None = None) -> Any:
        parts = [
            self.backend.predict(
                ids[i : i + 1], mask[i : i + 1], None if types is None else types[i : i + 1]
            )
            for i in range(len(ids))
        ]
        return np.concatenate(parts) if parts else self.backend.predict(ids, mask, types)


@dataclass
class Result:
    name: str
    f1: float
    agreement: float
    docs_differing: int
    ents: int
    seconds: float


def run_variant(
    nlp: Any, path: Path, gold_docs: list[Any], one_window: bool, scheme: str = "iob"
) -> tuple[list[set[Any]], float, float]:
    """Entities per Doc and F1 (conlleval, ``scheme`` tags) with the pipeline's network
    swapped for ``path``."""
    from int8_options import network  # type: ignore[import-not-found]

    from spacy_nerzoo.backends.onnx_backend import OnnxBackend
    from spacy_nerzoo.evaluation.report import evaluate_docs, fresh_doc

    backend = OnnxBackend(path, precision="int8")
    if one_window:
        backend.session = _session(path)
    start = time.perf_counter()
    with network(nlp, WindowByWindow(backend) if one_window else backend):
        pred = list(nlp.pipe((fresh_doc(d, nlp.vocab) for d in gold_docs), batch_size=32))
        report = evaluate_docs(gold_docs, iter(pred), scheme=scheme)  # type: ignore[arg-type]
    ents = [{(e.start, e.end, e.label_) for e in d.ents} for d in pred]
    return ents, 100 * float(report.to_dict()["phrase"]["f1"]), time.perf_counter() - start


@dataclass
class Counts:
    clipped: np.ndarray  # per product: pair sums clipped
    total: np.ndarray  # per product: all pair sums
    max_logit_diff: float  # largest |emulated - exact| logit over real tokens
    tokens: int  # real (unpadded) wordpieces
    argmax_changed: int  # of them, how many get another label


def _session(model: Path | bytes) -> Any:
    """An onnxruntime session without the memory arena: the emulated products' large
    intermediates change shape with every window, and the arena would keep each size (it grew
    past 16 GB)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def saturation_counts(path: Path, batches: list[dict[str, np.ndarray]]) -> Counts:
    """What the AVX2 kernel changes in the recorded forward passes, window by window."""
    import onnx

    model = onnx.load(str(path))
    products = _products(model)
    add_saturation(model, count=True)
    names = [f"{_PREFIX}/{i}/saturated" for i in range(len(products))]
    session = _session(model.SerializeToString())
    exact = _session(path)
    logits = exact.get_outputs()[0].name
    inputs = {i.name for i in session.get_inputs()}
    counts = Counts(np.zeros(len(products)), np.zeros(len(products)), 0.0, 0, 0)
    for batch in batches:
        for row in range(len(batch["input_ids"])):
            feed = {k: v[row : row + 1] for k, v in batch.items() if k in inputs}
            emulated, *clipped = session.run([logits, *names], feed)
            (reference,) = exact.run([logits], feed)
            real = feed["attention_mask"][0].astype(bool)
            diff = np.abs(emulated[0][real] - reference[0][real])
            counts.max_logit_diff = max(counts.max_logit_diff, float(diff.max()))
            counts.tokens += int(real.sum())
            counts.argmax_changed += int(
                (emulated[0][real].argmax(-1) != reference[0][real].argmax(-1)).sum()
            )
            counts.clipped += np.array(clipped, dtype=np.float64)
            pieces = feed["input_ids"].shape[1]
            counts.total += [pieces * w.shape[0] // 2 * w.shape[1] for _, w in products]
    return counts


# key: (row name, graph edit, emulate the AVX2 kernel)
VARIANTS: dict[str, tuple[str, Any, bool]] = {
    "shipped-exact": ("shipped, exact (VNNI / AMX)", None, False),
    "shipped-avx2": ("shipped, AVX2 kernel (emulated)", None, True),
    "act7-exact": ("7-bit activations, exact", seven_bit_activations, False),
    "act7-avx2": ("7-bit activations, AVX2 kernel (emulated)", seven_bit_activations, True),
    "w7-exact": ("7-bit weights, exact", seven_bit_weights, False),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm_conll03")
    parser.add_argument("--gold", type=Path, required=True, help=".spacy DocBin (F1)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N gold Docs")
    parser.add_argument(
        "--count-docs", type=int, default=10, help="Docs for the clip counts (0: none)"
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated, from {', '.join(VARIANTS)} (shipped-exact always runs: the "
        "reference)",
    )
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)

    import onnx
    from int8_options import (  # type: ignore[import-not-found]
        _runtime,
        agreement_f1,
        record_batches,
    )
    from spacy.tokens import DocBin

    from spacy_nerzoo.api import load
    from spacy_nerzoo.cli.evaluate import SchemeChoice, _scheme

    wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(wanted) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    nlp = load(args.model)
    scheme = _scheme(SchemeChoice.auto, args.gold, nlp)
    shipped = Path(_runtime(nlp).backend.path)
    gold_docs = list(DocBin().from_disk(args.gold).get_docs(nlp.vocab))
    if args.limit:
        gold_docs = gold_docs[: args.limit]
    lines = [
        f"- Command: `python scripts/avx2_saturation.py {' '.join(argv or sys.argv[1:])}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Model: {args.model} ({shipped.name}); {len(gold_docs)} gold Docs from {args.gold}; "
        f"F1 on {scheme.upper()} tags",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        files: dict[str, tuple[Path, bool]] = {VARIANTS["shipped-exact"][0]: (shipped, False)}
        for key in wanted:
            name, edit, emulate = VARIANTS[key]
            if key == "shipped-exact":
                continue
            model = onnx.load(str(shipped))
            if edit is not None:
                edit(model)
            if emulate:
                add_saturation(model)
            path = Path(tmp) / f"{len(files)}.onnx"
            onnx.save(model, str(path))
            files[name] = (path, emulate)

        texts = [[t.text for t in d] for d in gold_docs[: args.count_docs]]
        if texts:
            batches = record_batches(nlp, texts)
            c = saturation_counts(shipped, batches)
            worst = int(c.clipped.argmax())
            share = c.clipped[worst] / c.total[worst]
            lines += [
                f"Clipped pair sums, shipped graph on the first {len(texts)} Docs "
                f"({len(batches)} forward passes, padding included): {int(c.clipped.sum()):,} of "
                f"{int(c.total.sum()):,} ({c.clipped.sum() / c.total.sum():.2e}); "
                f"{int((c.clipped > 0).sum())} of {len(c.clipped)} products have some; most in "
                f"product {worst}: {int(c.clipped[worst]):,} ({share:.2e} "
                f"of its pair sums). Logits against the exact graph, {c.tokens:,} real wordpieces: "
                f"largest difference {c.max_logit_diff:.3f}, {c.argmax_changed} wordpieces change "
                "label.",
            ]
        lines += [
            "",
            "| variant | F1 | entity agreement with shipped exact | Docs differing | entities "
            "| seconds |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        print("\n".join(lines), flush=True)
        reference: list[set[Any]] | None = None
        for name, (path, emulate) in files.items():
            ents, score, seconds = run_variant(nlp, path, gold_docs, emulate, scheme)
            if reference is None:
                reference = ents
            agreement = agreement_f1(reference, ents)
            differing = sum(a != b for a, b in zip(reference, ents, strict=True))
            row = (
                f"| {name} | {score:.2f} | {agreement:.2f} | {differing} | "
                f"{sum(len(e) for e in ents):,} | {seconds:.0f} |"
            )
            lines.append(row)
            print(row, flush=True)
    text = "\n".join(lines) + "\n"
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
