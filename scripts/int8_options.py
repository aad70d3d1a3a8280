"""Which int8 recipe for the built-in model: speed of the network and F1 on CoNLL-2003 valid.

The shipped models hold only their int8 ONNX network, so the fp32 source is rebuilt from it:
``dequantize`` turns every integer product back into a float MatMul with the int8 weights times
their scales (the same weights, unquantised activations). Every variant is made from that graph:

- ``per-tensor dynamic``: ``quantize_dynamic`` as export format 2 did (s8 per-channel weights,
  one activation scale per forward pass; depends on the batch);
- ``per-row dynamic (u8s8)``: the same, then ``row_scales`` (export format 3, shipped);
- ``per-row, u8u8``: u8 weights with zero points (the AVX2 kernels cannot saturate on them);
- ``per-row, reduce_range``: 7-bit weights (the other AVX2 saturation guard);
- ``per-row, per-tensor weights``: one weight scale per matrix;
- ``static QDQ``: ``quantize_static`` with MinMax ranges from CoNLL-2003 train windows (fixed
  activation scales: batch-independent by construction);
- ``fused attention + dynamic``: onnxruntime's BERT optimiser (fused attention, LayerNorm, GELU)
  then ``quantize_dynamic`` (per-tensor activations inside QAttention: batch-dependent);
- ``fp32``: the rebuilt float graph itself.

Speed: the forward passes the built-in pipeline makes on the first ``--docs`` CoNLL-2003 valid
documents are recorded (ids, mask, casing types) and replayed through each variant's session,
``--repeats`` times for every thread count and spinning setting; the table gives medians of
wall and process CPU seconds (all threads). F1: the pipeline with its network swapped for the
variant, scored like ``nerzoo evaluate`` on the whole of valid (``--gold``, a .spacy DocBin made
by ``python -m spacy_nerzoo.data.converters``).

    python scripts/int8_options.py --gold corpus/conll2003-valid.spacy --markdown out.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VALID = ROOT.parent / "shared" / "data" / "conll2003" / "valid.txt"
TRAIN = ROOT.parent / "shared" / "data" / "conll2003" / "train.txt"
FEWNERD_DEV = ROOT.parent / "shared" / "data" / "fewnerd" / "dev.txt"
Batch = dict[str, np.ndarray]


# -- rebuilding the float graph ----------------------------------------------------------------


def dequantize(model: Any) -> int:
    """Replace each integer product of a per-row int8 graph by a float MatMul, in place.

    Handles ``row_scales``' pattern: ``MatMulIntegerToFloat(q, w, 1, w_scale, 128, w_zp) ->
    Mul(row scale)``, where ``q`` is ``Reshape(QuantizeLinear(Flatten(x)), Shape(x))``. The
    quantisation nodes left without consumers are removed. Returns the products replaced.
    """
    from onnx import helper, numpy_helper

    from spacy_nerzoo.export.row_scales import replace_nodes
    from spacy_nerzoo.export.static_scales import remove_dead_nodes

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    replaced: dict[int, list[Any]] = {}
    for node in graph.node:
        if node.op_type != "MatMulIntegerToFloat":
            continue
        q, w, _, w_scale, _, w_zp = node.input[:6]
        reshape = producer[q]
        x = producer[reshape.input[1]].input[0]  # Shape(x)
        (row_mul,) = consumers[node.output[0]]
        weight = numpy_helper.to_array(inits[w]).astype(np.float32)
        zero = numpy_helper.to_array(inits[w_zp]).astype(np.float32)
        scale = numpy_helper.to_array(inits[w_scale]).astype(np.float32)
        name = f"{w}_dequantized"
        graph.initializer.append(numpy_helper.from_array((weight - zero) * scale, name))
        matmul = helper.make_node("MatMul", [x, name], [row_mul.output[0]], name=f"{name}_MatMul")
        replaced[id(node)] = [matmul]
        replaced[id(row_mul)] = []
    replace_nodes(graph, replaced)
    remove_dead_nodes(graph)
    del graph.value_info[:]
    return sum(1 for v in replaced.values() if v)


# -- variants ----------------------------------------------------------------------------------


@dataclass
class Variant:
    name: str
    path: Path
    batch_independent: bool
    note: str = ""


def build_variants(
    shipped: Path, folder: Path, calibration: list[Batch], only: set[str] | None = None
) -> list[Variant]:
    """Every int8 recipe (or those whose file stem is in ``only``), written into ``folder`` from
    the float graph rebuilt from ``shipped``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from spacy_nerzoo.export import row_scales

    fp32 = folder / "fp32.onnx"
    model = onnx.load(str(shipped))
    dequantize(model)
    onnx.save(model, str(fp32))
    out = [Variant("fp32 (rebuilt from the int8 weights)", fp32, True)]

    def dynamic(name: str, per_row: bool, **options: Any) -> Path:
        path = folder / f"{name}.onnx"
        quantize_dynamic(
            str(fp32),
            str(path),
            weight_type=options.pop("weight_type", QuantType.QInt8),
            per_channel=options.pop("per_channel", True),
            extra_options={"MatMulConstBOnly": True},
            **options,
        )
        if per_row:
            row_scales.rewrite_file(path)
        return path

    out.append(Variant("per-tensor dynamic (format 2)", dynamic("per_tensor", False), False))
    out.append(Variant("per-row dynamic, u8s8 (format 3, shipped)", shipped, True))
    recipes: list[tuple[str, str, Callable[[], Path], bool]] = [
        (
            "per-row, u8u8",
            "u8u8",
            lambda: dynamic("u8u8", True, weight_type=QuantType.QUInt8),
            True,
        ),
        (
            "per-row, reduce_range (7-bit weights)",
            "reduce_range",
            lambda: dynamic("reduce_range", True, reduce_range=True),
            True,
        ),
        (
            "per-row, per-tensor weights",
            "per_tensor_weights",
            lambda: dynamic("per_tensor_weights", True, per_channel=False),
            True,
        ),
        (
            "static QDQ (MinMax, CoNLL train)",
            "static",
            lambda: static(fp32, folder, calibration),
            True,
        ),
        (
            "static scales on the shipped int8 graph (format 4, MinMax, CoNLL train)",
            "static_scales",
            lambda: static_scales(shipped, folder, calibration),
            True,
        ),
        ("fused attention + dynamic", "fused", lambda: fused(fp32, folder), False),
    ]
    for label, stem, make, independent in recipes:
        if only and stem not in only:
            continue
        try:
            out.append(Variant(label, make(), independent))
        except Exception:  # noqa: BLE001 - a recipe that fails is reported, the others run
            out.append(Variant(label, Path(), independent, traceback.format_exc(limit=2)))
    return out


def static(fp32: Path, folder: Path, calibration: list[Batch]) -> Path:
    """Static QDQ int8: per-channel s8 weights, u8 activations with calibrated fixed ranges."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.items = iter(calibration)

        def get_next(self) -> Batch | None:
            return next(self.items, None)

    path = folder / "static.onnx"
    quantize_static(
        str(fp32),
        str(path),
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"MatMulConstBOnly": True},
    )
    return path


def static_scales(shipped: Path, folder: Path, calibration: list[Batch]) -> Path:
    """Fixed activation scales on the shipped int8 graph (export format 4, the package's
    ``static_scales``): each per-row quantisation becomes a ``QuantizeLinear`` with the range its
    input spans over the calibration batches (MinMax), and each product an onnxruntime
    ``MatMulIntegerToFloat`` with the bias folded in (no min/max pass, one output pass). The
    int8 weights are the shipped ones. Batch-independent; the cost is clipping or coarse steps
    where an input's range differs from the calibrated one."""
    from spacy_nerzoo.export import static_scales as static

    path = folder / "static_scales.onnx"
    static.rewrite_file(shipped, calibration, path)
    return path


def fused(fp32: Path, folder: Path) -> Path:
    """onnxruntime's BERT optimiser (fusions), then dynamic int8 (per-tensor activations)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads(
        (ROOT / "spacy_nerzoo" / "models" / "minilm_conll03" / "config.json").read_text()
    )
    optimized = optimize_model(
        str(fp32),
        model_type="bert",
        num_heads=int(config["num_attention_heads"]),
        hidden_size=int(config["hidden_size"]),
    )
    opt_path = folder / "fused_fp32.onnx"
    optimized.save_model_to_file(str(opt_path))
    path = folder / "fused.onnx"
    quantize_dynamic(
        str(opt_path),
        str(path),
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return path


# -- recording and timing forward passes ---------------------------------------------------------


def record_batches(nlp: Any, texts: list[list[str]]) -> list[Batch]:
    """The inputs of every forward pass the pipeline makes on ``texts`` (word lists)."""
    from spacy.tokens import Doc

    runtime = _runtime(nlp)
    backend = runtime.backend
    real = backend.predict
    batches: list[Batch] = []

    def spy(ids: np.ndarray, mask: np.ndarray, types: np.ndarray | None = None) -> np.ndarray:
        batch = {"input_ids": np.array(ids, np.int64), "attention_mask": np.array(mask, np.int64)}
        if types is not None:
            batch["token_type_ids"] = np.array(types, np.int64)
        batches.append(batch)
        return real(ids, mask, types)

    backend.predict = spy
    try:
        for _ in nlp.pipe(Doc(nlp.vocab, words=w) for w in texts):
            pass
    finally:
        del backend.predict
    return batches


def _runtime(nlp: Any) -> Any:
    return next(p for _, p in nlp.pipeline if hasattr(p, "runtime")).runtime


@contextlib.contextmanager
def network(nlp: Any, backend: Any) -> Iterator[None]:
    """The pipeline runs ``backend`` as its network inside the block."""
    runtime = _runtime(nlp)
    original = runtime.backend
    runtime.backend = backend
    try:
        yield
    finally:
        runtime.backend = original


@dataclass
class Timing:
    threads: int
    spinning: bool
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)


def time_variant(
    path: Path, batches: list[Batch], threads: int, spinning: bool, repeats: int
) -> Timing:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    feeds = [{k: v for k, v in b.items() if k in names} for b in batches]
    for feed in feeds[:3]:
        session.run(None, feed)
    timing = Timing(threads, spinning)
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        for feed in feeds:
            session.run(None, feed)
        timing.wall_s.append(time.perf_counter() - wall)
        timing.cpu_s.append(time.process_time() - cpu)
    return timing


def f1(nlp: Any, variant: Variant, gold: Path) -> float:
    """Entity F1 (conlleval) on ``gold`` with the pipeline's network swapped for ``variant``."""
    from spacy.tokens import DocBin

    from spacy_nerzoo.backends.onnx_backend import OnnxBackend
    from spacy_nerzoo.evaluation.report import evaluate_docs, fresh_doc

    with network(nlp, OnnxBackend(variant.path, precision="int8")):
        gold_docs = list(DocBin().from_disk(gold).get_docs(nlp.vocab))
        pred = nlp.pipe((fresh_doc(d, nlp.vocab) for d in gold_docs), batch_size=32)
        report = evaluate_docs(gold_docs, pred, scheme="iob")
    return 100 * float(report.to_dict()["phrase"]["f1"])


# -- off-domain agreement (the clipping risk of static scales) ----------------------------------


def off_domain_sets(limit: int, seed: int = 0) -> dict[str, list[list[str]]]:
    """Word lists the CoNLL model was not trained on, ``limit`` sentences each, next to in-domain
    CoNLL-2003 valid sentences: Few-NERD dev (Wikipedia), valid lower-cased and upper-cased,
    valid with every number replaced by a 12-40 digit string (and one such string inserted),
    and valid with its letters written in Greek / Cyrillic and its words in CJK characters
    (synthetic: the same sentence shapes in other scripts, where no corpus was at hand)."""
    import random

    from spacy_nerzoo.data.readers import read_sentences

    rng = random.Random(seed)
    valid = [s.words for _, s in read_sentences(VALID)][:limit]
    fewnerd = [s.words for _, s in read_sentences(FEWNERD_DEV)][:limit]

    def digits() -> str:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(12, 40)))

    def numbers(words: list[str]) -> list[str]:
        out = [digits() if any(c.isdigit() for c in w) else w for w in words]
        out.insert(rng.randint(0, len(out)), digits())
        return out

    greek = str.maketrans(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "αβψδεφγηιξκλμνοπθρστυωςχυζΑΒΨΔΕΦΓΗΙΞΚΛΜΝΟΠΘΡΣΤΥΩΣΧΥΖ",
    )
    cyrillic = str.maketrans(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "абцдефгхийклмнопярстужвхызАБЦДЕФГХИЙКЛМНОПЯРСТУЖВХЫЗ",
    )

    def cjk(word: str) -> str:
        if not any(c.isalpha() for c in word):
            return word
        return "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(1, 3)))

    return {
        "CoNLL-2003 valid (in domain)": valid,
        "Few-NERD dev": fewnerd,
        "lower-cased valid": [[w.lower() for w in s] for s in valid],
        "ALL-CAPS valid": [[w.upper() for w in s] for s in valid],
        "valid, long digit strings": [numbers(s) for s in valid],
        "valid in Greek letters": [[w.translate(greek) for w in s] for s in valid],
        "valid in Cyrillic letters": [[w.translate(cyrillic) for w in s] for s in valid],
        "valid in CJK characters": [[cjk(w) for w in s] for s in valid],
    }


def entities(nlp: Any, path: Path, texts: list[list[str]]) -> list[set[tuple[int, int, str]]]:
    """Each text's entities (start, end, label) with the pipeline's network swapped for
    ``path``; batch size 64."""
    from spacy.tokens import Doc

    from spacy_nerzoo.backends.onnx_backend import OnnxBackend

    with network(nlp, OnnxBackend(path, precision="int8")):
        docs = nlp.pipe((Doc(nlp.vocab, words=w) for w in texts), batch_size=64)
        return [{(e.start, e.end, e.label_) for e in doc.ents} for doc in docs]


def agreement_f1(reference: list[set[Any]], other: list[set[Any]]) -> float:
    """Entity F1 of ``other`` against ``reference`` (exact span and label), in percent."""
    both = sum(len(a & b) for a, b in zip(reference, other, strict=True))
    total = sum(len(a) + len(b) for a, b in zip(reference, other, strict=True))
    return 100.0 * 2 * both / total if total else 100.0


def overflow(
    model_path: Path, calibrated: dict[str, Any], batches: list[Batch]
) -> tuple[float, int, float]:
    """How far ``batches`` leave the calibrated ranges: the largest ratio of a tensor's range
    on them to its calibrated range (either end), how many of the tensors exceed theirs, and the
    share of all activation values clipped by more than half a quantisation step (more than
    rounding would cost), in percent."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    from spacy_nerzoo.export import static_scales as static

    probe = onnx.load(str(model_path))
    targets = static.find_targets(probe)
    probe.graph.output.extend(helper.make_empty_tensor_value_info(t.x) for t in targets)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [t.x for t in targets]
    inputs = {i.name for i in session.get_inputs()}
    worst = {n: 1.0 for n in names}
    clipped = total = 0
    for batch in batches:
        real = batch["attention_mask"].astype(bool)
        for name, value in zip(
            names, session.run(names, {k: v for k, v in batch.items() if k in inputs}), strict=True
        ):
            v = value[real]
            r = calibrated[name]
            if r.low < 0:
                worst[name] = max(worst[name], float(v.min()) / r.low)
            if r.high > 0:
                worst[name] = max(worst[name], float(v.max()) / r.high)
            # Beyond half a step outside the range, clipping costs more than rounding does.
            half = (r.high - r.low) / 255 / 2
            clipped += int(((v < r.low - half) | (v > r.high + half)).sum())
            total += v.size
    return max(worst.values()), sum(w > 1.0 for w in worst.values()), 100.0 * clipped / total


def robustness(nlp: Any, variants: dict[str, Path], limit: int, sets: str = "") -> list[str]:
    """Markdown rows: per text set, each int8 variant's entity agreement with the float graph
    and the static variant's with per-row, plus how far the set leaves the calibrated ranges."""
    import onnx

    from spacy_nerzoo.export import static_scales as static

    per_row = variants["per-row"]
    calibrated = static.stored_ranges(onnx.load(str(variants["static"])))
    rows = [
        "| text set | sentences | entities fp32 / per-row / static | per-row vs fp32 F1 | "
        "static vs fp32 F1 | static vs per-row F1 | sentences static != per-row | "
        "tensors over range | max range ratio | values clipped % |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, texts in off_domain_sets(limit).items():
        if sets and not any(part.lower() in name.lower() for part in sets.split(",")):
            continue
        ents = {k: entities(nlp, path, texts) for k, path in variants.items()}
        ratio, over, clipped = overflow(per_row, calibrated, record_batches(nlp, texts))
        differ = sum(a != b for a, b in zip(ents["per-row"], ents["static"], strict=True))
        counts = " / ".join(
            f"{sum(len(e) for e in ents[k]):,}" for k in ("fp32", "per-row", "static")
        )
        rows.append(
            f"| {name} | {len(texts)} | {counts} | "
            f"{agreement_f1(ents['fp32'], ents['per-row']):.2f} | "
            f"{agreement_f1(ents['fp32'], ents['static']):.2f} | "
            f"{agreement_f1(ents['per-row'], ents['static']):.2f} | {differ} | "
            f"{over} / {len(calibrated)} | {ratio:.2f} | {clipped:.4f} |"
        )
        print(rows[-1], flush=True)
    return rows


# -- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm_conll03")
    parser.add_argument("--gold", type=Path, help="CoNLL-2003 valid as a .spacy DocBin (F1)")
    parser.add_argument("--docs", type=int, default=40, help="valid documents to time on")
    parser.add_argument("--calibration-docs", type=int, default=60, help="train documents")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--only", default="", help="comma-separated variant file stems")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument(
        "--robustness",
        type=int,
        default=0,
        metavar="N",
        help="instead of timing: entity agreement of per-row, static and fp32 on N sentences "
        "of each off-domain text set",
    )
    parser.add_argument("--static-file", type=Path, help="the static-scale file to compare")
    parser.add_argument("--sets", default="", help="with --robustness: only sets naming these")
    parser.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="also time (and score) this int8 file, e.g. a calibrated one (repeatable)",
    )
    args = parser.parse_args(argv)

    from benchmark import cpu_class, cpu_flags, load_average  # type: ignore[import-not-found]

    from spacy_nerzoo.api import load
    from spacy_nerzoo.data.readers import read_documents

    load_before = load_average()
    nlp = load(args.model)
    shipped = Path(_runtime(nlp).backend.path)
    valid = [[w for s in d.sentences for w in s.words] for d in read_documents(VALID)]
    train = [[w for s in d.sentences for w in s.words] for d in read_documents(TRAIN)]
    batches = record_batches(nlp, valid[: args.docs])
    calibration = record_batches(nlp, train[: args.calibration_docs])
    words = sum(len(w) for w in valid[: args.docs])
    threads = [int(t) for t in args.threads.split(",")]
    if args.robustness:
        with tempfile.TemporaryDirectory() as tmp:
            import onnx

            fp32 = Path(tmp) / "fp32.onnx"
            model = onnx.load(str(shipped))
            dequantize(model)
            onnx.save(model, str(fp32))
            fixed = args.static_file or static_scales(shipped, Path(tmp), calibration)
            variants = {"fp32": fp32, "per-row": shipped, "static": fixed}
            rows = robustness(nlp, variants, args.robustness, args.sets)
        text = "\n".join(
            [
                f"- Command: `python scripts/int8_options.py {' '.join(argv or sys.argv[1:])}`",
                f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
                f"- Load average before / after: {load_before} / {load_average()}",
                "",
                *rows,
            ]
        )
        print(text)
        if args.markdown:
            args.markdown.write_text(text + "\n")
        return 0
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        only = set(args.only.split(",")) if args.only else None
        variants = build_variants(shipped, Path(tmp), calibration, only)
        for spec in args.file:
            label, _, path = spec.partition("=")
            variants.append(Variant(label, Path(path), True))
        for v in variants:
            if args.only and v.path.stem not in args.only.split(","):
                continue
            if v.note:
                rows.append(f"| {v.name} | failed: {v.note.strip().splitlines()[-1][:120]} |")
                print(rows[-1], flush=True)
                continue
            score = f1(nlp, v, args.gold) if args.gold else float("nan")
            size = v.path.stat().st_size / 2**20
            for t in threads:
                for spinning in (True, False):
                    tm = time_variant(v.path, batches, t, spinning, args.repeats)
                    wall, cpu = statistics.median(tm.wall_s), statistics.median(tm.cpu_s)
                    rows.append(
                        f"| {v.name} | {t} | {'on' if spinning else 'off'} | "
                        f"{words / wall:,.0f} | {words / cpu:,.0f} | {score:.2f} | "
                        f"{'yes' if v.batch_independent else 'no'} | {size:.1f} |"
                    )
                    print(rows[-1], flush=True)
    head = [
        f"- Command: `python scripts/int8_options.py {' '.join(argv or sys.argv[1:])}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- CPU class: {cpu_class(cpu_flags()[1])}; {os.cpu_count()} logical CPUs",
        f"- Load average before / after: {load_before} / {load_average()}",
        f"- Timed: {len(batches)} forward passes of the built-in pipeline on the first "
        f"{args.docs} CoNLL-2003 valid documents ({words:,} words), median of {args.repeats}",
        "",
        "| variant | intra-op threads | spinning | network words/s (wall) | "
        "network words / CPU-s | valid F1 | batch-independent | MB |",
        "|---|---:|---|---:|---:|---:|---|---:|",
    ]
    text = "\n".join(head + rows) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
