"""The trainable NerDL tagger component and the zoo factories built on it.

``nerdl`` is the generic factory (plain word embeddings by default, so it trains from nothing);
``elmo_conll03`` and ``distilbert_conll03`` are the same component with the catalogue's defaults
(CoNLL-2003 labels, IOB2, and the embedding source of the Spark NLP model they mirror). Their
weights are Spark NLP's public downloads, imported with ``nerzoo import-sparknlp`` (or fetched into
the cache, opt-in: the factory then runs the imported model), or train your own with
``spacy train`` (see ``configs/nerdl_*.cfg``).

The component works per sentence: ``doc.sents`` when the Doc has sentence boundaries, otherwise
spaCy's ``sentencizer`` rule (a sentence ends after ``.``, ``!``, ``?``, ...), and any sentence is
cut into pieces of at most ``max_sentence_tokens``, so memory stays bounded on any input.
Whitespace tokens are never shown to the network and are never part of an entity's tags.

This module imports without torch: spaCy loads every ``spacy_factories`` entry point whenever it
creates a ``Language``, so a torch-free install (ONNX models only) must still import it. The torch
network (``model.py``) is imported when torch is there, and otherwise only when a NerDL component
is actually built, which then fails with a message naming the missing extra.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from spacy.language import Language
from spacy.pipeline.sentencizer import Sentencizer
from spacy.pipeline.span_ruler import prioritize_existing_ents_filter
from spacy.tokens import Doc
from spacy.training import Example, validate_get_examples
from spacy.util import minibatch
from spacy.vocab import Vocab
from thinc.api import Model

from ..catalogue import ZOO, ZooEntry
from ..components.base import NERPipe
from ..components.common import (
    CFG_FILE,
    DEFAULT_ENTS_FILTER,
    DEFAULT_SCORER,
    EntsFilter,
    Prediction,
    gold_tag_ids,
    iob2_tags,
    network,
    read_cfg,
    register_factories,
    resolve_ents_filter,
)
from ..decoding import TagScheme, chunk
from ..errors import ModelLoadError
from ..writing import DEFAULT_SPANS_KEY, register_extensions

if TYPE_CHECKING:
    from .embeddings import EmbeddingSource
    from .model import Decoded

if importlib.util.find_spec("torch") is not None:
    # Register the architectures (spacy_nerzoo.NerDL.v1 and the embedding sources) even where
    # the package's spacy_architectures entry points are not installed.
    from . import embeddings as _embeddings  # noqa: F401
    from . import model as _model  # noqa: F401
    from . import spark_network as _spark_network  # noqa: F401

MODEL_FILE = "model"
EMBEDDINGS_DIR = "embeddings"
SERIAL_VERSION = 1
_PUNCT_CHARS = frozenset(Sentencizer.default_punct_chars)

# Imported from here by other modules and tests.
__all__ = ["NerDLTagger", "iob2_tags", "make_nerdl", "network", "split_sentences"]


def split_sentences(
    doc: Doc, max_tokens: int, starts: Sequence[bool] | None = None
) -> list[list[int]]:
    """Token indices of each sentence (whitespace tokens left out), at most ``max_tokens`` each.

    Boundaries come from ``starts`` (one flag per token) when given, else from ``doc.sents`` when
    the Doc has them, else from spaCy's sentencizer rule, applied without writing to the Doc.
    """
    if starts is None and doc.has_annotation("SENT_START"):
        starts = [t.is_sent_start is True for t in doc]
    groups: list[list[int]] = [[]]
    seen_end = False
    for t in doc:
        if starts is not None:
            new = bool(starts[t.i])
        else:
            new = seen_end and not t.is_punct and not t.is_space
            seen_end = (seen_end and not new) or t.text in _PUNCT_CHARS
        if new and groups[-1]:
            groups.append([])
        if not t.is_space:
            groups[-1].append(t.i)
    out: list[list[int]] = []
    for g in groups:
        out.extend(g[i : i + max_tokens] for i in range(0, len(g), max_tokens))
    return [g for g in out if g]


def training_sentences(eg: Example, max_tokens: int) -> list[list[int]]:
    """Sentences of an example's predicted Doc, taking the gold boundaries where it has none.

    ``spacy train`` re-tokenises the text, so predicted Docs carry no sentence boundaries even when
    the corpus has them (our converters set them); the gold ones, aligned, are what the data says.
    """
    if not eg.predicted.has_annotation("SENT_START") and eg.reference.has_annotation("SENT_START"):
        try:
            return split_sentences(eg.predicted, max_tokens, eg.get_aligned_sent_starts())
        except IndexError:  # a gold sentence start with no aligned token: use the rule
            pass
    return split_sentences(eg.predicted, max_tokens)


class NerDLTagger(NERPipe):
    """A trainable BiLSTM-CNN-CRF named-entity tagger over pluggable embeddings.

    Entities go to ``doc.ents`` (merged with existing ones by ``ents_filter``), to
    ``doc.spans[spans_key]`` with scores, and to ``Span._.confidence``: the mean CRF marginal
    probability of the entity's tags (forward-backward over the whole sentence), a probability
    under the model, which the Viterbi path score is not.
    """

    def __init__(
        self,
        vocab: Vocab,
        model: Model[Any, Any],
        name: str = "nerdl",
        *,
        labels: list[str] | None = None,
        max_sentence_tokens: int = 256,
        batch_size: int = 32,
        ents_filter: EntsFilter | None = None,
        spans_key: str | None = DEFAULT_SPANS_KEY,
        scorer: Callable[..., dict[str, Any]] | None = None,
        overwrite_ents: bool | None = None,
    ) -> None:
        if max_sentence_tokens < 1 or batch_size < 1:
            raise ValueError(
                f"max_sentence_tokens and batch_size must be >= 1 "
                f"(got {max_sentence_tokens}, {batch_size})"
            )
        self.vocab = vocab
        self.model = model
        self.name = name
        self.cfg: dict[str, Any] = {"labels": sorted(set(labels or []))}
        self.max_sentence_tokens = max_sentence_tokens
        self.batch_size = batch_size
        if ents_filter is None:
            ents_filter = prioritize_existing_ents_filter
        self.ents_filter = resolve_ents_filter(ents_filter, overwrite_ents, name)
        self.spans_key = spans_key
        self.scorer = scorer
        self.model.attrs["component"] = name
        register_extensions()

    # -- labels --------------------------------------------------------------------------------

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> list[str]:
        return list(self.labels)

    @property
    def tag_names(self) -> list[str] | None:
        names = self.model.attrs.get("tag_names")
        return list(names) if names else None

    def add_label(self, label: str) -> int:
        """Add an entity label; only before the network is built (its output size is fixed)."""
        if not isinstance(label, str):
            raise ValueError(f"Labels must be strings, got {label!r}")
        if label in self.cfg["labels"]:
            return 0
        if network(self.model) is not None:
            raise ValueError(
                f"Cannot add label {label!r} to '{self.name}' after it is initialized; "
                "add it before nlp.initialize() or pass it in [initialize.components]"
            )
        self.cfg["labels"] = sorted([*self.cfg["labels"], label])
        return 1

    # -- training ------------------------------------------------------------------------------

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Language | None = None,
        labels: list[str] | None = None,
    ) -> None:
        """Collect labels and the embedding source's vocabulary from the data; build the network.

        Pretrained embedding weights load here, so a missing ELMo file or HF encoder fails at
        ``nlp.initialize()`` with a ``ModelLoadError``.
        """
        validate_get_examples(get_examples, "NerDLTagger.initialize")
        found = set(self.cfg["labels"]) | set(labels or [])
        source: EmbeddingSource = self.model.attrs["embeddings"]

        texts: list[list[str]] = []
        for eg in get_examples():
            found.update(ent.label_ for ent in eg.reference.ents)
            texts.append([t.text for t in eg.reference if not t.is_space])
        source.fit(texts)
        if not found:
            raise ValueError(
                f"'{self.name}' found no entity labels: the examples have no doc.ents and no "
                "labels were configured"
            )
        self.cfg["labels"] = sorted(found)
        self.model.attrs["tag_names"] = iob2_tags(found)
        self.model.initialize()

    def train_step(self, examples: list[Example]) -> float | None:
        """Forward and backward passes on the mean CRF negative log-likelihood of the batch's
        sentences. Dropout is the architecture's ``dropout`` setting, inside the torch network."""
        tag_names = self.tag_names
        if tag_names is None or network(self.model) is None:
            raise ValueError(f"'{self.name}' is not initialized: call nlp.initialize() first")
        scheme = TagScheme.from_labels(tag_names)
        sentences: list[list[str]] = []
        tags: list[list[int]] = []
        for eg in examples:
            doc = eg.predicted
            # -1 where unknown (missing or misaligned annotation): marginalised by the CRF.
            gold = gold_tag_ids(eg.get_aligned_ner(), scheme, -1)
            for index in training_sentences(eg, self.max_sentence_tokens):
                sentences.append([doc[i].text for i in index])
                tags.append(gold[index].tolist())
        if not sentences:
            return None
        loss, backprop = self.model.begin_update((sentences, tags))
        backprop(1.0)
        return float(loss.detach())

    # -- prediction ----------------------------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> list[list[Prediction]]:
        """Entities ``(start, end, label, confidence)`` of each Doc, sentence by sentence."""
        docs = list(docs)
        result: list[list[Prediction]] = [[] for _ in docs]
        tag_names = self.tag_names
        if tag_names is None or network(self.model) is None:
            seed = ZOO.get(self.name)
            hint = ""
            if seed is not None and seed.spark_nlp_download:
                from ..sparknlp.zoo import import_hint

                hint = " " + import_hint(seed)
            raise ValueError(
                f"'{self.name}' has no trained network: train it (nlp.initialize() and "
                "nlp.update(), or `spacy train`) or load a trained pipeline" + hint
            )
        scheme = TagScheme.from_labels(tag_names)
        units = [
            (d, index)
            for d, doc in enumerate(docs)
            for index in split_sentences(doc, self.max_sentence_tokens)
        ]
        units.sort(key=lambda u: len(u[1]))  # similar lengths together: less padding
        for batch in minibatch(units, size=self.batch_size):
            words = [[docs[d][i].text for i in index] for d, index in batch]
            decoded: Decoded = self.model.predict((words, None))
            for (d, index), path, marg in zip(batch, decoded.paths, decoded.marginals, strict=True):
                for s, e, typ in chunk(path, scheme):
                    conf = float(marg[np.arange(s, e), path[s:e]].mean())
                    result[d].append((index[s], index[e - 1] + 1, typ, conf))
        for ents in result:
            ents.sort()
        return result

    # -- serialisation -------------------------------------------------------------------------

    def _source(self) -> EmbeddingSource:
        return self.model.attrs["embeddings"]  # type: ignore[no-any-return]

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        """Labels, the source's state (vocabulary), its files (encoder config and tokenizer,
        ELMo options) and all weights, inside the pipeline: nothing is fetched again."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        net = network(self.model)
        cfg = {
            "serial_version": SERIAL_VERSION,
            "labels": self.cfg["labels"],
            "tag_names": self.tag_names,
            "embeddings_kind": self._source().kind,
            "embeddings_state": self._source().get_state(),
        }
        (path / CFG_FILE).write_text(json.dumps(cfg), encoding="utf8")
        if net is not None:
            files = path / EMBEDDINGS_DIR
            files.mkdir(exist_ok=True)
            self._source().save_files(net.embeddings, files)
            (path / MODEL_FILE).write_bytes(self.model.to_bytes())

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> NerDLTagger:
        path = Path(path)
        cfg = read_cfg(path, self.name, SERIAL_VERSION)
        if cfg.get("embeddings_kind") != self._source().kind:
            raise ModelLoadError(
                f"Component '{self.name}' at {path} was trained with {cfg.get('embeddings_kind')} "
                f"embeddings but its config builds {self._source().kind} embeddings"
            )
        self.cfg["labels"] = list(cfg["labels"])
        self._source().set_state(cfg.get("embeddings_state") or {})
        if cfg.get("tag_names"):
            self.model.attrs["tag_names"] = list(cfg["tag_names"])
            from .model import build_network

            data = (path / MODEL_FILE).read_bytes()
            adopt_saved_network(self.model, data)
            build_network(self.model, path / EMBEDDINGS_DIR, self.name)
            try:
                self.model.from_bytes(data)
            except (RuntimeError, ValueError, KeyError) as e:
                reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ModelLoadError(
                    f"Component '{self.name}': the weights saved at {path} do not fit the "
                    f"network its config builds ({reason}); load the pipeline with the config "
                    "it was saved with"
                ) from None
        return self


def adopt_saved_network(model: Model[Any, Any], data: bytes) -> None:
    """Take the saved network's kind and sizes when the model builds the other kind.

    A Spark NLP import (``spacy_nerzoo.SparkNerDL.v1``) and a trained tagger
    (``spacy_nerzoo.NerDL.v1``) can never share weights, so a saved pipeline of one kind loads
    whatever the config builds (e.g. a seed's factory, which runs the imported model when the
    cache has it); same-kind size mismatches still fail in ``from_disk``.
    """
    import srsly

    attrs = srsly.msgpack_loads(data)["attrs"][0]  # thinc's to_bytes: the top node comes first
    saved = srsly.msgpack_loads(attrs["network"]) if "network" in attrs else None
    if saved == model.attrs.get("network") or "hparams" not in attrs:
        return
    model.attrs["hparams"] = srsly.msgpack_loads(attrs["hparams"])
    if saved is None:
        del model.attrs["network"]
    else:
        model.attrs["network"] = saved


def make_nerdl(
    nlp: Language,
    name: str,
    model: Model[Any, Any],
    labels: list[str] | None,
    max_sentence_tokens: int,
    batch_size: int,
    ents_filter: EntsFilter,
    spans_key: str | None,
    scorer: Callable[..., dict[str, Any]] | None,
    overwrite_ents: bool | None = None,
) -> NerDLTagger:
    """Factory of the generic ``nerdl`` component and of the NerDL zoo entries.

    A seed entry whose Spark NLP model is converted in the cache (or fetched now, opt-in:
    ``spacy_nerzoo.sparknlp.zoo``) runs that model: its architecture and weights replace the
    untrained default.
    """
    weights: Path | None = None
    seed = ZOO.get(name)
    if seed is not None and seed.spark_nlp_download and network(model) is None:
        from ..sparknlp.zoo import cached_checkpoint, nerdl_model

        converted = cached_checkpoint(name)
        if converted is not None:
            model, weights = nerdl_model(converted)
    tagger = NerDLTagger(
        nlp.vocab,
        model,
        name,
        labels=labels,
        max_sentence_tokens=max_sentence_tokens,
        batch_size=batch_size,
        ents_filter=ents_filter,
        spans_key=spans_key,
        scorer=scorer,
        overwrite_ents=overwrite_ents,
    )
    return tagger if weights is None else tagger.from_disk(weights)


def _embeddings_config(entry: ZooEntry | None) -> dict[str, Any]:
    if entry is None:
        return {"@architectures": "spacy_nerzoo.WordEmbeddings.v1"}
    if entry.base_encoder.startswith("ELMo"):
        # Spark's ner_conll_elmo pools with setPoolingLayer("elmo"): the learned mix.
        return {
            "@architectures": "spacy_nerzoo.ElmoEmbeddings.v1",
            "options_file": None,
            "weight_file": None,
            "pooling_layer": "elmo",
        }
    return {"@architectures": "spacy_nerzoo.TransformerEmbeddings.v1", "name": entry.base_encoder}


def default_config(entry: ZooEntry | None) -> dict[str, Any]:
    """The factory defaults, read from the catalogue (the single home of model defaults)."""
    if entry is not None and entry.tag_scheme != "IOB2":
        raise ValueError(f"NerDL entries are trained with IOB2 tags, not {entry.tag_scheme}")
    return {
        "model": {
            "@architectures": "spacy_nerzoo.NerDL.v1",
            "embeddings": _embeddings_config(entry),
        },
        "labels": list(entry.labels) if entry else None,
        "max_sentence_tokens": 256,
        "batch_size": 32,
        "ents_filter": DEFAULT_ENTS_FILTER,
        "overwrite_ents": None,
        "spans_key": DEFAULT_SPANS_KEY,
        "scorer": DEFAULT_SCORER,
    }


register_factories("nerdl", "nerdl", make_nerdl, default_config)
