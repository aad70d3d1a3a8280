"""conlleval as spaCy's scorer: the numbers of ``nerzoo evaluate`` under spaCy's NER keys."""

from __future__ import annotations

import pickle
from itertools import islice

import pytest
import spacy
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry

from spacy_nerzoo.data.converters import docs_from_file
from spacy_nerzoo.evaluation.report import evaluate_docs, fresh_doc
from spacy_nerzoo.evaluation.scorer import conlleval_score, predicted_on_reference

NLP = spacy.blank("en")
WORDS = "Angela Merkel met Tim Cook of Apple in New York .".split()


def doc(ents, words=WORDS, sent_starts=None):
    d = Doc(NLP.vocab, words=words, sent_starts=sent_starts)
    d.set_ents([Span(d, s, e, label=lab) for s, e, lab in ents])
    return d


GOLD = [(0, 2, "PER"), (3, 5, "PER"), (6, 7, "ORG"), (8, 10, "LOC")]


def example(pred_ents, gold_ents=GOLD, **kwargs):
    return Example(doc(pred_ents, **kwargs), doc(gold_ents, **kwargs))


def test_scores_are_conllevals_under_spacy_keys():
    pred = [(0, 2, "PER"), (3, 5, "ORG"), (6, 7, "ORG"), (9, 10, "LOC")]
    scores = conlleval_score([example(pred)])
    report = evaluate_docs([doc(GOLD)], [doc(pred)])
    assert scores["ents_f"] == pytest.approx(report.f1) == pytest.approx(0.5)
    assert (scores["ents_p"], scores["ents_r"]) == (0.5, 0.5)
    assert scores["ents_per_type"]["PER"] == {"p": 1.0, "r": 0.5, "f": pytest.approx(2 / 3)}
    assert set(scores["ents_per_type"]) == {"PER", "ORG", "LOC"}


def test_io_reading_merges_touching_entities_of_one_type():
    # Gold: one person of two tokens; the prediction splits it. spaCy's scorer and conlleval
    # on IOB2 tags count a miss; Few-NERD's IO reading (touching same-type tokens are one
    # entity) counts a match, as `nerzoo evaluate` does for Few-NERD.
    eg = example([(0, 1, "PER"), (1, 2, "PER")], gold_ents=[(0, 2, "PER")])
    assert get_ner_prf([eg])["ents_f"] == 0.0
    assert conlleval_score([eg])["ents_f"] == 0.0
    assert conlleval_score([eg], scheme="io")["ents_f"] == 1.0


def test_coarse_label_level():
    eg = example([(0, 2, "person-actor")], gold_ents=[(0, 2, "person-director")])
    assert conlleval_score([eg])["ents_f"] == 0.0
    assert conlleval_score([eg], label_level="coarse")["ents_per_type"] == {
        "person": {"p": 1.0, "r": 1.0, "f": 1.0}
    }


def test_sentence_ends_close_entities():
    # A predicted entity crossing the gold sentence start is two phrases for conlleval.
    starts = [True] + [False] * 4 + [True] + [False] * 5
    eg = example([(3, 7, "ORG")], gold_ents=[(3, 5, "ORG"), (5, 7, "ORG")], sent_starts=starts)
    assert conlleval_score([eg])["ents_f"] == 1.0
    assert get_ner_prf([eg])["ents_f"] == 0.0


def test_other_tokenisation_is_aligned():
    words = "Angela Merkel met Tim Cook of Apple in New York.".split()  # "York." one token
    pred = doc([(0, 2, "PER"), (3, 5, "PER"), (8, 10, "LOC")], words=words)
    eg = Example(pred, doc(GOLD))
    on_ref = predicted_on_reference(eg)
    assert [t.text for t in on_ref] == WORDS
    assert [(e.start, e.end, e.label_) for e in on_ref.ents] == [
        (0, 2, "PER"),
        (3, 5, "PER"),
        (8, 11, "LOC"),
    ]
    assert conlleval_score([eg])["ents_r"] == 0.5


def test_without_gold_annotation_every_score_is_none():
    eg = Example(doc([(0, 2, "PER")]), Doc(NLP.vocab, words=WORDS))
    assert conlleval_score([eg]) == {
        "ents_p": None,
        "ents_r": None,
        "ents_f": None,
        "ents_per_type": None,
    }


def test_registered_settings_win_over_what_the_component_says():
    eg = example([(0, 1, "PER"), (1, 2, "PER")], gold_ents=[(0, 2, "PER")])
    follow = registry.resolve({"s": {"@scorers": "spacy_nerzoo.conlleval_scorer.v1"}})["s"]
    assert follow([eg], labels=("PER",))["ents_f"] == 0.0
    assert follow([eg], scheme="io")["ents_f"] == 1.0
    fixed = registry.resolve(
        {"s": {"@scorers": "spacy_nerzoo.conlleval_scorer.v1", "scheme": "iob"}}
    )["s"]
    assert fixed([eg], scheme="io")["ents_f"] == 0.0
    # spaCy pickles components, their scorer too, for nlp.pipe(n_process=...) under spawn.
    assert pickle.loads(pickle.dumps(fixed)) == fixed


@pytest.mark.shared
@pytest.mark.parametrize(
    ("model", "corpus", "n_docs", "scheme"),
    [
        ("minilm_conll03", "conll2003/valid.txt", 5, "iob"),  # news articles
        ("minilm_fewnerd", "fewnerd/dev.txt", 40, "io"),  # sentences
    ],
)
def test_nlp_evaluate_reports_what_nerzoo_evaluate_prints(
    shared_data, model, corpus, n_docs, scheme
):
    """The built-in models on the first documents of their dev sets: `spacy evaluate`'s
    ents_p/r/f (the component's default scorer) are `nerzoo evaluate`'s conlleval numbers."""
    if not (shared_data / corpus).exists():
        pytest.skip(f"{corpus} is absent")
    nlp = spacy.blank("en")
    nlp.add_pipe(model)
    gold = list(islice(docs_from_file(shared_data / corpus, nlp.vocab), n_docs))
    pred = list(nlp.pipe(fresh_doc(d, nlp.vocab) for d in gold))  # as `nerzoo evaluate` runs
    expected = evaluate_docs(gold, pred, scheme=scheme).phrase
    scores = nlp.evaluate([Example(fresh_doc(d, nlp.vocab), d) for d in gold])
    assert expected.overall.found > 20
    assert (scores["ents_p"], scores["ents_r"], scores["ents_f"]) == (
        expected.precision,
        expected.recall,
        expected.f1,
    )
