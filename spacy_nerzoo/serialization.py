"""Writing to disk safely: atomic file and folder replacement, and byte serialisation for
components whose natural format is a folder of files.

Every file or folder this package publishes (checkpoints, metrics, teacher distributions, ONNX
files, model bundles) is written under a temporary name beside its target and renamed into place,
so a kill at any moment leaves either the old version or the new one, never a truncated file.
These helpers are the one implementation of that rule.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import srsly


def unique_file(folder: Path, prefix: str, suffix: str) -> Path:
    """Create an empty file with a fresh name, with the permissions a plain write would give.

    (``tempfile.mkstemp`` would make it 0600, and the rename would keep that, leaving a saved
    file unreadable to other users.)
    """
    for _ in range(100):
        path = folder / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"Could not create a temporary file in {folder}")


@contextmanager
def atomic_path(target: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A fresh temporary file beside ``target``, renamed onto it when the block succeeds.

    Write the new content to the path yielded; on an exception the temporary file is removed
    and ``target`` is untouched. ``suffix`` ends the temporary name, for writers that insist on
    an extension (``np.save`` adds ``.npy`` to any other name).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = unique_file(target.parent, f".{target.name}.", suffix)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` in one rename (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)


def write_json_atomic(path: str | Path, data: Any, indent: int | None = 2) -> None:
    """Replace ``path`` with ``data`` as JSON in one rename (see :func:`atomic_path`)."""
    write_text_atomic(path, json.dumps(data, indent=indent))


def staging_folder(folder: str | Path) -> Path:
    """An empty ``FOLDER.tmp`` beside ``folder`` to write its new version into."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def replace_folder(tmp: str | Path, folder: str | Path) -> None:
    """Put the complete folder ``tmp`` in place of ``folder``.

    Folders cannot be swapped in one rename, so this takes two, with the previous version kept as
    ``FOLDER.old`` in between: a kill at any moment leaves a complete version under ``folder`` or
    ``FOLDER.old``, and :func:`recover_folder` restores the latter.
    """
    tmp, folder = Path(tmp), Path(folder)
    old = folder.with_name(folder.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    if old.exists():
        shutil.rmtree(old)


def recover_folder(folder: str | Path) -> None:
    """Restore ``FOLDER.old`` if a kill came between the two renames of :func:`replace_folder`."""
    folder = Path(folder)
    old = folder.with_name(folder.name + ".old")
    if not folder.exists() and old.exists():
        old.rename(folder)


class FolderBytesMixin:
    """``to_bytes``/``from_bytes`` in terms of ``to_disk``/``from_disk``.

    Our components store HF files (config, tokenizer, safetensors, ONNX) that their libraries read
    and write as folders; packing that folder into msgpack keeps one code path for both formats,
    so ``nlp.to_bytes()`` and ``nlp.pipe(n_process=...)`` see exactly what ``to_disk`` writes.
    The class it is mixed into provides ``to_disk`` and ``from_disk``.
    """

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            self.to_disk(tmp, exclude=exclude)  # type: ignore[attr-defined]
            files = {
                str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()
            }
        return bytes(srsly.msgpack_dumps(files))

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = ()) -> Any:
        files = srsly.msgpack_loads(bytes_data)
        with tempfile.TemporaryDirectory() as tmp:
            for rel, data in files.items():
                target = Path(tmp) / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self.from_disk(tmp, exclude=exclude)  # type: ignore[attr-defined]
        return self
