"""Paths of the Spark NLP fixtures: tiny models saved the way Spark NLP saves them."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sparknlp"
TOKEN_ZIPS = {
    name: FIXTURES / f"{name}_token_classifier_tiny_en_3.3.0_3.0.zip"
    for name in ("albert", "distilbert", "longformer")
}
NERDL_ZIP = FIXTURES / "ner_dl_tiny_en_3.3.0_3.0.zip"
EMBEDDINGS_ZIP = FIXTURES / "distilbert_embeddings_tiny_en_3.3.0_3.0.zip"
ELMO_ZIP = FIXTURES / "elmo_tiny_en_3.3.0_3.0.zip"
# fields/datasetParams of the NerDL fixture as a Scala 2.11 JVM writes it.
SCALA211_PARAMS = FIXTURES / "datasetParams_scala2.11" / "part-00000"


def reference() -> dict[str, Any]:
    """TF outputs recorded when the fixtures were built (make_fixtures.py)."""
    return json.loads((FIXTURES / "reference.json").read_text())


def expected_entities(
    tags: Sequence[int], names: Sequence[str], scores: Any
) -> list[tuple[int, int, str, float]]:
    """Entities of one sentence's Viterbi tag ids with Spark's confidence (``includeConfidence``):
    the mean softmax probability of the entity's tags under ``scores``, the graph's tag scores."""
    import numpy as np
    from seqeval.metrics.sequence_labeling import get_entities

    probs = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    path = [names[t] for t in tags]
    return [
        (s, e + 1, label, float(np.mean([probs[k, tags[k]] for k in range(s, e + 1)])))
        for label, s, e in get_entities(path)
    ]


@contextlib.contextmanager
def restored_session(
    bundle: Any, restore_op: str, filename_tensor: str, *targets: str
) -> Iterator[Any]:
    """A TF session on a bundle's graph, variables restored by the graph's own saver op (plus
    ``targets``, e.g. ``init_all_tables``), as Spark NLP's ``TensorflowWrapper`` does (tests
    only: this runs the fixture's graph)."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(bundle.graph_def)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        sess.run([restore_op, *targets], {filename_tensor + ":0": str(bundle.variables_prefix)})
        yield sess
