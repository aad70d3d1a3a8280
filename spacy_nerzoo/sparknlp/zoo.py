"""The zoo's seed models from their Spark NLP downloads: what to tell a user, and opt-in fetching.

Four seed models have no public Hugging Face checkpoint, but each Spark NLP card links a public
zip. Offline (or by default) asking for such a model names the exact file and the commands that
convert it. With ``SPACY_NERZOO_FETCH_SPARKNLP=1`` a seed is downloaded and converted once into
``$SPACY_NERZOO_CACHE/sparknlp/<entry>`` (default ``~/.cache/spacy_nerzoo/sparknlp``) and loaded
from there afterwards, network or not: a token classifier as a Hugging Face folder, a NerDL seed
as its embeddings download (converted into ``<entry>-embeddings``) then its tagger over them (a
spaCy pipeline whose ``nerdl`` component the seed's factory loads), exactly what the
``nerzoo import-sparknlp`` commands of :func:`import_commands` write.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from ..catalogue import ZOO, ZooEntry
from ..errors import ModelLoadError

FETCH_ENV = "SPACY_NERZOO_FETCH_SPARKNLP"
CACHE_ENV = "SPACY_NERZOO_CACHE"
PROVENANCE = "sparknlp.json"
# The component folder inside a converted NerDL pipeline (convert_nerdl adds the pipe as "nerdl").
NERDL_COMPONENT = "nerdl"


def cache_dir() -> Path:
    """Where fetched zips and converted models live."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "spacy_nerzoo"
    return base / "sparknlp"


def fetching() -> bool:
    """Whether the user opted in to downloading seed models."""
    return os.environ.get(FETCH_ENV, "").strip().lower() in {"1", "true", "yes"}


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
        f"`pip install 'spacy-nerzoo[sparknlp]'` and {command} and use {use} "
        f"(or set {FETCH_ENV}=1 to fetch and convert it once into {cache_dir()})."
    )


def cached_checkpoint(component: str) -> Path | None:
    """The converted folder of zoo entry ``component``: from the cache, or fetched (opt-in).

    A token classifier's is a Hugging Face folder; a NerDL seed's is a spaCy pipeline (its
    embeddings are converted first, next to it, and built into it). None when the entry has no
    Spark NLP download, or nothing is cached and fetching is off.
    """
    entry = ZOO.get(component)
    if entry is None or not entry.spark_nlp_download or not entry.spark_nlp_url:
        return None
    folder = cache_dir() / entry.name
    if (folder / PROVENANCE).exists():
        return folder
    if not fetching():
        return None
    embeddings: dict[str, Any] | None = None
    if entry.spark_nlp_embeddings_download and entry.spark_nlp_embeddings_url:
        from .convert import embeddings_config

        emb_zip = _download(
            entry, entry.spark_nlp_embeddings_url, entry.spark_nlp_embeddings_download
        )
        emb_folder = cache_dir() / f"{entry.name}-embeddings"
        if not (emb_folder / PROVENANCE).exists():
            _convert(entry, emb_zip, emb_folder)
        embeddings = embeddings_config(emb_folder)
    tagger_zip = _download(entry, entry.spark_nlp_url, entry.spark_nlp_download)
    return _convert(entry, tagger_zip, folder, embeddings=embeddings)


def nerdl_model(folder: Path) -> tuple[Any, Path]:
    """The ``nerdl`` model a converted NerDL pipeline was built with, and its component folder.

    The model comes from the pipeline's own config (Spark's graph sizes and the embedding settings
    Spark NLP used), so the seed's factory runs the imported tagger as ``spacy.load`` would.
    """
    from spacy import registry
    from spacy.util import load_config

    config = load_config(folder / "config.cfg", interpolate=True)
    model = registry.resolve({"model": config["components"][NERDL_COMPONENT]["model"]})["model"]
    return model, folder / NERDL_COMPONENT


def _download(entry: ZooEntry, url: str, file_name: str) -> Path:
    """``url`` saved once as ``cache_dir()/file_name`` (written whole or not at all)."""
    path = cache_dir() / file_name
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{file_name}-", delete=False)
    try:
        with tmp, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, tmp)
        Path(tmp.name).rename(path)
    except (OSError, ValueError) as e:  # URLError is an OSError; a malformed URL a ValueError
        Path(tmp.name).unlink(missing_ok=True)
        raise ModelLoadError(
            f"Component '{entry.name}': could not download {url} ({e}). " + import_hint(entry)
        ) from None
    return path


def _convert(entry: ZooEntry, source: Path, output: Path, **options: Any) -> Path:
    """``import_sparknlp`` (what the CLI runs), any failure as one error naming the file."""
    from .convert import import_sparknlp
    from .errors import SparkNLPFormatError

    try:
        return import_sparknlp(source, output, overwrite=True, **options)
    except (SparkNLPFormatError, ModelLoadError, OSError) as e:
        raise ModelLoadError(
            f"Component '{entry.name}': {source} did not convert: {e}. Delete it to download it "
            "again, or convert the downloads by hand: "
            + ", then ".join(f"`{c}`" for c in import_commands(entry))
        ) from None
