"""Training the token-classifier component inside spaCy's loop, on tiny random models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import spacy
import srsly
import torch
from spacy.tokens import DocBin
from spacy.training import Example
from thinc.api import Adam, Config, ConfigValidationError

from spacy_nerzoo.networks.hf_token_classifier import IGNORE_INDEX, cross_entropy

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DATA = [
    ("Angela Merkel met Tim Cook in Berlin.", [(0, 13, "PER"), (18, 26, "PER"), (30, 36, "LOC")]),
    ("Peter Blackburn reported from Brussels for Reuters.", [(0, 15, "PER"), (30, 38, "LOC")]),
    ("Apple and Microsoft opened offices in London.", [(0, 5, "ORG"), (10, 19, "ORG")]),
]


def make_nlp(path, factory="token_classifier", **config):
    nlp = spacy.blank("en")
    nlp.add_pipe(factory, name="ner", config={"model": str(path), **config})
    return nlp


def examples(nlp, data=DATA):
    out = []
    for text, ents in data:
        ref = nlp.make_doc(text)
        ref.ents = [ref.char_span(s, e, label=label) for s, e, label in ents]
        out.append(Example(nlp.make_doc(text), ref))
    return out


def ents(doc):
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def train(nlp, egs, steps):
    torch.manual_seed(0)
    nlp.initialize(lambda: egs)
    optimizer = Adam(1e-3)
    history = [nlp.update(egs, sgd=optimizer)["ner"] for _ in range(steps)]
    return history


def test_loss_falls_and_training_entities_are_predicted(tiny_model):
    nlp = make_nlp(tiny_model("distilbert"), max_length=64)
    egs = examples(nlp)
    history = train(nlp, egs, 40)
    assert history[-1] < history[0] / 3
    assert [ents(nlp(text)) for text, _ in DATA] == [sorted(e) for _, e in DATA]
    # The backend predicts with the trained module, and not in train mode (no dropout).
    assert not nlp.get_pipe("ner").runtime.backend.model.training


def test_long_document_trains_and_round_trips(tiny_model, tmp_path):
    nlp = make_nlp(tiny_model("distilbert"), max_length=32, stride=4, batch_size=2)
    egs = examples(nlp)
    long_text = " ".join(text for text, _ in DATA * 4)
    long_ents, offset = [], 0
    for text, spans in DATA * 4:
        long_ents += [(s + offset, e + offset, label) for s, e, label in spans]
        offset += len(text) + 1
    egs += examples(nlp, [(long_text, long_ents)])
    train(nlp, egs, 3)
    plan = nlp.get_pipe("ner").training_windows(egs[-1:])
    assert len(plan) > 1 and all(len(w.piece_ids) <= 30 for w in plan)
    before = [ents(d) for d in nlp.pipe([long_text, *[t for t, _ in DATA]])]
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert [ents(d) for d in loaded.pipe([long_text, *[t for t, _ in DATA]])] == before


def test_each_gold_piece_once_on_its_first_wordpiece(tiny_model):
    nlp = make_nlp(tiny_model("distilbert"), max_length=16, stride=3)
    nlp.initialize()
    pipe = nlp.get_pipe("ner")
    text = " ".join(t for t, _ in DATA)
    (eg,) = examples(nlp, [(text, [(0, 13, "PER")])])
    windows = pipe.training_windows([eg])
    assert len(windows) > 1
    n_gold = sum(w.n_gold for w in windows)
    assert n_gold == len(eg.predicted)  # one gold first piece per token, across all windows
    id2label = pipe.runtime.config.id2label
    gold = [id2label[int(i)] for w in windows for i in w.labels if i != IGNORE_INDEX]
    assert gold[:2] == ["B-PER", "I-PER"] and set(gold[2:]) == {"O"}


def test_loss_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 4)).astype(np.float64)
    gold = np.array([[0, 1, IGNORE_INDEX, 3, 2], [IGNORE_INDEX, 2, 2, 0, IGNORE_INDEX]])
    loss, grad = cross_entropy(logits, gold, 7)
    eps = 1e-2  # the loss is computed in float32
    for pos in [(0, 3, 1), (0, 3, 3), (1, 1, 2)]:
        up, down = logits.copy(), logits.copy()
        up[pos] += eps
        down[pos] -= eps
        numeric = (cross_entropy(up, gold, 7)[0] - cross_entropy(down, gold, 7)[0]) / (2 * eps)
        assert numeric == pytest.approx(grad[pos], abs=1e-4)
    assert not grad[0, 2].any() and not grad[1, 4].any()


def test_mismatched_checkpoint_labels_get_a_new_head(tiny_model, tmp_path):
    nlp = make_nlp(tiny_model("distilbert", ["O", "LABEL_X"]))
    egs = examples(nlp)
    nlp.initialize(lambda: egs)
    pipe = nlp.get_pipe("ner")
    tags = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert list(pipe.runtime.config.id2label.values()) == tags
    assert pipe.runtime.backend.model.classifier.out_features == len(tags)
    assert pipe.labels == ("LOC", "ORG", "PER")
    nlp.update(egs)
    nlp.to_disk(tmp_path / "p")
    assert spacy.load(tmp_path / "p").get_pipe("ner").labels == ("LOC", "ORG", "PER")


def test_matching_checkpoint_head_is_kept(tiny_model):
    path = tiny_model("distilbert")
    nlp = make_nlp(path)
    nlp.initialize(lambda: examples(nlp))
    expected = [ents(d) for d in make_nlp(path).pipe([t for t, _ in DATA])]
    assert [ents(d) for d in nlp.pipe([t for t, _ in DATA])] == expected


def test_added_labels_extend_the_head_at_initialize(tiny_model):
    nlp = make_nlp(tiny_model("distilbert"))
    pipe = nlp.get_pipe("ner")
    nlp.initialize()
    assert pipe.add_label("PER") == 0 and pipe.add_label("DATE") == 1
    nlp.initialize(lambda: examples(nlp))
    assert pipe.labels == ("DATE", "LOC", "ORG", "PER")


def test_io_head_for_fewnerd_labels(tiny_model):
    nlp = make_nlp(tiny_model("distilbert"), factory="distilbert_fewnerd")
    nlp.config["initialize"]["components"]["ner"] = {"tag_scheme": "IO"}
    data = [(t, [(s, e, {"PER": "person-politician", "LOC": "location-GPE"}.get(lab, "art-film"))
                 for s, e, lab in spans]) for t, spans in DATA]  # fmt: skip
    egs = examples(nlp, data)
    nlp.initialize(lambda: egs)
    pipe = nlp.get_pipe("ner")
    assert pipe.runtime.scheme.name == "IO"
    assert pipe.labels == ("art-film", "location-GPE", "person-politician")
    nlp.update(egs)
    nlp.config["initialize"]["components"]["ner"] = {"tag_scheme": "BIO"}
    with pytest.raises(ConfigValidationError, match="tag_scheme"):
        nlp.initialize(lambda: egs)


def test_onnx_backend_is_not_trainable(tiny_model):
    nlp = make_nlp(tiny_model("distilbert"), backend="onnx")
    assert not nlp.get_pipe("ner").is_trainable
    with pytest.raises(ValueError, match="backend='torch'"):
        nlp.update(examples(nlp))


def test_spacy_train_writes_a_loadable_model_best(tiny_model, tmp_path):
    from spacy.cli.train import train as spacy_train

    nlp = spacy.blank("en")
    for split in ("train", "dev"):
        DocBin(docs=[eg.reference for eg in examples(nlp)]).to_disk(tmp_path / f"{split}.spacy")
    config = Config().from_disk(CONFIGS / "token_classifier_minilm_conll03.cfg", interpolate=False)
    config["paths"].update(
        encoder=str(tiny_model("distilbert", ["O", "LABEL_X"])),
        train=str(tmp_path / "train.spacy"),
        dev=str(tmp_path / "dev.spacy"),
    )
    config["components"]["token_classifier"]["max_length"] = 32
    config["training"].update(max_steps=10, eval_frequency=5, max_epochs=0)
    config["training"]["batcher"]["size"] = 100
    config["training"]["optimizer"]["learn_rate"].update(warmup_steps=2, total_steps=10)
    config.to_disk(tmp_path / "tiny.cfg")
    spacy_train(tmp_path / "tiny.cfg", tmp_path / "out", overrides={"system.seed": 1})
    assert "ents_f" in srsly.read_json(tmp_path / "out" / "model-best" / "meta.json")["performance"]
    best = spacy.load(tmp_path / "out" / "model-best")
    assert best.get_pipe("token_classifier").labels == ("LOC", "ORG", "PER")
    doc = best(DATA[0][0])
    assert all(t.ent_iob_ in ("B", "I", "O") for t in doc)
