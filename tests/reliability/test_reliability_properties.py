"""Property tests: invariants that must hold for any text, tokenisation and setting.

Three levels, from the bottom up:

- ``spacy_nerzoo.alignment``: windows cover every wordpiece, each piece reads its logits from the
  window where it has most context, pooling gives one distribution per token that had pieces.
- ``spacy_nerzoo.decoding``: Viterbi paths obey the scheme's transition masks, chunking yields
  sorted, disjoint entities made of non-O tags, IO runs merge.
- the component on tiny random models (WordPiece, Unigram, byte-level BPE), for every alignment
  and decoding, with whole-document and small (windowed) ``max_length``: every token gets one
  B/I/O tag, entities never overlap or touch whitespace tokens, the text is never changed, and
  results do not depend on batch sizes, document order or window size (when the text fits).

Pipelines are built once per module and share one loaded network per model kind, so each
hypothesis example costs only inference.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import spacy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from spacy.language import Language
from spacy.tokens import Doc

from spacy_nerzoo.alignment import best_window, encode_docs, plan_windows, pool_pieces
from spacy_nerzoo.decoding import TagScheme, chunk, decode, decode_batch, viterbi

pytestmark = pytest.mark.usefixtures("one_torch_thread")


KINDS = ["distilbert", "albert", "longformer"]
ALIGNMENTS = ["first", "average", "max"]
DECODINGS = ["viterbi", "argmax"]
# Small enough that ordinary generated documents need several windows (a 20-wordpiece input
# leaves 18 for text after [CLS]/[SEP], with the default stride of a quarter window).
WINDOWED = 20
COMBOS = list(itertools.product(ALIGNMENTS, DECODINGS))

IOB2 = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "B-ORG", "I-ORG"]
BIOES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
IO = ["O", "person-actor", "location-GPE", "organization-company"]
SCHEMES = {
    name: TagScheme.from_labels(labels)
    for name, labels in [("IOB2", IOB2), ("BIOES", BIOES), ("IO", IO)]
}

FAST = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Model-level properties: each example runs the network, so fewer of them.
MODEL = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- strategies ------------------------------------------------------------------------------

WHITESPACE = st.sampled_from([" ", "  ", "\n", "\n\n", "\t", " \n ", "\u3000", "\xa0"])
WORD_CHARS = st.characters(exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc"))
# Words: ordinary, entity-like, odd Unicode, and whitespace tokens (which spaCy makes for runs
# of spaces and newlines).
WORDS = st.one_of(
    st.sampled_from(
        ["Angela", "Merkel", "Berlin", "met", "in", "New", "York", ".", ",", "Москва", "東京", "😀"]
    ),
    st.text(WORD_CHARS, min_size=1, max_size=12),
    # Any character but lone surrogates (see test_reliability_fuzz.py for those).
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=6),
    WHITESPACE,
)


@st.composite
def tokenisations(draw: st.DrawFn, max_words: int = 30) -> tuple[list[str], list[bool]]:
    """Arbitrary ``(words, spaces)`` for ``Doc(vocab, words=..., spaces=...)``."""
    words = draw(st.lists(WORDS, min_size=0, max_size=max_words))
    spaces = draw(st.lists(st.booleans(), min_size=len(words), max_size=len(words)))
    return words, spaces


def text_of(words: list[str], spaces: list[bool]) -> str:
    return "".join(w + (" " if s else "") for w, s in zip(words, spaces, strict=True))


# -- pipelines -------------------------------------------------------------------------------


class Models:
    """One loaded network per model kind, shared by every setting built on it.

    ``component(kind, **config)`` is a token_classifier made with ``nlp.create_pipe`` (so the
    config is validated as usual) whose runtime is the kind's loaded tokenizer and network, which
    are read-only at inference; ``_set_runtime`` still checks max_length and stride. That keeps a
    new setting at a few milliseconds instead of a pipeline and a model load.
    """

    def __init__(self, tiny_model: Callable[..., Path]) -> None:
        self.tiny_model = tiny_model
        self.base: dict[str, Language] = {}
        self.cache: dict[tuple[Any, ...], Any] = {}

    def nlp(self, kind: str) -> Language:
        if kind not in self.base:
            nlp = spacy.blank("en")
            nlp.add_pipe("token_classifier", config={"model": str(self.tiny_model(kind))})
            nlp.initialize()
            self.base[kind] = nlp
        return self.base[kind]

    def runtime(self, kind: str) -> Any:
        return self.nlp(kind).get_pipe("token_classifier").runtime

    def component(self, kind: str, **config: Any) -> Any:
        key = (kind, *sorted(config.items()))
        if key not in self.cache:
            nlp = self.nlp(kind)
            full = {"model": str(self.tiny_model(kind)), **config}
            comp = nlp.create_pipe("token_classifier", config=full)
            comp._set_runtime(self.runtime(kind))
            self.cache[key] = comp
        return self.cache[key]

    def pipeline(self, kind: str, **config: Any) -> Language:
        """A one-component Language around ``component(kind, **config)``, for ``nlp.pipe``."""
        key = ("nlp", kind, *sorted(config.items()))
        if key not in self.cache:
            nlp = spacy.blank("en", vocab=self.nlp(kind).vocab)
            nlp.add_pipe("token_classifier", config={"model": str(self.tiny_model(kind)), **config})
            nlp.get_pipe("token_classifier")._set_runtime(self.runtime(kind))
            self.cache[key] = nlp
        return self.cache[key]

    def doc(self, kind: str, words: list[str], spaces: list[bool]) -> Doc:
        return Doc(self.nlp(kind).vocab, words=list(words), spaces=list(spaces))


@pytest.fixture(scope="module")
def models(tiny_model: Callable[..., Path]) -> Models:
    return Models(tiny_model)


def ents(doc: Doc) -> list[tuple[int, int, str]]:
    return [(e.start, e.end, e.label_) for e in doc.ents]


def confidences(doc: Doc) -> list[float]:
    return [float(c) for c in doc.spans["nerzoo"].attrs["scores"]]


def assert_valid(doc: Doc, words: list[str], spaces: list[bool], labels: set[str]) -> None:
    """Everything that must hold for any annotated Doc."""
    assert [t.text for t in doc] == words
    assert doc.text == text_of(words, spaces)
    assert all(t.ent_iob_ in ("B", "I", "O") for t in doc)
    previous_end = 0
    for ent in doc.ents:
        assert previous_end <= ent.start < ent.end <= len(doc)
        previous_end = ent.end
        assert ent.start_char == doc[ent.start].idx
        assert ent.end_char == doc[ent.end - 1].idx + len(doc[ent.end - 1].text)
        assert not any(t.is_space for t in ent), ent
        assert ent.label_ in labels
        assert doc[ent.start].ent_iob_ == "B"
        assert all(t.ent_iob_ == "I" for t in ent[1:])
    inside = {i for e in doc.ents for i in range(e.start, e.end)}
    assert all(t.ent_iob_ == "O" for t in doc if t.i not in inside)
    # On a fresh Doc every prediction becomes an entity; the span group holds the same spans.
    assert [(s.start, s.end, s.label_) for s in doc.spans["nerzoo"]] == ents(doc)
    assert all(0.0 < c <= 1.0 + 1e-6 for c in confidences(doc))


# -- the component ---------------------------------------------------------------------------


LABELS = {"LOC", "MISC", "ORG", "PER"}


@pytest.mark.parametrize("max_length", [512, WINDOWED], ids=["whole", "windowed"])
@pytest.mark.parametrize("kind", KINDS)
@settings(MODEL, max_examples=25)
@given(tok=tokenisations(), data=st.data())
def test_every_setting_tags_every_token_validly(models, kind, max_length, tok, data):
    words, spaces = tok
    alignment, decoding = data.draw(st.sampled_from(COMBOS), label="settings")
    comp = models.component(kind, alignment=alignment, decoding=decoding, max_length=max_length)
    assert_valid(comp(models.doc(kind, words, spaces)), words, spaces, LABELS)


@pytest.mark.parametrize("kind", KINDS)
@MODEL
@given(docs=st.lists(tokenisations(max_words=15), min_size=1, max_size=4), data=st.data())
def test_results_independent_of_batching_and_order(models, kind, docs, data):
    max_length = data.draw(st.sampled_from([512, WINDOWED]), label="max_length")
    order = data.draw(st.permutations(range(len(docs))), label="order")
    pipe_batch = data.draw(st.integers(1, len(docs)), label="nlp.pipe batch_size")
    forward_batch = data.draw(st.sampled_from([3, 64]), label="component batch_size")

    def run(nlp: Language, indices: list[int], batch_size: int) -> dict[int, Doc]:
        stream = (models.doc(kind, *docs[i]) for i in indices)
        return dict(zip(indices, nlp.pipe(stream, batch_size=batch_size), strict=True))

    one_by_one = models.pipeline(kind, max_length=max_length, batch_size=1)
    reference = run(one_by_one, list(range(len(docs))), 1)
    batched = models.pipeline(kind, max_length=max_length, batch_size=forward_batch)
    for got in (run(batched, list(order), pipe_batch), run(one_by_one, list(order), len(docs))):
        for i, doc in got.items():
            assert ents(doc) == ents(reference[i])
            np.testing.assert_allclose(confidences(doc), confidences(reference[i]), rtol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
@MODEL
@given(tok=tokenisations(max_words=12), data=st.data())
def test_window_size_irrelevant_when_text_fits(models, kind, tok, data):
    words, spaces = tok
    alignment, decoding = data.draw(st.sampled_from(COMBOS), label="settings")
    whole = models.component(kind, alignment=alignment, decoding=decoding, max_length=512)
    runtime = models.runtime(kind)
    (enc,) = encode_docs(runtime.tokenizer, [models.doc(kind, words, spaces)])
    needed = len(enc.piece_ids) + runtime.n_special
    assume(needed <= 512)
    b = whole(models.doc(kind, words, spaces))
    # The smallest max_length that still holds the whole text, and one a little larger.
    for max_length in sorted({max(needed, 3), min(needed + 5, 512)}):
        comp = models.component(kind, alignment=alignment, decoding=decoding, max_length=max_length)
        a = comp(models.doc(kind, words, spaces))
        assert ents(a) == ents(b)
        np.testing.assert_allclose(confidences(a), confidences(b), rtol=1e-4)


@pytest.mark.parametrize("kind", ["distilbert", "longformer"])
@MODEL
@given(tok=tokenisations(max_words=60), stride=st.integers(0, 17))
def test_any_stride_keeps_documents_valid(models, kind, tok, stride):
    words, spaces = tok
    comp = models.component(kind, max_length=WINDOWED, stride=stride)
    assert_valid(comp(models.doc(kind, words, spaces)), words, spaces, LABELS)


# -- decoding --------------------------------------------------------------------------------


@st.composite
def prob_rows(draw: st.DrawFn, n_labels: int, max_len: int = 12) -> np.ndarray:
    """Strictly positive probability rows, as a softmax of finite logits gives."""
    n = draw(st.integers(0, max_len))
    logits = draw(
        st.lists(
            st.lists(st.floats(-30, 30), min_size=n_labels, max_size=n_labels),
            min_size=n,
            max_size=n,
        )
    )
    x = np.asarray(logits, np.float64).reshape(n, n_labels)
    x = np.exp(x - x.max(axis=1, keepdims=True)) if n else x
    return (x / x.sum(axis=1, keepdims=True)).astype(np.float32) if n else x.astype(np.float32)


def is_valid_path(tags: np.ndarray, scheme: TagScheme) -> bool:
    start, trans, end = scheme.transitions()
    if len(tags) == 0:
        return True
    return bool(
        start[tags[0]] and end[tags[-1]] and all(trans[a, b] for a, b in itertools.pairwise(tags))
    )


@pytest.mark.parametrize("name", list(SCHEMES))
@FAST
@given(data=st.data())
def test_viterbi_paths_obey_the_transition_masks(name, data):
    scheme = SCHEMES[name]
    probs = data.draw(prob_rows(len(scheme.prefixes)))
    forced = np.asarray(
        data.draw(st.lists(st.booleans(), min_size=len(probs), max_size=len(probs))), bool
    )
    tags, found = decode(probs, forced, scheme, "viterbi")
    assert is_valid_path(tags, scheme)
    assert all(tags[forced] == scheme.outside)
    assert found == chunk(tags.tolist(), scheme)
    # When the per-token best tags already form a valid path, Viterbi returns exactly them.
    greedy, _ = decode(probs, forced, scheme, "argmax")
    if is_valid_path(greedy, scheme):
        outside = np.eye(len(scheme.prefixes))[scheme.outside]
        with np.errstate(divide="ignore"):
            log_probs = np.log(np.where(forced[:, None], outside, probs))
        best = log_probs[np.arange(len(tags)), tags].sum()
        assert best >= log_probs[np.arange(len(greedy)), greedy].sum() - 1e-4


@pytest.mark.parametrize("name", list(SCHEMES))
@FAST
@given(data=st.data())
def test_chunks_are_sorted_disjoint_and_cover_every_non_o_tag(name, data):
    scheme = SCHEMES[name]
    tags = data.draw(st.lists(st.integers(0, len(scheme.prefixes) - 1), max_size=30))
    found = chunk(tags, scheme)
    covered: list[int] = []
    for (s, e, typ), nxt in itertools.zip_longest(found, found[1:]):
        assert 0 <= s < e <= len(tags)
        assert nxt is None or e <= nxt[0]
        assert all(scheme.prefixes[t] != "O" and scheme.types[t] == typ for t in tags[s:e])
        covered.extend(range(s, e))
    assert covered == [i for i, t in enumerate(tags) if scheme.prefixes[t] != "O"]


@FAST
@given(tags=st.lists(st.integers(0, len(IO) - 1), max_size=30))
def test_io_chunking_yields_maximal_runs(tags):
    scheme = SCHEMES["IO"]
    expected = []
    i = 0
    for tag, run in itertools.groupby(tags):
        n = len(list(run))
        if tag != scheme.outside:
            expected.append((i, i + n, scheme.types[tag]))
        i += n
    assert chunk(tags, scheme) == expected


@pytest.mark.parametrize("name", ["IOB2", "BIOES"])
@FAST
@given(data=st.data())
def test_valid_paths_chunk_at_their_begin_tags(name, data):
    scheme = SCHEMES[name]
    probs = data.draw(prob_rows(len(scheme.prefixes), max_len=20))
    tags = viterbi(np.log(probs), *scheme.transitions()) if len(probs) else np.zeros(0, int)
    starts = [i for i, t in enumerate(tags) if scheme.prefixes[t] in "BS"]
    found = chunk(tags.tolist(), scheme)
    assert [s for s, _, _ in found] == starts
    if name == "BIOES":
        assert all(scheme.prefixes[tags[e - 1]] in "ES" for _, e, _ in found)


@pytest.mark.parametrize("name", list(SCHEMES))
@pytest.mark.parametrize("mode", DECODINGS)
@FAST
@given(data=st.data())
def test_decoding_a_batch_equals_decoding_each_doc(name, mode, data):
    # decode_batch pads Docs of different lengths into one Viterbi pass.
    scheme = SCHEMES[name]
    docs = data.draw(st.lists(prob_rows(len(scheme.prefixes), max_len=15), max_size=6))
    forced = [
        np.asarray(data.draw(st.lists(st.booleans(), min_size=len(p), max_size=len(p))), bool)
        for p in docs
    ]
    batched = decode_batch(docs, forced, scheme, mode)
    assert len(batched) == len(docs)
    for p, f, tags in zip(docs, forced, batched, strict=True):
        alone, _ = decode(p, f, scheme, mode)
        assert tags.tolist() == alone.tolist()
        assert is_valid_path(tags, scheme) or mode == "argmax"


def test_viterbi_valid_when_softmax_underflows():
    from spacy_nerzoo.alignment import softmax

    scheme = SCHEMES["IOB2"]
    # Very decisive logits (gaps > ~104) underflow to exact zeros in a float32 softmax.
    logits = np.full((2, len(IOB2)), -60.0, np.float32)
    logits[0, IOB2.index("I-LOC")] = 60.0
    logits[1, IOB2.index("I-PER")] = 60.0
    tags, _ = decode(softmax(logits), np.zeros(2, bool), scheme, "viterbi")
    assert is_valid_path(tags, scheme), [IOB2[t] for t in tags]


# -- alignment -------------------------------------------------------------------------------


@st.composite
def window_settings(draw: st.DrawFn) -> tuple[int, int, int]:
    window = draw(st.integers(1, 40))
    stride = draw(st.integers(0, window - 1))
    n = draw(st.integers(0, 300))
    return n, window, stride


@FAST
@given(settings_=window_settings())
def test_windows_cover_all_pieces_with_the_promised_overlap(settings_):
    n, window, stride = settings_
    plan = plan_windows(n, window, stride)
    if n == 0:
        assert plan == []
        return
    assert plan[0][0] == 0 and plan[-1][1] == n
    assert all(0 <= s < e <= n and e - s <= window for s, e in plan)
    assert all(e - s == window for s, e in plan) or len(plan) == 1
    for (s1, e1), (s2, e2) in itertools.pairwise(plan):
        assert s1 < s2 and e1 < e2
        assert e1 - s2 >= stride  # consecutive windows share at least `stride` pieces
    # No more windows than a stride-by-stride walk needs.
    step = window - stride
    assert len(plan) <= max(1, -(-(n - window) // step) + 1)


@FAST
@given(settings_=window_settings())
def test_each_piece_read_from_a_window_where_it_has_most_context(settings_):
    n, window, stride = settings_
    assume(n > 0)
    plan = plan_windows(n, window, stride)
    which, offset = best_window(n, plan)
    for p in range(n):
        s, e = plan[which[p]]
        assert s <= p < e and s + offset[p] == p
        ctx = min(p - s, e - 1 - p)
        assert all(ctx >= min(p - s2, e2 - 1 - p) for s2, e2 in plan if s2 <= p < e2)
    # Gathering stacked window rows by (window, offset) reproduces the pieces in order.
    stacked = np.concatenate([np.arange(s, e) for s, e in plan])
    starts = np.cumsum([0] + [e - s for s, e in plan[:-1]])
    assert stacked[starts[which] + offset].tolist() == list(range(n))


@st.composite
def pieces(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    """Piece probabilities and a non-decreasing piece -> token map (tokens may have no piece)."""
    n_tokens = draw(st.integers(0, 12))
    counts = draw(st.lists(st.integers(0, 4), min_size=n_tokens, max_size=n_tokens))
    owner = np.repeat(np.arange(n_tokens), counts).astype(np.int64)
    raw = draw(
        st.lists(
            st.lists(st.floats(0.01, 1.0), min_size=5, max_size=5),
            min_size=len(owner),
            max_size=len(owner),
        )
    )
    probs = np.asarray(raw, np.float32).reshape(len(owner), 5)
    probs /= np.maximum(probs.sum(axis=1, keepdims=True), 1e-9)
    return probs, owner, n_tokens


@pytest.mark.parametrize("mode", ALIGNMENTS)
@FAST
@given(case=pieces())
def test_pooling_gives_one_distribution_per_token_with_pieces(mode, case):
    probs, owner, n_tokens = case
    pooled, has = pool_pieces(probs, owner, n_tokens, mode)
    assert pooled.shape == (n_tokens, 5) and pooled.dtype == np.float32
    assert has.tolist() == [t in set(owner.tolist()) for t in range(n_tokens)]
    assert (pooled[~has] == 0).all()
    np.testing.assert_allclose(pooled[has].sum(axis=1), 1.0, rtol=1e-5)
    for t in np.flatnonzero(has):
        mine = probs[owner == t]
        if mode == "first":
            np.testing.assert_array_equal(pooled[t], mine[0])
        elif mode == "average":
            np.testing.assert_allclose(pooled[t], mine.mean(axis=0), rtol=1e-5)
        else:
            top = mine.max(axis=0)
            np.testing.assert_allclose(pooled[t], top / top.sum(), rtol=1e-5)
        if len(mine) == 1:  # single-piece tokens: every mode is the identity
            np.testing.assert_allclose(pooled[t], mine[0], rtol=1e-5)
