"""The token-classifier component on tiny random ALBERT, DistilBERT, Longformer and BERT models."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import spacy
import torch
from seqeval.metrics.sequence_labeling import get_entities
from spacy.tokens import Span
from spacy.training import Example
from transformers import AutoModelForTokenClassification, AutoTokenizer

from spacy_nerzoo.errors import ModelLoadError

TEXTS = [
    "Angela Merkel met Tim Cook in Berlin.",
    "The European Commission said on Thursday it disagreed with German advice to consumers.",
    "Peter Blackburn reported from Brussels for Reuters , and Apple opened offices in London.",
    "Москва и Санкт-Петербург. 東京とパリ。 Emoji 😀 here.",
    "short",
]
KINDS = ["albert", "distilbert", "longformer"]


def make_nlp(path, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("token_classifier", config={"model": str(path), **config})
    return nlp


def ents(doc):
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def reference_entities(path, doc):
    """What the model gives run in transformers directly: first wordpiece, argmax, conlleval."""
    tok = (
        AutoTokenizer.from_pretrained(path, add_prefix_space=True)
        if "longformer" in str(path)
        else AutoTokenizer.from_pretrained(path)
    )
    model = AutoModelForTokenClassification.from_pretrained(path).eval()
    words = [t.text for t in doc if not t.is_space]
    index = [t.i for t in doc if not t.is_space]
    enc = tok(words, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        pred = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        pred = pred.logits[0].argmax(-1).tolist()
    tags = ["O"] * len(doc)
    seen = set()
    for pos, w in enumerate(enc.word_ids()):
        if w is not None and w not in seen:
            seen.add(w)
            tags[index[w]] = model.config.id2label[pred[pos]]
    return [(doc[s].idx, doc[e].idx + len(doc[e]), t) for t, s, e in get_entities(tags)]


@pytest.mark.parametrize("kind", KINDS)
def test_parity_with_transformers(tiny_model, kind):
    path = tiny_model(kind)
    # transformers on spaCy's tokens as the words; compounds read whole: test_hyphen_compounds.py
    nlp = make_nlp(path, alignment="first", decoding="argmax", join_hyphens=False)
    found = 0
    for text in TEXTS:
        doc = nlp(text)
        assert ents(doc) == reference_entities(path, nlp.make_doc(text))
        found += len(doc.ents)
    assert found > 0  # the tiny models do predict entities, so the comparison is not vacuous


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("alignment", ["first", "average", "max"])
@pytest.mark.parametrize("decoding", ["viterbi", "argmax"])
def test_every_token_tagged_and_ents_valid(tiny_model, kind, alignment, decoding):
    nlp = make_nlp(tiny_model(kind), alignment=alignment, decoding=decoding)
    for doc in nlp.pipe(TEXTS + ["Emoji 😀\n\n  New\tYork  "]):
        assert all(t.ent_iob_ in ("B", "I", "O") for t in doc)
        assert all(not t.is_space for e in doc.ents for t in e)
        if decoding == "viterbi":
            assert all(t.ent_iob_ != "I" or t.i > 0 for t in doc)
        scores = doc.spans["nerzoo"].attrs["scores"]
        assert len(scores) == len(doc.spans["nerzoo"]) and all(0 < s <= 1 for s in scores)
        assert all(e._.confidence is not None for e in doc.ents)


def test_alignment_modes_differ_on_multi_piece_words(tiny_model):
    text = " ".join(TEXTS)
    outs = {
        a: make_nlp(tiny_model("albert"), alignment=a, decoding="argmax")(text)
        for a in ["first", "average", "max"]
    }
    assert len({tuple(t.ent_type_ for t in d) for d in outs.values()}) > 1


@pytest.mark.parametrize("kind", ["distilbert", "longformer"])
def test_windowed_equals_unwindowed_when_text_fits(tiny_model, kind):
    text = " ".join(TEXTS[:3])
    big = make_nlp(tiny_model(kind), max_length=512)(text)
    small = make_nlp(tiny_model(kind), max_length=200)(text)
    assert ents(big) == ents(small) and len(big.ents) > 0


def test_fifty_thousand_tokens_fully_labelled(tiny_model):
    words = ("Angela Merkel met Tim Cook in Berlin on Monday . " * 5000).split()
    assert len(words) == 50000
    nlp = make_nlp(tiny_model("distilbert"), max_length=64, batch_size=64)
    doc = nlp(spacy.tokens.Doc(nlp.vocab, words=words))
    assert all(t.ent_iob_ in ("B", "I", "O") for t in doc)
    # Every token took its scores from some window: entities appear throughout the document.
    assert doc.ents and doc.ents[-1].end > 49000


def test_serialisation_without_original_checkpoint(tiny_model, tmp_path):
    src = tmp_path / "ckpt"
    shutil.copytree(tiny_model("albert"), src)
    nlp = make_nlp(src, alignment="average")
    before = [ents(d) for d in nlp.pipe(TEXTS)]
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(src)
    loaded = spacy.load(tmp_path / "pipeline")
    assert [ents(d) for d in loaded.pipe(TEXTS)] == before
    nlp2 = spacy.blank("en")
    nlp2.add_pipe("token_classifier", config={"model": "/nonexistent", "alignment": "average"})
    nlp2.get_pipe("token_classifier").from_bytes(nlp.get_pipe("token_classifier").to_bytes())
    assert [ents(d) for d in nlp2.pipe(TEXTS)] == before


def test_results_independent_of_batching_order_and_processes(tiny_model):
    nlp = make_nlp(tiny_model("distilbert"), max_length=32, batch_size=3)
    texts = TEXTS * 3
    serial = [ents(nlp(t)) for t in texts]
    assert [ents(d) for d in nlp.pipe(texts, batch_size=4)] == serial
    assert [ents(d) for d in nlp.pipe(texts[::-1], batch_size=7)][::-1] == serial
    nlp.get_pipe("token_classifier").batch_size = 1
    assert [ents(d) for d in nlp.pipe(texts)] == serial
    assert [ents(d) for d in nlp.pipe(texts, n_process=2, batch_size=2)] == serial


def test_io_scheme_fewnerd_labels(tiny_model):
    labels = ["O", "person-actor", "person-politician", "location-GPE", "organization-company"]
    path = tiny_model("distilbert", labels)
    fine = make_nlp(path)(" ".join(TEXTS))
    assert fine.ents and all(e.label_ in labels for e in fine.ents)
    coarse = make_nlp(path, label_level="coarse")(" ".join(TEXTS))
    assert {e.label_ for e in coarse.ents} <= {"person", "location", "organization"}
    only = make_nlp(path, labels=["location-GPE"])(" ".join(TEXTS))
    assert {e.label_ for e in only.ents} <= {"location-GPE"}
    nlp = make_nlp(path, label_level="coarse")
    assert nlp.get_pipe("token_classifier").labels == ()  # nothing loaded yet (see docstring)
    nlp.initialize()
    assert nlp.get_pipe("token_classifier").labels == ("location", "organization", "person")


def test_io_coarse_level_joins_touching_fine_entities(tiny_model):
    """Under IO, person-actor then person-politician is one "person" run at the coarse level,
    as Few-NERD's coarse evaluation counts it, not two entities."""
    labels = ["O", "person-actor", "person-politician", "location-GPE", "organization-company"]
    path = tiny_model("distilbert", labels)
    text = " ".join(TEXTS * 4)
    fine = [(e.start, e.end, e.label_.split("-")[0]) for e in make_nlp(path)(text).ents]
    expected: list[tuple[int, int, str]] = []
    for start, end, label in fine:
        if expected and expected[-1][1] == start and expected[-1][2] == label:
            expected[-1] = (expected[-1][0], end, label)
        else:
            expected.append((start, end, label))
    assert len(expected) < len(fine)  # the text has touching fine entities of one family
    coarse = make_nlp(path, label_level="coarse")(text)
    assert [(e.start, e.end, e.label_) for e in coarse.ents] == expected
    assert all(0.0 <= e._.confidence <= 1.0 for e in coarse.ents)


def test_case_insensitive_lowercases_model_input_only(tiny_model):
    nlp = make_nlp(tiny_model("distilbert"), case_sensitive=False)
    text = "ANGELA MERKEL met Tim Cook in BERLIN."
    doc = nlp(text)
    assert doc.text == text
    assert ents(doc) == ents(make_nlp(tiny_model("distilbert"))(text.lower()))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\n\n\t",
        "😀😀 🎉",
        "Москва 東京 القاهرة עברית",
        "a\u200bb\u200d c\x00d\x1f e\u2028f",
        "x" * 10000,
        "Berlin " + "y" * 10000 + " Paris",
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_never_crashes(tiny_model, kind, text):
    nlp = make_nlp(tiny_model(kind), max_length=64)
    doc = nlp(text)
    assert doc.text == text
    assert all(t.ent_iob_ in ("B", "I", "O") for t in doc)
    assert all(not t.is_space for e in doc.ents for t in e)


FILTERS = {
    "spacy.prioritize_existing_ents_filter.v1": True,  # keeps the existing entity
    "spacy.prioritize_new_ents_filter.v1": False,
    "spacy_nerzoo.replace_ents_filter.v1": False,
}


def overlapped(nlp, text, first):
    """Run ``nlp`` on a Doc with an existing entity overlapping ``first``, over other tokens."""
    doc = nlp.make_doc(text)
    doc.ents = [Span(doc, first.start, first.end + 1, label="GOLD")]
    return nlp(doc)


@pytest.mark.parametrize("name", FILTERS)
def test_ents_filter_decides_conflicts_with_existing_entities(tiny_model, name):
    path = tiny_model("distilbert")
    text = " ".join(TEXTS[:3])
    predicted = make_nlp(path)(text)
    assert len(predicted.ents) >= 2
    doc = overlapped(make_nlp(path, ents_filter={"@misc": name}), text, predicted.ents[0])
    assert ("GOLD" in [e.label_ for e in doc.ents]) is FILTERS[name]
    starts = sorted((e.start, e.end) for e in doc.ents)
    assert all(a[1] <= b[0] for a, b in zip(starts, starts[1:], strict=False))
    assert len(doc.spans["nerzoo"]) == len(predicted.spans["nerzoo"])


@pytest.mark.parametrize("overwrite", [False, True])
def test_overwrite_ents_still_works_and_warns(tiny_model, overwrite):
    path = tiny_model("distilbert")
    text = " ".join(TEXTS[:3])
    first = make_nlp(path)(text).ents[0]
    with pytest.warns(FutureWarning, match="overwrite_ents is deprecated"):
        nlp = make_nlp(path, overwrite_ents=overwrite)
    doc = overlapped(nlp, text, first)
    assert ("GOLD" in [e.label_ for e in doc.ents]) is not overwrite


def test_missing_weights_clear_error(tmp_path, tiny_model):
    nlp = make_nlp(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match="nope"):
        nlp.initialize()
    with pytest.raises(ModelLoadError, match="nope does not exist"):
        nlp("text")
    with pytest.raises(ModelLoadError, match="Tried: local folder .*hub id 'nobody/no-model'"):
        make_nlp("nobody/no-model")("text")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model("distilbert"), broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="weights"):
        make_nlp(broken)("text")
    (broken / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="weights"):
        make_nlp(broken)("text")


def test_invalid_config_rejected(tiny_model):
    nlp = spacy.blank("en")
    with pytest.raises(Exception, match="alignment"):
        nlp.add_pipe("token_classifier", config={"model": "x", "alignment": "mean"})
    with pytest.raises(ValueError, match="precision"):
        nlp.add_pipe("token_classifier", config={"model": "x", "precision": "int8"})
    with pytest.raises(ValueError, match="stride"):
        make_nlp(tiny_model("distilbert"), max_length=16, stride=20)("text")
    with pytest.raises(ValueError, match="max_length"):
        make_nlp(tiny_model("distilbert"), max_length=100000)("text")


def test_scorer_reports_per_type(tiny_model):
    nlp = make_nlp(tiny_model("distilbert"))
    pred = nlp(TEXTS[2])
    gold = nlp.make_doc(TEXTS[2])
    gold.ents = [Span(gold, e.start, e.end, label=e.label_) for e in pred.ents]
    scores = nlp.evaluate([Example(nlp.make_doc(TEXTS[2]), gold)])
    assert scores["ents_f"] == 1.0 and set(scores["ents_per_type"]) == {e.label_ for e in pred.ents}


def test_default_scorer_is_conlleval_told_the_heads_tag_reading(tiny_model):
    """An IO head is scored as Few-NERD is (touching same-type entities are one): the number
    `nerzoo evaluate` prints; spaCy's NER scorer stays available in the config."""
    nlp = make_nlp(tiny_model("distilbert", ["O", "person", "location"]))
    nlp.initialize()
    words = TEXTS[0].split()
    pred = nlp.make_doc(TEXTS[0])
    pred.ents = [Span(pred, 0, 1, label="person"), Span(pred, 1, 2, label="person")]
    gold = nlp.make_doc(TEXTS[0])
    gold.ents = [Span(gold, 0, 2, label="person")]
    eg = Example(pred, gold)
    assert [t.text for t in pred][:2] == words[:2]
    assert nlp.get_pipe("token_classifier").score([eg])["ents_f"] == 1.0
    spacy_scored = make_nlp(
        tiny_model("distilbert", ["O", "person", "location"]),
        scorer={"@scorers": "spacy.ner_scorer.v1"},
    )
    spacy_scored.initialize()
    assert spacy_scored.get_pipe("token_classifier").score([eg])["ents_f"] == 0.0


def test_zoo_factories_resolve_in_fresh_interpreter():
    code = (
        "import spacy, sys\n"
        "nlp = spacy.blank('en')\n"
        "for name in ['albert_conll03', 'longformer_conll03', 'distilbert_fewnerd', "
        "'token_classifier']:\n"
        "    nlp.add_pipe(name, name=name + '_x')\n"
        "assert 'spacy_nerzoo' not in sys.argv\n"
        "print(nlp.get_pipe('longformer_conll03_x').max_length)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "4096"


def test_gpu_convention_uses_thinc_device(tiny_model):
    # spacy.prefer_gpu() switches thinc's default torch device; the backend follows it.
    from thinc.util import get_torch_default_device

    nlp = make_nlp(tiny_model("distilbert"))
    nlp("warm up")
    assert nlp.get_pipe("token_classifier").runtime.backend.device == get_torch_default_device()
    assert np.isfinite(nlp("Berlin").spans["nerzoo"].attrs["scores"]).all()


def test_generic_label_names_need_id2label(tiny_model, tmp_path):
    generic = [f"LABEL_{i}" for i in range(9)]
    path = tiny_model("distilbert", generic)
    with pytest.raises(ModelLoadError, match="generic"):
        make_nlp(path)("Angela Merkel met Tim Cook in Berlin.")
    named = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    nlp = make_nlp(path, id2label=named)
    doc = nlp(" ".join(TEXTS))
    assert doc.ents and {e.label_ for e in doc.ents} <= {"PER", "ORG", "LOC", "MISC"}
    nlp.to_disk(tmp_path / "p")
    assert ents(spacy.load(tmp_path / "p")(" ".join(TEXTS))) == ents(doc)
    with pytest.raises(ModelLoadError, match="9 outputs"):
        make_nlp(path, id2label=named[:3])("x")


def test_long_documents_do_not_warn_about_sequence_length(tiny_model, caplog):
    # Windows are cut after tokenising, so a long Doc is expected, not an error to warn about.
    import logging

    nlp = make_nlp(tiny_model("distilbert"), max_length=64)
    with caplog.at_level(logging.WARNING):
        doc = nlp(" ".join(TEXTS) * 40)
    assert len(doc) > 600
    assert not [r for r in caplog.records if "sequence length" in r.getMessage()]


def test_stride_defaults_to_the_one_the_model_was_validated_with(tiny_model, tmp_path):
    """The trainer validates with ``max_length // 4`` and records it in the config; inference
    used ``(max_length - special tokens) // 4`` (63 for 64), so long documents were read in other
    windows than model selection saw."""
    import shutil

    from transformers import AutoConfig

    folder = tmp_path / "model"
    shutil.copytree(tiny_model("bert"), folder)
    config = AutoConfig.from_pretrained(folder)
    config.nerzoo = {**(getattr(config, "nerzoo", None) or {}), "stride": 16}
    config.save_pretrained(folder)
    pipe = make_nlp(folder, max_length=64).get_pipe("token_classifier")
    window = 64 - pipe.runtime.n_special
    assert pipe.effective_stride(window) == 16
    assert (
        make_nlp(folder, max_length=64, stride=8)
        .get_pipe("token_classifier")
        .effective_stride(window)
        == 8
    )
    plain = make_nlp(tiny_model("bert"), max_length=64).get_pipe("token_classifier")
    assert plain.effective_stride(window) == window // 4
    # A recorded stride that does not fit this window (a shorter max_length) is not used.
    short = make_nlp(folder, max_length=16).get_pipe("token_classifier")
    assert short.effective_stride(16 - short.runtime.n_special) == (16 - 2) // 4
