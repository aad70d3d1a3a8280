"""The built-in models ship inside the wheel (a wheel built from the repo must contain them)."""

from __future__ import annotations

import configparser
import importlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import spacy

from spacy_nerzoo.catalogue import ZOO

REPO = Path(__file__).resolve().parents[1]
BUILT_IN = ("minilm_conll03", "minilm_fewnerd")


def test_wheel_contains_builtin_model(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("spacy_nerzoo-*.whl")
    archive = zipfile.ZipFile(wheel)
    names = set(archive.namelist())
    for name in BUILT_IN:
        model = f"spacy_nerzoo/models/{name}/"
        for needed in ("config.json", "tokenizer.json", "model.int8.onnx"):
            assert model + needed in names
        size = sum(i.file_size for i in archive.infolist() if i.filename.startswith(model))
        assert size < 40 * 2**20, (name, size)  # each built-in model under 40 MB


def _entry_points(group: str) -> dict[str, str]:
    """``name = module:attr`` lines of one ``[options.entry_points]`` group of setup.cfg."""
    parser = configparser.ConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # names are case-sensitive
    parser.read(REPO / "setup.cfg", encoding="utf8")
    lines = parser["options.entry_points"].get(group, "").strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=", 1)) for line in lines)


def test_factory_entry_points_are_the_catalogues_factories():
    """spaCy finds factories in an interpreter that never imported the package only through
    these entry points: each zoo entry and generic component must be listed, with its factory."""
    expected = {"token_classifier": "token_classifier", "nerdl": "nerdl"}
    expected |= {name: entry.architecture for name, entry in ZOO.items()}
    makers = {
        "token_classifier": "spacy_nerzoo.components.token_classifier:make_token_classifier",
        "nerdl": "spacy_nerzoo.nerdl.component:make_nerdl",
    }
    assert _entry_points("spacy_factories") == {n: makers[a] for n, a in expected.items()}
    for name in expected:
        assert spacy.registry.factories.get(name) is not None


def _resolve(target: str) -> object:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@pytest.mark.parametrize(
    ("group", "registry"),
    [
        ("spacy_factories", "factories"),
        ("spacy_architectures", "architectures"),
        ("spacy_scorers", "scorers"),
        ("spacy_misc", "misc"),
    ],
)
def test_entry_points_name_what_the_package_registers(group, registry):
    """Every entry point loads, and is the function the package registers under that name, so a
    packaged pipeline resolves the same factory, architecture, scorer or ents_filter."""
    points = _entry_points(group)
    assert points
    for name, target in points.items():
        func = _resolve(target)
        assert getattr(spacy.registry, registry).get(name) is func
