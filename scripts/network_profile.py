"""Where the built-in model's int8 network spends its time, by onnxruntime's profiler.

Records the forward passes the pipeline makes on the first ``--docs`` CoNLL-2003 valid documents
(or built-in sentences without the corpus), replays them through one onnxruntime session with
profiling on (``--threads`` intra-op threads, spinning off, as the backend runs), and prints each
node group's share of the summed kernel time (node names with their numbers folded, so the six
layers' copies of one node add up).

    python scripts/network_profile.py --docs 24 --threads 1

``--attention`` instead times the attention core as the exported graph computes it (reshape,
transpose, scale, Q·K^T, additive padding mask, softmax, P·V) against onnxruntime's fused
``MultiHeadAttention`` (com.microsoft) on the same random inputs: the built-in model's shapes by
default (8 windows x 256 pieces, hidden 384, 12 heads), median process CPU time of 7 runs.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def profile(
    path: Path, batches: list[dict], threads: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Shares of kernel time by op type and by node group, in percent."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory() as tmp:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
        for batch in batches:
            session.run(None, {k: v for k, v in batch.items() if k in names})
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op: collections.Counter[str] = collections.Counter()
    by_node: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
            by_node[re.sub(r"\d+", "#", e["name"].removesuffix("_kernel_time"))] += e["dur"]
    total = sum(by_op.values()) or 1
    return (
        {k: 100 * v / total for k, v in by_op.most_common()},
        {k: 100 * v / total for k, v in by_node.most_common()},
    )


def attention_models(batch: int, length: int, hidden: int, heads: int) -> tuple[Any, Any]:
    """The unfused attention core (as torch exports BERT's) and the fused op, as two graphs."""
    from onnx import TensorProto, helper, numpy_helper

    size = hidden // heads
    qkv = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, [batch, length, hidden]) for n in "qkv"
    ]
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, length, hidden])
    mask = helper.make_tensor_value_info("mask", TensorProto.FLOAT, [batch, 1, 1, length])
    pad = helper.make_tensor_value_info("pad", TensorProto.INT32, [batch, length])
    consts = [
        numpy_helper.from_array(np.array([batch, length, heads, size], np.int64), "shape4"),
        numpy_helper.from_array(np.array([batch, length, hidden], np.int64), "shape3"),
        numpy_helper.from_array(np.array(size**-0.25, np.float32), "scale"),
    ]
    node = helper.make_node
    nodes = [
        node("Reshape", ["q", "shape4"], ["q4"]),
        node("Transpose", ["q4"], ["qt"], perm=[0, 2, 1, 3]),
        node("Mul", ["qt", "scale"], ["qs"]),
        node("Reshape", ["k", "shape4"], ["k4"]),
        node("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
        node("Mul", ["kt", "scale"], ["ks"]),
        node("Reshape", ["v", "shape4"], ["v4"]),
        node("Transpose", ["v4"], ["vt"], perm=[0, 2, 1, 3]),
        node("MatMul", ["qs", "ks"], ["scores"]),
        node("Add", ["scores", "mask"], ["masked"]),
        node("Softmax", ["masked"], ["p"], axis=-1),
        node("MatMul", ["p", "vt"], ["o4"]),
        node("Transpose", ["o4"], ["ot"], perm=[0, 2, 1, 3]),
        node("Reshape", ["ot", "shape3"], ["y"]),
    ]
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    unfused = helper.make_model(
        helper.make_graph(nodes, "unfused", [*qkv, mask], [out], consts),
        opset_imports=opsets[:1],
        ir_version=8,
    )
    mha = node("MultiHeadAttention", ["q", "k", "v", "", "pad"], ["y"], domain="com.microsoft")
    mha.attribute.append(helper.make_attribute("num_heads", heads))
    fused = helper.make_model(
        helper.make_graph([mha], "fused", [*qkv, pad], [out]), opset_imports=opsets, ir_version=8
    )
    return unfused, fused


def time_attention(
    batch: int = 8, length: int = 256, hidden: int = 384, heads: int = 12, threads: int = 1
) -> tuple[float, float, float]:
    """Median CPU seconds of the unfused core and of ``MultiHeadAttention``, and the largest
    difference between their outputs, on random inputs with padded windows."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((batch, length, hidden), np.float32) for _ in range(3))
    keep = np.arange(length)[None, :] < rng.integers(length // 2, length + 1, batch)[:, None]
    mask = np.where(keep, 0.0, np.finfo(np.float32).min).astype(np.float32)[:, None, None, :]
    feeds = [
        {"q": q, "k": k, "v": v, "mask": mask},
        {"q": q, "k": k, "v": v, "pad": keep.astype(np.int32)},
    ]
    seconds, outputs = [], []
    for model, feed in zip(attention_models(batch, length, hidden, heads), feeds, strict=True):
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        outputs.append(session.run(None, feed)[0])
        runs = []
        for _ in range(7):
            cpu = time.process_time()
            session.run(None, feed)
            runs.append(time.process_time() - cpu)
        seconds.append(statistics.median(runs))
    return seconds[0], seconds[1], float(np.abs(outputs[0] - outputs[1]).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm_conll03")
    parser.add_argument("--docs", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--attention", action="store_true", help="unfused core vs fused op")
    args = parser.parse_args(argv)
    if args.attention:
        unfused, fused, diff = time_attention(threads=args.threads)
        print(
            f"attention core, 8 x 256 pieces, hidden 384, 12 heads, {args.threads} thread(s): "
            f"unfused {1000 * unfused:.1f} ms CPU, MultiHeadAttention {1000 * fused:.1f} ms "
            f"({unfused / fused:.2f}x); outputs differ by at most {diff:.1e}"
        )
        return 0

    from benchmark import DATA, FALLBACK_SENTENCES  # type: ignore[import-not-found]
    from int8_options import _runtime, record_batches  # type: ignore[import-not-found]

    from spacy_nerzoo.api import load
    from spacy_nerzoo.data.readers import read_documents

    nlp = load(args.model)
    valid = DATA / "valid.txt"
    if valid.is_file():
        docs = read_documents(valid)[: args.docs]
        texts = [[w for s in d.sentences for w in s.words] for d in docs]
    else:
        texts = [s.split() for s in FALLBACK_SENTENCES][: args.docs]
    batches = record_batches(nlp, texts)
    by_op, by_node = profile(Path(_runtime(nlp).backend.path), batches, args.threads)
    print(f"{args.model}: {len(batches)} forward passes, {args.threads} intra-op thread(s)")
    print("\n| op type | share of kernel time |\n|---|---:|")
    for k, v in list(by_op.items())[: args.top]:
        print(f"| {k} | {v:.1f}% |")
    print("\n| node group | share of kernel time |\n|---|---:|")
    for k, v in list(by_node.items())[: args.top]:
        print(f"| `{k}` | {v:.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
