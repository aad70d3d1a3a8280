"""DistilBertEmbeddings: the encoder of ner_conll_distilbert_base_cased, converted for NerDL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sparknlp_fixtures import EMBEDDINGS_ZIP, NERDL_ZIP, reference
from transformers import AutoModel

from spacy_nerzoo.sparknlp import (
    SparkNLPFormatError,
    component_config,
    embeddings_config,
    import_sparknlp,
)

pytest.importorskip("tensorflow", reason="the [sparknlp] extra (make install has it)")


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_sparknlp(EMBEDDINGS_ZIP, tmp_path_factory.mktemp("emb") / "distilbert")


def test_hidden_states_match_the_tf_graph(converted: Path) -> None:
    ref = reference()["distilbert_embeddings"]
    model = AutoModel.from_pretrained(converted).eval()
    ids, mask = np.array(ref["input_ids"]), np.array(ref["attention_mask"])
    with torch.no_grad():
        hidden = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask))
    valid = mask.astype(bool)
    expected = np.array(ref["logits"])[valid]  # the graph's last_hidden_state output
    np.testing.assert_allclose(hidden.last_hidden_state.numpy()[valid], expected, atol=1e-4)


def test_embeddings_config_pools_like_spark(converted: Path) -> None:
    config = component_config(converted)
    assert config == embeddings_config(converted)
    assert config["pooling"] == "first" and config["layer"] == -1
    assert config["lowercase"] is False  # the fixture's caseSensitive is true
    info = json.loads((converted / "sparknlp.json").read_text())
    assert info["component"] == "embeddings"
    assert info["params"]["storageRef"] == "distilbert_base_cased"


def test_nerdl_over_the_converted_encoder_checks_the_size(converted: Path, tmp_path: Path) -> None:
    # The tiny encoder is 16-wide, the fixture tagger expects 100: the import must say so.
    with pytest.raises(SparkNLPFormatError, match="expects 100-dimensional .* gives 16"):
        import_sparknlp(NERDL_ZIP, tmp_path / "out", embeddings=embeddings_config(converted))
