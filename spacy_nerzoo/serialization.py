"""Byte serialisation for components whose natural format is a folder of files."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import srsly


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
