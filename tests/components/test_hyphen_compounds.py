"""A compound spaCy splits at its hyphen is read, decoded and written as one word
(``join_hyphens``).

CoNLL-2003 and Few-NERD keep "pro-Western" one token; spaCy's tokenizer gives "pro", "-",
"Western". The model must see the word it was trained on, and an entity must cover it whole.
"""

from __future__ import annotations

import pytest
import spacy
from spacy.tokens import Doc

# Compounds of every shape, among enough names for a tiny random model to tag some of them.
WORDS = (
    "the pro-Western Mercedes-Benz deal of Rolls-Royce and Anglo-Dutch Shell , a state-of-the-art "
    "plant near Kuala Lumpur-based Petronas , says Jean-Pierre Raffarin of the Franco-German "
    "summit in Baden-Baden ; Smith - Jones disagreed"
).split() * 3


def _nlp(path, **config) -> spacy.language.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("token_classifier", config={"model": str(path), "max_length": 48, **config})
    return nlp


def _chars(doc: Doc) -> list[tuple[int, int, str]]:
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


@pytest.mark.parametrize("kind", ["bert", "albert"])
def test_split_compound_gives_the_entities_of_the_whole_word(tiny_model, kind: str) -> None:
    """spaCy's split Doc and a Doc with CoNLL's tokens (the compound one token) give the same
    entities, character for character: the network saw the same pieces and casing classes."""
    nlp = _nlp(tiny_model(kind))
    text = " ".join(WORDS)
    spacy_doc = nlp.make_doc(text)
    assert len(spacy_doc) > len(WORDS), "spaCy must split the compounds for this test to mean it"
    conll_doc = Doc(nlp.vocab, words=WORDS, spaces=[True] * (len(WORDS) - 1) + [False])
    assert conll_doc.text == text
    joined, whole = nlp(spacy_doc), nlp(conll_doc)
    assert whole.ents, "the tiny model must tag something for this test to mean anything"
    assert _chars(joined) == _chars(whole)
    compounds = [t.i for t in joined if t.text == "-" and not t.whitespace_ and t.i > 0]
    for ent in joined.ents:  # no entity starts or ends inside a compound
        assert ent.start - 1 not in compounds and ent.end not in compounds, ent


def test_join_hyphens_off_reads_spacy_tokens(tiny_model) -> None:
    """With the setting off, each token spaCy made is a word of its own, as before: the same
    entities as for those words with spaces between them (which nothing joins)."""
    on, off = _nlp(tiny_model("bert")), _nlp(tiny_model("bert"), join_hyphens=False)
    text = " ".join(WORDS)
    spaced = Doc(on.vocab, words=[t.text for t in on.make_doc(text)])

    def tokens(doc: Doc) -> list[tuple[int, int, str]]:
        return [(e.start, e.end, e.label_) for e in doc.ents]

    assert tokens(off(off.make_doc(text))) == tokens(on(spaced))
    assert _chars(off(off.make_doc(text))) != _chars(on(on.make_doc(text)))


def test_batches_mix_docs_with_and_without_compounds(tiny_model) -> None:
    nlp = _nlp(tiny_model("bert"))
    texts = [" ".join(WORDS), "no compound at all here", "", "Anglo-Dutch", "x - y"]
    alone = [_chars(nlp(t)) for t in texts]
    assert [_chars(d) for d in nlp.pipe(texts, batch_size=5)] == alone
