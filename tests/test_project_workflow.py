"""The spaCy project workflow's commands, run on tiny data in a temporary project directory.

The train and export commands (CoNLL-2003 and Few-NERD) are left out: they take minutes to hours
and would replace the shipped models; the trainer and the exporter have their own tests.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = """-DOCSTART- -X- -X- O

Angela NNP B-NP B-PER
Merkel NNP I-NP I-PER
visited VBD B-VP O
Paris NNP B-NP B-LOC
. . O O

Apple NNP B-NP B-ORG
hired VBD B-VP O
Tim NNP B-NP B-PER
Cook NNP I-NP I-PER
. . O O
"""


def run(project: Path, command: str, data: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy",
            "project",
            "run",
            command,
            str(project),
            "--vars.data_dir",
            str(data),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


def test_workflow_commands_on_tiny_data(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "project.yml", project / "project.yml")
    (project / "spacy_nerzoo").symlink_to(REPO / "spacy_nerzoo")  # the shipped model: a dep
    shutil.copytree(REPO / "assets", project / "assets")
    data = tmp_path / "data" / "conll2003"
    data.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (data / f"{split}.txt").write_text(TINY, encoding="utf8")
    run(project, "convert", data.parent)
    assert (project / "corpus" / "conll2003-test.spacy").exists()
    run(project, "evaluate-minilm", data.parent)
    report = (project / "outputs" / "minilm_conll03-test.txt").read_text(encoding="utf8")
    assert "processed 10 tokens with 4 phrases" in report
    run(project, "visualize", data.parent)
    assert "<mark" in (project / "outputs" / "minilm_conll03.html").read_text(encoding="utf8")
    run(project, "package", data.parent)
    assert list((project / "packages").rglob("*.whl"))


def test_convert_fewnerd_on_tiny_data(tmp_path):
    """The Few-NERD commands start from convert-fewnerd: one Doc per sentence, IO runs merged."""
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "project.yml", project / "project.yml")
    data = tmp_path / "data" / "fewnerd"
    data.mkdir(parents=True)
    rows = ["Tom\tperson-actor", "Hanks\tperson-actor", "visited\tO", "New\tlocation-GPE"]
    tiny = "\n".join([*rows, "York\tlocation-GPE", "", "Hi\tO", ""])
    for split in ("train", "dev", "test"):
        (data / f"{split}.txt").write_text(tiny, encoding="utf8")
    run(project, "convert-fewnerd", data.parent)
    docs = list(DocBin().from_disk(project / "corpus" / "fewnerd-test.spacy").get_docs(Vocab()))
    assert len(docs) == 2
    assert [(e.text, e.label_) for e in docs[0].ents] == [
        ("Tom Hanks", "person-actor"),
        ("New York", "location-GPE"),
    ]
