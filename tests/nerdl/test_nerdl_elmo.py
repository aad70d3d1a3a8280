"""ELMo biLM: parity with bilm-tf's golden outputs, and the format's details on a random model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from spacy_nerzoo.errors import ModelLoadError
from spacy_nerzoo.nerdl.elmo import (
    BOS_CHAR,
    BOW_CHAR,
    EOW_CHAR,
    PAD_CHAR,
    Elmo,
    ElmoBiLM,
    batch_to_ids,
    load_bilm,
    word_char_ids,
)

FIXTURE = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "elmo_bilm_tf"
TOLERANCE = 1e-5


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """The CPU is shared: one torch thread is faster than two fighting for busy cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fixture_dir() -> Path:
    if not FIXTURE.exists():
        pytest.skip("../shared/fixtures/elmo_bilm_tf is absent")
    return FIXTURE.resolve()


def golden(fixture_dir: Path) -> tuple[list[list[str]], list[list[np.ndarray]]]:
    import h5py

    streams = json.loads((fixture_dir / "lm_embeddings_sentences.json").read_text("utf8"))
    expected = []
    for k in range(len(streams)):
        with h5py.File(fixture_dir / f"lm_embeddings_{k}.hdf5", "r") as f:
            expected.append([f[str(i)][...] for i in range(len(streams[k]))])
    return streams, expected


def top_layer(bilm: ElmoBiLM, sentences: list[list[str]]) -> list[np.ndarray]:
    """Top biLM layer of each sentence as bilm-tf's test stores it: (2, T, proj)."""
    ids, lengths = batch_to_ids(sentences, bilm.max_chars)
    with torch.no_grad():
        top = bilm(ids, lengths)[-1]
    p = bilm.proj_dim
    return [
        torch.stack([top[k, 1 : len(s) + 1, :p], top[k, 1 : len(s) + 1, p:]]).numpy()
        for k, s in enumerate(sentences)
    ]


def test_golden_outputs_batched_stateful(fixture_dir: Path) -> None:
    """bilm-tf's protocol: batches of one sentence per stream, states carried over (padding in
    between sentences of different lengths must not disturb the carried state)."""
    bilm = load_bilm(fixture_dir / "options.json", fixture_dir / "lm_weights.hdf5")
    bilm.stateful = True
    streams, expected = golden(fixture_dir)
    worst = 0.0
    for i in range(len(streams[0])):
        batch = [streams[k][i].split() for k in range(len(streams))]
        for k, out in enumerate(top_layer(bilm, batch)):
            assert out.shape == expected[k][i].shape
            worst = max(worst, float(np.abs(out - expected[k][i]).max()))
    assert worst <= TOLERANCE


def test_golden_outputs_one_stream(fixture_dir: Path) -> None:
    """One stream alone (batch of 1) gives the same numbers; and a reset restarts from zero."""
    bilm = load_bilm(fixture_dir / "options.json", fixture_dir / "lm_weights.hdf5")
    bilm.stateful = True
    streams, expected = golden(fixture_dir)
    for i in range(3):
        (out,) = top_layer(bilm, [streams[1][i].split()])
        assert np.abs(out - expected[1][i]).max() <= TOLERANCE
    bilm.reset_states()
    (first,) = top_layer(bilm, [streams[1][0].split()])
    assert np.abs(first - expected[1][0]).max() <= TOLERANCE
    # Stateless: every sentence starts from zero, so sentence 1 no longer matches the stream.
    bilm.stateful = False
    (second,) = top_layer(bilm, [streams[1][1].split()])
    assert np.abs(second - expected[1][1]).max() > TOLERANCE


def test_missing_files_name_both_keys(tmp_path: Path, fixture_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="weight_file") as err:
        load_bilm(fixture_dir / "options.json", tmp_path / "nope.hdf5")
    assert "options_file" in str(err.value) and "nope.hdf5" in str(err.value)
    # Options of one model, weights of another: a clear mismatch error.
    options = json.loads((fixture_dir / "options.json").read_text("utf8"))
    options["lstm"]["dim"] = 32
    (tmp_path / "options.json").write_text(json.dumps(options), "utf8")
    with pytest.raises(ModelLoadError, match="belongs to the options"):
        load_bilm(tmp_path / "options.json", fixture_dir / "lm_weights.hdf5")


# -- format details, on a random biLM (no fixture needed) ------------------------------------

OPTIONS = {
    "lstm": {
        "cell_clip": 3,
        "use_skip_connections": True,
        "n_layers": 2,
        "proj_clip": 3,
        "projection_dim": 8,
        "dim": 16,
    },
    "char_cnn": {
        "embedding": {"dim": 4},
        "filters": [[1, 4], [2, 8]],
        "n_highway": 1,
        "n_characters": 262,
        "max_characters_per_token": 50,
        "activation": "tanh",
    },
}


def random_bilm() -> ElmoBiLM:
    torch.manual_seed(0)
    bilm = ElmoBiLM(OPTIONS)
    with torch.no_grad():
        for p in bilm.parameters():
            p.normal_(0, 0.3)
    return bilm


def test_char_ids_format() -> None:
    ids = word_char_ids("né", 50)
    assert ids[:5] == [BOW_CHAR, ord("n"), 0xC3, 0xA9, EOW_CHAR]
    assert ids[5:] == [PAD_CHAR] * 45
    long = word_char_ids("x" * 10_000, 50)
    assert len(long) == 50 and long[0] == BOW_CHAR and long[-1] == EOW_CHAR
    chars, lengths = batch_to_ids([["a", "b"], []], 50)
    assert chars.shape == (2, 4, 50) and lengths.tolist() == [4, 2]
    assert chars[0, 0, :3].tolist() == [BOW_CHAR, BOS_CHAR, EOW_CHAR]


def test_padding_does_not_change_outputs() -> None:
    """A sentence alone and beside a longer one gives the same vectors (both directions)."""
    bilm = random_bilm()
    short = ["Ein", "Satz", "."]
    longer = ["A", "much", "longer", "sentence", "with", "more", "words", "."]
    alone = top_layer(bilm, [short])[0]
    batched = top_layer(bilm, [longer, short])[1]
    assert np.abs(alone - batched).max() < 1e-6


def test_pooling_layers() -> None:
    bilm = random_bilm()
    sentences = [["Москва", "и", "東京"], ["x" * 10_000]]
    layers = {}
    for name in ("word_emb", "lstm_outputs1", "lstm_outputs2", "elmo"):
        elmo = Elmo(bilm, name).eval()  # type: ignore[arg-type]
        with torch.no_grad():
            layers[name] = elmo(sentences)
        assert layers[name].shape == (2, 3, 16)
        assert float(layers[name][1, 1:].abs().sum()) == 0.0  # padding is zero
    half = layers["word_emb"][..., :8]
    assert torch.equal(half, layers["word_emb"][..., 8:])  # token layer duplicated
    mean = (layers["word_emb"] + layers["lstm_outputs1"] + layers["lstm_outputs2"]) / 3
    assert torch.allclose(layers["elmo"], mean, atol=1e-6)  # fresh mix: equal weights, gamma 1
    assert Elmo(bilm).train().bilm.training is False  # the biLM stays frozen in eval mode
    with pytest.raises(ValueError, match="pooling layer"):
        Elmo(bilm, "top")  # type: ignore[arg-type]
