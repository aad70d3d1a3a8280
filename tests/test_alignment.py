import numpy as np
import pytest

from spacy_nerzoo.alignment import best_window, plan_windows, pool_pieces


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
    import spacy

    from spacy_nerzoo.alignment import model_words

    doc = spacy.blank("en")("İstanbul  and\n\nBERLIN")
    words, index = model_words(doc, lowercase=True)
    assert words == ["i̇stanbul", "and", "berlin"]
    assert [doc[i].text for i in index] == ["İstanbul", "and", "BERLIN"]
