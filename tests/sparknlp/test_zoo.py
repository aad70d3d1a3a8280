"""Seed models: their downloads in the zoo, the offline message, opt-in fetch, the CLI command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import spacy
from sparknlp_fixtures import NERDL_ZIP, TOKEN_ZIPS
from typer.testing import CliRunner

import spacy_nerzoo.catalogue as catalogue
from spacy_nerzoo.backends.loading import resolve_checkpoint
from spacy_nerzoo.catalogue import ZOO
from spacy_nerzoo.cli.main import app
from spacy_nerzoo.errors import ModelLoadError
from spacy_nerzoo.sparknlp.zoo import CACHE_ENV, FETCH_ENV

SEEDS = [
    "albert_conll03",
    "longformer_conll03",
    "elmo_conll03",
    "distilbert_conll03",
    "distilbert_fewnerd",
]


def test_every_seed_records_its_download() -> None:
    for name in SEEDS:
        entry = ZOO[name]
        assert entry.spark_nlp_download and entry.spark_nlp_download.endswith(".zip")
        assert entry.spark_nlp_download.startswith(entry.spark_nlp_model + "_en_")
        assert entry.spark_nlp_url == catalogue.SPARK_NLP_MODELS_URL + entry.spark_nlp_download
        # NerDL seeds also name their embeddings annotator's download.
        assert bool(entry.spark_nlp_embeddings_download) == (entry.architecture == "nerdl")


def test_info_shows_download_and_command() -> None:
    result = CliRunner().invoke(app, ["info", "longformer_conll03"])
    assert result.exit_code == 0, result.output
    entry = ZOO["longformer_conll03"]
    assert entry.spark_nlp_url in result.output
    assert f"nerzoo import-sparknlp {entry.spark_nlp_download}" in result.output


def test_offline_request_names_file_and_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(FETCH_ENV, raising=False)
    with pytest.raises(ModelLoadError) as err:
        resolve_checkpoint(None, component="distilbert_fewnerd")
    entry = ZOO["distilbert_fewnerd"]
    message = str(err.value)
    assert entry.spark_nlp_url in message
    assert (
        f"nerzoo import-sparknlp {entry.spark_nlp_download} distilbert_fewnerd-sparknlp" in message
    )


def test_nerdl_seed_without_network_says_how_to_import() -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo_conll03")
    with pytest.raises(ValueError, match="nerzoo import-sparknlp ner_conll_elmo_en_3.2.2") as err:
        nlp("Angela Merkel visited Paris.")
    # The tagger zip holds no embeddings: the hint converts Spark's ELMo download first.
    assert (
        "`nerzoo import-sparknlp elmo_en_2.4.0_2.4_1580488815299.zip elmo_conll03-embeddings`, "
        "then `nerzoo import-sparknlp ner_conll_elmo_en_3.2.2_2.4_1630419727678.zip "
        "elmo_conll03-sparknlp --embeddings elmo_conll03-embeddings`"
    ) in str(err.value)
    assert str(ZOO["elmo_conll03"].spark_nlp_embeddings_url) in str(err.value)


def test_opt_in_fetch_converts_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow", reason="the [sparknlp] extra (make install has it)")
    entry = ZOO["longformer_conll03"]
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    shutil.copy(TOKEN_ZIPS["longformer"], bucket / str(entry.spark_nlp_download))
    monkeypatch.setattr(catalogue, "SPARK_NLP_MODELS_URL", bucket.as_uri() + "/")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(FETCH_ENV, "1")
    first = resolve_checkpoint(None, component="longformer_conll03")
    assert Path(first.location) == tmp_path / "cache" / "sparknlp" / "longformer_conll03"
    assert (Path(first.location) / "model.safetensors").exists()
    shutil.rmtree(bucket)  # "offline" now: the converted copy is used, nothing is fetched
    monkeypatch.delenv(FETCH_ENV)
    assert resolve_checkpoint(None, component="longformer_conll03").location == first.location


def test_cli_import(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow", reason="the [sparknlp] extra (make install has it)")
    result = CliRunner().invoke(
        app, ["import-sparknlp", str(TOKEN_ZIPS["distilbert"]), str(tmp_path / "m")]
    )
    assert result.exit_code == 0, result.output
    assert "'decoding': 'argmax'" in result.output and (tmp_path / "m" / "config.json").exists()


def test_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "x.zip"
    bad.write_bytes(b"not a zip")
    result = CliRunner().invoke(app, ["import-sparknlp", str(bad), str(tmp_path / "m")])
    assert result.exit_code == 1
    assert "not a zip file" in result.output and "Traceback" not in result.output


def test_cli_nerdl_needs_embeddings_for_unknown_storage(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["import-sparknlp", str(NERDL_ZIP), str(tmp_path / "m"), "--embeddings", "/nowhere"]
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "embedding source" in result.output
