"""Backends and precisions through the component: parity, serialisation, and ONNX without torch."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import spacy

from spacy_nerzoo.api import load
from spacy_nerzoo.errors import ModelLoadError

TEXT = (
    "Angela Merkel met Tim Cook in Berlin. The European Commission said on Thursday it "
    "disagreed with German advice. Peter Blackburn reported from Brussels for Reuters."
)
# A real install without torch (and so without spacy-transformers), built by `make test`:
# spacy, transformers, tokenizers, onnxruntime and this package.
NO_TORCH_PYTHON = Path(__file__).resolve().parents[2] / ".venv-notorch" / "bin" / "python"


def make_nlp(path, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("token_classifier", config={"model": str(path), **config})
    return nlp


def ents(doc):
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def without_torch(*args: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in the torch-free environment, offline."""
    if not NO_TORCH_PYTHON.exists():
        pytest.skip("no torch-free environment: `make test` builds .venv-notorch")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([str(NO_TORCH_PYTHON), *args], capture_output=True, text=True, env=env)


def run_without_torch(code: str) -> str:
    check = "import importlib.util, sys; assert importlib.util.find_spec('torch') is None\n"
    out = without_torch("-c", check + code)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.fixture
def onnx_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPACY_NERZOO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("kind", ["albert", "distilbert"])
def test_onnx_fp32_matches_torch(tiny_model, kind, onnx_cache):
    path = tiny_model(kind)
    torch_nlp = make_nlp(path, decoding="argmax")
    onnx_nlp = make_nlp(path, decoding="argmax", backend="onnx")
    assert ents(onnx_nlp(TEXT)) == ents(torch_nlp(TEXT))
    t_pipe, o_pipe = torch_nlp.get_pipe("token_classifier"), onnx_nlp.get_pipe("token_classifier")
    ids = np.array([[2, 40, 41, 42, 3, 0]], np.int64)
    mask = np.array([[1, 1, 1, 1, 1, 0]], np.int64)
    np.testing.assert_allclose(
        o_pipe.runtime.backend.predict(ids, mask),
        t_pipe.runtime.backend.predict(ids, mask),
        atol=1e-4,
    )
    assert any(p.name == "model.onnx" for p in onnx_cache.rglob("*.onnx"))


@pytest.mark.parametrize("backend,precision", [("onnx", "int8"), ("torch", "bf16")])
def test_reduced_precision_gives_valid_entities(tiny_model, backend, precision, onnx_cache):
    doc = make_nlp(tiny_model("distilbert"), backend=backend, precision=precision)(TEXT)
    assert doc.ents
    assert all(t.ent_iob_ in ("B", "I", "O") for t in doc)
    assert all(0 < e._.confidence <= 1 for e in doc.ents)


def test_onnx_pipeline_round_trip_runs_without_torch(tiny_model, tmp_path, onnx_cache):
    nlp = make_nlp(tiny_model("distilbert"), backend="onnx", precision="int8")
    expected = ents(nlp(TEXT))
    nlp.to_disk(tmp_path / "pipeline")
    assert (tmp_path / "pipeline" / "token_classifier" / "model" / "model.int8.onnx").exists()
    assert ents(spacy.load(tmp_path / "pipeline")(TEXT)) == expected
    out = run_without_torch(
        "import json, spacy\n"
        f"nlp = spacy.load({str(tmp_path / 'pipeline')!r})\n"
        f"doc = nlp({TEXT!r})\n"
        "print(json.dumps([[e.start_char, e.end_char, e.label_] for e in doc.ents]))\n"
        "print(sys.modules.get('torch'))\n"
    )
    found, torch_module = out.strip().splitlines()[-2:]
    assert [tuple(e) for e in json.loads(found)] == expected
    assert torch_module == "None"


def test_builtin_model_works_offline_without_torch_and_config():
    out = run_without_torch(
        "import json, spacy\n"
        "nlp = spacy.blank('en')\n"
        "nlp.add_pipe('minilm_conll03')\n"
        "doc = nlp('Angela Merkel met Tim Cook of Apple in Berlin on Monday.')\n"
        "print(json.dumps([[e.text, e.label_] for e in doc.ents]))\n"
    )
    found = {tuple(e) for e in json.loads(out.strip().splitlines()[-1])}
    assert {("Angela Merkel", "PER"), ("Tim Cook", "PER"), ("Berlin", "LOC")} <= found


def test_builtin_fewnerd_model_works_offline_without_torch_and_config():
    """Fine Few-NERD types by default, their coarse family with label_level="coarse"."""
    text = "Tom Hanks starred in the film Forrest Gump, shot in Savannah, Georgia."
    out = run_without_torch(
        "import json, spacy\n"
        "nlp = spacy.blank('en')\n"
        "nlp.add_pipe('minilm_fewnerd')\n"
        "coarse = spacy.blank('en')\n"
        "coarse.add_pipe('minilm_fewnerd', config={'label_level': 'coarse'})\n"
        f"print(json.dumps([[e.text, e.label_] for e in nlp({text!r}).ents]))\n"
        f"print(json.dumps([[e.text, e.label_] for e in coarse({text!r}).ents]))\n"
    )
    fine, coarse = ({tuple(e) for e in json.loads(line)} for line in out.strip().splitlines()[-2:])
    assert {("Tom Hanks", "person-actor"), ("Savannah", "location-GPE")} <= fine
    assert {("Tom Hanks", "person"), ("Savannah", "location")} <= coarse
    assert {text for text, _ in fine} == {text for text, _ in coarse}


def test_torch_free_runs_print_only_what_was_asked(tmp_path):
    """Nothing on stderr (no "None of PyTorch, TensorFlow ... found" banner, no warnings) when a
    saved pipeline is loaded, the built-in components are added, and the command line predicts."""
    load("minilm_conll03").to_disk(tmp_path / "pipeline")
    code = (
        "import spacy\n"
        f"nlp = spacy.load({str(tmp_path / 'pipeline')!r})\n"
        f"print([e.text for e in nlp({TEXT!r}).ents])\n"
        "for name in ('minilm_conll03', 'minilm_fewnerd'):\n"
        "    blank = spacy.blank('en')\n"
        "    blank.add_pipe(name)\n"
        f"    print([e.text for e in blank({TEXT!r}).ents])\n"
    )
    out = without_torch("-c", code)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stderr == ""
    assert out.stdout.count("Angela Merkel") == 3
    cli = without_torch(
        "-m", "spacy_nerzoo", "predict", "minilm_conll03", "Angela Merkel met Tim Cook."
    )
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert cli.stderr == ""
    assert "Angela Merkel" in cli.stdout


def test_torch_backend_without_torch_still_says_so():
    """Quiet is not silent: asking for torch where it is missing is still an error naming it."""
    out = without_torch(
        "-c",
        "import spacy\n"
        "nlp = spacy.blank('en')\n"
        "nlp.add_pipe('minilm_conll03', config={'backend': 'torch', 'precision': 'fp32'})\n"
        "nlp('Angela Merkel')\n",
    )
    assert out.returncode != 0
    assert "ModelLoadError" in out.stderr and "PyTorch" in out.stderr


def test_longformer_on_onnx_says_why(tiny_model, onnx_cache):
    with pytest.raises(ModelLoadError, match="Longformer does not export"):
        make_nlp(tiny_model("longformer"), backend="onnx")("text")
