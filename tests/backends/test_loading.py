"""Loading a checkpoint's tokenizer: byte-level prefix space, position limits, and checkpoints
saved by a newer transformers (one clear error naming the cause)."""

from __future__ import annotations

import json
import shutil

import pytest
import spacy
import transformers

from spacy_nerzoo.backends.loading import max_positions
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
