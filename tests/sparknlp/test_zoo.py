"""Seed models: their downloads in the zoo, the offline message, opt-in fetch, the CLI command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc
from sparknlp_fixtures import ELMO_ZIP, EMBEDDINGS_ZIP, NERDL_ZIP, TOKEN_ZIPS, reference
from typer.testing import CliRunner

import spacy_nerzoo.catalogue as catalogue
from spacy_nerzoo.backends.loading import resolve_checkpoint
from spacy_nerzoo.catalogue import ZOO
from spacy_nerzoo.cli.main import app
from spacy_nerzoo.errors import ModelLoadError
from spacy_nerzoo.sparknlp import embeddings_config, import_sparknlp
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


def serve(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, tagger: Path, embeddings: Path
) -> Path:
    """A NerDL seed's two downloads as file:// URLs, an empty cache, fetching on."""
    entry = ZOO[name]
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    shutil.copy(tagger, bucket / str(entry.spark_nlp_download))
    shutil.copy(embeddings, bucket / str(entry.spark_nlp_embeddings_download))
    monkeypatch.setattr(catalogue, "SPARK_NLP_MODELS_URL", bucket.as_uri() + "/")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(FETCH_ENV, "1")
    return bucket


def entities(nlp: spacy.Language) -> list[list[tuple[int, int, str, float]]]:
    """Entities of the ELMo fixture's sentences, pre-tokenised, in one batch (as recorded)."""
    docs = [Doc(nlp.vocab, words=s) for s in reference()["elmo"]["sentences"]]
    return [
        [(e.start, e.end, e.label_, round(e._.confidence, 5)) for e in doc.ents]
        for doc in nlp.pipe(docs, batch_size=8)
    ]


def test_opt_in_fetch_of_a_nerdl_seed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """elmo_conll03: both zips fetched once, converted as the two documented commands do."""
    pytest.importorskip("tensorflow", reason="the [sparknlp] extra (make install has it)")
    emb = import_sparknlp(ELMO_ZIP, tmp_path / "manual" / "emb")
    manual = import_sparknlp(
        NERDL_ZIP, tmp_path / "manual" / "ner", embeddings=embeddings_config(emb)
    )
    expected = entities(spacy.load(manual))
    assert any(expected)
    bucket = serve(monkeypatch, tmp_path, "elmo_conll03", NERDL_ZIP, ELMO_ZIP)
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo_conll03")
    assert entities(nlp) == expected
    cache = tmp_path / "cache" / "sparknlp"
    entry = ZOO["elmo_conll03"]
    assert (cache / str(entry.spark_nlp_download)).exists()
    assert (cache / str(entry.spark_nlp_embeddings_download)).exists()
    assert (cache / "elmo_conll03-embeddings" / "sparknlp.json").exists()
    # Offline now: the URLs name missing files and fetching is off; the cache is used.
    shutil.rmtree(bucket)
    monkeypatch.delenv(FETCH_ENV)
    again = spacy.blank("en")
    again.add_pipe("elmo_conll03")
    assert entities(again) == expected
    # A saved pipeline carries the imported network: it loads with no cache at all.
    again.to_disk(tmp_path / "saved")
    shutil.rmtree(cache)
    assert entities(spacy.load(tmp_path / "saved")) == expected


def test_failed_nerdl_download_names_url_and_commands(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bucket = serve(monkeypatch, tmp_path, "elmo_conll03", NERDL_ZIP, ELMO_ZIP)
    shutil.rmtree(bucket)
    entry = ZOO["elmo_conll03"]
    with pytest.raises(ModelLoadError) as err:
        spacy.blank("en").add_pipe("elmo_conll03")
    message = str(err.value)
    assert message.startswith(f"Component 'elmo_conll03': could not download {bucket.as_uri()}/")
    assert str(entry.spark_nlp_embeddings_url) in message
    assert f"nerzoo import-sparknlp {entry.spark_nlp_embeddings_download}" in message
    assert "--embeddings elmo_conll03-embeddings" in message
    assert not list((tmp_path / "cache" / "sparknlp").iterdir())  # no partial file left


def test_failed_nerdl_conversion_is_one_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """distilbert_conll03 over the fixtures: the tagger does not fit the encoder's size."""
    pytest.importorskip("tensorflow", reason="the [sparknlp] extra (make install has it)")
    serve(monkeypatch, tmp_path, "distilbert_conll03", NERDL_ZIP, EMBEDDINGS_ZIP)
    entry = ZOO["distilbert_conll03"]
    with pytest.raises(ModelLoadError) as err:
        spacy.blank("en").add_pipe("distilbert_conll03")
    message = str(err.value)
    tagger = tmp_path / "cache" / "sparknlp" / str(entry.spark_nlp_download)
    assert f"{tagger} did not convert" in message and "dimensional embeddings" in message
    assert "`nerzoo import-sparknlp " in message and "--embeddings" in message
    assert not (tmp_path / "cache" / "sparknlp" / "distilbert_conll03").exists()


def test_nerdl_seed_with_fetch_off_downloads_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    serve(monkeypatch, tmp_path, "elmo_conll03", NERDL_ZIP, ELMO_ZIP)
    monkeypatch.delenv(FETCH_ENV)
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo_conll03")
    with pytest.raises(ValueError, match="has no trained network") as err:
        nlp("Angela Merkel visited Paris.")
    assert f"set {FETCH_ENV}=1" in str(err.value)
    assert not (tmp_path / "cache").exists()


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
