"""Spark NLP NerDLModel -> a spaCy pipeline whose ``nerdl`` component runs Spark's exact graph.

A NerDL download holds the tagger only: its TF1 graph and variables (``tensorflow``), and
``fields/datasetParams`` (``DatasetEncoderParams``: tags, characters, embedding size). The word
embeddings come from another annotator of the Spark pipeline (``storageRef`` names it), so the
embedding source is configured here: by default the public checkpoint Spark NLP's embeddings were
exported from, or any ``spacy_nerzoo.*Embeddings.v1`` config given by the caller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .archive import SparkNLPArchive
from .errors import SparkNLPFormatError
from .tfread import parse_graph, read_variables

DATASET_PARAMS = "com.johnsnowlabs.ml.tensorflow.DatasetEncoderParams"
# Spark NLP's distilbert_base_cased was exported from the HF checkpoint of that name [inferred
# from the model card]; its DistilBertEmbeddings use the first wordpiece of each token [source].
DEFAULT_EMBEDDINGS: dict[str, dict[str, Any]] = {
    "distilbert_base_cased": {
        "@architectures": "spacy_nerzoo.TransformerEmbeddings.v1",
        "name": "distilbert-base-cased",
        "pooling": "first",
    },
}


def scala_list(value: Any, what: str) -> list[Any]:
    """A serialised Scala ``List`` (2.12 ``List$SerializationProxy`` or 2.13
    ``DefaultSerializationProxy``: elements written by ``writeObject``; ``Nil``) as a list."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        cls = str(value.get("__class__", ""))
        if cls.startswith("scala.collection.immutable.Nil"):
            return []
        if "SerializationProxy" in cls:
            items = []
            for item in value.get("__annotations__", []):
                if isinstance(item, bytes):  # 2.13 writes the size as block data
                    continue
                if isinstance(item, dict) and "SerializeEnd" in str(item):
                    break
                items.append(item)
            return items
    raise SparkNLPFormatError(f"datasetParams.{what} is not a Scala List")


def dataset_params(archive: SparkNLPArchive) -> dict[str, Any]:
    """``DatasetEncoderParams`` as tags in Spark's id order, chars, embeddings dimension."""
    values = archive.feature("datasetParams")
    if not values:
        raise SparkNLPFormatError(
            f"{archive.path}: the NerDLModel has no 'datasetParams' field (expected "
            "fields/datasetParams/part-*)"
        )
    params = values[0]
    if not isinstance(params, dict) or params.get("__class__") != DATASET_PARAMS:
        raise SparkNLPFormatError(f"{archive.path}: fields/datasetParams is not a {DATASET_PARAMS}")
    try:
        tags = [str(t) for t in scala_list(params["tags"], "tags")]
        chars = [str(c) for c in scala_list(params["chars"], "chars")]
        dim = int(params["embeddingsDim"])
        default = str(params.get("defaultTag", "O"))
    except KeyError as e:
        raise SparkNLPFormatError(f"datasetParams has no field {e}") from None
    if any(len(c) != 1 for c in chars):
        raise SparkNLPFormatError("datasetParams.chars holds something other than characters")
    # NerDatasetEncoder.tag2Id: the default tag is 0, the others follow in their order.
    ordered = [default] + [t for t in tags if t != default]
    return {"tags": ordered, "chars": "".join(chars), "embeddings_dim": dim}


def _lstm_attrs(graph: Any) -> tuple[float, float, int]:
    """forget_bias and cell_clip of the graph's BlockLSTM ops, and how many there are."""
    nodes = [n for n in graph.node if n.op in ("BlockLSTM", "BlockLSTMV2")]
    if not nodes:
        raise SparkNLPFormatError(
            "the NerDL graph has no BlockLSTM ops; expected Spark NLP's blstm graph "
            "(python/tensorflow/ner/create_models.py)"
        )
    peephole = {bool(n.attr["use_peephole"].b) for n in nodes}
    if peephole != {True}:
        raise SparkNLPFormatError("the NerDL graph's LSTMs are not peephole LSTMs")
    forget = {round(n.attr["forget_bias"].f, 6) for n in nodes}
    clip = {round(n.attr["cell_clip"].f, 6) for n in nodes}
    if len(forget) != 1 or len(clip) != 1:
        raise SparkNLPFormatError("the NerDL graph's LSTMs differ in forget_bias or cell_clip")
    return forget.pop(), clip.pop(), len(nodes) // 2


def convert_nerdl(
    archive: SparkNLPArchive, output: Path, *, embeddings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write a spaCy pipeline with one ``nerdl`` component to ``output``; return Spark's params."""
    import spacy

    from ..nerdl.component import network
    from ..nerdl.model import build_network
    from ..nerdl.spark_network import load_spark_weights

    info = dataset_params(archive)
    storage = str(archive.param("storageRef", ""))
    if embeddings is None:
        if storage not in DEFAULT_EMBEDDINGS:
            raise SparkNLPFormatError(
                f"{archive.path}: this NerDL model was trained on '{storage or 'unknown'}' "
                f"embeddings ({info['embeddings_dim']} dimensions); pass the embedding source "
                "(embeddings=... / --embeddings), e.g. the folder `nerzoo import-sparknlp` "
                "made of Spark NLP's embeddings download (for 'elmo': "
                "elmo_en_2.4.0_2.4_1580488815299.zip)"
            )
        embeddings = DEFAULT_EMBEDDINGS[storage]
    with archive.tensorflow("tensorflow") as bundle:
        weights = read_variables(bundle.variables_prefix)
        graph = parse_graph(bundle.graph_def)
    forget_bias, cell_clip, layers = _lstm_attrs(graph)
    try:
        n_chars, char_dim = weights["char_repr_cnn/char_embeddings"].shape
        hidden = int(weights["context_repr/lstm-0/lstm_fused_cell/w_i_diag"].shape[0])
        n_tags = int(weights["context_repr/W"].shape[1])
        filters = int(weights["char_repr_cnn/conv1d/kernel"].shape[2])
        char_hidden = int(
            weights["char_repr_lstm/sequential/bidirectional/forward_lstm/recurrent_kernel"].shape[
                0
            ]
        )
    except KeyError as e:
        raise SparkNLPFormatError(f"the NerDL graph has no variable {e}") from None
    tags = info["tags"]
    if len(tags) > n_tags:
        raise SparkNLPFormatError(f"{len(tags)} tags but the graph scores {n_tags}")
    # Graphs come in fixed sizes (blstm_10_...): ids past the tag list decode to the default tag.
    tags = tags + [tags[0]] * (n_tags - len(tags))
    nlp = spacy.blank("en")
    labels = sorted({t.split("-", 1)[1] for t in tags if "-" in t})
    config = {
        "model": {
            "@architectures": "spacy_nerzoo.SparkNerDL.v1",
            "embeddings": embeddings,
            "chars": info["chars"],
            "n_chars": int(n_chars),
            "char_dim": int(char_dim),
            "char_filters": filters,
            "char_hidden": char_hidden,
            "hidden_size": hidden,
            "lstm_layers": layers,
            "forget_bias": forget_bias,
            "cell_clip": cell_clip,
        },
        "labels": labels,
    }
    pipe = nlp.add_pipe("nerdl", config=config)
    pipe.model.attrs["tag_names"] = tags
    try:
        build_network(pipe.model, None, pipe.name)
    except Exception as e:
        raise SparkNLPFormatError(f"the embedding source could not be built: {e}") from None
    net = network(pipe.model)
    if net.embeddings.output_dim != info["embeddings_dim"]:
        raise SparkNLPFormatError(
            f"the tagger expects {info['embeddings_dim']}-dimensional embeddings but the "
            f"embedding source gives {net.embeddings.output_dim}"
        )
    try:
        load_spark_weights(net, weights)
    except (KeyError, ValueError) as e:
        raise SparkNLPFormatError(f"the NerDL variables do not fit Spark's graph: {e}") from None
    nlp.to_disk(output)
    return {
        "storageRef": storage,
        "embeddingsDim": info["embeddings_dim"],
        "includeConfidence": bool(archive.param("includeConfidence", False)),
        "tags": info["tags"],
    }


def check_nerdl_folder(folder: Path) -> None:
    """The converted pipeline loads and its component has a network."""
    import spacy

    from ..nerdl.component import network

    nlp = spacy.load(folder)
    if "nerdl" not in nlp.pipe_names or network(nlp.get_pipe("nerdl").model) is None:
        raise SparkNLPFormatError(f"{folder}: the converted NerDL pipeline does not load back")
