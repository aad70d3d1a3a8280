"""``nerzoo save``, ``export`` and ``bundle`` (spacy_nerzoo.cli.export)."""

from __future__ import annotations

import pytest

from spacy_nerzoo.api import load

TEXT = "Angela Merkel met Tim Cook in Berlin."


def test_save_writes_a_loadable_pipeline(nerzoo, checkpoint, tmp_path):
    import spacy

    result = nerzoo("save", checkpoint, tmp_path / "p", "-c", "alignment=average")
    assert result.exit_code == 0, result.output
    nlp = spacy.load(tmp_path / "p")
    assert nlp.get_pipe("token_classifier").alignment == "average"
    expected = load(checkpoint, alignment="average")(TEXT)
    assert [(e.text, e.label_) for e in nlp(TEXT).ents] == [
        (e.text, e.label_) for e in expected.ents
    ]


@pytest.mark.parametrize("source", ["checkpoint", "pipeline"])
def test_export_checkpoint_or_pipeline_component(nerzoo, checkpoint, pipeline, tmp_path, source):
    import spacy

    model = checkpoint if source == "checkpoint" else pipeline
    result = nerzoo("export", model, tmp_path / "onnx", "--precision", "fp32")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "onnx" / "model.onnx").exists()
    nlp = spacy.blank("en")
    nlp.add_pipe("token_classifier", config={"model": str(tmp_path / "onnx"), "backend": "onnx"})
    expected = load(checkpoint)(TEXT)
    assert [(e.text, e.label_) for e in nlp(TEXT).ents] == [
        (e.text, e.label_) for e in expected.ents
    ]


def test_export_onnx_only_pipeline_says_why(nerzoo, one_line_error, checkpoint, tmp_path):
    load(checkpoint, backend="onnx").to_disk(tmp_path / "p")
    one_line_error(nerzoo("export", tmp_path / "p", tmp_path / "o"), "no torch weights")


def test_bundle_writes_a_shipped_model_folder(nerzoo, checkpoint, tmp_path):
    out = tmp_path / "models" / "tiny"
    out.mkdir(parents=True)
    (out / "stale.txt").write_text("from an earlier bundle")
    result = nerzoo("bundle", checkpoint, out, "--precision", "fp32")
    assert result.exit_code == 0, result.output
    assert f"Wrote {out}" in result.stdout
    names = sorted(p.name for p in out.iterdir())
    assert "model.onnx" in names and "config.json" in names and "stale.txt" not in names
    assert not any(name.endswith((".safetensors", ".bin")) for name in names)
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny"]  # no staging left


def test_bundle_precision_is_checked(nerzoo, checkpoint, tmp_path):
    result = nerzoo("bundle", checkpoint, tmp_path / "o", "--precision", "int4")
    assert result.exit_code == 2 and "--precision" in result.stderr


def test_calibrate_gives_a_bundled_int8_file_static_scales(nerzoo, checkpoint, tmp_path):
    import onnx

    from spacy_nerzoo.backends.onnx_backend import ACTIVATION_SCALES_KEY

    folder = tmp_path / "tiny"
    assert nerzoo("bundle", checkpoint, folder).exit_code == 0  # int8, per-row scales
    corpus = tmp_path / "calib.txt"
    lines = ["-DOCSTART- -X- -X- O", ""]
    for sentence in ("Angela Merkel met Tim Cook in Berlin .", "Reuters reported from Paris ."):
        lines += [f"{w} X X O" for w in sentence.split()] + [""]
    corpus.write_text("\n".join(lines))
    out = tmp_path / "static.onnx"
    result = nerzoo("calibrate", folder, corpus, "--output", out)
    assert result.exit_code == 0, result.output
    assert "activations given static scales" in result.stdout
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta[ACTIVATION_SCALES_KEY] == "static"
    bad = nerzoo("calibrate", folder, corpus, "--method", "mean", "--output", out)
    assert bad.exit_code == 2 and "--method" in bad.output
