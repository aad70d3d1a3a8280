"""The built-in model ships inside the wheel (a wheel built from the repo must contain it)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_contains_builtin_model(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("spacy_nerzoo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    model = "spacy_nerzoo/models/minilm_conll03/"
    for needed in ("config.json", "tokenizer.json", "model.int8.onnx"):
        assert model + needed in names
    assert wheel.stat().st_size < 40 * 2**20
