"""The built-in models ship inside the wheel (a wheel built from the repo must contain them)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

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
