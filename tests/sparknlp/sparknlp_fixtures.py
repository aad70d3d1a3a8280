"""Paths of the Spark NLP fixtures: tiny models saved the way Spark NLP saves them."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sparknlp"
TOKEN_ZIPS = {
    name: FIXTURES / f"{name}_token_classifier_tiny_en_3.3.0_3.0.zip"
    for name in ("albert", "distilbert", "longformer")
}
NERDL_ZIP = FIXTURES / "ner_dl_tiny_en_3.3.0_3.0.zip"
EMBEDDINGS_ZIP = FIXTURES / "distilbert_embeddings_tiny_en_3.3.0_3.0.zip"


def reference() -> dict[str, Any]:
    """TF outputs recorded when the fixtures were built (make_fixtures.py)."""
    return json.loads((FIXTURES / "reference.json").read_text())


@contextlib.contextmanager
def restored_session(bundle: Any, restore_op: str, filename_tensor: str) -> Iterator[Any]:
    """A TF session on a bundle's graph, variables restored by the graph's own saver op, as
    Spark NLP's ``TensorflowWrapper`` does (tests only: this runs the fixture's graph)."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(bundle.graph_def)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(restore_op, {filename_tensor + ":0": str(bundle.variables_prefix)})
        yield sess
