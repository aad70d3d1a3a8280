from typing import Any

import numpy as np
import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spacy_nerzoo.alignment import (
    BatchEncoding,
    best_window,
    encode_batch,
    encode_docs,
    model_words,
    pad_windows,
    plan_batch_windows,
    plan_windows,
    pool_pieces,
    softmax,
    special_tokens,
    window_pieces,
    word_pieces,
)


@pytest.mark.parametrize(
    "n,window,stride", [(0, 10, 2), (5, 10, 2), (10, 10, 0), (11, 10, 3), (1000, 62, 15), (7, 1, 0)]
)
def test_windows_cover_everything(n, window, stride):
    plan = plan_windows(n, window, stride)
    covered = np.zeros(n, int)
    for s, e in plan:
        assert 0 <= s < e <= n and e - s <= window
        covered[s:e] += 1
    assert (covered >= 1).all()
    which, offset = best_window(n, plan) if n else (np.zeros(0, int), np.zeros(0, int))
    for p in range(n):
        s, e = plan[which[p]]
        assert s + offset[p] == p
        ctx = min(p - s, e - 1 - p)
        assert all(ctx >= min(p - s2, e2 - 1 - p) for s2, e2 in plan if s2 <= p < e2)


def test_bad_window_settings():
    with pytest.raises(ValueError):
        plan_windows(100, 10, 10)


def test_pooling_modes():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.6, 0.4]], np.float32)
    owner = np.array([0, 0, 2, 2])
    first, has = pool_pieces(probs, owner, 4, "first")
    assert has.tolist() == [True, False, True, False]
    np.testing.assert_allclose(first[[0, 2]], [[0.9, 0.1], [0.5, 0.5]])
    avg, _ = pool_pieces(probs, owner, 4, "average")
    np.testing.assert_allclose(avg[[0, 2]], [[0.55, 0.45], [0.55, 0.45]], rtol=1e-6)
    mx, _ = pool_pieces(probs, owner, 4, "max")
    np.testing.assert_allclose(mx[0], [0.9 / 1.7, 0.8 / 1.7], rtol=1e-6)
    assert (first[[1, 3]] == 0).all()


def test_model_words_keeps_offsets_when_lowercasing_changes_length():
    doc = spacy.blank("en")("İstanbul  and\n\nBERLIN")
    words, index = model_words(doc, lowercase=True)
    assert words == ["i̇stanbul", "and", "berlin"]
    assert [doc[i].text for i in index] == ["İstanbul", "and", "BERLIN"]


# -- the batched path: one set of arrays per batch of Docs -------------------------------------

BATCH = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _batch_encoding(piece_counts: list[list[int]]) -> BatchEncoding:
    """A batch whose Doc d has len(piece_counts[d]) tokens, token t having piece_counts[d][t]
    pieces (tokens may have none); piece ids are just their batch position."""
    owners = [np.repeat(np.arange(len(c)), c).astype(np.int64) for c in piece_counts]
    token_offsets = np.r_[0, np.cumsum([len(c) for c in piece_counts])].astype(np.int64)
    piece_offsets = np.r_[0, np.cumsum([len(o) for o in owners])].astype(np.int64)
    piece_token = np.concatenate(
        [np.zeros(0, np.int64)] + [o + token_offsets[d] for d, o in enumerate(owners)]
    )
    ids = np.arange(len(piece_token), dtype=np.int64)
    return BatchEncoding(ids, piece_token, piece_offsets, token_offsets)


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[list[int]], int, int]:
    """Docs of 0-30 tokens with 0-3 pieces each, and window settings small enough that some
    Docs need several windows."""
    docs = draw(st.lists(st.lists(st.integers(0, 3), max_size=30), max_size=8))
    window = draw(st.integers(1, 25))
    stride = draw(st.integers(0, window - 1))
    return docs, window, stride


@BATCH
@given(case=batches())
def test_batch_windows_equal_per_doc_windows(case):
    piece_counts, window, stride = case
    batch = _batch_encoding(piece_counts)
    windows = plan_batch_windows(batch, window, stride)
    w0 = 0
    for d in range(len(batch)):
        p0, p1 = batch.piece_offsets[d], batch.piece_offsets[d + 1]
        plan = plan_windows(int(p1 - p0), window, stride)
        got = zip(windows.starts[w0:], windows.ends[w0:], range(len(plan)), strict=False)
        assert [(s - p0, e - p0) for s, e, _ in got] == plan
        if plan:
            which, offset = best_window(int(p1 - p0), plan)
            assert (windows.best[p0:p1] == w0 + which).all()
            assert (windows.offset[p0:p1] == offset).all()
        w0 += len(plan)
    assert w0 == len(windows.starts)


def _pool_one_doc(window_logits, plan, piece_token, n_tokens, mode):
    """The per-Doc computation the batched one replaced: stack the Doc's windows, read each piece
    from its best window, softmax, pool."""
    if not plan:
        return pool_pieces(np.zeros((0, 5), np.float32), piece_token, n_tokens, mode)
    which, offset = best_window(len(piece_token), plan)
    stacked = np.concatenate(window_logits)
    starts = np.cumsum([0] + [e - s for s, e in plan[:-1]])
    probs = softmax(stacked[starts[which] + offset].astype(np.float32))
    return pool_pieces(probs, piece_token, n_tokens, mode)


@pytest.mark.parametrize("mode", ["first", "average", "max"])
@BATCH
@given(case=batches(), seed=st.integers(0, 2**32 - 1), batch_size=st.integers(1, 5))
def test_batched_pooling_equals_per_doc_pooling(mode, case, seed, batch_size):
    piece_counts, window, stride = case
    rng = np.random.default_rng(seed)
    batch = _batch_encoding(piece_counts)
    windows = plan_batch_windows(batch, window, stride)
    # The network's output for every window (overlapping windows disagree, as real ones do),
    # padded and run in a random order, batch_size windows at a time.
    lengths = windows.lengths
    logits = [rng.normal(0, 3, (int(n), 5)).astype(np.float32) for n in lengths]
    order = rng.permutation(len(lengths))
    outputs = [np.zeros((0, 5), np.float32)]
    for at in range(0, len(order), batch_size):
        run = order[at : at + batch_size]
        padded = rng.normal(0, 3, (len(run), 2 + int(lengths[run].max()) + 1, 5))
        for row, w in enumerate(run):
            padded[row, 2 : 2 + lengths[w]] = logits[w]
        outputs.append(window_pieces(padded.astype(np.float32), lengths[run], 2))
    piece_probs = softmax(np.concatenate(outputs)[windows.rows(order)])
    n_tokens = int(batch.token_offsets[-1])
    pooled, has = pool_pieces(piece_probs, batch.piece_token, n_tokens, mode)
    w0 = 0
    for d in range(len(batch)):
        enc = batch.doc(d)
        plan = plan_windows(len(enc.piece_ids), window, stride)
        want, want_has = _pool_one_doc(
            logits[w0 : w0 + len(plan)], plan, enc.piece_token, enc.n_tokens, mode
        )
        w0 += len(plan)
        t0, t1 = batch.token_offsets[d], batch.token_offsets[d + 1]
        np.testing.assert_allclose(pooled[t0:t1], want, rtol=1e-6, atol=1e-7)
        assert (has[t0:t1] == want_has).all()


@BATCH
@given(
    lengths=st.lists(st.integers(0, 12), min_size=1, max_size=6),
    n_prefix=st.integers(0, 2),
    n_suffix=st.integers(0, 2),
)
def test_pad_windows_equals_row_by_row_padding(lengths, n_prefix, n_suffix):
    rng = np.random.default_rng(len(lengths))
    piece_ids = rng.integers(10, 100, size=sum(lengths) + 3)
    starts = rng.integers(0, 4, size=len(lengths))
    ends = starts + np.asarray(lengths)
    prefix = np.arange(1, 1 + n_prefix, dtype=np.int64)
    suffix = np.arange(5, 5 + n_suffix, dtype=np.int64)
    ids, mask = pad_windows(piece_ids, starts, ends, prefix, suffix, pad_id=0)
    width = max(lengths) + n_prefix + n_suffix
    assert ids.shape == mask.shape == (len(lengths), width)
    assert ids.dtype == mask.dtype == np.int64
    for row, (s, e) in enumerate(zip(starts, ends, strict=True)):
        seq = np.concatenate([prefix, piece_ids[s:e], suffix])
        assert ids[row].tolist() == seq.tolist() + [0] * (width - len(seq))
        assert mask[row].tolist() == [1] * len(seq) + [0] * (width - len(seq))


def _reference_encoding(tokenizer, doc, lowercase):
    """One Doc through the Hugging Face tokenizer's own call: pieces and the token of each."""
    words, index = model_words(doc, lowercase)
    if not words:
        return [], []
    enc = tokenizer(words, is_split_into_words=True, add_special_tokens=False)
    word_ids = enc.word_ids()
    ids = [i for i, w in zip(enc["input_ids"], word_ids, strict=True) if w is not None]
    return ids, [int(index[w]) for w in word_ids if w is not None]


@pytest.mark.parametrize("kind", ["distilbert", "albert", "longformer"])
@pytest.mark.parametrize("lowercase", [False, True])
def test_encode_batch_equals_per_doc_tokenisation(tiny_model, kind, lowercase):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model(kind))
    nlp = spacy.blank("en")
    texts = [
        "Angela Merkel met Tim Cook in Berlin.",
        "",
        "   \n ",
        "Der  Bundestag\n\ntagt in BERLIN. Москва 東京とパリ。 😀",
        "x" * 300 + " İstanbul",
        "short",
    ]
    docs = [nlp.make_doc(t) for t in texts]
    encode_batch(tokenizer, docs[:1], lowercase)  # some words cached, others not yet
    batch = encode_batch(tokenizer, docs, lowercase)
    assert batch.token_offsets.tolist() == np.r_[0, np.cumsum([len(d) for d in docs])].tolist()
    for d, doc in enumerate(docs):
        enc = batch.doc(d)
        ids, owner = _reference_encoding(tokenizer, doc, lowercase)
        assert enc.piece_ids.tolist() == ids and enc.piece_token.tolist() == owner
        assert enc.n_tokens == len(doc)
    per_doc = encode_docs(tokenizer, docs, lowercase)
    assert [e.piece_ids.tolist() for e in per_doc] == [
        batch.doc(d).piece_ids.tolist() for d in range(len(docs))
    ]


def test_word_pieces_slow_tokenizer_and_a_full_cache(tiny_model, monkeypatch):
    from transformers import AutoTokenizer

    from spacy_nerzoo import alignment

    path = tiny_model("distilbert")
    words = "Angela Merkel met Tim Cook in Berlin . Merkel met Cook again in Berlin".split()
    slow = AutoTokenizer.from_pretrained(path, use_fast=False)
    assert not slow.is_fast
    want = [slow(w, add_special_tokens=False)["input_ids"] for w in words]
    assert [list(p) for p in word_pieces(slow, words)] == want
    fast = AutoTokenizer.from_pretrained(path)
    monkeypatch.setattr(alignment, "MAX_CACHED_WORDS", 4)
    alignment._PIECES.pop(fast, None)
    for part in (words[:5], words):  # the cache fills up and starts again, on both calls
        got = word_pieces(fast, part)
        assert [list(p) for p in got] == [
            fast(w, add_special_tokens=False)["input_ids"] for w in part
        ]
    # The first call cached 5 words; the second found them and computed 4 more (9 > 4): the
    # cache now holds only those 4.
    assert sorted(alignment._PIECES[fast]) == [".", "Berlin", "again", "in"]


# -- the special tokens around a window ----------------------------------------------------------


def _word_level(post: str | None) -> Any:
    """A tiny word-level tokenizer whose post-processor is the template ``post`` (or none)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4, "world": 5}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)  # BertTokenizerFast reads it
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if post is not None:
        specials = [("[CLS]", 2), ("[SEP]", 3)]
        tok.post_processor = processors.TemplateProcessing(single=post, special_tokens=specials)
    return tok


def _wrap(tok: Any, cls: str) -> Any:
    import transformers

    kwargs = {
        "unk_token": "[UNK]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "sep_token": "[SEP]",
    }
    return getattr(transformers, cls)(tokenizer_object=tok, **kwargs)


@pytest.mark.parametrize("cls", ["PreTrainedTokenizerFast", "BertTokenizerFast"])
@pytest.mark.parametrize(
    ("post", "prefix", "suffix"),
    [
        ("[CLS] $A [SEP]", [2], [3]),
        (None, [], []),
        ("$A [SEP]", [], [3]),
        ("[CLS] [CLS] $A", [2, 2], []),
    ],
)
def test_special_tokens_are_the_ones_the_tokenizer_adds(cls, post, prefix, suffix):
    """What the post-processor adds, whatever build_inputs_with_special_tokens says: the generic
    class's adds nothing, BERT's own adds [CLS]/[SEP] even when tokenizer.json adds none."""
    found = special_tokens(_wrap(_word_level(post), cls))
    assert found.prefix.tolist() == prefix and found.suffix.tolist() == suffix
    assert not found.typed


def test_special_tokens_with_token_types():
    found = special_tokens(_wrap(_word_level("[CLS]:0 $A:1 [SEP]:1"), "BertTokenizerFast"))
    assert found.typed and found.word_type == 1
    assert found.prefix_types.tolist() == [0] and found.suffix_types.tolist() == [1]


def test_special_tokens_of_a_slow_tokenizer(tiny_model):
    from transformers import AutoTokenizer

    slow = AutoTokenizer.from_pretrained(tiny_model("distilbert"), use_fast=False)
    found = special_tokens(slow)
    assert found.prefix.tolist() == [slow.cls_token_id]
    assert found.suffix.tolist() == [slow.sep_token_id]


def test_special_tokens_that_do_not_wrap_the_words_are_refused():
    # A template repeating the sentence: no prefix and suffix around one window make that.
    with pytest.raises(ValueError, match="in one run"):
        special_tokens(_wrap(_word_level("[CLS] $A [SEP] $A"), "PreTrainedTokenizerFast"))


def _english_doc(text: str) -> Any:
    return spacy.blank("en")(text)


@pytest.mark.parametrize(
    "text,joined_words",
    [
        ("a pro-Western party", ["pro-Western"]),
        ("the state-of-the-art Mercedes-Benz", ["state-of-the-art", "Mercedes-Benz"]),
        ("Smith - Jones", []),  # a spaced dash joins nothing
        ("U.S.-based Kuala Lumpur-based firms", ["Lumpur-based"]),  # spaCy keeps the first
        ("(-5) and x-", []),  # punctuation or nothing on one side
        ("", []),
        ("a-b", ["a-b"]),
    ],
)
def test_joined_tokens_marks_split_hyphen_compounds(text, joined_words):
    from spacy_nerzoo.alignment import joined_tokens

    doc = _english_doc(text)
    joined = joined_tokens([doc])
    assert len(joined) == len(doc)
    words, current = [], None
    for token, cont in zip(doc, joined, strict=True):
        if cont:
            current.append(token.text)
        else:
            if current and len(current) > 1:
                words.append("".join(current))
            current = [token.text]
    if current and len(current) > 1:
        words.append("".join(current))
    assert words == joined_words
    assert not joined[:1].any()  # a Doc's first token never continues anything


def test_encode_batch_reads_a_split_compound_as_one_word(tiny_model):
    """The compound's pieces are those of the whole word, at its first token, cased as a whole;
    the other Docs of the batch are unaffected."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model("distilbert"))
    docs = [_english_doc("Hello pro-Western world"), _english_doc("no compound here")]
    plain = encode_batch(tokenizer, docs, lowercase=True, casing=True)
    batch = encode_batch(tokenizer, docs, lowercase=True, casing=True, join_hyphens=True)
    assert plain.joined is None
    assert batch.joined.tolist() == [False, False, True, True, False, False, False, False]
    first = batch.doc(0)
    whole = word_pieces(tokenizer, ["hello", "pro-western", "world"])
    assert first.piece_ids.tolist() == [i for w in whole for i in w]
    owners = [0] * len(whole[0]) + [1] * len(whole[1]) + [4] * len(whole[2])
    assert first.piece_token.tolist() == owners
    from spacy_nerzoo.casing import LOWER, MIXED, TITLE

    assert first.piece_types.tolist() == (
        [TITLE] * len(whole[0]) + [MIXED] * len(whole[1]) + [LOWER] * len(whole[2])
    )
    assert first.joined.tolist() == [False, False, True, True, False]
    second = batch.doc(1)
    ref = plain.doc(1)
    assert second.piece_ids.tolist() == ref.piece_ids.tolist()
    assert second.piece_token.tolist() == ref.piece_token.tolist()


def test_joined_tokens_never_join_across_docs_of_a_batch():
    from spacy.tokens import Doc

    from spacy_nerzoo.alignment import joined_tokens

    vocab = spacy.blank("en").vocab
    ends_in_hyphen = Doc(vocab, words=["a", "-"], spaces=[False, False])
    compound = Doc(vocab, words=["b", "-", "c"], spaces=[False, False, False])
    assert joined_tokens([ends_in_hyphen, compound]).tolist() == [
        *[False, False],
        *[False, True, True],
    ]
