"""``nerzoo save``, ``export``, ``bundle`` and ``import-sparknlp``: write models to disk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, cast

import typer

from ..api import load
from ..backends.onnx_backend import ONNX_FILE_NAMES
from ..choices import PrecisionChoice
from .common import ConfigOpt, ModelArg, parse_config


def save(
    model: ModelArg,
    output: Annotated[Path, typer.Argument(help="Folder to write the pipeline to.")],
    config: ConfigOpt = None,
) -> None:
    """Save MODEL as a spaCy pipeline folder (weights inside), ready for `spacy package`."""
    nlp = load(model, **parse_config(config))
    nlp.to_disk(output)
    typer.echo(f"Saved {model} to {output}")


def export(
    model: ModelArg,
    output: Annotated[Path, typer.Argument(help="Folder to write (config, tokenizer, ONNX).")],
    precision: Annotated[
        PrecisionChoice, typer.Option(help="int8 (dynamic quantisation) or fp32.")
    ] = PrecisionChoice.int8,
    component: Annotated[
        str | None, typer.Option(help="Component to export, for a pipeline with several.")
    ] = None,
) -> None:
    """Export a checkpoint or a pipeline's token classifier to ONNX, checked against torch.

    The folder written works as `model` with backend="onnx" (dynamic batch and sequence axes).
    """
    from ..export.bundle import bundle_model, export_source

    out = bundle_model(export_source(model, component), output, precision=precision.value)
    typer.echo(f"Wrote {out / ONNX_FILE_NAMES[precision.value]}")


def import_sparknlp_cli(
    source: Annotated[
        Path, typer.Argument(help="A Spark NLP 3.x model download (zip) or its unzipped folder.")
    ],
    output: Annotated[Path, typer.Argument(help="Folder to write the converted model to.")],
    embeddings: Annotated[
        str | None,
        typer.Option(
            help="NerDL only: the embedding source, a Hugging Face encoder (hub id or folder) "
            "or ELMO_OPTIONS.json,ELMO_WEIGHTS.hdf5. Default: the one its storageRef names."
        ),
    ] = None,
    num_attention_heads: Annotated[
        int | None, typer.Option(help="Token classifiers: override the heads read off the graph.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace OUTPUT if it exists.")] = False,
) -> None:
    """Convert a Spark NLP download into a model our components load (needs [sparknlp]).

    Token classifiers become a Hugging Face folder: config={"model": OUTPUT}. A NerDLModel becomes
    a spaCy pipeline: spacy.load(OUTPUT).
    """
    from ..sparknlp import component_config, import_sparknlp

    out = import_sparknlp(
        source,
        output,
        overwrite=overwrite,
        num_attention_heads=num_attention_heads,
        embeddings=_embeddings_option(embeddings),
    )
    settings = component_config(out)
    if settings.get("@architectures"):
        typer.echo(f"Wrote {out}; import a NerDL model over it with --embeddings {out}")
    elif settings:
        typer.echo(f"Wrote {out}; use it with nlp.add_pipe('token_classifier', config={settings})")
    else:
        typer.echo(f"Wrote {out}; load it with spacy.load('{out}')")


def _embeddings_option(value: str | None) -> dict[str, Any] | None:
    """``--embeddings``: an ELMo options/weights pair or a Hugging Face encoder."""
    if value is None:
        return None
    if (Path(value) / "sparknlp.json").exists():  # a converted DistilBertEmbeddings download
        from ..sparknlp import embeddings_config

        return embeddings_config(value)
    if "," in value:
        options, weights = (v.strip() for v in value.split(",", 1))
        return {
            "@architectures": "spacy_nerzoo.ElmoEmbeddings.v1",
            "options_file": options,
            "weight_file": weights,
            "pooling_layer": "elmo",
        }
    return {"@architectures": "spacy_nerzoo.TransformerEmbeddings.v1", "name": value}


def bundle(
    checkpoint: Annotated[
        Path, typer.Argument(help="HF token-classification checkpoint folder.", show_default=False)
    ],
    output: Annotated[
        Path,
        typer.Argument(help="Folder to write, e.g. spacy_nerzoo/models/NAME.", show_default=False),
    ],
    precision: Annotated[
        PrecisionChoice, typer.Option(help="int8 (dynamic quantisation) or fp32.")
    ] = PrecisionChoice.int8,
) -> None:
    """Turn a trained checkpoint into a model folder the package ships (config, tokenizer, ONNX).

    Unlike `export`, no torch weights are kept and the training run's metrics.json is recorded.
    """
    from ..export.bundle import bundle_model

    out = bundle_model(checkpoint, output, precision=precision.value)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    typer.echo(f"Wrote {out} ({size:.1f} MB)")


def calibrate(
    model_dir: Annotated[
        Path,
        typer.Argument(help="Folder with model.int8.onnx and its tokenizer.", show_default=False),
    ],
    corpus: Annotated[
        Path, typer.Argument(help="CoNLL / Few-NERD column file or .spacy.", show_default=False)
    ],
    docs: Annotated[int, typer.Option(help="First N documents (0: all).")] = 0,
    method: Annotated[str, typer.Option(help="minmax or percentile.")] = "minmax",
    percentile: Annotated[float, typer.Option(help="For --method percentile.")] = 99.99,
    widen: Annotated[float, typer.Option(help="Multiply each calibrated range.")] = 1.0,
    max_length: Annotated[int | None, typer.Option(help="Window (default: the model's).")] = None,
    output: Annotated[Path | None, typer.Option(help="Default: rewrite in place.")] = None,
) -> None:
    """Give an int8 file fixed activation scales calibrated on a corpus (export format 4).

    Faster than the default per-row scales, but off the calibration corpus's domain its entities
    drift further from the float network's: see docs/benchmarks.md before shipping one.
    """
    from ..export.static_scales import Calibration, Method, rewrite_file

    if method not in ("minmax", "percentile"):
        raise typer.BadParameter(f"--method must be minmax or percentile, not {method!r}")
    how = cast(Method, method)
    calibration = Calibration(corpus, docs or None, how, percentile, widen, max_length)
    count = rewrite_file(
        model_dir / "model.int8.onnx",
        calibration.batches(model_dir),
        output,
        **calibration.options(),
    )
    typer.echo(f"{count} activations given static scales ({calibration.describe()})")
