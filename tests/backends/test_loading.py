"""Loading a checkpoint's tokenizer: byte-level prefix space, position limits, and checkpoints
saved by a newer transformers (one clear error naming the cause)."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
import spacy
import transformers

from spacy_nerzoo.backends.loading import is_hub_id, max_positions, resolve_checkpoint
from spacy_nerzoo.errors import ModelLoadError


def _edit_json(path, **changes):
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


def _run(path):
    nlp = spacy.blank("en")
    nlp.add_pipe("token_classifier", config={"model": str(path)})
    return nlp("Angela Merkel met Tim Cook in Berlin.")


def test_tokenizer_saved_by_transformers_5_gets_one_clear_error(tiny_model, tmp_path):
    """transformers 5 names the generic class TokenizersBackend, which 4.x does not have."""
    path = tmp_path / "v5"
    shutil.copytree(tiny_model("distilbert"), path)
    _edit_json(path / "tokenizer_config.json", tokenizer_class="TokenizersBackend")
    with pytest.raises(ModelLoadError) as info:
        _run(path)
    message = str(info.value)
    assert "'TokenizersBackend', which transformers 5 writes" in message
    assert f"installed transformers {transformers.__version__}" in message
    assert '"PreTrainedTokenizerFast"' in message  # the tokenizer.json may still be readable
    assert "Check that the folder holds" not in message  # no generic checklist: the cause is known


def test_unreadable_tokenizer_of_a_newer_transformers_says_so(tiny_model, tmp_path):
    path = tmp_path / "v6"
    shutil.copytree(tiny_model("distilbert"), path)
    _edit_json(path / "config.json", transformers_version="6.1.0")
    _edit_json(path / "tokenizer_config.json", tokenizer_class="SomeFutureTokenizer")
    with pytest.raises(ModelLoadError, match=r"saved by transformers 6\.1\.0 and the installed"):
        _run(path)


def test_mpnet_reserves_positions_like_roberta():
    # MPNet's position ids start after the padding index, as RoBERTa's do.
    assert max_positions(transformers.MPNetConfig(max_position_embeddings=514)) == 512
    assert max_positions(transformers.RobertaConfig(max_position_embeddings=514)) == 512
    assert max_positions(transformers.BertConfig(max_position_embeddings=512)) == 512


def test_sentencepiece_only_checkpoint_without_the_package_says_so(
    tiny_model, tmp_path, monkeypatch
):
    from spacy_nerzoo.backends import loading

    # As on an install without sentencepiece (the file is no real model, so loading fails anyway).
    monkeypatch.setattr(loading, "find_spec", lambda name: None)
    path = tmp_path / "spm"
    shutil.copytree(tiny_model("albert"), path)
    (path / "tokenizer.json").unlink()
    (path / "spiece.model").write_bytes(b"\0" * 16)
    _edit_json(path / "tokenizer_config.json", tokenizer_class="AlbertTokenizer")
    with pytest.raises(
        ModelLoadError, match="only the SentencePiece model spiece.model.*pip install"
    ):
        _run(path)


@pytest.mark.parametrize(
    ("source", "bare_names", "expected"),
    [
        ("org/name", True, True),
        ("dslim/bert-base-NER", False, True),
        ("bert-base-cased", True, True),  # a legacy id without an owner
        ("bert-base-cased", False, False),  # ... which the user-facing resolver takes for a typo
        ("org/name.v2", True, True),
        ("./org/name", True, False),
        ("../name", True, False),
        (".name", True, False),
        ("~/models/ner", True, False),
        ("~name", True, False),
        ("/abs/path/model", True, False),
        ("org/name/extra", True, False),
        ("org//name", True, False),
        ("org/na..me", True, False),
        ("org/name-", True, False),
        ("C:\\models\\ner", True, False),
        ("models\\ner", True, False),
        ("C:/models/ner", True, False),
        ("", True, False),
    ],
)
def test_hub_id_rule(source: str, bare_names: bool, expected: bool) -> None:
    assert is_hub_id(source, bare_names=bare_names) is expected


def test_an_existing_folder_is_never_a_hub_id(tmp_path, monkeypatch):
    """A local folder named like a hub id wins over the hub, in the component and the API."""
    monkeypatch.chdir(tmp_path)
    assert is_hub_id("org/name")
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert not is_hub_id("org/name")
    assert not is_hub_id(tmp_path / "org" / "name")
    with pytest.raises(ModelLoadError, match="no config.json"):
        resolve_checkpoint("org/name", component="token_classifier")


def test_missing_local_path_is_not_sent_to_the_hub(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_checkpoint(str(tmp_path / "missing"), component="token_classifier")
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_checkpoint("./missing/model", component="token_classifier")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"max_position_embeddings": 512, "nerzoo": {"max_length": 256}}, 256),
        ({"max_position_embeddings": 512}, 512),  # nothing recorded: BERT's window
        ({"max_position_embeddings": 128}, 128),  # ... or the position limit if smaller
        ({"max_position_embeddings": 128, "nerzoo": {"max_length": 256}}, 128),  # impossible
        ({"nerzoo": {"max_length": 2}}, 512),  # too short to hold the special tokens
        ({"model_type": "mpnet", "max_position_embeddings": 514, "pad_token_id": 1}, 512),
        ({}, 512),
    ],
)
def test_recorded_max_length(config: dict[str, Any], expected: int) -> None:
    from types import SimpleNamespace

    from spacy_nerzoo.backends.loading import recorded_max_length

    assert recorded_max_length(SimpleNamespace(**config)) == expected
