"""A Doc's entities and scores must not depend on the other Docs in its ``nlp.pipe`` batch.

For every backend (torch fp32, onnxruntime fp32, onnxruntime int8) on tiny random models: a
target Doc annotated alone, then inside batches of generated batch-mates (short, long, odd
characters, long runs of one word) at a random position, with random ``nlp.pipe`` and
forward-pass batch sizes. Entities must be identical and confidences equal to ``RTOL``.

Dynamic int8 used to fail this: onnxruntime's ``DynamicQuantizeLinear`` picks one activation
scale for the whole forward pass, so a loud batch-mate coarsened the target's rounding (see
``spacy_nerzoo.export.row_scales``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.language import Language

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# (backend, precision) -> relative tolerance on confidences. fp32 differs between batch shapes
# only by summation order (~1e-7). int8 with per-row scales quantises the same values the same
# way; a last-bit fp32 difference can still move one activation across a rounding boundary,
# which moves a confidence by far less than this.
BACKENDS = {("torch", "fp32"): 1e-4, ("onnx", "fp32"): 1e-4, ("onnx", "int8"): 2e-3}

BATCH = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

TARGETS = [
    "Angela Merkel met Tim Cook in Berlin on Tuesday.",
    "The European Commission said it disagreed with German advice to consumers.",
    "Peter Blackburn reported from Brussels for Reuters.",
]
WORDS = st.sampled_from(
    ["Angela", "Merkel", "Berlin", "met", "in", "New", "York", ".", "1996-08-22", "$", "%",
     "Москва", "東京", "😀", "ZZZZZZZZ", "!!!!", "the", "of", "Goldman", "Sachs"]
)  # fmt: skip
MATE = st.one_of(
    st.lists(WORDS, min_size=1, max_size=12).map(" ".join),
    # Long and repetitive: many windows of one piece, very different activation ranges.
    st.tuples(WORDS, st.integers(50, 400)).map(lambda t: " ".join([t[0]] * t[1])),
    st.text(st.characters(exclude_categories=("Cs",)), min_size=0, max_size=40),
)


@pytest.fixture(scope="module")
def pipelines(
    tiny_model: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[tuple[str, str, int], Language]]:
    """One pipeline per (backend, precision, forward batch size), ONNX files cached here."""
    cache: dict[tuple[str, str, int], Language] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPACY_NERZOO_CACHE", str(tmp_path_factory.mktemp("onnx-cache")))
        for backend, precision in BACKENDS:
            for forward_batch in (1, 8):
                nlp = spacy.blank("en")
                config = {"backend": backend, "precision": precision, "batch_size": forward_batch}
                nlp.add_pipe(
                    "token_classifier",
                    config={"model": str(tiny_model("distilbert")), "max_length": 32, **config},
                )
                nlp.initialize()
                cache[backend, precision, forward_batch] = nlp
        yield cache


def annotate(nlp: Language, texts: list[str], batch_size: int) -> list[tuple[list, list]]:
    return [
        ([(e.start, e.end, e.label_) for e in doc.ents], list(doc.spans["nerzoo"].attrs["scores"]))
        for doc in nlp.pipe(texts, batch_size=batch_size)
    ]


@pytest.mark.parametrize("backend,precision", list(BACKENDS), ids=["-".join(b) for b in BACKENDS])
@BATCH
@given(
    target=st.sampled_from(TARGETS),
    mates=st.lists(MATE, min_size=1, max_size=6),
    data=st.data(),
)
def test_same_doc_same_entities_whatever_its_batch(
    pipelines, backend, precision, target, mates, data
):
    forward_batch = data.draw(st.sampled_from([1, 8]), label="component batch_size")
    nlp = pipelines[backend, precision, forward_batch]
    position = data.draw(st.integers(0, len(mates)), label="position")
    pipe_batch = data.draw(st.integers(1, len(mates) + 1), label="nlp.pipe batch_size")
    ((alone_ents, alone_scores),) = annotate(nlp, [target], 1)
    texts = [*mates[:position], target, *mates[position:]]
    got_ents, got_scores = annotate(nlp, texts, pipe_batch)[position]
    assert got_ents == alone_ents
    np.testing.assert_allclose(got_scores, alone_scores, rtol=BACKENDS[backend, precision])
