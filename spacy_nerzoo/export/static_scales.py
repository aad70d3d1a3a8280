"""Static (calibrated) activation scales for int8: fixed ranges, measured once on a corpus.

Per-row scales (``row_scales``, export format 3) make int8 independent of the batch, but every
product pays for a min/max pass over its input, a per-row quantisation and a ``Mul`` by the row
scale. With a calibration corpus from the model's own domain the activation ranges can be fixed
instead: each quantised input gets one scale and zero point, measured over the corpus, stored as
constants (export format 4). A token's result then depends on nothing but its own window, as with
per-row scales, and onnxruntime runs one ``QuantizeLinear`` and one ``MatMulIntegerToFloat``
(bias folded in) per product: 1.4-1.6x the per-row network's words per CPU-second on the built-in
model. The price: an input whose activations leave the calibrated range is clipped there, and
one step per tensor is coarse for its many small values, where per-row scales adapt to each
token. On CoNLL-2003 valid that cost 0.11 F1, but off the calibration domain (Few-NERD, lower
case, other scripts) the entities drifted 2-4x as far from the float network's as with per-row
scales, so the shipped models stay per-row (docs/benchmarks.md). Use it for a model that sees
text like its calibration corpus. MinMax ranges over the whole training set measured best; a
99.99th-percentile range clips BERT's outlier features and is ruinous (-13.7 F1).

``static_activation_scales`` rewrites an already-quantised file (per-row, or ``quantize_dynamic``'s
per-tensor output), keeping its int8 weights, so it applies to the shipped models, which carry no
fp32 source. ``calibrate`` measures the ranges; ``corpus_batches`` turns words from a corpus into
windows as the component feeds them to the network; ``rewrite_file`` does all three on a file::

    python -m spacy_nerzoo.export.static_scales spacy_nerzoo/models/minilm_conll03 \\
        ../shared/data/conll2003/train.txt --output static.int8.onnx   # all documents
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np

from . import row_scales

# Value of row_scales.METADATA_KEY for a file with fixed activation scales, and the format number
# it carries (``spacy_nerzoo.export_format``): 3 is per-row, 4 static.
STATIC = "static"
FORMAT_VERSION = 4
# How the ranges were calibrated (method, corpus, size), for whoever reads the file later.
CALIBRATION_KEY = "spacy_nerzoo.activation_calibration"
FORMAT_KEY = "spacy_nerzoo.export_format"
Method = Literal["minmax", "percentile"]
Batch = dict[str, np.ndarray]
# Values kept per tensor at each end for percentiles: 4 x 20,000 is 99.99% of 800M values.
_TAIL = 20_000
_PREFIX = "nerzoo_static"


class StaticScaleError(ValueError):
    """The file is not an int8 graph this module can give fixed scales (fp32, already static,
    or an int8 pattern it does not know)."""


@dataclass
class Target:
    """One quantised activation: the float tensor ``x`` and the products that consume it."""

    x: str
    quantize: list[Any] = field(default_factory=list)  # per-row QuantizeLinear chain outputs
    products: list[tuple[Any, Any]] = field(default_factory=list)  # (MatMulIntegerToFloat, Mul)


def find_targets(model: Any) -> list[Target]:
    """The per-row quantised inputs of ``model`` (as ``row_scales`` writes them), in graph order.

    A ``quantize_dynamic`` graph (``DynamicQuantizeLinear``) is first rewritten to per-row in
    place. Raises ``StaticScaleError`` for a graph that has neither pattern.
    """
    graph = model.graph
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get(row_scales.METADATA_KEY) == STATIC:
        raise StaticScaleError(
            "the file already has static activation scales; re-calibrate from the per-row file"
        )
    if any(n.op_type == "DynamicQuantizeLinear" for n in graph.node):
        row_scales.per_row_activation_scales(model)
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    targets: dict[str, Target] = {}
    for node in graph.node:
        if node.op_type != "MatMulIntegerToFloat":
            continue
        reshape = producer.get(node.input[0])
        shape = producer.get(reshape.input[1]) if reshape is not None else None
        after = consumers.get(node.output[0], [])
        if (
            reshape is None
            or reshape.op_type != "Reshape"
            or shape is None
            or shape.op_type != "Shape"
            or len(after) != 1
            or after[0].op_type != "Mul"
        ):
            raise StaticScaleError(
                f"{node.name}: not the per-row pattern (Reshape(QuantizeLinear(Flatten(x))) -> "
                "MatMulIntegerToFloat -> Mul(row scale)) that this rewrite understands"
            )
        target = targets.setdefault(shape.input[0], Target(shape.input[0]))
        target.products.append((node, after[0]))
    if not targets:
        raise StaticScaleError(
            "no int8 products with dynamic activation scales in this graph: it is neither a "
            "per-row (format 3) nor a dynamic int8 file (an fp32 export? quantise it first)"
        )
    return list(targets.values())


@dataclass
class Range:
    low: float
    high: float


class _Extremes:
    """Running minimum and maximum of one tensor and, for a percentile, the tails needed."""

    def __init__(self, tails: bool) -> None:
        self.count = 0
        self.low, self.high = math.inf, -math.inf
        self.tails = tails
        self.lows: list[np.ndarray] = []
        self.highs: list[np.ndarray] = []

    def add(self, values: np.ndarray) -> None:
        flat = values.ravel()
        self.count += flat.size
        self.low, self.high = min(self.low, float(flat.min())), max(self.high, float(flat.max()))
        if self.tails:
            k = min(_TAIL, flat.size)
            self.lows.append(np.partition(flat, k - 1)[:k])
            self.highs.append(np.partition(flat, flat.size - k)[flat.size - k :])
            if sum(a.size for a in self.lows) > 8 * _TAIL:  # keep memory bounded
                self.lows = [np.sort(np.concatenate(self.lows))[: 4 * _TAIL]]
                self.highs = [np.sort(np.concatenate(self.highs))[-4 * _TAIL :]]

    def range(self, method: Method, percentile: float) -> Range:
        if method == "minmax":
            return Range(self.low, self.high)
        lows, highs = np.sort(np.concatenate(self.lows)), np.sort(np.concatenate(self.highs))
        # The value with (100 - percentile)% of all values beyond it, at each end.
        rank = min(int(self.count * (100.0 - percentile) / 100.0), lows.size - 1)
        return Range(float(lows[rank]), float(highs[::-1][rank]))


def calibrate(
    model: Any,
    batches: Iterable[Batch],
    *,
    method: Method = "minmax",
    percentile: float = 99.99,
) -> dict[str, Range]:
    """The range of every quantised input of ``model`` (a per-row or dynamic int8 graph) over
    ``batches``: minimum and maximum (``minmax``) or the ``percentile``-th value at each end.
    Padding positions are left out (their logits are never read)."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    targets = find_targets(probe)
    probe.graph.output.extend(helper.make_empty_tensor_value_info(t.x) for t in targets)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        probe.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    inputs = {i.name for i in session.get_inputs()}
    names = [t.x for t in targets]
    seen = {name: _Extremes(method != "minmax") for name in names}
    n_batches = 0
    for batch in batches:
        n_batches += 1
        real = np.asarray(batch["attention_mask"]).astype(bool)
        values = session.run(names, {k: v for k, v in batch.items() if k in inputs})
        for name, value in zip(names, values, strict=True):
            seen[name].add(value[real] if value.shape[:2] == real.shape else value)
    if not n_batches:
        raise ValueError("calibration needs at least one batch")
    return {name: seen[name].range(method, percentile) for name in names}


def static_activation_scales(
    model: Any, ranges: dict[str, Range], widen: float = 1.0, per_row: Iterable[str] = ()
) -> int:
    """Give every quantised input of ``model`` the fixed range ``ranges[x]``, in place.

    Each per-row quantisation becomes ``QuantizeLinear(x, scale, zero_point)`` with
    ``scale = (high - low) / 255`` (the range always spans 0, so zero is exact), and each product
    ``MatMulIntegerToFloat`` with that scale and zero point and, where one follows, the bias
    ``Add`` folded in. ``widen`` multiplies both ends of every range (more headroom, coarser
    steps). The inputs named in ``per_row`` keep their per-row scales (a hybrid, for inputs
    whose range a fixed scale serves badly). Keeps the int8 weights. Returns the number of
    inputs rewritten.
    """
    from onnx import helper, numpy_helper

    targets = find_targets(model)
    graph = model.graph
    missing = [t.x for t in targets if t.x not in ranges]
    if missing:
        raise StaticScaleError(f"no calibrated range for {missing[:3]} ({len(missing)} in all)")
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    inits = {i.name for i in graph.initializer}
    replaced: dict[int, list[Any]] = {}
    kept = set(per_row)
    unknown = kept - {t.x for t in targets}
    if unknown:
        raise StaticScaleError(f"per_row names inputs the graph does not quantise: {unknown}")
    for k, target in enumerate(targets):
        if target.x in kept:
            continue
        scale, zero = _scale_and_zero_point(ranges[target.x], widen)
        s_name, z_name, q = f"{_PREFIX}_scale_{k}", f"{_PREFIX}_zp_{k}", f"{_PREFIX}/{k}/q"
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.array(scale), s_name),
                numpy_helper.from_array(np.array(zero), z_name),
            ]
        )
        first = target.products[0][0]
        quantize = helper.make_node(
            "QuantizeLinear", [target.x, s_name, z_name], [q], name=f"{_PREFIX}/{k}/Quantize"
        )
        for j, (matmul, row_mul) in enumerate(target.products):
            out = row_mul.output[0]
            _, w, _, w_scale, _, w_zp = matmul.input[:6]
            inputs = [q, w, s_name, w_scale, z_name, w_zp]
            after = consumers.get(out, [])
            if len(after) == 1 and after[0].op_type == "Add":
                bias = next((i for i in after[0].input if i != out), "")
                if bias in inits:
                    inputs.append(bias)
                    replaced[id(after[0])] = []
                    out = after[0].output[0]
            fused = helper.make_node(
                "MatMulIntegerToFloat",
                inputs,
                [out],
                name=f"{_PREFIX}/{k}/{j}/MatMulIntegerToFloat",
                domain="com.microsoft",
            )
            replaced[id(matmul)] = [quantize, fused] if matmul is first else [fused]
            replaced[id(row_mul)] = []
    row_scales.replace_nodes(graph, replaced)
    remove_dead_nodes(graph)
    del graph.value_info[:]
    row_scales._set_metadata(model, row_scales.METADATA_KEY, STATIC)
    row_scales._set_metadata(model, FORMAT_KEY, str(FORMAT_VERSION))
    return len(targets) - len(kept)


def _scale_and_zero_point(r: Range, widen: float) -> tuple[np.float32, np.uint8]:
    """uint8 parameters whose grid holds 0 exactly and covers all of ``r`` (times ``widen``):
    the zero point is rounded first, then the scale made just large enough for both ends, so
    rounding never cuts the calibrated range short."""
    low, high = min(r.low * widen, 0.0), max(r.high * widen, 0.0)
    if high <= low:
        return np.float32(1.0), np.uint8(0)
    zero = int(np.clip(np.round(-low / ((high - low) / 255.0)), 0, 255))
    scale = max(high / (255 - zero) if zero < 255 else 0.0, -low / zero if zero > 0 else 0.0)
    return np.float32(scale * (1 + 1e-6)), np.uint8(zero)


def stored_ranges(model: Any) -> dict[str, Range]:
    """The fixed range of every quantised input of a static-scale ``model`` (what
    ``static_activation_scales`` wrote: ``[-zero_point * scale, (255 - zero_point) * scale]``)."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    ranges: dict[str, Range] = {}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.name.startswith(f"{_PREFIX}/"):
            x, s_name, z_name = node.input[:3]
            scale = float(numpy_helper.to_array(inits[s_name]))
            zero = float(numpy_helper.to_array(inits[z_name]))
            ranges[x] = Range(-zero * scale, (255.0 - zero) * scale)
    return ranges


def remove_dead_nodes(graph: Any) -> None:
    """Drop the per-row quantisation nodes (and constants) nothing reads any more."""
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in graph.node for i in n.input} | outputs
        alive = [n for n in graph.node if any(o in used for o in n.output)]
        if len(alive) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(alive)
    row_scales._drop_unused_initializers(graph)


# -- calibration input -----------------------------------------------------------------------


def corpus_words(source: str | Path | Sequence[str], limit: int | None = None) -> list[list[str]]:
    """Documents as word lists from a CoNLL-2003 / Few-NERD column file, a ``.spacy`` DocBin, or
    a list of texts (split on whitespace); the first ``limit`` documents."""
    if isinstance(source, str | Path) and Path(source).is_file():
        path = Path(source)
        if path.suffix == ".spacy":
            import spacy
            from spacy.tokens import DocBin

            vocab = spacy.blank("xx").vocab
            docs = [[t.text for t in d] for d in DocBin().from_disk(path).get_docs(vocab)]
        else:
            from ..data.readers import read_documents

            docs = [[w for s in d.sentences for w in s.words] for d in read_documents(path)]
    elif isinstance(source, str | Path):
        raise FileNotFoundError(f"calibration corpus {source} does not exist")
    else:
        docs = [text.split() for text in source]
    docs = [d for d in docs if d]
    return docs[:limit] if limit else docs


def corpus_batches(
    model_dir: str | Path,
    documents: Sequence[Sequence[str]],
    *,
    max_length: int | None = None,
    batch_size: int = 8,
) -> list[Batch]:
    """Network inputs for ``documents`` (word lists), the way the component builds them: each
    document cut into windows of up to ``max_length`` wordpieces between the special tokens
    (default: the component's, ``recorded_max_length``), ``batch_size`` windows per
    batch padded to the longest, and each piece's casing class as its token type when the model
    was trained with them. ``model_dir`` holds ``tokenizer.json`` and ``config.json``."""
    from tokenizers import Tokenizer

    from ..backends.loading import recorded_max_length
    from ..casing import word_class

    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    nerzoo = config.get("nerzoo") or {}
    length = max_length or recorded_max_length(SimpleNamespace(**config))
    casing = bool(nerzoo.get("casing"))
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if cls is None or sep is None:
        raise StaticScaleError(f"{model_dir}: calibration windows need a [CLS]/[SEP] tokenizer")
    pad = int(config.get("pad_token_id") or 0)
    windows: list[tuple[list[int], list[int]]] = []
    for words in documents:
        encoding = tokenizer.encode(list(words), is_pretokenized=True, add_special_tokens=False)
        types = [word_class(words[w]) if w is not None else 0 for w in encoding.word_ids]
        ids = encoding.ids
        for start in range(0, max(len(ids), 1), length - 2):
            piece = slice(start, start + length - 2)
            windows.append(([cls, *ids[piece], sep], [0, *types[piece], 0]))
    batches: list[Batch] = []
    for b in range(0, len(windows), batch_size):
        group = windows[b : b + batch_size]
        width = max(len(ids) for ids, _ in group)
        ids = np.full((len(group), width), pad, np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for r, (row_ids, row_types) in enumerate(group):
            ids[r, : len(row_ids)] = row_ids
            mask[r, : len(row_ids)] = 1
            types[r, : len(row_ids)] = row_types
        batch = {"input_ids": ids, "attention_mask": mask}
        if casing:
            batch["token_type_ids"] = types
        batches.append(batch)
    return batches


@dataclass(frozen=True)
class Calibration:
    """Where static activation ranges come from: ``export_onnx(..., activation_scales="static",
    calibration=Calibration(corpus=...))``.

    ``corpus``: text from the model's own domain, ideally its training data (a CoNLL-2003 /
    Few-NERD column file, a ``.spacy`` DocBin or a list of texts); its first ``documents``
    documents (default all) are windowed as the component windows them (``max_length``: the
    model's own by default). ``method``: ``minmax`` (the full range seen) or ``percentile`` (the
    ``percentile``-th value at each end, clipping rare outliers); ``widen`` multiplies each range.
    """

    corpus: str | Path | Sequence[str]
    documents: int | None = None  # all (fewer measured worse: docs/benchmarks.md)
    method: Method = "minmax"
    percentile: float = 99.99
    widen: float = 1.0
    max_length: int | None = None

    def batches(self, model_dir: str | Path) -> list[Batch]:
        docs = corpus_words(self.corpus, self.documents)
        if not docs:
            raise ValueError(f"the calibration corpus {self._name()} has no words")
        return corpus_batches(model_dir, docs, max_length=self.max_length)

    def options(self) -> dict[str, Any]:
        """Keyword arguments for ``rewrite_file``."""
        return {
            "method": self.method,
            "percentile": self.percentile,
            "widen": self.widen,
            "note": self.describe(),
        }

    def describe(self) -> str:
        """The record stored in the file under ``CALIBRATION_KEY``."""
        note: dict[str, Any] = {
            "method": "minmax" if self.method == "minmax" else f"percentile {self.percentile:g}",
            "corpus": self._name(),
            "documents": self.documents,
        }
        if self.widen != 1.0:
            note["widen"] = self.widen
        return json.dumps(note)

    def _name(self) -> str:
        if isinstance(self.corpus, str | Path):
            return Path(self.corpus).name
        return f"{len(self.corpus)} texts"


def rewrite_file(
    path: str | Path,
    batches: Sequence[Batch],
    output: str | Path | None = None,
    *,
    method: Method = "minmax",
    percentile: float = 99.99,
    widen: float = 1.0,
    per_row: Iterable[str] = (),
    note: str = "",
) -> int:
    """Calibrate the int8 ONNX file ``path`` on ``batches`` and write it with static scales to
    ``output`` (default: ``path``, through a temporary file and a rename). ``note`` is stored
    under ``CALIBRATION_KEY``. Returns the number of quantised inputs."""
    import onnx

    path = Path(path)
    output = Path(output) if output is not None else path
    model = onnx.load(str(path))
    ranges = calibrate(model, batches, method=method, percentile=percentile)
    count = static_activation_scales(model, ranges, widen=widen, per_row=per_row)
    if note:
        row_scales._set_metadata(model, CALIBRATION_KEY, note)
    row_scales.save_checked(model, output)
    return count
