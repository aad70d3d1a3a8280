"""ElmoEmbeddings: the converted ELMo reproduces the TF Hub-shaped graph, alone and under NerDL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip(
    "tensorflow", reason="needs TensorFlow, the [sparknlp] extra (make install has it)"
)

import spacy  # noqa: E402
import torch  # noqa: E402
from spacy.tokens import Doc  # noqa: E402
from sparknlp_fixtures import (  # noqa: E402
    ELMO_ZIP,
    NERDL_ZIP,
    expected_entities,
    reference,
    restored_session,
)
from test_archive import rezip  # noqa: E402
from test_nerdl import run_spark_graph  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from spacy_nerzoo.cli.main import app  # noqa: E402
from spacy_nerzoo.nerdl.elmo import POOLING_LAYERS, Elmo, load_bilm  # noqa: E402
from spacy_nerzoo.sparknlp import (  # noqa: E402
    SparkNLPFormatError,
    component_config,
    embeddings_config,
    import_sparknlp,
)
from spacy_nerzoo.sparknlp.archive import SparkNLPArchive  # noqa: E402

# float32 sums in another order (torch vs TF, batched vs alone): relative 1e-5 differences.
TOLERANCE = {"atol": 1e-5, "rtol": 1e-4}


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_sparknlp(ELMO_ZIP, tmp_path_factory.mktemp("elmo") / "elmo")


def run_elmo_graph(sentences: list[list[str]]) -> dict[str, np.ndarray]:
    """The zip's graph restored and fed as ``TensorflowElmo.tag`` does: tokens padded with " "
    to the longest sentence, and the lengths; every pooling layer fetched."""
    width = max(len(s) for s in sentences)
    tokens = np.array([s + [" "] * (width - len(s)) for s in sentences], dtype=object)
    feeds = {"tokens:0": tokens, "sequence_len:0": np.array([len(s) for s in sentences])}
    with SparkNLPArchive(ELMO_ZIP) as archive, archive.tensorflow("elmo_tensorflow") as bundle:
        # ReadElmoTensorflowModel: initAllTables = true, legacy restore.
        with restored_session(bundle, "save/restore_all", "save/Const", "init_all_tables") as sess:
            outs = sess.run([f"{k}:0" for k in POOLING_LAYERS], feeds)
    return dict(zip(POOLING_LAYERS, outs, strict=True))


def with_pooling(tmp_path: Path, layer: str) -> Path:
    """A copy of the fixture saved with another ``poolingLayer``."""
    meta = json.loads(SparkNLPArchive(ELMO_ZIP).read("metadata/part-00000"))
    meta["paramMap"]["poolingLayer"] = layer
    replace = {"metadata/part-00000": json.dumps(meta).encode()}
    return rezip(ELMO_ZIP, tmp_path / f"{layer}.zip", replace=replace)


@pytest.fixture(scope="module")
def graph_outputs() -> dict[str, np.ndarray]:
    return run_elmo_graph(reference()["elmo"]["sentences"])


def test_the_graph_is_the_one_recorded(graph_outputs: dict[str, np.ndarray]) -> None:
    ref = reference()["elmo"]
    last = len(ref["sentences"][0]) - 1
    for layer, values in ref["last_word"].items():
        np.testing.assert_allclose(graph_outputs[layer][0, last], values, atol=1e-5)


def test_options_come_from_the_graph(converted: Path) -> None:
    options = json.loads((converted / "options.json").read_text())
    # The fixture's clips differ from the published 3.0: these were read off the LSTM ops.
    assert options["lstm"]["cell_clip"] == 1.5 and options["lstm"]["proj_clip"] == 2.0
    assert options["lstm"]["dim"] == 8 and options["lstm"]["projection_dim"] == 50
    assert options["char_cnn"]["filters"] == [[1, 4], [2, 8], [3, 16]]
    assert options["char_cnn"]["n_highway"] == 2
    info = json.loads((converted / "sparknlp.json").read_text())
    assert info["component"] == "embeddings"
    assert info["params"]["poolingLayer"] == "elmo" and info["params"]["dimension"] == 100
    assert info["params"]["assumed"] == [
        "use_skip_connections",
        "activation",
        "max_characters_per_token",
    ]


@pytest.mark.parametrize("layer", POOLING_LAYERS)
def test_each_pooling_layer_matches_the_tf_graph(
    converted: Path, graph_outputs: dict[str, np.ndarray], layer: str
) -> None:
    sentences = reference()["elmo"]["sentences"]
    bilm = load_bilm(converted / "options.json", converted / "weights.hdf5")
    elmo = Elmo(bilm, layer).eval()
    with torch.no_grad():
        ours = elmo(sentences).numpy()
    width = {"word_emb": 50}.get(layer, 100)  # TF Hub's word_emb is the token layer itself
    assert elmo.output_dim == width and ours.shape[-1] == width
    for i, sent in enumerate(sentences):
        np.testing.assert_allclose(
            ours[i, : len(sent)], graph_outputs[layer][i, : len(sent)], **TOLERANCE
        )
        # Spark runs one document's sentences at a time: alone, a sentence gets the same.
        with torch.no_grad():
            alone = elmo([sent]).numpy()[0]
        np.testing.assert_allclose(alone, ours[i, : len(sent)], **TOLERANCE)


def test_the_trained_mix_is_the_modules(converted: Path) -> None:
    """``elmo`` uses the module's aggregation weights and scaling, not a fresh uniform mix."""
    bilm = load_bilm(converted / "options.json", converted / "weights.hdf5")
    mix = Elmo(bilm, "elmo").mix
    assert mix is not None
    assert float(mix.gamma.detach()) == pytest.approx(1.25)
    assert not torch.allclose(mix.scalars, torch.zeros(3))


def test_embeddings_config_pools_like_spark(converted: Path, tmp_path: Path) -> None:
    config = component_config(converted)
    assert config == embeddings_config(converted)
    assert config["@architectures"] == "spacy_nerzoo.ElmoEmbeddings.v1"
    assert config["pooling_layer"] == "elmo"
    out = import_sparknlp(with_pooling(tmp_path, "word_emb"), tmp_path / "word_emb")
    assert embeddings_config(out)["pooling_layer"] == "word_emb"
    assert json.loads((out / "sparknlp.json").read_text())["params"]["dimension"] == 50


def test_nerdl_over_elmo_gives_the_tf_entities(converted: Path, tmp_path: Path) -> None:
    """End to end: ELMo graph -> NerDL graph in TF against the two converted models in spaCy."""
    ref = reference()["elmo"]
    sentences = ref["sentences"]
    elmo = run_elmo_graph(sentences)["elmo"]
    vectors = [elmo[i, : len(s)] for i, s in enumerate(sentences)]
    tags, scores = run_spark_graph(sentences, vectors)
    for i, sent in enumerate(sentences):
        assert tags[i, : len(sent)].tolist() == ref["nerdl_tags"][i]  # the fixture's record
    out = import_sparknlp(NERDL_ZIP, tmp_path / "ner", embeddings=embeddings_config(converted))
    nlp = spacy.load(out)
    names = json.loads((out / "sparknlp.json").read_text())["params"]["tags"]
    # One batch, as the reference ran (Spark's char CNN pools over the batch's padding).
    docs = list(nlp.pipe([Doc(nlp.vocab, words=s) for s in sentences], batch_size=8))
    found = 0
    for i, (doc, sent) in enumerate(zip(docs, sentences, strict=True)):
        expected = expected_entities(tags[i, : len(sent)], names, scores[i])
        got = [(e.start, e.end, e.label_, e._.confidence) for e in doc.ents]
        assert [g[:3] for g in got] == [x[:3] for x in expected]
        np.testing.assert_allclose([g[3] for g in got], [x[3] for x in expected], atol=1e-4)
        found += len(got)
    assert found


def test_the_documented_commands(converted: Path, tmp_path: Path) -> None:
    """docs/sparknlp.md: convert the ELMo download, then the tagger with --embeddings FOLDER."""
    runner = CliRunner()
    emb = tmp_path / "elmo"
    result = runner.invoke(app, ["import-sparknlp", str(ELMO_ZIP), str(emb)])
    assert result.exit_code == 0, result.output
    assert f"--embeddings {emb}" in result.output
    ner = tmp_path / "ner"
    result = runner.invoke(
        app, ["import-sparknlp", str(NERDL_ZIP), str(ner), "--embeddings", str(emb)]
    )
    assert result.exit_code == 0, result.output
    shutil.rmtree(emb)  # the pipeline carries the ELMo it was built with
    nlp = spacy.load(ner)
    config = nlp.get_pipe_config("nerdl")["model"]["embeddings"]
    assert config["@architectures"] == "spacy_nerzoo.ElmoEmbeddings.v1"
    assert config["pooling_layer"] == "elmo"
    assert len(nlp("Angela Merkel met Tim Cook .")) == 6


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SparkNLPFormatError, match="no TensorFlow file; expected elmo_tensorflow"):
        import_sparknlp(rezip(ELMO_ZIP, tmp_path / "a.zip", drop="elmo_tensorflow"), tmp_path / "a")
    with SparkNLPArchive(NERDL_ZIP) as archive:
        nerdl_graph = archive.read("tensorflow", limit=1 << 30)
    with pytest.raises(SparkNLPFormatError, match="no bilm/char_embed"):
        import_sparknlp(
            rezip(ELMO_ZIP, tmp_path / "b.zip", replace={"elmo_tensorflow": nerdl_graph}),
            tmp_path / "b",
        )
    with pytest.raises(SparkNLPFormatError, match="poolingLayer 'default' is not one of"):
        import_sparknlp(with_pooling(tmp_path, "default"), tmp_path / "c")
