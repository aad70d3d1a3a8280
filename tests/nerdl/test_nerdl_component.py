"""The NerDL tagger: it learns, saves and loads, trains under `spacy train`, survives bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from thinc.api import Adam

from spacy_nerzoo.catalogue import CONLL_LABELS
from spacy_nerzoo.errors import ModelLoadError
from spacy_nerzoo.nerdl.component import (
    NerDLTagger,
    iob2_tags,
    split_sentences,
    training_sentences,
)
from spacy_nerzoo.writing import DEFAULT_SPANS_KEY

REPO = Path(__file__).resolve().parents[2]
ELMO = REPO / ".." / "shared" / "fixtures" / "elmo_bilm_tf"

TRAIN = [
    ("Angela Merkel met Tim Cook in Berlin .", [(0, 2, "PER"), (3, 5, "PER"), (6, 7, "LOC")]),
    (
        "Peter Blackburn reported from Brussels for Reuters .",
        [(0, 2, "PER"), (4, 5, "LOC"), (6, 7, "ORG")],
    ),
    ("Apple opened offices in London and Paris .", [(0, 1, "ORG"), (4, 5, "LOC"), (6, 7, "LOC")]),
]
SMALL = {"hidden_size": 24, "char_filters": 12, "char_embed_dim": 8, "dropout": 0.1}
STEPS = 40


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """The CPU is shared: one torch thread is faster than two fighting for busy cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def examples(nlp: Language) -> list[Example]:
    out = []
    for text, ents in TRAIN:
        ref = nlp.make_doc(text)
        ref.ents = [Span(ref, s, e, label=lab) for s, e, lab in ents]
        out.append(Example(nlp.make_doc(text), ref))
    return out


def train(embeddings: dict[str, Any], steps: int = STEPS) -> tuple[Language, list[float]]:
    """A tiny tagger trained on TRAIN with a brisk optimizer; returns it and its losses."""
    torch.manual_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("nerdl", config={"model": {**SMALL, "embeddings": embeddings}})
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    optimizer = Adam(0.01)
    losses = [nlp.update(egs, sgd=optimizer, losses={})["nerdl"] for _ in range(steps)]
    return nlp, losses


def predictions(nlp: Language, texts: list[str]) -> list[list[tuple[int, int, str, float]]]:
    return [
        [(e.start, e.end, e.label_, e._.confidence) for e in doc.ents] for doc in nlp.pipe(texts)
    ]


def check_learned_and_roundtrip(nlp: Language, losses: list[float], path: Path) -> Language:
    assert losses[-1] < losses[0] / 4, losses
    texts = [t for t, _ in TRAIN]
    predicted = predictions(nlp, texts)
    for (_, gold), pred in zip(TRAIN, predicted, strict=True):
        assert [(s, e, lab) for s, e, lab, _ in pred] == gold
        assert all(0.0 < c <= 1.0 for *_, c in pred)
    doc = nlp(texts[0])
    group = doc.spans[DEFAULT_SPANS_KEY]
    assert len(group) == 3 and len(group.attrs["scores"]) == 3
    nlp.to_disk(path)
    loaded = spacy.load(path)
    again = predictions(loaded, texts)
    for a, b in zip(predicted, again, strict=True):
        assert [x[:3] for x in a] == [x[:3] for x in b]
        assert [x[3] for x in a] == pytest.approx([x[3] for x in b], abs=1e-6)
    return loaded


@pytest.fixture(scope="module")
def word_tagger() -> tuple[Language, list[float]]:
    return train({"@architectures": "spacy_nerzoo.WordEmbeddings.v1", "width": 16})


def test_word_tagger_learns_and_roundtrips(
    word_tagger: tuple[Language, list[float]], tmp_path: Path
) -> None:
    nlp, losses = word_tagger
    loaded = check_learned_and_roundtrip(nlp, losses, tmp_path / "pipe")
    tagger = loaded.get_pipe("nerdl")
    assert isinstance(tagger, NerDLTagger)
    assert tagger.labels == ("LOC", "ORG", "PER")
    # to_bytes / from_bytes too (nlp.to_bytes, multiprocessing).
    clone = spacy.blank("en")
    clone.add_pipe("nerdl", config={"model": {**SMALL, "embeddings": {"width": 16}}})
    clone.from_bytes(nlp.to_bytes())
    assert predictions(clone, [TRAIN[1][0]])[0][0][:3] == (0, 2, "PER")


def test_transformer_tagger_learns_and_roundtrips(
    tiny_model: Callable[..., Path], tmp_path: Path
) -> None:
    # Train from a copy, then delete it: the saved pipeline must not need the original files.
    source = tmp_path / "encoder"
    shutil.copytree(tiny_model("distilbert"), source)
    nlp, losses = train(
        {
            "@architectures": "spacy_nerzoo.TransformerEmbeddings.v1",
            "name": str(source),
            "pooling": "average",
            "max_length": 16,  # several wordpiece windows on the longer inputs
            "stride": 4,
        }
    )
    nlp.to_disk(tmp_path / "first")
    shutil.rmtree(source)
    files = {p.name for p in (tmp_path / "first" / "nerdl" / "embeddings").iterdir()}
    assert "config.json" in files and "tokenizer.json" in files
    check_learned_and_roundtrip(nlp, losses, tmp_path / "pipe")


@pytest.mark.skipif(not ELMO.exists(), reason="../shared/fixtures/elmo_bilm_tf is absent")
def test_elmo_tagger_learns_and_roundtrips(tmp_path: Path) -> None:
    nlp, losses = train(
        {
            "@architectures": "spacy_nerzoo.ElmoEmbeddings.v1",
            "options_file": str(ELMO / "options.json"),
            "weight_file": str(ELMO / "lm_weights.hdf5"),
        }
    )
    check_learned_and_roundtrip(nlp, losses, tmp_path / "pipe")


def test_spacy_train_runs(tmp_path: Path) -> None:
    from spacy.cli.train import train as spacy_train

    nlp = spacy.blank("en")
    db = DocBin()
    for eg in examples(nlp):
        db.add(eg.reference)
    db.to_disk(tmp_path / "train.spacy")
    overrides = {
        "paths.train": str(tmp_path / "train.spacy"),
        "paths.dev": str(tmp_path / "train.spacy"),
        "training.max_steps": 4,
        "training.max_epochs": 0,
        "training.eval_frequency": 2,
        "components.nerdl.model.hidden_size": 16,
        "components.nerdl.model.embeddings.width": 16,
    }
    spacy_train(REPO / "configs" / "nerdl_words.cfg", tmp_path / "out", overrides=overrides)
    trained = spacy.load(tmp_path / "out" / "model-last")
    assert trained.get_pipe("nerdl").labels == ("LOC", "ORG", "PER")
    trained("Angela Merkel met Tim Cook in Berlin .")


def test_bad_input_never_crashes(word_tagger: tuple[Language, list[float]]) -> None:
    nlp, _ = word_tagger
    nlp.get_pipe("nerdl").max_sentence_tokens = 16
    texts = [
        "",
        "   \n\t  ",
        "x" * 10_000,
        "Angela " + "y" * 10_000 + " Merkel met Tim Cook in Berlin .",
        "Москва и Санкт-Петербург. 東京とパリ。 Emoji 😀 and “quotes” — dashes.",
        "Angela  Merkel \n\n met Tim Cook in Berlin . " * 40,  # no sentences set: rule + cap
    ]
    try:
        for doc in nlp.pipe(texts):
            for ent in doc.ents:
                assert 0 <= ent.start < ent.end <= len(doc)
                assert not ent[0].is_space and not ent[-1].is_space
        assert nlp(texts[-1]).ents  # the entities are still found in a long, unsplit Doc
    finally:
        nlp.get_pipe("nerdl").max_sentence_tokens = 256


def test_existing_entities_are_kept(word_tagger: tuple[Language, list[float]]) -> None:
    nlp, _ = word_tagger
    doc = nlp.make_doc(TRAIN[0][0])
    doc.ents = [Span(doc, 0, 1, label="CUSTOM")]
    doc = nlp.get_pipe("nerdl")(doc)
    assert [(e.start, e.end, e.label_) for e in doc.ents][:2] == [(0, 1, "CUSTOM"), (3, 5, "PER")]
    assert doc.ents[0]._.confidence is None  # not ours
    assert len(doc.spans[DEFAULT_SPANS_KEY]) == 3  # every prediction is still in the span group


def test_split_sentences() -> None:
    nlp = spacy.blank("en")
    doc = nlp("One two . Three four ! \n Five six seven eight nine")
    assert [[doc[i].text for i in s] for s in split_sentences(doc, 100)] == [
        ["One", "two", "."],
        ["Three", "four", "!"],
        ["Five", "six", "seven", "eight", "nine"],
    ]
    assert [len(s) for s in split_sentences(doc, 2)] == [2, 1, 2, 1, 2, 2, 1]
    doc = Doc(nlp.vocab, words=["a", "b", "c", "."], sent_starts=[True, False, True, False])
    assert split_sentences(doc, 100) == [[0, 1], [2, 3]]
    assert split_sentences(nlp(""), 10) == []


def test_training_uses_gold_sentences() -> None:
    """`spacy train` re-tokenises the text, losing sentence starts; the gold ones are used."""
    nlp = spacy.blank("en")
    words = ["EU", "rejects", "German", "call", "Peter", "Blackburn", "BRUSSELS", "1996-08-22"]
    ref = Doc(nlp.vocab, words=words, sent_starts=[1, 0, 0, 0, 1, 0, 1, 0])
    eg = Example(nlp.make_doc(ref.text), ref)
    # The tokenizer splits the date into 1996 - 08 - 22: boundaries are aligned, not copied.
    assert len(eg.predicted) == 12
    assert training_sentences(eg, 100) == [[0, 1, 2, 3], [4, 5], list(range(6, 12))]
    assert split_sentences(eg.predicted, 100) == [list(range(12))]  # the rule sees no full stop


def test_weights_that_do_not_fit_the_config(
    word_tagger: tuple[Language, list[float]], tmp_path: Path
) -> None:
    nlp, _ = word_tagger
    nlp.get_pipe("nerdl").to_disk(tmp_path / "nerdl")
    other = spacy.blank("en")
    pipe = other.add_pipe("nerdl", config={"model": {"hidden_size": 8}})
    with pytest.raises(ModelLoadError, match="do not fit"):
        pipe.from_disk(tmp_path / "nerdl")


def test_missing_elmo_weights_clear_error(tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo_conll03")  # lazy: nothing is loaded in the factory
    egs = examples(nlp)
    with pytest.raises(ModelLoadError, match="options_file") as err:
        nlp.initialize(lambda: egs)
    assert "weight_file" in str(err.value) and "elmo_conll03" in str(err.value)
    nlp = spacy.blank("en")
    missing = str(tmp_path / "weights.hdf5")
    nlp.add_pipe(
        "elmo_conll03",
        config={"model": {"embeddings": {"options_file": missing, "weight_file": missing}}},
    )
    with pytest.raises(ModelLoadError, match="does not exist") as err:
        nlp.initialize(lambda: egs)
    assert missing in str(err.value)


def test_missing_encoder_clear_error(tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    folder = str(tmp_path / "no-such-encoder")
    nlp.add_pipe("distilbert_conll03", config={"model": {"embeddings": {"name": folder}}})
    egs = examples(nlp)
    with pytest.raises(ModelLoadError, match="does not exist"):
        nlp.initialize(lambda: egs)


def test_factories_import_without_torch() -> None:
    """spaCy imports every factory entry point for each new Language: no torch may be needed."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import spacy_nerzoo.nerdl.component as c\n"
        "assert 'spacy_nerzoo.nerdl.model' not in sys.modules\n"
        "from spacy.language import Language\n"
        "assert Language.has_factory('nerdl') and Language.has_factory('elmo_conll03')\n"
        "try:\n"
        "    import spacy_nerzoo.nerdl.model\n"
        "except ImportError as e:\n"
        "    assert 'spacy-nerzoo[torch]' in str(e)\n"
        "else:\n"
        "    raise AssertionError('imported without torch')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)


def test_catalogue_defaults_and_lazy_factories() -> None:
    nlp = spacy.blank("en")
    for name, arch in [
        ("elmo_conll03", "spacy_nerzoo.ElmoEmbeddings.v1"),
        ("distilbert_conll03", "spacy_nerzoo.TransformerEmbeddings.v1"),
        ("nerdl", "spacy_nerzoo.WordEmbeddings.v1"),
    ]:
        pipe = nlp.add_pipe(name)
        cfg = nlp.config["components"][name]
        assert cfg["model"]["@architectures"] == "spacy_nerzoo.NerDL.v1"
        assert cfg["model"]["embeddings"]["@architectures"] == arch
        assert cfg["scorer"]["@scorers"] == "spacy_nerzoo.conlleval_scorer.v1"
        expected = tuple(CONLL_LABELS) if name != "nerdl" else ()
        assert pipe.labels == expected
    assert nlp.config["components"]["distilbert_conll03"]["model"]["embeddings"]["name"] == (
        "distilbert-base-cased"
    )
    assert iob2_tags(CONLL_LABELS)[:3] == ["O", "B-LOC", "I-LOC"]
    with pytest.raises(ValueError, match="initialize"):
        nlp.get_pipe("nerdl")(nlp.make_doc("Not trained yet"))
