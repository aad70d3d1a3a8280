"""What the NER components (token classifier, NerDL) and the Doc writer share.

One home for the prediction tuple both components hand to :mod:`spacy_nerzoo.writing`, the tag
names of a new network, how spaCy's aligned BILUO gold tags read in a network's tag scheme, the
entity-conflict setting, the ``cfg.json`` check of ``from_disk`` and the registration of a
component's zoo factories. Each rule here used to be written once per component.
"""

from __future__ import annotations

import inspect
import json
import warnings
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_type_hints

import numpy as np
from spacy.language import Language
from spacy.tokens import Span
from spacy.util import registry
from thinc.api import Model

from ..catalogue import ZOO, ZooEntry
from ..decoding import TagScheme, chunk_flat, mean_tag_probs
from ..errors import ModelLoadError
from ..evaluation import scorer as _scorer  # noqa: F401 - registers conlleval_scorer.v1
from ..evaluation.conlleval import LabelLevel

__all__ = [
    "DEFAULT_ENTS_FILTER",
    "DEFAULT_SCORER",
    "EntsFilter",
    "FACTORY_META",
    "LabelLevel",
    "NewHeadScheme",
    "Prediction",
    "entities_from_tags",
    "gold_tag_ids",
    "io_tags",
    "iob2_tags",
    "network",
    "pipe_factory",
    "read_cfg",
    "register_factories",
    "replace_ents_filter",
    "resolve_ents_filter",
]

Prediction = tuple[int, int, str, float]  # token start, token end (exclusive), label, confidence
NewHeadScheme = Literal["IOB2", "IO"]
# spaCy's entity-conflict policy (span_ruler's ents_filter): (existing ents, new spans) -> ents.
EntsFilter = Callable[[Iterable[Span], Iterable[Span]], Iterable[Span]]
DEFAULT_ENTS_FILTER = {"@misc": "spacy.prioritize_existing_ents_filter.v1"}
# conlleval under spaCy's NER keys: `spacy train` and `spacy evaluate` report the cards' numbers.
DEFAULT_SCORER = {"@scorers": "spacy_nerzoo.conlleval_scorer.v1"}
CFG_FILE = "cfg.json"
T = TypeVar("T")

# spaCy's aligned gold tags are BILUO; how each prefix reads in a network's tag scheme.
BILUO_TO_SCHEME: dict[str, dict[str, str]] = {
    "IOB2": {"B": "B", "I": "I", "L": "I", "U": "B"},
    "IO": {"B": "I", "I": "I", "L": "I", "U": "I"},
    "BIOES": {"B": "B", "I": "I", "L": "E", "U": "S"},
}

# What every NER factory declares: what it writes (doc.spans with a spans_key, the default; the
# confidence of each entity it adds) and spaCy's NER score keys (the conlleval scorer fills them).
FACTORY_META: dict[str, Any] = {
    "assigns": ["doc.ents", "doc.spans", "token.ent_iob", "token.ent_type", "span._.confidence"],
    "default_score_weights": {"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
}


def network(model: Model[Any, Any]) -> Any:
    """The torch network inside a thinc model's shim (None before one is bound or built)."""
    return model.shims[0]._model if model.shims else None


def iob2_tags(labels: Iterable[str]) -> list[str]:
    """``O`` then ``B-X``, ``I-X`` for each label in sorted order: a new network's outputs."""
    return ["O"] + [f"{p}-{lab}" for lab in sorted(set(labels)) for p in ("B", "I")]


def io_tags(labels: Iterable[str]) -> list[str]:
    """``O`` then ``I-X`` for each label in sorted order. IO tags carry the ``I-`` prefix so
    that no label can be misread as a prefixed tag."""
    return ["O"] + [f"I-{lab}" for lab in sorted(set(labels))]


def gold_tag_ids(aligned: Sequence[str | None], scheme: TagScheme, missing: int) -> np.ndarray:
    """Tag ids in ``scheme`` for spaCy's aligned BILUO tags (``Example.get_aligned_ner()``).

    ``missing`` where the tag is unknown: no annotation (``None``), a misaligned token (``-``),
    or a label the network lacks (unknown, not ``O``: a network is fitted to its data's labels).
    """
    to_scheme = BILUO_TO_SCHEME[scheme.name]
    index: dict[tuple[str, str], int] = {}
    for i, key in enumerate(zip(scheme.prefixes, scheme.types, strict=True)):
        index.setdefault(key, i)
    memo: dict[str | None, int] = {"O": scheme.outside, None: missing, "-": missing}
    out = np.full(len(aligned), missing, np.int64)
    for i, tag in enumerate(aligned):
        if tag not in memo:
            prefix, _, label = tag.partition("-")  # type: ignore[union-attr]
            memo[tag] = index.get((to_scheme.get(prefix, ""), label), missing)
        out[i] = memo[tag]
    return out


def replace_ents_filter(entities: Iterable[Span], spans: Iterable[Span]) -> list[Span]:
    """Drop every existing entity and keep the new spans: what ``overwrite_ents=True`` did.

    spaCy's ``prioritize_new_ents_filter`` differs: it keeps existing entities that no new span
    overlaps.
    """
    return list(spans)


@registry.misc("spacy_nerzoo.replace_ents_filter.v1")
def make_replace_ents_filter() -> EntsFilter:
    """``ents_filter = {"@misc": "spacy_nerzoo.replace_ents_filter.v1"}``."""
    return replace_ents_filter


def entities_from_tags(
    token_probs: np.ndarray,
    tags: np.ndarray,
    offsets: np.ndarray,
    segments: np.ndarray,
    scheme: TagScheme,
    labels: Collection[str] | None = None,
    heads: np.ndarray | None = None,
) -> list[list[Prediction]]:
    """Each Doc's entities from the decoded tags of a batch (Doc ``d``: tokens
    ``offsets[d]:offsets[d+1]``), chunked within ``segments``, with the mean probability of their
    tags as confidence; only entities of ``labels`` when given.

    With ``heads`` (``alignment.word_heads``), ``token_probs``, ``tags`` and ``segments`` are per
    word, word ``i`` starting at token ``heads[i]`` and running to the next word's start: an
    entity covers whole words, so a compound read as one word is never cut.
    """
    starts, ends, types = chunk_flat(tags, segments, scheme)
    confidences = mean_tag_probs(token_probs, tags, starts, ends).tolist()
    if heads is not None:
        word_end = np.r_[heads[1:], offsets[-1]]
        starts, ends = heads[starts], word_end[ends - 1]
    doc_of = np.searchsorted(offsets, starts, side="right") - 1
    first = offsets[doc_of]
    names = scheme.entity_types
    keep = [labels is None or lab in labels for lab in names]
    result: list[list[Prediction]] = [[] for _ in range(len(offsets) - 1)]
    for d, s, e, typ, conf in zip(
        doc_of.tolist(),
        (starts - first).tolist(),
        (ends - first).tolist(),
        types.tolist(),
        confidences,
        strict=True,
    ):
        if keep[typ]:
            result[d].append((s, e, names[typ], conf))
    return result


def resolve_ents_filter(
    ents_filter: EntsFilter, overwrite_ents: bool | None, component: str
) -> EntsFilter:
    """The entity-conflict policy: ``ents_filter``, or the deprecated ``overwrite_ents`` bool.

    ``overwrite_ents=True`` meant "replace every existing entity", which is
    ``spacy_nerzoo.replace_ents_filter.v1``; ``False`` meant spaCy's
    ``prioritize_existing_ents_filter``, the default ``ents_filter``. Either value still works,
    with a warning, so configs written for earlier versions keep loading.
    """
    if overwrite_ents is None:
        return ents_filter
    replacement = (
        '{"@misc": "spacy_nerzoo.replace_ents_filter.v1"}'
        if overwrite_ents
        else '{"@misc": "spacy.prioritize_existing_ents_filter.v1"} (the default)'
    )
    warnings.warn(
        f"Component '{component}': overwrite_ents is deprecated; set ents_filter = "
        f"{replacement} instead",
        FutureWarning,
        stacklevel=3,
    )
    return replace_ents_filter if overwrite_ents else ents_filter


def read_cfg(path: Path, component: str, serial_version: int) -> dict[str, Any]:
    """A saved component's ``cfg.json``, refused when missing or written in another format."""
    cfg_path = path / CFG_FILE
    if not cfg_path.exists():
        raise ModelLoadError(
            f"Component '{component}': {cfg_path} is missing; the saved pipeline is incomplete"
        )
    cfg: dict[str, Any] = json.loads(cfg_path.read_text(encoding="utf8"))
    if cfg.get("serial_version") != serial_version:
        raise ModelLoadError(
            f"Component '{component}' at {path} was saved by an incompatible version of "
            f"spacy-nerzoo (format {cfg.get('serial_version')}, this version reads "
            f"{serial_version}); re-create the pipeline with this version"
        )
    return cfg


def pipe_factory(cls: type[T]) -> Callable[..., T]:
    """A spaCy factory ``(nlp, name, **settings) -> cls(nlp, name, **settings)`` whose signature
    and type hints are those of ``cls.__init__``.

    spaCy validates a component's config against its factory's signature (a ``Literal`` setting
    rejects a typo before anything runs) but not against a class's ``__init__``; deriving the
    factory from ``__init__`` keeps one declaration of the settings instead of two.
    """

    def make(nlp: Language, name: str, **settings: Any) -> T:
        return cls(nlp, name, **settings)

    sig = inspect.signature(cls.__init__)
    make.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=list(sig.parameters.values())[1:], return_annotation=cls
    )
    make.__annotations__ = {**get_type_hints(cls.__init__), "return": cls}
    make.__name__ = make.__qualname__ = f"make_{cls.__name__}"
    make.__module__ = cls.__module__
    make.__doc__ = f"The factory of :class:`{cls.__name__}`: its settings are ``__init__``'s."
    return make


def register_factories(
    generic: str,
    architecture: str,
    func: Callable[..., Any],
    default_config: Callable[[ZooEntry | None], dict[str, Any]],
) -> None:
    """Register the generic factory ``generic`` and every zoo entry built on ``architecture``,
    each with its catalogue defaults (the ``spacy_factories`` entry points name the same ones)."""
    Language.factory(generic, default_config=default_config(None), func=func, **FACTORY_META)
    for entry in ZOO.values():
        if entry.architecture == architecture:
            Language.factory(
                entry.name, default_config=default_config(entry), func=func, **FACTORY_META
            )
