"""Reading saved annotators, and one clear error for everything that is not one."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from sparknlp_fixtures import TOKEN_ZIPS

from spacy_nerzoo.sparknlp import SparkNLPFormatError, import_sparknlp
from spacy_nerzoo.sparknlp.archive import SparkNLPArchive
from spacy_nerzoo.sparknlp.javaser import sequence_file_values


def rezip(
    source: Path,
    target: Path,
    *,
    drop: str = "",
    replace: dict[str, bytes] | None = None,
    prefix: str = "",
) -> Path:
    """A copy of a fixture zip without the members under ``drop`` / with members replaced."""
    replace = replace or {}
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            if drop and info.filename.startswith(drop):
                continue
            dst.writestr(prefix + info.filename, replace.pop(info.filename, src.read(info)))
        for name, data in replace.items():
            dst.writestr(prefix + name, data)
    return target


def test_reads_metadata_and_fields_written_by_spark() -> None:
    with SparkNLPArchive(TOKEN_ZIPS["distilbert"]) as archive:
        assert archive.class_name.endswith("DistilBertForTokenClassification")
        assert archive.param("caseSensitive") is True
        assert archive.param("maxSentenceLength") == 128
        labels = archive.map_feature("labels")
        assert labels["O"] == 0 and sorted(labels.values()) == list(range(9))
        vocab = archive.map_feature("vocabulary")  # written in three part files
        assert len(archive.names("fields/vocabulary/part-")) == 3
        assert vocab["[CLS]"] == 2 and sorted(vocab.values()) == list(range(len(vocab)))
        assert archive.feature("merges") is None


def test_nested_tuple_keys() -> None:
    with SparkNLPArchive(TOKEN_ZIPS["longformer"]) as archive:
        merges = archive.map_feature("merges")
    assert all(isinstance(k, tuple) and len(k) == 2 for k in merges)
    assert sorted(merges.values()) == list(range(len(merges)))


def test_model_inside_a_top_folder(tmp_path: Path) -> None:
    path = rezip(TOKEN_ZIPS["distilbert"], tmp_path / "m.zip", prefix="distilbert_model/")
    with SparkNLPArchive(path) as archive:
        assert archive.map_feature("labels")["O"] == 0


def expect_error(path: Path | str, *needles: str, tmp_path: Path) -> str:
    with pytest.raises(SparkNLPFormatError) as err:
        import_sparknlp(path, tmp_path / "out")
    message = str(err.value)
    for needle in needles:
        assert needle in message
    assert not (tmp_path / "out").exists()
    return message


def test_not_a_zip(tmp_path: Path) -> None:
    bad = tmp_path / "x.zip"
    bad.write_text("hello")
    expect_error(bad, "not a zip file", tmp_path=tmp_path)
    expect_error(tmp_path / "missing.zip", "no such file", tmp_path=tmp_path)


def test_no_metadata(tmp_path: Path) -> None:
    path = rezip(TOKEN_ZIPS["distilbert"], tmp_path / "m.zip", drop="metadata/")
    expect_error(path, "no metadata/part-00000", tmp_path=tmp_path)


def test_unknown_annotator(tmp_path: Path) -> None:
    meta = {
        "class": "com.johnsnowlabs.nlp.annotators.pos.perceptron.PerceptronModel",
        "uid": "x",
        "paramMap": {},
        "defaultParamMap": {},
    }
    path = rezip(
        TOKEN_ZIPS["distilbert"],
        tmp_path / "m.zip",
        replace={"metadata/part-00000": json.dumps(meta).encode()},
    )
    message = expect_error(path, "PerceptronModel is not supported", tmp_path=tmp_path)
    assert "DistilBertForTokenClassification" in message


def test_metadata_not_json(tmp_path: Path) -> None:
    path = rezip(
        TOKEN_ZIPS["distilbert"],
        tmp_path / "m.zip",
        replace={"metadata/part-00000": b"<html>not found</html>"},
    )
    expect_error(path, "not Spark ML's JSON metadata", tmp_path=tmp_path)


def test_missing_field(tmp_path: Path) -> None:
    path = rezip(TOKEN_ZIPS["distilbert"], tmp_path / "m.zip", drop="fields/labels/")
    expect_error(path, "no 'labels' field", "fields/labels/part-*", tmp_path=tmp_path)


def test_missing_tensorflow_file(tmp_path: Path) -> None:
    path = rezip(
        TOKEN_ZIPS["distilbert"], tmp_path / "m.zip", drop="distilbert_classification_tensorflow"
    )
    expect_error(
        path,
        "distilbert_classification_tensorflow or bert_classification_tensorflow",
        tmp_path=tmp_path,
    )


def test_tensorflow_file_without_variables(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("saved_model.pb", b"")
    path = rezip(
        TOKEN_ZIPS["distilbert"],
        tmp_path / "m.zip",
        replace={"distilbert_classification_tensorflow": inner.getvalue()},
    )
    expect_error(path, "lacks variables.index", tmp_path=tmp_path)


def test_corrupt_field(tmp_path: Path) -> None:
    path = rezip(
        TOKEN_ZIPS["distilbert"],
        tmp_path / "m.zip",
        replace={"fields/labels/part-00000": b"SEQ\x06garbage"},
    )
    expect_error(path, "fields/labels/part-00000", tmp_path=tmp_path)


def test_zip_slip_refused(tmp_path: Path) -> None:
    path = rezip(TOKEN_ZIPS["distilbert"], tmp_path / "m.zip", replace={"../evil": b"x"})
    expect_error(path, "leaves the archive", tmp_path=tmp_path)


def test_sequence_file_reader_rejects_other_files() -> None:
    with pytest.raises(SparkNLPFormatError, match="not a Hadoop SequenceFile"):
        list(sequence_file_values(b"PK\x03\x04", "x"))


def test_unzipped_folder_and_existing_output(tmp_path: Path) -> None:
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(TOKEN_ZIPS["distilbert"]) as z:
        z.extractall(folder)
    with SparkNLPArchive(folder) as archive:
        assert archive.map_feature("labels")["O"] == 0
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(SparkNLPFormatError, match="exists and is not empty"):
        import_sparknlp(folder, tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
