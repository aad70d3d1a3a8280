"""Spark NLP ElmoEmbeddings -> the ELMo files ``spacy_nerzoo.ElmoEmbeddings.v1`` loads.

Spark NLP's ``elmo`` download is TF Hub's ``google/elmo`` module exported as a TF1 SavedModel and
re-saved by ``TensorflowWrapper.saveToFile`` (``elmo_tensorflow``: a GraphDef and a variable
bundle). The module's biLM is bilm-tf's inference graph under the scope ``bilm``: its variables
(``bilm/char_embed``, ``bilm/CNN/W_cnn_i``, ``bilm/CNN_high_i/*``, ``bilm/CNN_proj/*``,
``bilm/RNN_d/RNN/MultiRNNCell/Celll/rnn/lstm_cell/{kernel,bias,projection/kernel}``) are the
tensors of the published ``weights.hdf5`` under TensorFlow's ``LSTMCell`` names, plus the ``elmo``
output's trained mix, ``aggregation/weights`` and ``aggregation/scaling``. They are written here
as an ``options.json`` + ``weights.hdf5`` pair in the published layout (``nerdl/elmo.py``).

What the variables do not hold is read from the graph where TensorFlow's ``LSTMCell`` left it
(the cell and projection clips) and otherwise taken from the published options of the original
ELMo that the module packages (skip connections, ReLU, 50 characters per token); the provenance
file lists which were assumed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from .archive import SparkNLPArchive
from .errors import SparkNLPFormatError
from .tfread import parse_graph, read_variables

OPTIONS_FILE = "options.json"
WEIGHTS_FILE = "weights.hdf5"
POOLING_LAYERS = ("word_emb", "lstm_outputs1", "lstm_outputs2", "elmo")
# The original ELMo's options (AllenNLP's elmo_2x4096_512_2048cnn_2xhighway_options.json), for
# what the module's graph does not store as variables.
PUBLISHED = {
    "use_skip_connections": True,
    "activation": "relu",
    "max_characters_per_token": 50,
    "cell_clip": 3.0,
    "proj_clip": 3.0,
}
_LSTM = re.compile(r"bilm/RNN_(\d+)/RNN/MultiRNNCell/Cell(\d+)/rnn/lstm_cell/kernel$")


def _bilm_variables(weights: dict[str, np.ndarray]) -> tuple[str, dict[str, np.ndarray]]:
    """The variables under the module's ``bilm/`` and ``aggregation/`` scopes, prefix removed."""
    roots = {k[: -len("bilm/char_embed")] for k in weights if k.endswith("bilm/char_embed")}
    if len(roots) != 1:
        raise SparkNLPFormatError(
            "the ElmoEmbeddings graph has no bilm/char_embed variable; expected TF Hub's ELMo "
            "module (bilm/CNN, bilm/RNN_0, aggregation/weights ...)"
        )
    root = roots.pop()
    return root, {k[len(root) :]: v for k, v in weights.items() if k.startswith(root)}


def _get(w: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in w:
        raise SparkNLPFormatError(f"the ElmoEmbeddings graph has no variable '{name}'")
    return w[name]


def _count(w: dict[str, np.ndarray], pattern: str) -> int:
    found = {int(m.group(1)) for k in w if (m := re.match(pattern, k))}
    if found != set(range(len(found))):
        raise SparkNLPFormatError(f"the ElmoEmbeddings variables {pattern} are not numbered 0..n-1")
    return len(found)


def _clips(graph: Any, root: str) -> dict[str, float]:
    """``cell_clip`` and ``proj_clip`` of TF's ``LSTMCell``: the two ``clip_by_value`` bounds it
    builds in each step (cell state first, projection second); {} when absent.

    TF1 while loops (the module's) keep the step's nodes in the graph under the cell's scope;
    TF2's are functions named after the scope, holding nodes named from ``lstm_cell/`` on.
    """
    in_graph = re.compile(
        "^" + re.escape(root) + r"bilm/RNN_\d+/.*lstm_cell/clip_by_value(_1)?/Minimum/y$"
    )
    in_function = re.compile(r"^lstm_cell/clip_by_value(_1)?/Minimum/y$")
    scope = re.sub(r"\W", "_", root + "bilm/RNN_")
    nodes = [(n, in_graph) for n in graph.node]
    for fn in graph.library.function:
        if fn.signature.name.startswith(scope):
            nodes += [(n, in_function) for n in fn.node_def]
    found: dict[str, set[float]] = {"cell_clip": set(), "proj_clip": set()}
    for node, pattern in nodes:
        m = pattern.match(node.name)
        if m and node.op == "Const" and node.attr["value"].tensor.float_val:
            key = "proj_clip" if m.group(1) else "cell_clip"
            found[key].add(round(float(node.attr["value"].tensor.float_val[0]), 6))
    return {k: v.pop() for k, v in found.items() if len(v) == 1}


def elmo_options_and_weights(
    weights: dict[str, np.ndarray], graph: Any
) -> tuple[dict[str, Any], dict[str, np.ndarray], list[str]]:
    """The options, the datasets of ``weights.hdf5`` and the options that were assumed."""
    root, w = _bilm_variables(weights)
    char_embed = _get(w, "bilm/char_embed")
    n_cnn = _count(w, r"bilm/CNN/W_cnn_(\d+)$")
    n_highway = _count(w, r"bilm/CNN_high_(\d+)/W_carry$")
    cells = sorted({(int(m.group(1)), int(m.group(2))) for k in w if (m := _LSTM.search(k))})
    n_layers = len({layer for _, layer in cells})
    if not n_cnn or not n_layers or {d for d, _ in cells} != {0, 1}:
        raise SparkNLPFormatError(
            "the ElmoEmbeddings graph lacks the char CNN or the LSTMs of both directions"
        )
    out: dict[str, np.ndarray] = {}
    # bilm-tf's inference graph (and so TF Hub's) prepends a zero row for padding and shifts
    # every character id by one; the published files and nerdl/elmo.py use the unshifted ids.
    out["char_embed"] = char_embed[1:] if char_embed.shape[0] == 262 else char_embed
    filters = []
    for i in range(n_cnn):
        kernel = _get(w, f"bilm/CNN/W_cnn_{i}")
        out[f"CNN/W_cnn_{i}"] = kernel
        out[f"CNN/b_cnn_{i}"] = _get(w, f"bilm/CNN/b_cnn_{i}")
        filters.append([int(kernel.shape[1]), int(kernel.shape[3])])
    for i in range(n_highway):
        for name in ("W_carry", "b_carry", "W_transform", "b_transform"):
            out[f"CNN_high_{i}/{name}"] = _get(w, f"bilm/CNN_high_{i}/{name}")
    out["CNN_proj/W_proj"] = _get(w, "bilm/CNN_proj/W_proj")
    out["CNN_proj/b_proj"] = _get(w, "bilm/CNN_proj/b_proj")
    for d in range(2):
        for layer in range(n_layers):
            src = f"bilm/RNN_{d}/RNN/MultiRNNCell/Cell{layer}/rnn/lstm_cell/"
            dst = f"RNN_{d}/RNN/MultiRNNCell/Cell{layer}/LSTMCell/"
            out[dst + "W_0"] = _get(w, src + "kernel")
            out[dst + "B"] = _get(w, src + "bias")
            out[dst + "W_P_0"] = _get(w, src + "projection/kernel")
    dim, proj = out["RNN_0/RNN/MultiRNNCell/Cell0/LSTMCell/W_P_0"].shape
    if out["CNN_proj/W_proj"].shape[1] != proj:
        raise SparkNLPFormatError("the char CNN projection and the LSTM projection differ in size")
    if "aggregation/weights" in w:
        out["aggregation/weights"] = _get(w, "aggregation/weights").reshape(-1)
        out["aggregation/scaling"] = _get(w, "aggregation/scaling").reshape(1)
    clips = _clips(graph, root)
    assumed = [k for k in ("cell_clip", "proj_clip") if k not in clips]
    assumed += ["use_skip_connections", "activation", "max_characters_per_token"]
    options = {
        "lstm": {
            "cell_clip": clips.get("cell_clip", PUBLISHED["cell_clip"]),
            "proj_clip": clips.get("proj_clip", PUBLISHED["proj_clip"]),
            "use_skip_connections": PUBLISHED["use_skip_connections"],
            "n_layers": n_layers,
            "projection_dim": int(proj),
            "dim": int(dim),
        },
        "char_cnn": {
            "embedding": {"dim": int(char_embed.shape[1])},
            "filters": filters,
            "n_highway": n_highway,
            "n_characters": 262,
            "max_characters_per_token": PUBLISHED["max_characters_per_token"],
            "activation": PUBLISHED["activation"],
        },
        # TF Hub's word_emb output is the token layer itself (512 wide in the real module).
        "double_word_emb": False,
    }
    return options, out, assumed


def convert_elmo(archive: SparkNLPArchive, output: Path) -> dict[str, Any]:
    """Write ``options.json`` and ``weights.hdf5`` to ``output``; return Spark's params."""
    try:
        import h5py
    except ImportError:
        raise SparkNLPFormatError(
            "Converting ElmoEmbeddings writes ELMo's HDF5 weight file: pip install h5py "
            "(or 'spacy-nerzoo[torch]', which the converted ELMo needs to run)"
        ) from None

    pooling = str(archive.param("poolingLayer", "elmo"))
    if pooling not in POOLING_LAYERS:
        raise SparkNLPFormatError(
            f"poolingLayer '{pooling}' is not one of Spark NLP's {', '.join(POOLING_LAYERS)}"
        )
    with archive.tensorflow("elmo_tensorflow") as bundle:
        weights = read_variables(bundle.variables_prefix)
        graph = parse_graph(bundle.graph_def)
    options, datasets, assumed = elmo_options_and_weights(weights, graph)
    output.mkdir(parents=True, exist_ok=True)
    (output / OPTIONS_FILE).write_text(json.dumps(options, indent=2) + "\n", "utf-8")
    with h5py.File(output / WEIGHTS_FILE, "w") as f:
        for name, value in datasets.items():
            f.create_dataset(name, data=np.asarray(value, dtype=np.float32))
    return {
        "poolingLayer": pooling,
        "storageRef": str(archive.param("storageRef", "")),
        "dimension": int(options["lstm"]["projection_dim"]) * (1 if pooling == "word_emb" else 2),
        "assumed": assumed,
    }


def elmo_embeddings_config(folder: Path, params: dict[str, Any]) -> dict[str, Any]:
    """The NerDL embedding source for a converted ElmoEmbeddings folder, pooled as in Spark."""
    return {
        "@architectures": "spacy_nerzoo.ElmoEmbeddings.v1",
        "options_file": str(folder / OPTIONS_FILE),
        "weight_file": str(folder / WEIGHTS_FILE),
        "pooling_layer": params["poolingLayer"],
    }


def check_elmo_folder(folder: Path) -> None:
    """The converted files load into the biLM with the pooling layer Spark NLP used."""
    from ..errors import ModelLoadError
    from ..nerdl.elmo import Elmo, load_bilm

    info = json.loads((folder / "sparknlp.json").read_text("utf-8"))
    try:
        bilm = load_bilm(folder / OPTIONS_FILE, folder / WEIGHTS_FILE)
    except ModelLoadError as e:
        raise SparkNLPFormatError(
            f"{folder}: the converted ELMo does not load back ({e})"
        ) from None
    elmo = Elmo(bilm, info["params"]["poolingLayer"])
    if elmo.output_dim != info["params"]["dimension"]:  # pragma: no cover - sanity
        raise SparkNLPFormatError(f"{folder}: the converted ELMo has the wrong output size")
