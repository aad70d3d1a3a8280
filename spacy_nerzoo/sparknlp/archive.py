"""A Spark NLP 3.x saved annotator, read from its download zip (or an unzipped folder).

Layout (Spark NLP's ``ParamsAndFeaturesWritable`` + ``S3ResourceDownloader``):
``metadata/part-00000`` (Spark ML's ``DefaultParamsWriter`` JSON line),
``fields/<feature>/part-NNNNN`` (``saveAsObjectFile`` output), and per-annotator files such as
``<name>_tensorflow`` (itself a zip of ``saved_model.pb``, a GraphDef, and a TF variable bundle)
or ``albert_spp``. The archive is untrusted: members are read
by name, never extracted wholesale; paths that would leave a folder and oversized members are
refused.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from .errors import SparkNLPFormatError
from .javaser import java_values

METADATA = "metadata/part-00000"
# Generous caps: Longformer-large is ~1.8 GB; anything far beyond is not a model we know.
MAX_MEMBER_BYTES = 8 * 1024**3
MAX_SMALL_BYTES = 256 * 1024**2  # metadata, fields, SentencePiece models
TF_BUNDLE_FILES = ("saved_model.pb", "variables.index", "variables.data-00000-of-00001")


def _safe_name(name: str, where: str) -> str:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        raise SparkNLPFormatError(f"{where}: refusing entry '{name}', its path leaves the archive")
    return path.as_posix()


def _copy_capped(src: IO[bytes], dst: IO[bytes], limit: int, what: str) -> None:
    """Copy in chunks, refusing more than ``limit`` bytes (a zip's sizes can lie)."""
    total = 0
    while chunk := src.read(1 << 20):
        total += len(chunk)
        if total > limit:
            raise SparkNLPFormatError(f"{what} is larger than {limit:,} bytes; not a model we know")
        dst.write(chunk)


@dataclass
class TFBundle:
    """A ``*_tensorflow`` member unpacked to a temporary folder: GraphDef bytes and variables."""

    graph_def: bytes
    variables_prefix: Path  # for tf.train.load_checkpoint


class SparkNLPArchive:
    """Read access to one saved annotator; ``path`` is the download zip or an unzipped folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        if not self.path.exists():
            raise SparkNLPFormatError(f"{self.path}: no such file")
        if self.path.is_dir():
            self._names = {
                p.relative_to(self.path).as_posix(): p.stat().st_size
                for p in self.path.rglob("*")
                if p.is_file()
            }
        else:
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as e:
                raise SparkNLPFormatError(
                    f"{self.path}: not a zip file ({e}); expected a Spark NLP model download "
                    "such as ner_conll_elmo_en_3.2.2_2.4_1630419727678.zip"
                ) from None
            self._names = {
                _safe_name(i.filename, str(self.path)): i.file_size
                for i in self._zip.infolist()
                if not i.is_dir()
            }
        roots = [n[: -len(METADATA)] for n in self._names if n.endswith(METADATA)]
        roots = [r for r in roots if r == "" or r.endswith("/")]
        if not roots:
            raise SparkNLPFormatError(
                f"{self.path}: no {METADATA} inside; expected a saved Spark NLP annotator "
                "(metadata/, fields/ and its TensorFlow files, as Spark NLP's pretrained downloads "
                "are)"
            )
        self._root = min(roots, key=len)
        self._metadata: dict[str, Any] | None = None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> SparkNLPArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- members
    def names(self, prefix: str = "") -> list[str]:
        """Member names (relative to the model root) under ``prefix``."""
        full = self._root + prefix
        return sorted(n[len(self._root) :] for n in self._names if n.startswith(full))

    def has(self, name: str) -> bool:
        return self._root + name in self._names

    def read(self, name: str, *, limit: int = MAX_SMALL_BYTES) -> bytes:
        """One member's bytes; refuses members larger than ``limit``."""
        full = self._root + name
        if full not in self._names:
            raise SparkNLPFormatError(f"{self.path}: no '{name}' inside")
        if self._names[full] > limit:
            raise SparkNLPFormatError(
                f"{self.path}: '{name}' is {self._names[full]:,} bytes, over the {limit:,} "
                "expected for it"
            )
        if self._zip is None:
            return (self.path / full).read_bytes()
        with self._zip.open(self._root_info(full)) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise SparkNLPFormatError(f"{self.path}: '{name}' is larger than its header says")
        return data

    def _open(self, name: str) -> IO[bytes]:
        """A member as a stream (for members too large to read at once)."""
        full = self._root + name
        if self._zip is None:
            return (self.path / full).open("rb")
        return self._zip.open(self._root_info(full))

    def _root_info(self, full: str) -> zipfile.ZipInfo:
        assert self._zip is not None
        for info in self._zip.infolist():
            if _safe_name(info.filename, str(self.path)) == full:
                return info
        raise SparkNLPFormatError(f"{self.path}: no '{full}' inside")  # pragma: no cover

    # ---------------------------------------------------------------- metadata and params
    @property
    def metadata(self) -> dict[str, Any]:
        """The ``DefaultParamsWriter`` JSON: class, uid, paramMap, defaultParamMap."""
        if self._metadata is None:
            text = self.read(METADATA).decode("utf-8", errors="replace").strip()
            try:
                meta = json.loads(text.splitlines()[0]) if text else None
            except json.JSONDecodeError as e:
                raise SparkNLPFormatError(
                    f"{self.path}: {METADATA} is not Spark ML's JSON metadata line ({e})"
                ) from None
            if not isinstance(meta, dict) or not isinstance(meta.get("class"), str):
                raise SparkNLPFormatError(
                    f'{self.path}: {METADATA} has no "class"; expected Spark ML metadata'
                )
            self._metadata = meta
        return self._metadata

    @property
    def class_name(self) -> str:
        return str(self.metadata["class"])

    def param(self, name: str, default: Any = None) -> Any:
        """A param as Spark would see it: ``paramMap`` over ``defaultParamMap`` over ``default``."""
        meta = self.metadata
        for key in ("paramMap", "defaultParamMap"):
            values = meta.get(key) or {}
            if name in values:
                return values[name]
        return default

    # ---------------------------------------------------------------- features
    def feature(self, name: str) -> list[Any] | None:
        """A feature's values in part order (``None`` if the model has no such feature)."""
        parts = [
            n for n in self.names(f"fields/{name}/") if PurePosixPath(n).name.startswith("part-")
        ]
        if not parts:
            return None
        values: list[Any] = []
        for part in parts:
            values.extend(java_values(self.read(part), f"{self.path}:{part}"))
        return values

    def map_feature(self, name: str) -> dict[Any, Any]:
        """A required ``MapFeature`` (pairs of ``scala.Tuple2``) as a dict."""
        values = self.feature(name)
        if values is None:
            raise SparkNLPFormatError(
                f"{self.path}: the {self.class_name.rsplit('.', 1)[-1]} has no '{name}' field "
                f"(expected fields/{name}/part-*)"
            )
        if not all(isinstance(v, tuple) and len(v) == 2 for v in values):
            raise SparkNLPFormatError(f"{self.path}: fields/{name} is not a map of Tuple2 pairs")
        return dict(values)

    # ---------------------------------------------------------------- TensorFlow
    @contextlib.contextmanager
    def tensorflow(self, *candidates: str) -> Iterator[TFBundle]:
        """The first present ``*_tensorflow`` member, unpacked to a temporary folder."""
        name = next((c for c in candidates if self.has(c)), None)
        if name is None:
            raise SparkNLPFormatError(
                f"{self.path}: no TensorFlow file; expected {' or '.join(candidates)} next to "
                "metadata/"
            )
        with tempfile.TemporaryDirectory(prefix="nerzoo-sparknlp-") as tmp:
            # Streamed to disk, never held whole in memory: Longformer-large's is ~1.8 GB.
            packed = Path(tmp) / "network.zip"
            with self._open(name) as src, packed.open("wb") as dst:
                _copy_capped(src, dst, MAX_MEMBER_BYTES, f"{self.path}: '{name}'")
            try:
                inner = zipfile.ZipFile(packed)
            except zipfile.BadZipFile:
                raise SparkNLPFormatError(
                    f"{self.path}: '{name}' is not a zip (expected saved_model.pb and variables.*)"
                ) from None
            with inner:
                entries = {
                    PurePosixPath(_safe_name(i.filename, name)).name: i for i in inner.infolist()
                }
                missing = [f for f in TF_BUNDLE_FILES if f not in entries]
                if missing:
                    raise SparkNLPFormatError(
                        f"{self.path}: '{name}' lacks {', '.join(missing)} (expected "
                        f"{', '.join(TF_BUNDLE_FILES)})"
                    )
                for file in TF_BUNDLE_FILES:
                    with inner.open(entries[file]) as src, (Path(tmp) / file).open("wb") as dst:
                        _copy_capped(src, dst, MAX_MEMBER_BYTES, f"{self.path}: '{name}/{file}'")
            packed.unlink()
            graph = (Path(tmp) / "saved_model.pb").read_bytes()
            yield TFBundle(graph, Path(tmp) / "variables")
