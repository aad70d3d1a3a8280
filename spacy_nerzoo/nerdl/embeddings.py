"""Embedding sources of the NerDL tagger: plain words, ELMo, or a frozen Hugging Face encoder.

Each source is a registered architecture (``spacy_nerzoo.WordEmbeddings.v1``,
``spacy_nerzoo.ElmoEmbeddings.v1``, ``spacy_nerzoo.TransformerEmbeddings.v1``) that returns an
:class:`EmbeddingSource`: the settings now, and a torch module later. Why not a thinc ``Model``:
the sources carry weights that must load lazily (at ``nlp.initialize()``, or from the saved
pipeline at ``from_disk``, never in the factory, which runs before ``from_disk`` and would need the
original files again), and the module they build becomes one part of the tagger's single torch
network, trained and serialised through one thinc shim (see ``model.py``).

A built module maps a batch of sentences (lists of words, whitespace removed) to
``(batch, T, output_dim)`` zero-padded vectors.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import spacy
from spacy.tokens import Doc
from spacy.vocab import Vocab

try:
    import torch
    from torch import Tensor, nn
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError("NerDL embeddings need torch: pip install 'spacy-nerzoo[torch]'") from e

from ..alignment import (
    Alignment,
    best_window,
    encode_docs,
    pad_token_id,
    plan_windows,
    pool_pieces,
    special_tokens,
)
from ..errors import ModelLoadError
from .elmo import Elmo, ElmoBiLM, PoolingLayer, load_bilm, read_options

Sentences = Sequence[Sequence[str]]


class EmbeddingModule(nn.Module):
    """A torch module mapping sentences of words to ``(batch, T, output_dim)`` vectors."""

    output_dim: int

    def forward(self, sentences: Sentences) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class EmbeddingSource(ABC):
    """How to build (and rebuild) one embedding module; what it learns from data; its files.

    ``fit`` sees the training words once at ``initialize``; ``get_state``/``set_state`` carry
    what it learned (JSON) through serialisation; ``build(None)`` loads pretrained weights,
    ``build(folder)`` rebuilds the structure from files written by ``save_files`` (the weights
    then come from the tagger's state dict).
    """

    kind: str = ""

    def fit(self, sentences: Iterable[Sequence[str]]) -> None:  # noqa: B027 - optional hook
        """Learn from the training words (a vocabulary); most sources need nothing."""

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what ``get_state`` returned."""

    @abstractmethod
    def build(self, saved: Path | None, *, component: str) -> EmbeddingModule:
        """The module: pretrained weights when ``saved`` is None, else structure from files."""

    def save_files(self, module: EmbeddingModule, path: Path) -> None:  # noqa: B027
        """Write what ``build(path)`` needs besides the state dict (configs, tokenizers)."""


# -- plain word embeddings --------------------------------------------------------------------

PAD_ID = 0
UNK_ID = 1


class WordEmbeddingModule(EmbeddingModule):
    """Trainable embeddings over a fixed vocabulary; unknown words share one vector.

    During training each word is replaced by the unknown vector with probability
    ``unk_dropout``, so that vector is learnt from the data rather than left random.
    """

    def __init__(self, vocab: Sequence[str], width: int, lowercase: bool, unk_dropout: float):
        super().__init__()
        self.index = {w: i + 2 for i, w in enumerate(vocab)}
        self.lowercase = lowercase
        self.unk_dropout = unk_dropout
        self.output_dim = width
        self.table = nn.Embedding(len(vocab) + 2, width, padding_idx=PAD_ID)
        nn.init.normal_(self.table.weight, std=0.1)
        with torch.no_grad():
            self.table.weight[PAD_ID].zero_()

    def forward(self, sentences: Sentences) -> Tensor:
        width = max((len(s) for s in sentences), default=0)
        ids = torch.full((len(sentences), width), PAD_ID, dtype=torch.long)
        for row, sent in enumerate(sentences):
            norm = (w.lower() for w in sent) if self.lowercase else sent
            ids[row, : len(sent)] = torch.tensor(
                [self.index.get(w, UNK_ID) for w in norm], dtype=torch.long
            )
        if self.training and self.unk_dropout > 0:
            drop = (torch.rand(ids.shape) < self.unk_dropout) & (ids != PAD_ID)
            ids = ids.masked_fill(drop, UNK_ID)
        return self.table(ids.to(self.table.weight.device))


class WordEmbeddings(EmbeddingSource):
    """Word vectors learnt from scratch, vocabulary built at ``initialize`` from the data."""

    kind = "words"

    def __init__(
        self, width: int, min_freq: int, max_vocab: int | None, lowercase: bool, unk_dropout: float
    ) -> None:
        if width < 1 or min_freq < 1:
            raise ValueError(f"WordEmbeddings need width >= 1 and min_freq >= 1 ({width=})")
        self.width = width
        self.min_freq = min_freq
        self.max_vocab = max_vocab
        self.lowercase = lowercase
        self.unk_dropout = unk_dropout
        self.vocab: list[str] = []

    def fit(self, sentences: Iterable[Sequence[str]]) -> None:
        counts: Counter[str] = Counter()
        for sent in sentences:
            counts.update(w.lower() if self.lowercase else w for w in sent)
        # Most frequent first, ties alphabetical: deterministic across runs.
        ranked = sorted(
            (w for w, c in counts.items() if c >= self.min_freq), key=lambda w: (-counts[w], w)
        )
        self.vocab = ranked[: self.max_vocab] if self.max_vocab else ranked

    def get_state(self) -> dict[str, Any]:
        return {"vocab": self.vocab}

    def set_state(self, state: dict[str, Any]) -> None:
        self.vocab = list(state.get("vocab", []))

    def build(self, saved: Path | None, *, component: str) -> EmbeddingModule:
        return WordEmbeddingModule(self.vocab, self.width, self.lowercase, self.unk_dropout)


@spacy.registry.architectures("spacy_nerzoo.WordEmbeddings.v1")
def word_embeddings(
    width: int = 100,
    min_freq: int = 1,
    max_vocab: int | None = None,
    lowercase: bool = True,
    unk_dropout: float = 0.05,
) -> EmbeddingSource:
    """Trainable word embeddings, so a NerDL tagger can be trained from nothing."""
    return WordEmbeddings(width, min_freq, max_vocab, lowercase, unk_dropout)


# -- ELMo ---------------------------------------------------------------------------------

OPTIONS_FILE = "options.json"


class ElmoModule(EmbeddingModule):
    def __init__(self, elmo: Elmo) -> None:
        super().__init__()
        self.elmo = elmo
        self.output_dim = elmo.output_dim

    def forward(self, sentences: Sentences) -> Tensor:
        return self.elmo(sentences)


class ElmoEmbeddings(EmbeddingSource):
    """A frozen ELMo biLM (``nerdl/elmo.py``) with Spark NLP's pooling layers."""

    kind = "elmo"

    def __init__(
        self, options_file: str | None, weight_file: str | None, pooling_layer: PoolingLayer
    ) -> None:
        self.options_file = options_file
        self.weight_file = weight_file
        self.pooling_layer = pooling_layer
        self.n_char_rows: int | None = None

    def get_state(self) -> dict[str, Any]:
        return {"n_char_rows": self.n_char_rows}

    def set_state(self, state: dict[str, Any]) -> None:
        self.n_char_rows = state.get("n_char_rows")

    def build(self, saved: Path | None, *, component: str) -> EmbeddingModule:
        if saved is not None:
            bilm = ElmoBiLM(read_options(saved / OPTIONS_FILE), self.n_char_rows)
            return ElmoModule(Elmo(bilm, self.pooling_layer))
        if not self.options_file or not self.weight_file:
            raise ModelLoadError(
                f"Component '{component}' needs ELMo weights: set both config keys of its "
                "embeddings, options_file and weight_file (tried "
                f"options_file={self.options_file!r}, weight_file={self.weight_file!r}), e.g. "
                "AllenNLP's elmo_2x4096_512_2048cnn_2xhighway_options.json and "
                "elmo_2x4096_512_2048cnn_2xhighway_weights.hdf5 "
                "(--components.<name>.model.embeddings.options_file PATH on `spacy train`)."
            )
        bilm = load_bilm(self.options_file, self.weight_file, what=f"ELMo for '{component}'")
        self.n_char_rows = bilm.char_encoder.char_embed.num_embeddings
        return ElmoModule(Elmo(bilm, self.pooling_layer))

    def save_files(self, module: EmbeddingModule, path: Path) -> None:
        assert isinstance(module, ElmoModule)
        options = module.elmo.bilm.options
        (path / OPTIONS_FILE).write_text(json.dumps(options, indent=2), encoding="utf8")


@spacy.registry.architectures("spacy_nerzoo.ElmoEmbeddings.v1")
def elmo_embeddings(
    options_file: str | None = None,
    weight_file: str | None = None,
    pooling_layer: PoolingLayer = "elmo",
) -> EmbeddingSource:
    """ELMo from a published ``options.json`` + ``weights.hdf5`` (frozen; scalar mix trained).

    ``pooling_layer`` is Spark NLP's setting: ``word_emb``, ``lstm_outputs1``, ``lstm_outputs2``
    or ``elmo`` (the learned weighted sum, which Spark's ``ner_conll_elmo`` uses).
    """
    return ElmoEmbeddings(options_file, weight_file, pooling_layer)


# -- frozen Hugging Face encoder ---------------------------------------------------------------


def pool_hidden(hidden: Tensor, piece_token: np.ndarray, n_tokens: int, mode: Alignment) -> Tensor:
    """Pool wordpiece vectors ``(n_pieces, H)`` onto ``n_tokens`` tokens (zero where no piece).

    ``first`` and ``average`` mean what they mean in ``alignment.pool_pieces``, and on CPU go
    through it; ``max`` is an element-wise max here, because ``pool_pieces`` renormalises its max
    as probabilities, which vectors are not.
    """
    if mode != "max" and hidden.device.type == "cpu":
        pooled, _ = pool_pieces(hidden.numpy(), piece_token, n_tokens, mode)
        return torch.from_numpy(pooled).to(hidden.dtype)
    return pool_hidden_torch(hidden, piece_token, n_tokens, mode)


def pool_hidden_torch(
    hidden: Tensor, piece_token: np.ndarray, n_tokens: int, mode: Alignment
) -> Tensor:
    """:func:`pool_hidden` on the tensor's own device (no copy to the CPU): ``first`` and
    ``average`` compute what ``alignment.pool_pieces`` computes, ``max`` an element-wise max."""
    out = hidden.new_zeros(n_tokens, hidden.shape[1])
    if len(piece_token) == 0:
        return out
    owner = torch.as_tensor(piece_token, device=hidden.device)
    if mode == "first":
        first = np.flatnonzero(np.r_[True, piece_token[1:] != piece_token[:-1]])
        out[owner[first]] = hidden[first]
    elif mode == "average":
        out.index_add_(0, owner, hidden)
        counts = torch.bincount(owner, minlength=n_tokens).clamp(min=1)
        out = out / counts[:, None].to(hidden.dtype)
    elif mode == "max":
        out = out.index_reduce(0, owner, hidden, "amax", include_self=False)
    else:
        raise ValueError(f"Unknown pooling {mode!r}: choose 'first', 'average' or 'max'")
    return out


class TransformerModule(EmbeddingModule):
    """A frozen HF encoder whose hidden states are pooled from wordpieces onto words.

    Sentences longer than the encoder's limit run in overlapping wordpiece windows and each piece
    takes its vector from the window where it has the most context (``alignment.best_window``),
    as the token classifier does: no input is ever truncated.
    """

    # A private StringStore grows with every new word; start a fresh one past this size so
    # endless inference keeps bounded memory.
    _MAX_STRINGS = 200_000

    def __init__(
        self,
        encoder: nn.Module,
        tokenizer: Any,
        *,
        layer: int,
        pooling: Alignment,
        max_length: int,
        stride: int | None,
        lowercase: bool,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.encoder.requires_grad_(False)
        self.tokenizer = tokenizer
        self.layer = layer
        self.pooling = pooling
        self.lowercase = lowercase
        self.output_dim = int(encoder.config.hidden_size)
        # As the tokenizer really wraps a sentence (its post-processor), not as
        # build_inputs_with_special_tokens claims (see alignment.special_tokens).
        specials = special_tokens(tokenizer)
        self.prefix = specials.prefix.tolist()
        self.suffix = specials.suffix.tolist()
        self.pad_id = pad_token_id(tokenizer, encoder.config)
        self.window = max_length - len(self.prefix) - len(self.suffix)
        if self.window < 1:
            raise ValueError(f"max_length={max_length} leaves no room for wordpieces")
        self.stride = self.window // 4 if stride is None else stride
        self._vocab = Vocab()

    def train(self, mode: bool = True) -> TransformerModule:
        super().train(mode)
        self.encoder.eval()  # frozen: never dropout inside the encoder
        return self

    def _docs(self, sentences: Sentences) -> list[Doc]:
        if len(self._vocab.strings) > self._MAX_STRINGS:
            self._vocab = Vocab()
        return [Doc(self._vocab, words=list(s)) for s in sentences]

    def forward(self, sentences: Sentences) -> Tensor:
        device = next(self.encoder.parameters()).device
        encodings = encode_docs(self.tokenizer, self._docs(sentences), lowercase=self.lowercase)
        plans = [plan_windows(len(e.piece_ids), self.window, self.stride) for e in encodings]
        jobs = [(b, s, e) for b, plan in enumerate(plans) for s, e in plan]
        width_tokens = max((len(s) for s in sentences), default=0)
        out = torch.zeros(len(sentences), width_tokens, self.output_dim, device=device)
        if not jobs:
            return out
        width = max(e - s for _, s, e in jobs) + len(self.prefix) + len(self.suffix)
        ids = torch.full((len(jobs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(jobs), width), dtype=torch.long)
        for row, (b, s, e) in enumerate(jobs):
            seq = self.prefix + encodings[b].piece_ids[s:e].tolist() + self.suffix
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        with torch.no_grad():
            result = self.encoder(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                output_hidden_states=self.layer != -1,
            )
            states = (
                result.last_hidden_state if self.layer == -1 else result.hidden_states[self.layer]
            )
        row = 0
        off = len(self.prefix)
        for b, plan in enumerate(plans):
            enc = encodings[b]
            if not plan:
                continue
            windows = [states[row + w, off : off + (e - s)] for w, (s, e) in enumerate(plan)]
            row += len(plan)
            which, offset = best_window(len(enc.piece_ids), plan)
            stacked = torch.cat(windows)
            starts = np.cumsum([0] + [e - s for s, e in plan[:-1]])
            pieces = stacked[torch.as_tensor(starts[which] + offset, device=device)]
            out[b, : enc.n_tokens] = pool_hidden(
                pieces, enc.piece_token, enc.n_tokens, self.pooling
            )
        return out


class TransformerEmbeddings(EmbeddingSource):
    """Frozen Hugging Face encoder embeddings, used directly rather than via spacy-transformers.

    Why not spacy-transformers' ``transformer`` + listener: the encoder is frozen, so there is no
    shared gradient for a listener to route; its alignment matches two independent tokenisations
    by character offsets and cuts windows in spaCy tokens, whereas here the words are encoded
    pre-split and ``word_ids`` give the exact alignment, with windows cut in wordpieces
    (``spacy_nerzoo.alignment``); and one torch module holds the whole tagger, so it trains and
    serialises in one place instead of two components that must be saved and restored together.
    """

    kind = "transformer"

    def __init__(
        self,
        name: str | None,
        layer: int,
        pooling: Alignment,
        max_length: int | None,
        stride: int | None,
        lowercase: bool,
    ) -> None:
        self.name = name
        self.layer = layer
        self.pooling = pooling
        self.max_length = max_length
        self.stride = stride
        self.lowercase = lowercase

    def _module(self, encoder: nn.Module, tokenizer: Any) -> TransformerModule:
        from ..backends.loading import max_positions

        limit = max_positions(encoder.config) or 512
        max_length = min(self.max_length or limit, limit)
        return TransformerModule(
            encoder,
            tokenizer,
            layer=self.layer,
            pooling=self.pooling,
            max_length=max_length,
            stride=self.stride,
            lowercase=self.lowercase,
        )

    def build(self, saved: Path | None, *, component: str) -> EmbeddingModule:
        from transformers import AutoConfig, AutoModel

        from ..backends.loading import Checkpoint, load_error, load_tokenizer, resolve_checkpoint

        if saved is not None:
            config = AutoConfig.from_pretrained(str(saved))
            # Weights come from the tagger's state dict; build the structure only.
            encoder = AutoModel.from_config(config)
            return self._module(encoder.eval(), load_tokenizer(saved, config))
        if not self.name:
            raise ModelLoadError(
                f"Component '{component}' has no encoder to load: set its embeddings' 'name' to a "
                "Hugging Face hub id or a local checkpoint folder (in configs/nerdl_minilm.cfg: "
                "--paths.encoder DIR)"
            )
        ckpt: Checkpoint = resolve_checkpoint(self.name, component=component)
        try:
            config = AutoConfig.from_pretrained(ckpt.location)
        except Exception as e:  # noqa: BLE001 - any failure becomes one actionable error
            raise load_error(ckpt, component, "config", e) from None
        try:
            tokenizer = load_tokenizer(ckpt.location, config)
        except Exception as e:  # noqa: BLE001
            raise load_error(ckpt, component, "tokenizer", e) from None
        if not getattr(tokenizer, "is_fast", False):
            raise ModelLoadError(
                f"Component '{component}': encoder '{self.name}' has no fast tokenizer "
                "(tokenizer.json); word alignment needs one"
            )
        try:
            encoder = AutoModel.from_pretrained(ckpt.location)
        except Exception as e:  # noqa: BLE001
            raise load_error(ckpt, component, "weights", e) from None
        return self._module(encoder.eval(), tokenizer)

    def save_files(self, module: EmbeddingModule, path: Path) -> None:
        assert isinstance(module, TransformerModule)
        module.encoder.config.save_pretrained(str(path))
        module.tokenizer.save_pretrained(str(path))


@spacy.registry.architectures("spacy_nerzoo.TransformerEmbeddings.v1")
def transformer_embeddings(
    name: str | None = "distilbert-base-cased",
    layer: int = -1,
    pooling: Alignment = "first",
    max_length: int | None = None,
    stride: int | None = None,
    lowercase: bool = False,
) -> EmbeddingSource:
    """A frozen HF encoder (hub id or local folder); hidden states pooled onto words.

    ``layer`` picks a hidden state (-1: the last; 0: the embeddings output); ``pooling`` how a
    word's wordpieces become one vector; ``max_length`` caps the window (default: the model's).
    """
    return TransformerEmbeddings(name, layer, pooling, max_length, stride, lowercase)
