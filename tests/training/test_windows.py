"""The trainer's windows (``training.windows``) are the windows the shipped models were trained on.

``build_windows`` now takes its pieces from ``alignment.word_pieces`` and its cuts from
``alignment.pack_windows``. ``_frozen_build_windows`` below is the trainer's code before that
change, kept verbatim (its own tokenizer call and ``word_ids`` loop, ``_split_long``, the packing
loop); every window must come out identical, piece for piece, for each tokenizer family.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from spacy_nerzoo.alignment import pack_windows, special_tokens  # noqa: E402
from spacy_nerzoo.casing import SPECIAL, word_class  # noqa: E402
from spacy_nerzoo.data.readers import Document, Sentence, read_documents  # noqa: E402
from spacy_nerzoo.testing import CONLL_TAGS, CORPUS  # noqa: E402
from spacy_nerzoo.training import windows as trainer_windows  # noqa: E402

IGNORE_INDEX = -100
Frozen = tuple[list[int], list[int], list[int] | None, list[int]]


# -- the trainer's windows before they moved onto alignment.py (frozen; do not edit) -------------


def _sentence_pieces(
    tokenizer: Any,
    sentences: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    label2id: dict[str, int],
) -> list[tuple[list[int], list[int], list[int], list[int]]]:
    if not sentences:
        return []
    enc = tokenizer(list(map(list, sentences)), is_split_into_words=True, add_special_tokens=False)
    out = []
    for i, sent_tags in enumerate(tags):
        ids = enc["input_ids"][i]
        word_ids = enc.word_ids(i)
        types = [SPECIAL if w is None else word_class(sentences[i][w]) for w in word_ids]
        labels, firsts = [], []
        prev = None
        for wid in word_ids:
            if wid is not None and wid != prev:
                labels.append(label2id[sent_tags[wid]])
                firsts.append(wid)
            else:
                labels.append(IGNORE_INDEX)
            prev = wid
        out.append((list(ids), labels, types, firsts))
    return out


def _split_long(
    ids: list[int], labels: list[int], types: list[int], words: list[int], size: int
) -> Iterable[tuple[list[int], list[int], list[int], list[int]]]:
    while len(ids) > size:
        cut = size
        while cut > 0 and labels[cut] == IGNORE_INDEX:
            cut -= 1
        if cut == 0:
            cut = size
        n_words = sum(label != IGNORE_INDEX for label in labels[:cut])
        yield ids[:cut], labels[:cut], types[:cut], words[:n_words]
        ids, labels, types, words = ids[cut:], labels[cut:], types[cut:], words[n_words:]
    if ids:
        yield ids, labels, types, words


def _frozen_build_windows(
    docs: Sequence[Document],
    tokenizer: Any,
    max_length: int,
    labels: Sequence[str],
    casing: bool = False,
) -> list[Frozen]:
    specials = special_tokens(tokenizer)
    prefix, suffix = specials.prefix.tolist(), specials.suffix.tolist()
    size = max_length - len(prefix) - len(suffix)
    label2id = {label: i for i, label in enumerate(labels)}
    sentences = [s for doc in docs for s in doc.sentences]
    pieces: list[tuple[list[int], list[int], list[int], list[int]]] = []
    for start in range(0, len(sentences), 2048):
        part = sentences[start : start + 2048]
        pieces += _sentence_pieces(
            tokenizer, [s.words for s in part], [s.tags for s in part], label2id
        )
    offsets = np.cumsum([0, *(len(s.words) for s in sentences)]).tolist()
    windows: list[list[list[int]]] = []
    first = 0
    for doc in docs:
        sents = pieces[first : first + len(doc.sentences)]
        cur: list[list[int]] = [[], [], [], []]
        for k, (sent_ids, sent_labels, sent_types, sent_words) in enumerate(sents):
            global_words = [offsets[first + k] + w for w in sent_words]
            for part in _split_long(sent_ids, sent_labels, sent_types, global_words, size):
                if cur[0] and len(cur[0]) + len(part[0]) > size:
                    windows.append(cur)
                    cur = [[], [], [], []]
                for field, values in zip(cur, part, strict=True):
                    field += values
        first += len(doc.sentences)
        if cur[0]:
            windows.append(cur)
    pre, post = len(prefix), len(suffix)
    return [
        (
            [*prefix, *ids, *suffix],
            [IGNORE_INDEX] * pre + labs + [IGNORE_INDEX] * post,
            [SPECIAL] * pre + types + [SPECIAL] * post if casing else None,
            words,
        )
        for ids, labs, types, words in windows
    ]


# -- the comparison -----------------------------------------------------------------------------


def _assert_same(docs: Sequence[Document], tokenizer: Any, max_length: int) -> int:
    """Old and new windows of ``docs`` are identical, with and without casing; their number."""
    for casing in (False, True):
        old = _frozen_build_windows(docs, tokenizer, max_length, CONLL_TAGS, casing=casing)
        new = trainer_windows.build_windows(docs, tokenizer, max_length, CONLL_TAGS, casing)
        assert [(w.input_ids, w.labels, w.type_ids, w.words) for w in new] == old
    return len(old)


def _synthetic(seed: int, n_docs: int = 40) -> list[Document]:
    """Documents of sentences drawn from ``testing.CORPUS`` (scripts, emoji, dates), with
    over-long sentences, a word longer than any window, and words with no pieces at all."""
    rng = random.Random(seed)
    vocab = sorted({w for line in CORPUS for w in line.split()})
    odd = ["\u200b", "x" * 300, "Donaudampfschifffahrtsgesellschaftskapitän", "1996-08-22"]
    docs = []
    for _ in range(n_docs):
        sents = []
        for _ in range(rng.randint(1, 8)):
            words = [rng.choice(vocab) for _ in range(rng.choice([1, 3, 8, 20, 70]))]
            if rng.random() < 0.2:
                words.insert(rng.randrange(len(words) + 1), rng.choice(odd))
            sents.append(Sentence(words, [rng.choice(CONLL_TAGS) for _ in words]))
        docs.append(Document(sents))
    return docs


@pytest.mark.parametrize("kind", ["bert", "distilbert", "albert", "longformer"])
@pytest.mark.parametrize("max_length", [8, 32, 128])
def test_windows_unchanged_synthetic(
    tiny_model: Callable[..., Path], kind: str, max_length: int
) -> None:
    """WordPiece (cased and uncased), SentencePiece Unigram and byte-level BPE."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model(kind))
    assert _assert_same(_synthetic(max_length), tokenizer, max_length) > 40


def test_windows_unchanged_minilm(tokenizer: Any) -> None:
    """The shipped model's tokenizer (all-MiniLM-L6-v2), short and long windows."""
    for max_length in (16, 256):
        assert _assert_same(_synthetic(7), tokenizer, max_length) > 40


def test_windows_unchanged_conll_train(tokenizer: Any, shared_data: Path) -> None:
    """The CoNLL-2003 training file in the shipped model's windows (max_length 256)."""
    docs = read_documents(shared_data / "conll2003" / "train.txt")
    assert _assert_same(docs, tokenizer, 256) > 900


def test_pack_windows_cuts() -> None:
    """Sentences packed while they fit; a long one cut at word starts, or mid-word when one word
    is longer than a window."""
    starts = np.ones(30, bool)
    assert pack_windows([3, 4, 2, 5], 8, starts) == [(0, 7), (7, 14)]
    assert pack_windows([], 8, starts) == []
    assert pack_windows([0, 3, 0], 8, starts) == [(0, 3)]
    # Pieces 0-9 one sentence whose words start at 0, 4 and 7: cut before the word at 4.
    starts = np.zeros(12, bool)
    starts[[0, 4, 7, 10]] = True
    assert pack_windows([10, 2], 5, starts) == [(0, 4), (4, 7), (7, 12)]
    # One word of 10 pieces, then one of 1: cut at the window size.
    starts = np.zeros(11, bool)
    starts[[0, 10]] = True
    assert pack_windows([11], 4, starts) == [(0, 4), (4, 8), (8, 11)]
    with pytest.raises(ValueError):
        pack_windows([1], 0, starts)
