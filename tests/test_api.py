"""The one-line API: model resolution, ``load`` and ``predict`` into DataFrames."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import spacy

from spacy_nerzoo.api import (
    CHUNK_COLUMNS,
    TOKEN_COLUMNS,
    availability,
    load,
    predict,
    resolve_model,
)
from spacy_nerzoo.catalogue import ZOO, get_entry
from spacy_nerzoo.errors import ModelLoadError

TEXTS = [
    "Angela Merkel met Tim Cook in Berlin on Monday.",
    "",
    "Peter Blackburn reported from Brussels for Reuters.\n\nApple opened offices in London.",
]


@pytest.fixture(scope="module")
def model_dir(tiny_model):
    return tiny_model("distilbert")


@pytest.fixture(scope="module")
def nlp(model_dir):
    return load(model_dir)


@pytest.fixture(scope="module")
def saved_pipeline(nlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "pipeline"
    nlp.to_disk(path)
    return path


def test_resolve_model(model_dir, saved_pipeline, tmp_path):
    assert resolve_model(model_dir).kind == "checkpoint"
    assert resolve_model(saved_pipeline).kind == "pipeline"
    assert resolve_model("albert_conll03").factory == "albert_conll03"
    assert resolve_model("owner/some-model").kind == "hub"
    with pytest.raises(ModelLoadError, match="neither a saved spaCy pipeline"):
        resolve_model(tmp_path)
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_model(tmp_path / "missing")
    with pytest.raises(ModelLoadError, match="Unknown model 'nope'.*albert_conll03"):
        resolve_model("nope")


@pytest.mark.parametrize(
    "text",
    ["./org/name", "~/org/name", "~nosuchuser/model", "org\\name", "C:\\models\\ner", "../x"],
)
def test_resolve_model_paths_are_never_hub_ids(text):
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_model(text)


def test_resolve_model_prefers_a_local_folder_named_like_a_hub_id(model_dir, tmp_path, monkeypatch):
    import shutil

    monkeypatch.chdir(tmp_path)
    assert resolve_model("org/name").kind == "hub"
    shutil.copytree(model_dir, tmp_path / "org" / "name")
    source = resolve_model("org/name")
    assert (source.kind, source.target) == (
        "checkpoint",
        str((tmp_path / "org" / "name").resolve()),
    )


def test_load_checkpoint_and_saved_pipeline(nlp, saved_pipeline):
    assert nlp.pipe_names == ["token_classifier"]
    assert nlp.get_pipe("token_classifier").labels == ("LOC", "MISC", "ORG", "PER")
    again = load(saved_pipeline, batch_size=3)
    assert again.get_pipe("token_classifier").batch_size == 3
    doc, doc2 = nlp(TEXTS[0]), again(TEXTS[0])
    assert [(e.text, e.label_) for e in doc.ents] == [(e.text, e.label_) for e in doc2.ents]


def test_load_rejects_bad_config(model_dir, saved_pipeline):
    with pytest.raises(ValueError, match="Unknown config key foo.*valid keys: .*batch_size"):
        load(model_dir, foo=1)
    with pytest.raises(ValueError, match="Unknown config key foo"):
        load(saved_pipeline, foo=1)
    with pytest.raises(ValueError, match="Model given twice"):
        load(model_dir, model="/elsewhere")


def test_load_missing_weights_fails_at_load():
    with pytest.raises(ModelLoadError, match="longformer_conll03"):
        load("longformer_conll03")


def test_predict_chunks(nlp):
    frame = predict(TEXTS, nlp)
    assert tuple(frame.columns) == CHUNK_COLUMNS
    assert len(frame) > 0
    for row in frame.itertuples():
        assert TEXTS[row.document][row.start : row.end] == row.text
        assert 0.0 <= row.confidence <= 1.0
    assert set(frame["document"]) <= {0, 2}
    docs = list(nlp.pipe(TEXTS))
    assert len(frame) == sum(len(doc.ents) for doc in docs)


def test_predict_tokens(nlp):
    frame = predict(TEXTS, nlp, output_level="token")
    chunks = predict(TEXTS, nlp)
    assert tuple(frame.columns) == TOKEN_COLUMNS
    docs = list(nlp.pipe(TEXTS))
    assert len(frame) == sum(len(doc) for doc in docs)
    for row in frame.itertuples():
        assert TEXTS[row.document][row.start : row.end] == row.token
        if row.tag == "O":
            assert math.isnan(row.confidence)
        else:
            assert row.tag[:2] in ("B-", "I-")
            assert 0.0 <= row.confidence <= 1.0
    begins = frame[frame["tag"].str.startswith("B-")]
    starts = zip(begins["document"], begins["start"], begins["tag"].str[2:], strict=True)
    assert list(starts) == list(
        zip(chunks["document"], chunks["start"], chunks["label"], strict=True)
    )


def test_predict_from_a_name_with_config(model_dir):
    frame = predict("Angela Merkel met Tim Cook.", str(model_dir), labels=["PER"])
    assert set(frame["label"]) <= {"PER"}
    assert set(frame["document"]) <= {0}


def test_predict_argument_errors(nlp):
    with pytest.raises(ValueError, match="output_level"):
        predict("x", nlp, output_level="word")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="config settings apply when loading"):
        predict("x", nlp, batch_size=2)
    empty = predict([], nlp)
    assert tuple(empty.columns) == CHUNK_COLUMNS and len(empty) == 0


def test_predict_default_model_is_the_builtin():
    assert predict.__defaults__ is not None and predict.__defaults__[0] == "minilm_conll03"


def test_availability(tmp_path, monkeypatch):
    from huggingface_hub import constants

    entry = get_entry("albert_conll03")
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    assert availability(replace(entry, bundled=str(bundled))).where == "bundled"
    assert not availability(replace(entry, checkpoint=None, bundled=None)).available
    missing = availability(replace(entry, checkpoint=None, bundled=str(tmp_path / "gone")))
    assert not missing.available and "missing" in missing.where

    # A fake Hugging Face cache holding only the checkpoint's config.json.
    cache = tmp_path / "hub"
    repo = cache / "models--owner--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "config.json").write_text("{}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    cached = availability(replace(entry, checkpoint="owner/tiny"))
    assert cached.available and cached.where == "HF cache: owner/tiny"
    absent = availability(replace(entry, checkpoint="owner/other"))
    assert not absent.available and "needs internet" in absent.where


def test_load_is_a_blank_english_pipeline(nlp):
    assert isinstance(nlp, spacy.language.Language) and nlp.lang == "en"
    assert Path(nlp.get_pipe("token_classifier").model_source).exists()


@pytest.mark.skipif(
    "minilm_conll03" not in ZOO or not availability(ZOO["minilm_conll03"]).available,
    reason="the built-in model is not on this machine",
)
def test_predict_with_the_builtin_model():
    frame = predict("Angela Merkel visited Paris on Monday.")
    found = {(row.text, row.label) for row in frame.itertuples()}
    assert ("Angela Merkel", "PER") in found and ("Paris", "LOC") in found


@pytest.mark.parametrize("name", [n for n, e in ZOO.items() if e.bundled is not None])
def test_built_in_heads_match_the_catalogue(name: str) -> None:
    """A shipped model predicts exactly the labels its catalogue entry (CLI list, displaCy
    colours) announces, in the entry's tag scheme."""
    import json

    from spacy_nerzoo.catalogue import bundled_path
    from spacy_nerzoo.decoding import TagScheme
    from spacy_nerzoo.displacy import LABEL_COLOURS

    entry = ZOO[name]
    folder = bundled_path(entry)
    assert folder is not None
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    scheme = TagScheme.from_labels({int(k): v for k, v in config["id2label"].items()})
    assert set(scheme.entity_types) == set(entry.labels)
    assert scheme.name == entry.tag_scheme
    assert config["nerzoo"]["max_length"] == entry.max_length
    # Every label has the zoo's own colour (no hash fallback), each a different one.
    colours = [LABEL_COLOURS[label] for label in entry.labels]
    assert len(set(colours)) == len(entry.labels)


def test_missing_built_in_model_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from spacy_nerzoo.backends.loading import resolve_checkpoint

    entry = replace(ZOO["minilm_fewnerd"], bundled="models/not_trained_yet")
    monkeypatch.setitem(ZOO, "minilm_fewnerd", entry)
    with pytest.raises(ModelLoadError) as info:
        resolve_checkpoint("minilm_fewnerd", component="minilm_fewnerd")
    message = str(info.value)
    assert "not_trained_yet" in message
    assert "reinstall spacy-nerzoo" in message and "project.yml" in message
