"""Tensors out of a TensorFlow variable bundle, by variable name; TensorFlow needed only here.

Spark NLP keeps each network as a GraphDef plus the variables its saver wrote. A TF1 graph
(NerDL) saves under variable names (``context_repr/lstm-0/...``); a TF2 SavedModel (the token
classifiers, DistilBERT/ELMo embeddings) saves under object-graph paths
(``variables/12/.ATTRIBUTES/VARIABLE_VALUE``), whose ``full_name`` in the checkpoint's
``_CHECKPOINTABLE_OBJECT_GRAPH`` is the Keras variable name (``tf_albert_for_token_classification/
albert/...``). Both are returned by that name. TensorFlow's own reader parses the bundle; the graph
is parsed as a protobuf message, never imported or run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SparkNLPFormatError

_OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"


def _tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        raise SparkNLPFormatError(
            "Reading a Spark NLP model's TensorFlow files needs TensorFlow: "
            "pip install 'spacy-nerzoo[sparknlp]' (only the import does; the converted model "
            "runs without it)"
        ) from None
    return tf


def read_variables(prefix: Path) -> dict[str, np.ndarray]:
    """Every variable in the bundle at ``prefix``, keyed by variable name (no ``:0``)."""
    tf = _tf()
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except Exception as e:  # TF raises its own error types for unreadable bundles
        raise SparkNLPFormatError(f"unreadable TensorFlow variables ({e})") from None
    keys = [k for k in reader.get_variable_to_shape_map() if k != _OBJECT_GRAPH]
    names = {k: k for k in keys}
    if reader.has_tensor(_OBJECT_GRAPH):
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(reader.get_tensor(_OBJECT_GRAPH))
        for node in graph.nodes:
            for attr in node.attributes:
                if attr.checkpoint_key in names and attr.full_name:
                    names[attr.checkpoint_key] = attr.full_name
    out: dict[str, np.ndarray] = {}
    for key, name in names.items():
        value = reader.get_tensor(key)
        if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
            out[name.removesuffix(":0")] = value
    return out


def parse_graph(graph_def: bytes) -> Any:
    """The GraphDef message (for reading node attributes; nothing is imported or run)."""
    tf = _tf()
    graph = tf.compat.v1.GraphDef()
    try:
        graph.ParseFromString(graph_def)
    except Exception as e:  # protobuf's DecodeError
        raise SparkNLPFormatError(f"saved_model.pb is not a TensorFlow GraphDef ({e})") from None
    return graph
