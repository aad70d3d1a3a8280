"""The zoo's seed models from their Spark NLP downloads: what to tell a user, and opt-in fetching.

Four seed models have no public Hugging Face checkpoint, but each Spark NLP card links a public
zip. Offline (or by default) asking for such a model names the exact file and the command that
converts it. With ``SPACY_NERZOO_FETCH_SPARKNLP=1`` a token-classifier entry is downloaded and
converted once into ``$SPACY_NERZOO_CACHE/sparknlp/<entry>`` (default
``~/.cache/spacy_nerzoo/sparknlp``) and loaded from there afterwards, network or not.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from ..catalogue import ZOO, ZooEntry
from ..errors import ModelLoadError

FETCH_ENV = "SPACY_NERZOO_FETCH_SPARKNLP"
CACHE_ENV = "SPACY_NERZOO_CACHE"
PROVENANCE = "sparknlp.json"


def cache_dir() -> Path:
    """Where fetched zips and converted models live."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "spacy_nerzoo"
    return base / "sparknlp"


def import_commands(entry: ZooEntry) -> list[str]:
    """The ``nerzoo import-sparknlp`` commands, in order, that convert a seed's downloads."""
    if not entry.spark_nlp_download:
        return []
    out = f"{entry.name}-sparknlp"
    if not entry.spark_nlp_embeddings_download:
        return [f"nerzoo import-sparknlp {entry.spark_nlp_download} {out}"]
    emb = f"{entry.name}-embeddings"
    return [
        f"nerzoo import-sparknlp {entry.spark_nlp_embeddings_download} {emb}",
        f"nerzoo import-sparknlp {entry.spark_nlp_download} {out} --embeddings {emb}",
    ]


def import_hint(entry: ZooEntry) -> str:
    """The exact file to download and the commands that turn it into something that loads."""
    if not entry.spark_nlp_download:
        return ""
    out = f"{entry.name}-sparknlp"
    if entry.architecture == "nerdl":
        use = f"spacy.load('{out}')"
    else:
        use = f"nlp.add_pipe('{entry.name}', config={{'model': '{out}'}})"
    download = f"{entry.spark_nlp_download} from {entry.spark_nlp_url}"
    if entry.spark_nlp_embeddings_download:
        download += (
            f" and its embeddings {entry.spark_nlp_embeddings_download} from "
            f"{entry.spark_nlp_embeddings_url}"
        )
    command = ", then ".join(f"`{c}`" for c in import_commands(entry))
    return (
        f"Its Spark NLP weights are public: download {download}, then run "
        f"`pip install 'spacy-nerzoo[sparknlp]'` and {command} and use {use}"
        + (
            f" (or set {FETCH_ENV}=1 to fetch and convert it once into {cache_dir()})."
            if entry.architecture == "token_classifier"
            else "."
        )
    )


def cached_checkpoint(component: str) -> Path | None:
    """The converted folder of zoo entry ``component``: from the cache, or fetched (opt-in).

    None when the entry has no Spark NLP download, or nothing is cached and fetching is off.
    """
    entry = ZOO.get(component)
    if entry is None or not entry.spark_nlp_download or entry.architecture != "token_classifier":
        return None
    folder = cache_dir() / entry.name
    if (folder / PROVENANCE).exists():
        return folder
    if os.environ.get(FETCH_ENV, "").strip().lower() not in {"1", "true", "yes"}:
        return None
    from . import import_sparknlp
    from .errors import SparkNLPFormatError

    zip_path = cache_dir() / entry.spark_nlp_download
    if not zip_path.exists():
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        assert entry.spark_nlp_url is not None
        try:
            with (
                urllib.request.urlopen(entry.spark_nlp_url, timeout=60) as response,
                tempfile.NamedTemporaryFile(dir=zip_path.parent, delete=False) as tmp,
            ):
                shutil.copyfileobj(response, tmp)
            Path(tmp.name).rename(zip_path)
        except OSError as e:
            raise ModelLoadError(
                f"Component '{component}': could not download {entry.spark_nlp_url} ({e}). "
                + import_hint(entry)
            ) from None
    try:
        return import_sparknlp(zip_path, folder, overwrite=True)
    except SparkNLPFormatError as e:
        raise ModelLoadError(f"Component '{component}': {zip_path} did not convert: {e}") from None
