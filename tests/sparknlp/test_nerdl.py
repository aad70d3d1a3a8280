"""NerDL: an imported tagger reproduces Spark NLP's own blstm graph run in TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import spacy
import torch
from sparknlp_fixtures import (
    NERDL_ZIP,
    SCALA211_PARAMS,
    expected_entities,
    reference,
    restored_session,
)
from test_archive import rezip

from spacy_nerzoo.nerdl.component import network
from spacy_nerzoo.nerdl.embeddings import EmbeddingModule
from spacy_nerzoo.sparknlp import SparkNLPFormatError, import_sparknlp
from spacy_nerzoo.sparknlp.archive import SparkNLPArchive
from spacy_nerzoo.sparknlp.nerdl import dataset_params, scala_list

tf = pytest.importorskip("tensorflow", reason="the [sparknlp] extra (make install has it)")

# The tagger's own test: fixed vectors per word, so only the tagger is compared.
WORDS_SOURCE = {
    "@architectures": "spacy_nerzoo.WordEmbeddings.v1",
    "width": 100,
    "lowercase": False,
}


class FixedVectors(EmbeddingModule):
    """The vectors the reference run was fed, looked up by sentence."""

    output_dim = 100

    def __init__(self, sentences: list[list[str]], vectors: list[Any]) -> None:
        super().__init__()
        self.table = {
            tuple(s): torch.tensor(v, dtype=torch.float32)
            for s, v in zip(sentences, vectors, strict=True)
        }

    def forward(self, sentences: Any) -> torch.Tensor:
        width = max(len(s) for s in sentences)
        out = torch.zeros(len(sentences), width, 100)
        for i, s in enumerate(sentences):
            out[i, : len(s)] = self.table[tuple(s)]
        return out


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nerdl") / "pipeline"
    return import_sparknlp(NERDL_ZIP, out, embeddings=WORDS_SOURCE)


def run_spark_graph(
    sentences: list[list[str]], vectors: list[Any]
) -> tuple[np.ndarray, np.ndarray]:
    """The zip's graph in TF, restored and fed as TensorflowNer.predict does (one batch)."""
    with SparkNLPArchive(NERDL_ZIP) as archive, archive.tensorflow("tensorflow") as bundle:
        params = dataset_params(archive)
        with restored_session(bundle, "save/restore_all", "save/Const") as sess:
            char2id = {c: i + 1 for i, c in enumerate(params["chars"])}
            n, width = len(sentences), max(map(len, sentences))
            longest = max(len(w) for s in sentences for w in s)
            char_ids = np.zeros((n, width, longest), np.int32)
            lengths = np.zeros((n, width), np.int32)
            emb = np.zeros((n, width, 100), np.float32)
            for i, s in enumerate(sentences):
                emb[i, : len(s)] = vectors[i]
                for j, w in enumerate(s):
                    lengths[i, j] = len(w)
                    char_ids[i, j, : len(w)] = [char2id.get(c, 0) for c in w]
            feeds = {
                "char_repr/char_ids:0": char_ids,
                "char_repr/word_lengths:0": lengths,
                "word_repr_1/word_embeddings:0": emb,
                "word_repr/sentence_lengths:0": np.array([len(s) for s in sentences], np.int32),
                "training/dropout:0": np.float32(1.0),
            }
            tags, scores = sess.run(["inference/cond_2/Merge:0", "context_repr/scores:0"], feeds)
    return np.asarray(tags), np.asarray(scores)


def test_dataset_params_read_from_the_jvm_object() -> None:
    with SparkNLPArchive(NERDL_ZIP) as archive:
        params = dataset_params(archive)
    assert params["tags"][0] == "O" and len(params["tags"]) == 10
    assert params["embeddings_dim"] == 100
    assert "A" in params["chars"] and len(params["chars"]) == len(set(params["chars"]))


def test_entities_and_scores_match_the_tf_graph(converted: Path) -> None:
    ref = reference()["nerdl"]
    sentences, vectors = ref["sentences"], ref["embeddings"]
    tags, scores = run_spark_graph(sentences, vectors)
    np.testing.assert_array_equal(tags, np.array(ref["tags"]))  # the fixture's own record
    nlp = spacy.load(converted)
    tagger = nlp.get_pipe("nerdl")
    network(tagger.model).embeddings = FixedVectors(sentences, vectors)
    # One batch, as the reference ran: Spark's char CNN max-pools over the batch's padding.
    docs = list(nlp.pipe([" ".join(s) for s in sentences], batch_size=8))
    names = json.loads((converted / "sparknlp.json").read_text())["params"]["tags"]
    for i, (doc, sent) in enumerate(zip(docs, sentences, strict=True)):
        assert [t.text for t in doc] == sent
        expected = expected_entities(tags[i, : len(sent)], names, scores[i])
        got = [(e.start, e.end, e.label_, e._.confidence) for e in doc.ents]
        assert [g[:3] for g in got] == [x[:3] for x in expected]
        np.testing.assert_allclose([g[3] for g in got], [x[3] for x in expected], atol=1e-4)
    assert any(doc.ents for doc in docs)


def test_pipeline_round_trips(converted: Path, tmp_path: Path) -> None:
    nlp = spacy.load(converted)
    nlp.to_disk(tmp_path / "again")
    again = spacy.load(tmp_path / "again")
    a = network(nlp.get_pipe("nerdl").model).state_dict()
    b = network(again.get_pipe("nerdl").model).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_embeddings_need_a_source(tmp_path: Path) -> None:
    meta = json.loads(SparkNLPArchive(NERDL_ZIP).read("metadata/part-00000"))
    meta["paramMap"]["storageRef"] = "glove_100d"
    path = rezip(
        NERDL_ZIP, tmp_path / "m.zip", replace={"metadata/part-00000": json.dumps(meta).encode()}
    )
    with pytest.raises(SparkNLPFormatError, match="trained on 'glove_100d' embeddings"):
        import_sparknlp(path, tmp_path / "out")


def test_embedding_size_must_match(tmp_path: Path) -> None:
    source = {**WORDS_SOURCE, "width": 64}
    with pytest.raises(SparkNLPFormatError, match="expects 100-dimensional embeddings"):
        import_sparknlp(NERDL_ZIP, tmp_path / "out", embeddings=source)


def test_missing_dataset_params(tmp_path: Path) -> None:
    path = rezip(NERDL_ZIP, tmp_path / "m.zip", drop="fields/datasetParams/")
    with pytest.raises(SparkNLPFormatError, match="no 'datasetParams' field"):
        import_sparknlp(path, tmp_path / "out", embeddings=WORDS_SOURCE)


def test_dataset_params_written_by_scala_2_11(tmp_path: Path) -> None:
    """The seed downloads of Spark 2.4 were written by Scala 2.11: a JVM-written file of that
    List layout (make_fixtures.py's scala211) reads as the Scala 2.13 one does."""
    scala211 = SCALA211_PARAMS.read_bytes()
    path = rezip(
        NERDL_ZIP,
        tmp_path / "m.zip",
        drop="fields/datasetParams/",
        replace={"fields/datasetParams/part-00000": scala211},
    )
    with SparkNLPArchive(path) as old, SparkNLPArchive(NERDL_ZIP) as new:
        assert "scala.collection.immutable.List$SerializationProxy" in str(
            old.feature("datasetParams")
        )
        assert dataset_params(old) == dataset_params(new)
    import_sparknlp(path, tmp_path / "out", embeddings=WORDS_SOURCE)


@pytest.mark.parametrize(
    "serialised",
    [
        # Scala 2.13 (pyspark here): DefaultSerializationProxy, size as block data, SerializeEnd.
        {
            "__class__": "scala.collection.generic.DefaultSerializationProxy",
            "__annotations__": [
                b"\xff\xff\xff\xff",
                "B-PER",
                "O",
                {"__class__": "x.SerializeEnd$"},
            ],
        },
        # Scala 2.12 (Spark 3.0 downloads): List$SerializationProxy, ListSerializeEnd$, as Scala
        # 2.11 writes it (test_dataset_params_written_by_scala_2_11) and 2.12's List.scala reads.
        {
            "__class__": "scala.collection.immutable.List$SerializationProxy",
            "__annotations__": [
                "B-PER",
                "O",
                {"__class__": "scala.collection.immutable.ListSerializeEnd$"},
            ],
        },
    ],
)
def test_scala_lists_of_both_versions(serialised: dict[str, Any]) -> None:
    assert scala_list(serialised, "tags") == ["B-PER", "O"]
    assert scala_list({"__class__": "scala.collection.immutable.Nil$"}, "tags") == []
    with pytest.raises(SparkNLPFormatError, match="not a Scala List"):
        scala_list({"__class__": "java.util.HashMap"}, "tags")
