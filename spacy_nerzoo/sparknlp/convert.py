"""``import_sparknlp``: one Spark NLP download in, one folder our components load out."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .archive import SparkNLPArchive
from .errors import SparkNLPFormatError
from .token_classifiers import ARCHITECTURES

PROVENANCE = "sparknlp.json"


def supported_annotators() -> list[str]:
    """Short names of the Spark NLP annotators this importer converts."""
    return sorted([*ARCHITECTURES, "ElmoEmbeddings", "NerDLModel"])


def import_sparknlp(
    source: str | Path,
    output: str | Path,
    *,
    overwrite: bool = False,
    num_attention_heads: int | None = None,
    embeddings: dict[str, Any] | None = None,
) -> Path:
    """Convert a Spark NLP 3.x model download (zip or unzipped folder) into ``output``.

    Token classifiers become a Hugging Face folder for ``token_classifier`` (``config={"model":
    output}``); a NerDLModel becomes a spaCy pipeline whose ``nerdl`` component runs Spark's graph
    (``spacy.load(output)``), over ``embeddings`` (a ``spacy_nerzoo.*Embeddings.v1`` config;
    default: the checkpoint the model's ``storageRef`` names). ``output`` also gets
    ``sparknlp.json`` (source, annotator, params), and the converted model is loaded once before
    this returns, so a folder that exists is one that works. Anything else raises
    :class:`SparkNLPFormatError` saying what was expected.
    """
    output = Path(output)
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise SparkNLPFormatError(f"{output} exists and is not empty (pass overwrite=True)")
    with SparkNLPArchive(source) as archive:
        short = archive.class_name.rsplit(".", 1)[-1]
        if short not in supported_annotators():
            raise SparkNLPFormatError(
                f"{archive.path}: annotator {archive.class_name} is not supported; expected one "
                f"of {', '.join(supported_annotators())}"
            )
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
        try:
            if short == "NerDLModel":
                from .nerdl import convert_nerdl

                params = convert_nerdl(archive, tmp, embeddings=embeddings)
                kind = "nerdl"
            elif short == "ElmoEmbeddings":
                from .elmo import convert_elmo

                params = convert_elmo(archive, tmp)
                kind = "embeddings"
            else:
                from .token_classifiers import convert_token_classifier

                params = convert_token_classifier(
                    archive, tmp, num_attention_heads=num_attention_heads
                )
                kind = "token_classifier" if ARCHITECTURES[short].head else "embeddings"
            provenance: dict[str, Any] = {
                "source": Path(source).name,
                "annotator": archive.class_name,
                "uid": archive.metadata.get("uid"),
                "component": kind,
                "params": params,
            }
            (tmp / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n", "utf-8")
            check_converted(tmp)
            if output.exists():
                shutil.rmtree(output)
            tmp.rename(output)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return output


def component_config(folder: str | Path) -> dict[str, Any]:
    """The ``add_pipe`` config that runs a converted folder as Spark NLP ran it."""
    folder = Path(folder)
    info = json.loads((folder / PROVENANCE).read_text("utf-8"))
    params = info["params"]
    if info["component"] == "token_classifier":
        from transformers import AutoConfig

        from ..backends.loading import max_positions

        # Spark NLP truncates at maxSentenceLength wordpieces plus [CLS] and [SEP]; we window at
        # the same width (never past the position embeddings), so short sentences match exactly.
        limit = max_positions(AutoConfig.from_pretrained(folder))
        length = int(params["maxSentenceLength"]) + 2
        # Spark NLP scores a token by its first wordpiece and takes the argmax tag.
        return {
            "model": str(folder),
            "case_sensitive": bool(params["caseSensitive"]),
            "max_length": min(length, limit) if limit else length,
            "alignment": "first",
            "decoding": "argmax",
        }
    if info["component"] == "embeddings":
        return embeddings_config(folder)
    return {}  # a NerDL import is a whole pipeline: spacy.load(folder)


def embeddings_config(folder: str | Path) -> dict[str, Any]:
    """The NerDL embedding source for a converted DistilBertEmbeddings or ElmoEmbeddings folder.

    Spark NLP's DistilBertEmbeddings give a token the last hidden state of the wordpiece that
    starts it, lowercasing the input when ``caseSensitive`` is false; its ElmoEmbeddings give the
    ``poolingLayer`` output of TF Hub's ELMo module for each sentence's tokens.
    """
    folder = Path(folder)
    info = json.loads((folder / PROVENANCE).read_text("utf-8"))
    if info.get("component") != "embeddings":
        raise SparkNLPFormatError(f"{folder} is not a converted Spark NLP embeddings annotator")
    if str(info.get("annotator", "")).endswith(".ElmoEmbeddings"):
        from .elmo import elmo_embeddings_config

        return elmo_embeddings_config(folder, info["params"])
    return {
        "@architectures": "spacy_nerzoo.TransformerEmbeddings.v1",
        "name": str(folder),
        "layer": -1,
        "pooling": "first",
        "lowercase": not bool(info["params"]["caseSensitive"]),
    }


def check_converted(folder: Path) -> None:
    """Load the converted folder the way the component will, so failures surface here."""
    info = json.loads((folder / PROVENANCE).read_text("utf-8"))
    if info["component"] == "token_classifier":
        from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

        config = AutoConfig.from_pretrained(folder)
        AutoTokenizer.from_pretrained(folder)
        model = AutoModelForTokenClassification.from_pretrained(folder)
        if model.config.num_labels != config.num_labels:  # pragma: no cover - sanity
            raise SparkNLPFormatError(f"{folder}: the converted model does not load back")
    elif info["component"] == "embeddings" and info["annotator"].endswith(".ElmoEmbeddings"):
        from .elmo import check_elmo_folder

        check_elmo_folder(folder)
    elif info["component"] == "embeddings":
        from transformers import AutoModel, AutoTokenizer

        AutoTokenizer.from_pretrained(folder)
        AutoModel.from_pretrained(folder)
    else:
        from .nerdl import check_nerdl_folder

        check_nerdl_folder(folder)
