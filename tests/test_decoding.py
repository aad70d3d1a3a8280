import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from seqeval.metrics.sequence_labeling import get_entities

from spacy_nerzoo.decoding import (
    TagScheme,
    chunk,
    chunk_flat,
    decode,
    decode_batch,
    decode_flat,
    mean_tag_probs,
    viterbi,
    viterbi_batch,
)

IOB2 = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
BIOES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]


def brute_force(log_probs, start, trans, end):
    best, best_seq = -np.inf, None
    for seq in itertools.product(range(log_probs.shape[1]), repeat=len(log_probs)):
        if not start[seq[0]] or not end[seq[-1]]:
            continue
        if not all(trans[a, b] for a, b in itertools.pairwise(seq)):
            continue
        score = sum(log_probs[i, t] for i, t in enumerate(seq))
        if score > best:
            best, best_seq = score, seq
    return list(best_seq)


@pytest.mark.parametrize("labels", [IOB2, BIOES[:5]])
@pytest.mark.parametrize("seed", range(15))
def test_viterbi_equals_brute_force(labels, seed):
    rng = np.random.default_rng(seed)
    scheme = TagScheme.from_labels(labels)
    n = int(rng.integers(1, 6))
    log_probs = np.log(rng.dirichlet(np.ones(len(labels)), size=n)).astype(np.float32)
    masks = scheme.transitions()
    assert viterbi(log_probs, *masks).tolist() == brute_force(log_probs, *masks)


def test_scheme_detection():
    assert TagScheme.from_labels(IOB2).name == "IOB2"
    assert TagScheme.from_labels(BIOES).name == "BIOES"
    io = TagScheme.from_labels(["O", "person-actor", "location-GPE"])
    assert io.name == "IO" and io.entity_types == ["location-GPE", "person-actor"]
    with pytest.raises(ValueError, match="generic"):
        TagScheme.from_labels(["LABEL_0", "LABEL_1"])
    with pytest.raises(ValueError, match="no 'O'"):
        TagScheme.from_labels(["B-PER", "I-PER"])


@pytest.mark.parametrize("seed", range(30))
def test_chunk_matches_seqeval_conlleval_mode(seed):
    rng = np.random.default_rng(seed)
    scheme = TagScheme.from_labels(IOB2)
    tags = rng.integers(0, len(IOB2), size=int(rng.integers(0, 25))).tolist()
    expected = [(s, e + 1, t) for t, s, e in get_entities([IOB2[i] for i in tags])]
    assert chunk(tags, scheme) == expected


def test_io_chunking_merges_adjacent_same_type():
    scheme = TagScheme.from_labels(["O", "person-actor", "location-GPE"])
    assert chunk([1, 1, 2, 0, 1], scheme) == [
        (0, 2, "person-actor"),
        (2, 3, "location-GPE"),
        (4, 5, "person-actor"),
    ]


def test_viterbi_never_starts_with_inside_and_forces_outside():
    scheme = TagScheme.from_labels(IOB2)
    probs = np.array(
        [[0.1, 0.0, 0.9, 0.0, 0.0], [0.0, 0.0, 0.0, 0.1, 0.9], [0.0, 0.0, 0.0, 0.0, 1.0]]
    )
    tags, ents = decode(probs.astype(np.float32), np.array([False, False, True]), scheme, "viterbi")
    assert IOB2[tags[0]] != "I-LOC" and IOB2[tags[2]] == "O"
    argmax_tags, argmax_ents = decode(probs.astype(np.float32), np.zeros(3, bool), scheme, "argmax")
    # conlleval chunking: a stray I- starts an entity, and a type change starts another.
    assert argmax_ents == [(0, 1, "LOC"), (1, 3, "PER")]


@pytest.mark.parametrize("seed", range(5))
def test_batched_decoding_equals_per_sequence(seed):
    rng = np.random.default_rng(seed)
    scheme = TagScheme.from_labels(IOB2)
    probs = [
        rng.dirichlet(np.ones(5), size=int(n)).astype(np.float32)
        for n in rng.integers(0, 40, size=12)
    ]
    forced = [rng.random(len(p)) < 0.1 for p in probs]
    batched = decode_batch(probs, forced, scheme, "viterbi")
    for p, f, tags in zip(probs, forced, batched, strict=True):
        q = p.copy()
        q[f] = 0.0
        q[f, 0] = 1.0
        with np.errstate(divide="ignore"):
            assert tags.tolist() == viterbi(np.log(q), *scheme.masks).tolist()


def test_entity_confidences_are_mean_tag_probabilities():
    probs = np.array([[0.2, 0.8], [0.4, 0.6], [0.9, 0.1]], np.float32)
    tags = np.array([1, 1, 0])
    starts, ends = np.array([0, 2]), np.array([2, 3])
    np.testing.assert_allclose(mean_tag_probs(probs, tags, starts, ends), [0.7, 0.9], rtol=1e-6)


# -- the batched path: all Docs of a batch laid end to end -------------------------------------

BATCH = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCHEMES = {
    "IOB2": IOB2,
    "BIOES": BIOES,
    "IO": ["O", "person-actor", "location-GPE", "org"],
    "BILOU": ["O", "U-PER", "B-PER", "I-PER", "L-PER", "U-LOC", "B-LOC", "L-LOC"],
}


@st.composite
def tagged_docs(draw: st.DrawFn, n_tags: int) -> list[list[int]]:
    return draw(st.lists(st.lists(st.integers(0, n_tags - 1), max_size=15), max_size=8))


@pytest.mark.parametrize("name", sorted(SCHEMES))
@BATCH
@given(data=st.data())
def test_chunk_flat_equals_chunk_per_doc(name, data):
    scheme = TagScheme.from_labels(SCHEMES[name])
    docs = data.draw(tagged_docs(len(scheme.prefixes)))
    offsets = np.r_[0, np.cumsum([len(d) for d in docs])].astype(np.int64)
    flat = np.asarray([t for d in docs for t in d], np.int64)
    starts, ends, types = chunk_flat(flat, offsets, scheme)
    got = [
        (int(s), int(e), scheme.entity_types[t])
        for s, e, t in zip(starts, ends, types, strict=True)
    ]
    want = [
        (offsets[d] + s, offsets[d] + e, t)
        for d, tags in enumerate(docs)
        for s, e, t in chunk(tags, scheme)
    ]
    assert got == want


def reference_viterbi(log_probs, start, trans, end):
    """Textbook Viterbi on one sequence, position by position (ties: the lowest tag index)."""
    neg = np.float32(-1e30)
    log_probs = np.maximum(log_probs, np.log(np.float32(1e-30)))
    score = np.where(start, log_probs[0], neg)
    back = []
    for i in range(1, len(log_probs)):
        cand = score[:, None] + np.where(trans, np.float32(0), neg)  # [prev, next]
        back.append(cand.argmax(axis=0))
        score = cand.max(axis=0) + log_probs[i]
    path = [int(np.where(end, score, neg).argmax())]
    for best in reversed(back):
        path.append(int(best[path[-1]]))
    return path[::-1]


@pytest.mark.parametrize("name", ["IOB2", "BIOES", "IO"])
@pytest.mark.parametrize("mode", ["viterbi", "argmax"])
@BATCH
@given(seed=st.integers(0, 2**32 - 1), lengths=st.lists(st.integers(0, 20), max_size=10))
def test_decode_flat_equals_decoding_each_doc_alone(name, mode, seed, lengths):
    rng = np.random.default_rng(seed)
    scheme = TagScheme.from_labels(SCHEMES[name])
    n_tags = len(scheme.prefixes)
    probs = [rng.dirichlet(np.ones(n_tags) * 0.3, size=n).astype(np.float32) for n in lengths]
    forced = [rng.random(n) < 0.2 for n in lengths]
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    flat = np.concatenate([np.zeros((0, n_tags), np.float32), *probs])
    tags = decode_flat(flat, np.concatenate([np.zeros(0, bool), *forced]), offsets, scheme, mode)
    for d, (p, f) in enumerate(zip(probs, forced, strict=True)):
        q = p.copy()
        q[f] = 0.0
        q[f, scheme.outside] = 1.0
        if mode == "argmax" or name == "IO":
            want = q.argmax(axis=1).tolist()
        else:
            log_q = np.log(np.maximum(q, np.float32(1e-30)))
            want = reference_viterbi(log_q, *scheme.masks) if len(q) else []
        assert tags[offsets[d] : offsets[d + 1]].tolist() == want
    assert [t.tolist() for t in decode_batch(probs, forced, scheme, mode)] == [
        tags[offsets[d] : offsets[d + 1]].tolist() for d in range(len(lengths))
    ]


@pytest.mark.parametrize("seed", range(10))
def test_viterbi_batch_rows_in_any_length_order(seed):
    rng = np.random.default_rng(seed)
    scheme = TagScheme.from_labels(BIOES)
    lengths = rng.integers(0, 12, size=7)
    log_probs = np.log(rng.dirichlet(np.ones(len(BIOES)), size=(7, 12))).astype(np.float32)
    paths = viterbi_batch(log_probs, lengths, *scheme.masks)
    for row, n in enumerate(lengths):
        if n:
            assert paths[row, :n].tolist() == viterbi(log_probs[row, :n], *scheme.masks).tolist()


@BATCH
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40))
def test_mean_tag_probs_equals_per_entity_mean(seed, n):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(4), size=n).astype(np.float32)
    tags = rng.integers(0, 4, size=n)
    cuts = np.sort(rng.choice(np.arange(n + 1), size=min(n + 1, 6), replace=False))
    starts, ends = cuts[:-1:2], cuts[1::2]
    starts = starts[: len(ends)]
    got = mean_tag_probs(probs, tags, starts, ends)
    want = [
        probs[np.arange(s, e), tags[s:e]].astype(np.float64).mean()
        for s, e in zip(starts, ends, strict=True)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got.dtype == np.float32
