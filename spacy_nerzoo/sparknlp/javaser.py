"""Spark's ``saveAsObjectFile`` output read as plain Python values.

A Spark NLP feature folder (``fields/<name>/part-NNNNN``) holds Hadoop SequenceFiles whose values
are ``BytesWritable`` records, each a Java-serialised array of up to 10 elements
(``RDD.saveAsObjectFile``). The Java stream is parsed by ``javaobj`` into beans and turned into
str / int / float / tuple / list / dict here: nothing is instantiated or executed, so a download
stays data.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from typing import Any

from .errors import SparkNLPFormatError

_MAGIC = b"SEQ"
_SYNC_SIZE = 16


def _read_exact(stream: io.BytesIO, n: int, where: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise SparkNLPFormatError(f"{where}: the SequenceFile ends in the middle of a record")
    return data


def _vint(stream: io.BytesIO, where: str) -> int:
    """Hadoop ``WritableUtils.readVInt``."""
    first = struct.unpack("b", _read_exact(stream, 1, where))[0]
    if first >= -112:
        return first
    negative = first < -120
    size = (-119 - first) if negative else (-111 - first)
    value = 0
    for byte in _read_exact(stream, size - 1, where):
        value = (value << 8) | byte
    return ~value if negative else value


def _text(stream: io.BytesIO, where: str) -> str:
    return _read_exact(stream, _vint(stream, where), where).decode("utf-8")


def sequence_file_values(data: bytes, where: str) -> Iterator[bytes]:
    """The raw value bytes of each record of an uncompressed SequenceFile (version 6)."""
    stream = io.BytesIO(data)
    if _read_exact(stream, 3, where) != _MAGIC:
        raise SparkNLPFormatError(f"{where}: not a Hadoop SequenceFile (no 'SEQ' header)")
    version = _read_exact(stream, 1, where)[0]
    if version != 6:
        raise SparkNLPFormatError(f"{where}: SequenceFile version {version}, expected 6")
    key_class, value_class = _text(stream, where), _text(stream, where)
    compressed, block = _read_exact(stream, 2, where)
    if compressed or block:
        raise SparkNLPFormatError(
            f"{where}: a compressed SequenceFile; Spark NLP writes features uncompressed"
        )
    if value_class != "org.apache.hadoop.io.BytesWritable":
        raise SparkNLPFormatError(f"{where}: values are {value_class}, expected BytesWritable")
    for _ in range(struct.unpack(">i", _read_exact(stream, 4, where))[0]):
        _text(stream, where), _text(stream, where)
    sync = _read_exact(stream, _SYNC_SIZE, where)
    del key_class
    while True:
        head = stream.read(4)
        if not head:
            return
        if len(head) != 4:
            raise SparkNLPFormatError(f"{where}: truncated record header")
        length = struct.unpack(">i", head)[0]
        if length == -1:
            if _read_exact(stream, _SYNC_SIZE, where) != sync:
                raise SparkNLPFormatError(f"{where}: corrupt SequenceFile (bad sync marker)")
            continue
        key_length = struct.unpack(">i", _read_exact(stream, 4, where))[0]
        if length < key_length or key_length < 0:
            raise SparkNLPFormatError(f"{where}: corrupt SequenceFile record lengths")
        _read_exact(stream, key_length, where)
        value = _read_exact(stream, length - key_length, where)
        size = struct.unpack(">i", value[:4])[0]
        yield value[4 : 4 + size]


def to_plain(obj: Any) -> Any:
    """A javaobj bean as plain Python: strings, numbers, tuples for ``scala.Tuple2``, lists, dicts.

    Instances of other classes become ``{"__class__": name, field: value, ...}`` with the
    fields of every class in the hierarchy, plus ``"__annotations__"`` (what a custom
    ``writeObject`` wrote, e.g. the elements of a Scala 2.12 ``List``) when present.
    """
    from javaobj.v2 import beans

    if isinstance(obj, beans.JavaString):
        return str(obj.value)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, beans.JavaArray):
        return [to_plain(v) for v in obj]
    if isinstance(obj, beans.JavaEnum):
        return str(obj.value)
    if isinstance(obj, beans.JavaClass):
        return {"__class__": "java.lang.Class", "name": obj.name}
    if isinstance(obj, beans.BlockData):
        return bytes(obj.data)
    if isinstance(obj, beans.JavaInstance):
        name = obj.classdesc.name
        fields: dict[str, Any] = {"__class__": name}
        for fields_of_class in obj.field_data.values():
            for field, value in fields_of_class.items():
                fields[field.name] = to_plain(value)
        annotations = [to_plain(a) for ann in obj.annotations.values() for a in ann]
        if annotations:
            fields["__annotations__"] = annotations
        if name == "scala.Tuple2":
            return (fields["_1"], fields["_2"])
        for boxed in ("value",):
            if name.startswith("java.lang.") and boxed in fields and len(fields) == 2:
                return fields[boxed]
        return fields
    raise SparkNLPFormatError(f"unexpected Java content {type(obj).__name__} in a feature")


def java_values(data: bytes, where: str) -> list[Any]:
    """Every element of every serialised chunk in one ``part-NNNNN`` file, as plain values."""
    import javaobj.v2 as javaobj

    values: list[Any] = []
    for record in sequence_file_values(data, where):
        try:
            chunk = javaobj.loads(record)
        except Exception as e:  # javaobj raises assorted errors on bad streams
            raise SparkNLPFormatError(f"{where}: not a Java-serialised value ({e})") from None
        plain = to_plain(chunk)
        if not isinstance(plain, list):
            raise SparkNLPFormatError(f"{where}: expected serialised arrays of values")
        values.extend(plain)
    return values
