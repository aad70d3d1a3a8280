import itertools

import numpy as np
import pytest
from seqeval.metrics.sequence_labeling import get_entities

from spacy_nerzoo.decoding import TagScheme, chunk, decode, viterbi

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
    from spacy_nerzoo.decoding import decode_batch

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
    from spacy_nerzoo.decoding import entity_confidences

    probs = np.array([[0.2, 0.8], [0.4, 0.6], [0.9, 0.1]], np.float32)
    tags = np.array([1, 1, 0])
    np.testing.assert_allclose(
        entity_confidences(probs, tags, [(0, 2, "X"), (2, 3, "Y")]), [0.7, 0.9], rtol=1e-6
    )
