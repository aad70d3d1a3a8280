"""The NerDL network (char CNN + casing + embeddings -> BiLSTM -> CRF) and its thinc wrapper.

Design: the whole tagger, embedding source and CRF included, is one ``torch.nn.Module`` held by a
thinc ``PyTorchShim`` inside a thinc ``Model`` (``spacy_nerzoo.NerDL.v1``). spaCy's optimizer
therefore trains it (``[training.optimizer]``: Adam, warm-up schedules, gradient clipping and L2
all apply, via ``shim.finish_update``), and thinc serialises it (the state dict travels in the
model's bytes). We drive the shim from our own thinc forward rather than ``PyTorchWrapper_v2``
because the network's output is not an array for a next layer: in training it is the CRF loss
(backpropagated with gradient 1), in prediction the Viterbi paths and marginals. And the network is
built lazily (``Model.initialize``, or ``build_network`` from saved files at ``from_disk``), since
its sizes depend on the labels and vocabulary found in the data and its pretrained weights must
not load in the factory.

The network mirrors Spark NLP's NerDL (Chiu & Nichols 2016; Ma & Hovy 2016): a word's features
are its embedding, a max-pooled character CNN (characters capped at ``max_chars`` per token, so a
10,000-character token costs no more than a long word) and a casing class; a BiLSTM reads them
and a linear layer scores the tags, which a CRF constrained to valid IOB2 sequences decodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import spacy
from thinc.api import ArgsKwargs, Model
from thinc.shims import PyTorchShim

try:
    import torch
    from torch import Tensor, nn
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError("The NerDL tagger needs torch: pip install 'spacy-nerzoo[torch]'") from e

from ..decoding import TagScheme
from .crf import CRF
from .embeddings import EmbeddingModule, EmbeddingSource

# Casing classes of Reimers & Gurevych (2017); 0 is padding.
CASINGS = (
    "numeric",
    "mainly_numeric",
    "all_lower",
    "all_upper",
    "initial_upper",
    "contains_digit",
    "other",
)


def casing(word: str) -> int:
    """Index (from 1) of the word's casing class."""
    digits = sum(c.isdigit() for c in word)
    if word.isdigit():
        name = "numeric"
    elif digits / max(len(word), 1) > 0.5:
        name = "mainly_numeric"
    elif word.islower():
        name = "all_lower"
    elif word.isupper():
        name = "all_upper"
    elif word[:1].isupper():
        name = "initial_upper"
    elif digits:
        name = "contains_digit"
    else:
        name = "other"
    return CASINGS.index(name) + 1


@dataclass
class Decoded:
    """Predictions for a batch of sentences: tag paths and per-token tag marginals."""

    paths: list[list[int]]
    marginals: list[np.ndarray]  # (n_tokens, n_tags) each


class NerDLNetwork(nn.Module):
    """Embeddings + char CNN + casing -> BiLSTM -> linear -> CRF, for sentences of words.

    ``forward(sentences, tags)`` returns the mean CRF negative log-likelihood per sentence (tags
    of -1 are unknown and marginalised); ``forward(sentences)`` returns :class:`Decoded`.
    """

    def __init__(
        self,
        embeddings: EmbeddingModule,
        tag_names: Sequence[str],
        *,
        hidden_size: int,
        lstm_layers: int,
        char_embed_dim: int,
        char_filters: int,
        char_window: int,
        char_buckets: int,
        max_chars: int,
        casing_dim: int,
        dropout: float,
    ) -> None:
        super().__init__()
        if max_chars < 1 or char_buckets < 2:
            raise ValueError(f"Need max_chars >= 1 and char_buckets >= 2 ({max_chars=})")
        scheme = TagScheme.from_labels(list(tag_names))
        self.embeddings = embeddings
        self.max_chars = max_chars
        self.char_buckets = char_buckets
        self.char_embed = nn.Embedding(char_buckets, char_embed_dim, padding_idx=0)
        self.char_conv = nn.Conv1d(
            char_embed_dim, char_filters, char_window, padding=char_window // 2
        )
        self.casing = nn.Embedding(len(CASINGS) + 1, casing_dim, padding_idx=0)
        in_dim = embeddings.output_dim + char_filters + casing_dim
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            in_dim,
            hidden_size,
            num_layers=lstm_layers,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if lstm_layers > 1 else 0.0,
        )
        self.out = nn.Linear(2 * hidden_size, len(tag_names))
        self.crf = CRF(len(tag_names), scheme.transitions())

    @property
    def device(self) -> torch.device:
        return self.out.weight.device

    def _char_ids(self, words: list[str]) -> Tensor:
        # Code points hashed into buckets (0 is padding): any script works, no char vocabulary.
        longest = max((min(len(w), self.max_chars) for w in words), default=1)
        ids = torch.zeros(len(words), max(longest, 1), dtype=torch.long)
        m = self.char_buckets - 1
        for i, w in enumerate(words):
            cut = w[: self.max_chars]
            if cut:
                ids[i, : len(cut)] = torch.tensor([1 + ord(c) % m for c in cut])
        return ids

    def _char_features(self, words: list[str]) -> Tensor:
        ids = self._char_ids(words).to(self.device)
        x = self.char_conv(self.dropout(self.char_embed(ids)).transpose(1, 2))
        x = x.masked_fill((ids == 0)[:, None, :], float("-inf"))
        feats = x.max(dim=-1).values
        return torch.where(torch.isfinite(feats), feats, torch.zeros_like(feats))

    def emissions(self, sentences: Sequence[Sequence[str]]) -> tuple[Tensor, Tensor]:
        """Tag scores ``(batch, T, n_tags)`` and the token mask ``(batch, T)``."""
        lengths = torch.tensor([len(s) for s in sentences], dtype=torch.long)
        batch, width = len(sentences), int(lengths.max()) if len(sentences) else 0
        mask = torch.arange(width)[None, :] < lengths[:, None]
        flat = [w for s in sentences for w in s]
        n_chars = self.char_conv.out_channels
        chars = torch.zeros(batch, width, n_chars, device=self.device)
        cases = torch.zeros(batch, width, dtype=torch.long)
        if flat:
            chars[mask.to(self.device)] = self._char_features(flat)
            cases[mask] = torch.tensor([casing(w) for w in flat], dtype=torch.long)
        emb = self.embeddings(sentences)
        x = torch.cat([emb, chars, self.casing(cases.to(self.device))], dim=-1)
        x = self.dropout(x)
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.clamp(min=1), batch_first=True, enforce_sorted=False
        )
        hidden, _ = self.lstm(packed)
        hidden, _ = nn.utils.rnn.pad_packed_sequence(hidden, batch_first=True, total_length=width)
        scores = self.out(self.dropout(hidden))
        return scores, mask.to(self.device)

    def forward(
        self, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[int]] | None = None
    ) -> Tensor | Decoded:
        scores, mask = self.emissions(sentences)
        if tags is not None:
            gold = torch.full(mask.shape, -1, dtype=torch.long)
            for row, t in enumerate(tags):
                gold[row, : len(t)] = torch.tensor(list(t), dtype=torch.long)
            return self.crf.nll(scores, gold.to(self.device), mask).mean()
        paths = self.crf.viterbi(scores, mask)
        marg = self.crf.marginals(scores, mask).float().cpu().numpy()
        return Decoded(paths, [marg[b, : len(p)] for b, p in enumerate(paths)])


NerDLInput = tuple[Sequence[Sequence[str]], Sequence[Sequence[int]] | None]


def _forward(model: Model[NerDLInput, Any], inputs: NerDLInput, is_train: bool) -> tuple[Any, Any]:
    """Run the shim: the loss (training, with gold tags) or :class:`Decoded` (prediction)."""
    if not model.shims:
        raise ValueError(
            "The NerDL network is not built yet: call nlp.initialize() (or load a trained "
            "pipeline) before using it"
        )
    shim = model.shims[0]
    sentences, tags = inputs
    args = ArgsKwargs(args=(sentences,), kwargs={} if tags is None else {"tags": tags})
    if not is_train:
        return shim.predict(args), lambda d: None
    output, shim_backprop = shim.begin_update(args)

    def backprop(d_loss: float) -> None:
        if isinstance(output, Tensor):
            grad = torch.as_tensor(d_loss, dtype=output.dtype, device=output.device)
            shim_backprop(ArgsKwargs(args=(output,), kwargs={"grad_tensors": grad}))

    return output, backprop


def build_network(model: Model[NerDLInput, Any], saved: Path | None, component: str) -> None:
    """Build the torch network from the model's attrs and put it in the model's shim.

    ``saved`` None loads pretrained embedding weights (``initialize``); a folder rebuilds the
    structure from files written at ``to_disk``, before ``from_bytes`` fills in the weights.
    """
    tag_names = model.attrs.get("tag_names")
    if not tag_names:
        raise ValueError("NerDL needs its tag names before the network can be built")
    source: EmbeddingSource = model.attrs["embeddings"]
    embeddings = source.build(saved, component=component)
    network_class: type[nn.Module] = NerDLNetwork
    if model.attrs.get("network") == "spark":  # spacy_nerzoo.SparkNerDL.v1: imported weights
        from .spark_network import SparkNerDLNetwork

        network_class = SparkNerDLNetwork
    net = network_class(embeddings, tag_names, **model.attrs["hparams"])
    model.shims[:] = [PyTorchShim(net)]


def _init(model: Model[NerDLInput, Any], X: Any = None, Y: Any = None) -> None:
    build_network(model, None, model.attrs.get("component", "nerdl"))


@spacy.registry.architectures("spacy_nerzoo.NerDL.v1")
def build_nerdl(
    embeddings: EmbeddingSource,
    hidden_size: int = 200,
    lstm_layers: int = 1,
    char_embed_dim: int = 25,
    char_filters: int = 30,
    char_window: int = 3,
    char_buckets: int = 1000,
    max_chars: int = 50,
    casing_dim: int = 8,
    dropout: float = 0.5,
) -> Model[NerDLInput, Any]:
    """NerDL tagger: ``embeddings`` + char CNN + casing -> BiLSTM -> CRF (built at initialize).

    Defaults follow Ma & Hovy (2016) / Spark NLP's NerDL: 30 char filters of width 3, one BiLSTM
    layer of 200 units per direction, dropout 0.5.
    """
    hparams = {
        "hidden_size": hidden_size,
        "lstm_layers": lstm_layers,
        "char_embed_dim": char_embed_dim,
        "char_filters": char_filters,
        "char_window": char_window,
        "char_buckets": char_buckets,
        "max_chars": max_chars,
        "casing_dim": casing_dim,
        "dropout": dropout,
    }
    return Model(
        "nerdl",
        _forward,
        init=_init,
        attrs={"embeddings": embeddings, "hparams": hparams, "tag_names": None},
    )
