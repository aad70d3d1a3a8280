"""Token classifiers: converted folders reproduce the TensorFlow graphs Spark NLP runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import spacy
import torch
from seqeval.metrics.sequence_labeling import get_entities
from sparknlp_fixtures import TOKEN_ZIPS, reference, restored_session
from transformers import AutoModelForTokenClassification, AutoTokenizer

from spacy_nerzoo.sparknlp import component_config, import_sparknlp
from spacy_nerzoo.sparknlp.archive import SparkNLPArchive

tf = pytest.importorskip("tensorflow", reason="the [sparknlp] extra (make install has it)")

WORDS = "Angela Merkel met Tim Cook of Apple in Berlin on Monday .".split()
TF_FILES = {
    "albert": "albert_classification_tensorflow",
    "distilbert": "distilbert_classification_tensorflow",
    "longformer": "longformer_classification_tensorflow",
}


@pytest.fixture(scope="module", params=sorted(TOKEN_ZIPS))
def converted(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    name = request.param
    out = import_sparknlp(TOKEN_ZIPS[name], tmp_path_factory.mktemp(name) / "model")
    return name, out


def _run(sig: dict[str, str], input_ids: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
    with SparkNLPArchive(TOKEN_ZIPS[name]) as archive, archive.tensorflow(TF_FILES[name]) as bundle:
        with restored_session(bundle, sig["restoreOpName_"], sig["filenameTensorName_"]) as sess:
            feed = {sig["input_ids"]: input_ids, sig["attention_mask"]: mask}
            for key, tensor in sig.items():  # unfed inputs (segment ids, global attention): zeros
                if tensor.startswith("serving_default_") and key not in (
                    "input_ids",
                    "attention_mask",
                ):
                    feed[tensor] = np.zeros_like(input_ids)
            return np.asarray(sess.run(sig["logits"], feed))


def test_logits_match_the_tf_graph(converted: tuple[str, Path]) -> None:
    name, folder = converted
    ref = reference()[name]
    model = AutoModelForTokenClassification.from_pretrained(folder).eval()
    ids, mask = np.array(ref["input_ids"]), np.array(ref["attention_mask"])
    with torch.no_grad():
        logits = model(
            input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)
        ).logits.numpy()
    expected = np.array(ref["logits"])
    valid = mask.astype(bool)
    assert np.abs(expected[valid]).max() > 1.0  # weights spread enough for errors to show
    np.testing.assert_allclose(logits[valid], expected[valid], atol=1e-4)


def test_folder_records_spark_params(converted: tuple[str, Path]) -> None:
    name, folder = converted
    info = json.loads((folder / "sparknlp.json").read_text())
    assert info["params"]["caseSensitive"] is (name != "albert")
    assert info["params"]["maxSentenceLength"] == 128
    config = component_config(folder)
    assert config["case_sensitive"] is (name != "albert")
    assert config["alignment"] == "first" and config["decoding"] == "argmax"
    labels = json.loads((folder / "config.json").read_text())["id2label"]
    assert labels["0"] == "O" and len(labels) == 9


def spark_reference(name: str, folder: Path, words: list[str]) -> list[tuple[int, int, str, float]]:
    """Spark NLP's predict on the TF graph: first wordpiece per token, softmax, argmax tag."""
    tok = AutoTokenizer.from_pretrained(folder)
    lower = name == "albert"  # caseSensitive false: Spark lowercases the token text
    enc = tok([w.lower() if lower else w for w in words], is_split_into_words=True)
    ids = np.array([enc["input_ids"]], dtype=np.int32)
    logits = _run(_signatures(name), ids, np.ones_like(ids), name)[0]
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    id2label = json.loads((folder / "config.json").read_text())["id2label"]
    first: dict[int, int] = {}
    for i, w in enumerate(enc.word_ids()):
        if w is not None and w not in first:
            first[w] = i
    tags = [id2label[str(int(probs[first[w]].argmax()))] for w in range(len(words))]
    conf = [float(probs[first[w]].max()) for w in range(len(words))]
    return [
        (s, e + 1, label, float(np.mean(conf[s : e + 1]))) for label, s, e in get_entities(tags)
    ]


def _signatures(name: str) -> dict[str, str]:
    with SparkNLPArchive(TOKEN_ZIPS[name]) as archive:
        return archive.map_feature("signatures")


def test_entities_and_scores_match_spark_nlp(converted: tuple[str, Path]) -> None:
    name, folder = converted
    expected = spark_reference(name, folder, WORDS)
    assert expected, "the random fixture should tag some entities"
    nlp = spacy.blank("en")
    nlp.add_pipe("token_classifier", config=component_config(folder))
    doc = nlp(" ".join(WORDS))
    assert [t.text for t in doc] == WORDS
    got = [(e.start, e.end, e.label_, e._.confidence) for e in doc.ents]
    assert [g[:3] for g in got] == [(s, e, label) for s, e, label, _ in expected]
    np.testing.assert_allclose([g[3] for g in got], [x[3] for x in expected], atol=1e-4)
