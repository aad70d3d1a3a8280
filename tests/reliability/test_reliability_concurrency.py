"""Concurrency: one pipeline shared by threads, and ``nlp.pipe(n_process=2)``, on both backends.

A web server typically loads one pipeline and calls it from a pool of worker threads; batch jobs
use ``n_process``. Both must give exactly the Docs that serial use gives. The known hazards are
the fast tokenizer's Rust borrow checker ("Already borrowed" when a call changes truncation or
padding while another thread encodes), torch's and onnxruntime's thread pools across ``fork``,
and the lazy model load racing with itself on first use.
"""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc

BASE = [
    "Angela Merkel met Tim Cook in Berlin on Monday.",
    "The European Commission said on Thursday it disagreed with German advice.",
    "Peter Blackburn reported from Brussels for Reuters.",
    "Apple and Microsoft opened offices in London, Paris and New York.",
    "Москва и Санкт-Петербург. 東京とパリ。 Emoji 😀 here.",
    "",
    "  \n ",
]
# Different lengths, so that windows, padding and batch composition vary between calls.
TEXTS = [" ".join(BASE[i % 5 : i % 5 + 1 + i % 4]) for i in range(20)] + BASE[5:]


class Annotations:
    """Text, entities and tags of a Doc, compared exactly, and confidences, compared to 1e-5
    (thread pools of different sizes may sum floats in a different order)."""

    def __init__(self, doc: Doc) -> None:
        self.exact = (
            doc.text,
            tuple((e.start_char, e.end_char, e.label_) for e in doc.ents),
            tuple(t.ent_iob_ for t in doc),
        )
        self.scores = np.asarray(doc.spans["nerzoo"].attrs["scores"], np.float64)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Annotations)
            and self.exact == other.exact
            and np.allclose(self.scores, other.scores, rtol=0, atol=1e-5)
        )

    def __repr__(self) -> str:
        return f"Annotations({self.exact!r}, {self.scores.tolist()!r})"


def annotations(doc: Doc) -> Annotations:
    return Annotations(doc)


def make_nlp(path: Path, **config: Any) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("token_classifier", config={"model": str(path), "max_length": 32, **config})
    nlp.initialize()
    return nlp


@pytest.fixture(scope="module")
def onnx_checkpoint(tiny_model: Callable[..., Path], tmp_path_factory) -> Path:
    """The tiny DistilBERT with its exported model.onnx beside it (ensure_onnx uses that file)."""
    from spacy_nerzoo.export.onnx import export_onnx

    path = Path(shutil.copytree(tiny_model("distilbert"), tmp_path_factory.mktemp("onnx") / "m"))
    export_onnx(path, path / "model.onnx", check=False)  # parity is tested in tests/export
    return path


def _pipeline(request: pytest.FixtureRequest, tiny_model: Callable[..., Path], which: str):
    kind, backend = which.split("-")
    if backend == "onnx":
        return make_nlp(request.getfixturevalue("onnx_checkpoint"), backend="onnx")
    return make_nlp(tiny_model(kind))


@pytest.mark.parametrize(
    "which", ["distilbert-torch", "albert-torch", "longformer-torch", "distilbert-onnx"]
)
def test_threads_share_a_pipeline(request, tiny_model, which):
    nlp = _pipeline(request, tiny_model, which)
    serial = [annotations(nlp(t)) for t in TEXTS]
    for _ in range(2):
        with ThreadPoolExecutor(max_workers=4) as pool:
            threaded = list(pool.map(lambda t: annotations(nlp(t)), TEXTS * 2))
        assert threaded == serial * 2


def test_threads_each_running_nlp_pipe(tiny_model):
    nlp = make_nlp(tiny_model("distilbert"), batch_size=3)
    serial = [annotations(d) for d in nlp.pipe(TEXTS)]
    chunks = [TEXTS[i::4] for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda c: [annotations(d) for d in nlp.pipe(c, batch_size=2)], chunks)
        )
    for i, chunk in enumerate(results):
        assert chunk == serial[i::4]


# Run in a fresh interpreter: a failed concurrent load leaves transformers' process-wide patch of
# torch.nn.Module.register_parameter (meta device) in place, which breaks every later model load
# in the process, including other tests'.
FIRST_USE_SCRIPT = """
import sys, threading
from concurrent.futures import ThreadPoolExecutor
import spacy
import spacy_nerzoo.components.token_classifier as tc

loads = []
original = tc.load_runtime
def counting_load(*args, **kwargs):
    loads.append(threading.get_ident())
    return original(*args, **kwargs)
tc.load_runtime = counting_load

def make():
    nlp = spacy.blank("en")
    nlp.add_pipe("token_classifier", config={"model": sys.argv[1]})
    return nlp

def ents(doc):
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]

nlp = make()
start = threading.Barrier(4)
def first_call(text):
    start.wait()  # all four threads make the first call at once
    return ents(nlp(text))

text = "Angela Merkel met Tim Cook in Berlin on Monday."
with ThreadPoolExecutor(max_workers=4) as pool:
    futures = [pool.submit(first_call, text) for _ in range(4)]
errors = [repr(f.exception())[:200] for f in futures if f.exception()]
print("errors", errors)
print("loads", len(loads))
later = ents(make()(text))  # a later load in the same process still works
assert all(f.result() == later for f in futures)
print("ok")
"""


def test_concurrent_first_use_loads_the_model_once(tiny_model):
    out = subprocess.run(
        [sys.executable, "-c", FIRST_USE_SCRIPT, str(tiny_model("albert"))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    assert "errors []" in out.stdout and "loads 1" in out.stdout and "ok" in out.stdout


@pytest.mark.parametrize("which", ["albert-torch", "distilbert-onnx"])
def test_n_process_matches_one_process(request, tiny_model, which):
    nlp = _pipeline(request, tiny_model, which)
    serial = [annotations(d) for d in nlp.pipe(TEXTS, batch_size=4)]
    parallel = [annotations(d) for d in nlp.pipe(iter(TEXTS), batch_size=4, n_process=2)]
    assert parallel == serial
    docs = nlp.pipe(TEXTS[:3], n_process=2)
    confidences = [e._.confidence for doc in docs for e in doc.ents]
    assert all(c is not None and np.isfinite(c) for c in confidences)


# spaCy's n_process pickles the pipeline's components for child processes started with "spawn"
# (the default on macOS and Windows) or "forkserver" (Linux's default from Python 3.14).
SPAWN_REASON = (
    "BUG: the pipeline cannot be pickled: TorchBackend keeps the torch module (self._torch) and "
    "OnnxBackend an onnxruntime InferenceSession as attributes, so nlp.pipe(n_process=2) fails "
    "with TypeError under the spawn and forkserver start methods"
)


@pytest.mark.parametrize("which", ["distilbert-torch", "distilbert-onnx"])
def test_pipeline_pickles_for_spawned_processes(request, tiny_model, which):
    nlp = _pipeline(request, tiny_model, which)
    clone = pickle.loads(pickle.dumps(nlp))
    assert [annotations(d) for d in clone.pipe(TEXTS)] == [annotations(d) for d in nlp.pipe(TEXTS)]


SPAWN_SCRIPT = """
import multiprocessing, sys
import spacy

def ents(doc):
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]

if __name__ == "__main__":
    multiprocessing.set_start_method(sys.argv[2])
    nlp = spacy.blank("en")
    nlp.add_pipe("token_classifier", config={"model": sys.argv[1]})
    texts = ["Angela Merkel met Tim Cook in Berlin.", "Paris and London.", ""] * 3
    serial = [ents(d) for d in nlp.pipe(texts)]
    assert [ents(d) for d in nlp.pipe(texts, n_process=2, batch_size=2)] == serial
    print("ok")
"""


@pytest.mark.slow
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_n_process_with_spawn_and_forkserver(tiny_model, tmp_path, method):
    script = tmp_path / "spawn_check.py"  # spawned children re-import the main module's file
    script.write_text(SPAWN_SCRIPT, encoding="utf8")
    out = subprocess.run(
        [sys.executable, str(script), str(tiny_model("distilbert")), method],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]
