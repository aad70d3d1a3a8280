"""A one-line Python API: ``load`` a model by name or folder, ``predict`` entities into a DataFrame.

This module is also the single home of *model resolution*, the rule that turns what a user types
(``albert_conll03``, ``./my-pipeline``, ``./hf-checkpoint``) into a pipeline; the CLI calls it, so
``nerzoo predict X`` and ``load("X")`` always mean the same model:

1. an existing folder with ``config.cfg`` is a saved spaCy pipeline (``spacy.load``);
2. an existing folder with ``config.json`` is a Hugging Face checkpoint (the ``token_classifier``
   factory with ``model=folder``);
3. a zoo name uses the zoo factory of that name, with the catalogue's defaults;
4. an ``owner/name`` string that is no folder is a Hugging Face hub id (local cache first), by
   ``backends.loading.is_hub_id``, the rule the components use too.

Fresh pipelines are initialised at once, so a missing checkpoint fails here with one clear
``ModelLoadError`` rather than at the first prediction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from .backends.loading import is_hub_id, local_path
from .catalogue import ZOO, ZooEntry, bundled_path
from .displacy import entity_confidence
from .errors import ModelLoadError
from .evaluation.report import doc_tags

if TYPE_CHECKING:
    import pandas

DEFAULT_MODEL = "minilm_conll03"
GENERIC_FACTORY = "token_classifier"
OutputLevel = Literal["chunk", "token"]
ModelKind = Literal["zoo", "pipeline", "checkpoint", "hub"]

CHUNK_COLUMNS = ("document", "text", "label", "start", "end", "confidence")
TOKEN_COLUMNS = ("document", "token", "start", "end", "tag", "confidence")


@dataclass(frozen=True)
class ModelSource:
    """What a model name or path was resolved to."""

    kind: ModelKind
    target: str  # zoo name, folder or hub id
    factory: str | None  # the factory of a fresh pipeline; None for saved pipelines


@dataclass(frozen=True)
class Availability:
    """Whether a zoo model's weights can be loaded on this machine without network, and why."""

    available: bool
    where: str


def availability(entry: ZooEntry) -> Availability:
    """Where this machine has the weights of ``entry``: bundled, the Hugging Face cache, or none.

    Checks the cache with ``try_to_load_from_cache``, which never touches the network.
    """
    bundled = bundled_path(entry)
    if bundled is not None and bundled.exists():
        return Availability(True, "bundled")
    if entry.checkpoint:
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(entry.checkpoint, "config.json")
        except Exception:  # noqa: BLE001 - a malformed id or cache is simply "not here"
            cached = None
        if isinstance(cached, str):
            return Availability(True, f"HF cache: {entry.checkpoint}")
        return Availability(False, f"not cached; {entry.checkpoint} needs internet")
    if bundled is not None:
        return Availability(False, "bundled folder missing")
    return Availability(False, "no public checkpoint")


def resolve_model(name_or_path: str | Path) -> ModelSource:
    """Decide what ``name_or_path`` names (see the module docstring for the order of the rules)."""
    text = str(name_or_path)
    path = local_path(text)
    if path.is_dir():
        if (path / "config.cfg").is_file():
            return ModelSource("pipeline", str(path), None)
        if (path / "config.json").is_file():
            return ModelSource("checkpoint", str(path.resolve()), GENERIC_FACTORY)
        raise ModelLoadError(
            f"{path.resolve()} is neither a saved spaCy pipeline (no config.cfg) nor a Hugging "
            "Face checkpoint folder (no config.json)"
        )
    if path.exists():
        raise ModelLoadError(f"{path.resolve()} is a file; a model is a folder or a zoo name")
    if text in ZOO:
        if not Language.has_factory(text):
            raise ModelLoadError(
                f"Zoo model '{text}' ({ZOO[text].architecture}) has no spaCy factory in this "
                "installation, so it cannot be loaded yet"
            )
        return ModelSource("zoo", text, text)
    if is_hub_id(text, bare_names=False):
        return ModelSource("hub", text, GENERIC_FACTORY)
    if "/" in text or "\\" in text or text.startswith((".", "~")):
        raise ModelLoadError(
            f"Model folder {path.resolve()} does not exist (and '{text}' is not a zoo name)"
        )
    raise ModelLoadError(
        f"Unknown model '{text}': not a zoo name (known: {', '.join(sorted(ZOO))}), not an "
        "existing folder and not a Hugging Face hub id (owner/name)"
    )


def _factory_keys(factory: str) -> set[str]:
    return set(Language.get_factory_meta(factory).default_config)


def check_config_keys(config: dict[str, Any], factory: str, where: str) -> None:
    """Reject unknown config keys of ``factory`` with the list of valid ones (spaCy's message
    buries it); ``where`` names the component in the message."""
    valid = _factory_keys(factory)
    unknown = sorted(set(config) - valid)
    if unknown:
        raise ValueError(
            f"Unknown config key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for "
            f"{where}; valid keys: {', '.join(sorted(valid))}"
        )


def _nerzoo_factories() -> set[str]:
    return {GENERIC_FACTORY} | {name for name in ZOO if Language.has_factory(name)}


def _load_pipeline(folder: str, config: dict[str, Any]) -> Language:
    """``spacy.load`` a saved pipeline, passing ``config`` to each of its nerzoo components."""
    if not config:
        return spacy.load(folder)
    from spacy.util import load_config

    components = load_config(Path(folder) / "config.cfg").get("components", {})
    ours = {
        name: block["factory"]
        for name, block in components.items()
        if block.get("factory") in _nerzoo_factories()
    }
    if not ours:
        raise ValueError(
            f"The pipeline at {folder} has no spacy-nerzoo component to pass "
            f"{', '.join(sorted(config))} to"
        )
    overrides: dict[str, Any] = {}
    for name, factory in ours.items():
        check_config_keys(config, factory, f"component '{name}'")
        overrides.update({f"components.{name}.{key}": value for key, value in config.items()})
    return spacy.load(folder, config=overrides)


def load(name_or_path: str | Path, **config: Any) -> Language:
    """A ready pipeline for a zoo name, a saved pipeline folder or a Hugging Face checkpoint.

    Fresh pipelines are a blank English pipeline plus the component, with ``config`` passed into
    the component's config (``load("albert_conll03", backend="onnx", batch_size=16)``); their
    weights are loaded at once, so errors surface here. For a saved pipeline ``config`` is applied
    to each of its nerzoo components. Unknown keys raise ``ValueError`` naming the valid ones.
    """
    source = resolve_model(name_or_path)
    if source.kind == "pipeline":
        return _load_pipeline(source.target, config)
    assert source.factory is not None
    check_config_keys(config, source.factory, f"'{source.factory}'")
    settings = dict(config)
    if source.kind in ("checkpoint", "hub"):
        given = settings.get("model")
        if given is not None and given != source.target:
            raise ValueError(
                f"Model given twice: '{name_or_path}' and config model='{given}'; give one"
            )
        settings["model"] = source.target
    nlp = spacy.blank("en")
    nlp.add_pipe(source.factory, config=settings)
    nlp.initialize()
    return nlp


def _as_pipeline(model: str | Path | Language, config: dict[str, Any]) -> Language:
    if isinstance(model, Language):
        if config:
            raise ValueError(
                "config settings apply when loading a model; pass a name or path, not a pipeline"
            )
        return model
    return load(model, **config)


def chunk_rows(doc: Doc, document: int) -> list[dict[str, Any]]:
    """One row per entity of ``doc``, with character offsets into ``doc.text``."""
    return [
        {
            "document": document,
            "text": ent.text,
            "label": ent.label_,
            "start": ent.start_char,
            "end": ent.end_char,
            "confidence": entity_confidence(ent),
        }
        for ent in doc.ents
    ]


def token_rows(doc: Doc, document: int) -> list[dict[str, Any]]:
    """One row per token of ``doc``: its IOB2 tag and its entity's confidence (else ``None``)."""
    confidence: list[float | None] = [None] * len(doc)
    for ent in doc.ents:
        conf = entity_confidence(ent)
        for i in range(ent.start, ent.end):
            confidence[i] = conf
    tags = doc_tags(doc)
    return [
        {
            "document": document,
            "token": token.text,
            "start": token.idx,
            "end": token.idx + len(token),
            "tag": tags[token.i],
            "confidence": confidence[token.i],
        }
        for token in doc
    ]


def predict(
    texts: str | Iterable[str],
    model: str | Path | Language = DEFAULT_MODEL,
    output_level: OutputLevel = "chunk",
    **config: Any,
) -> pandas.DataFrame:
    """Entities of ``texts`` as a pandas DataFrame, in one line.

    ``output_level="chunk"`` gives one row per entity (``document, text, label, start, end,
    confidence``); ``"token"`` one row per token (``document, token, start, end, tag,
    confidence``), with IOB2 tags and the confidence of the token's entity. ``document`` is the
    position of the text in ``texts``; ``start``/``end`` are character offsets into that text.
    Missing confidences (tokens outside entities, entities from other components) are stored as
    pandas stores missing floats, NaN. ``model`` is anything ``load`` accepts, or a pipeline;
    ``config`` goes to ``load``.
    """
    import pandas as pd

    if output_level not in ("chunk", "token"):
        raise ValueError(f"output_level must be 'chunk' or 'token', got {output_level!r}")
    nlp = _as_pipeline(model, config)
    if isinstance(texts, str):
        texts = [texts]
    rows_of = chunk_rows if output_level == "chunk" else token_rows
    columns = CHUNK_COLUMNS if output_level == "chunk" else TOKEN_COLUMNS
    rows = [row for i, doc in enumerate(nlp.pipe(texts)) for row in rows_of(doc, i)]
    frame = pd.DataFrame(rows, columns=list(columns))
    return frame.astype({"document": "int64", "start": "int64", "end": "int64"}).astype(
        {"confidence": "float64"}
    )
