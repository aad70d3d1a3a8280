"""Spark NLP's NerDL graph, op for op, in torch: for taggers imported from Spark NLP downloads.

Spark NLP builds its graph with ``python/tensorflow/ner/create_models.py``
(``lib/ner/ner_model.py``, TF 1.15) and ships it untrained (``blstm_*.pb``). Per word it
concatenates:

1. a character CNN: 25-dim char embeddings, Conv1D (width 3, 'same', relu), max over *every*
   char position up to the longest word of the batch (padding included; id 0 is both padding
   and unknown characters);
2. a character BiLSTM: a Keras v1 LSTM each way (hard-sigmoid gates, masked to the word's
   length), last outputs concatenated;
3. the word embedding.

Then a dense relu layer to ``2 x hidden``, three residual bidirectional peephole LSTMs (TF's
fused ``BlockLSTM``: gates i, c, f, o; forget bias; backward by reversing each sentence within
its length), a linear layer to the tag scores, and CRF Viterbi decoding with the learned
transition matrix (no start or end scores). Spark reports a token's confidence as the softmax of
its scores; that is what :class:`Decoded.marginals` holds here.

Only prediction is supported: the network reproduces a trained Spark model; train new NerDL
taggers with ``spacy_nerzoo.NerDL.v1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import spacy
import torch
from thinc.api import Model
from torch import Tensor, nn

from .embeddings import EmbeddingModule, EmbeddingSource
from .model import Decoded, NerDLInput, _forward, _init


def hard_sigmoid(x: Tensor) -> Tensor:
    """Keras 1.x / TF 1.15 ``hard_sigmoid``: ``clip(0.2 x + 0.5, 0, 1)``."""
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


class KerasLSTM(nn.Module):
    """A masked Keras v1 LSTM (gates i, f, c, o) returning its last output (``go_backwards``)."""

    def __init__(self, n_in: int, hidden: int, go_backwards: bool) -> None:
        super().__init__()
        self.hidden = hidden
        self.go_backwards = go_backwards
        self.kernel = nn.Parameter(torch.zeros(n_in, 4 * hidden))
        self.recurrent_kernel = nn.Parameter(torch.zeros(hidden, 4 * hidden))
        self.bias = nn.Parameter(torch.zeros(4 * hidden))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """``x`` (N, T, in), ``mask`` (N, T) -> (N, hidden); masked steps keep the state."""
        n, steps, _ = x.shape
        h = x.new_zeros(n, self.hidden)
        c = x.new_zeros(n, self.hidden)
        proj = x @ self.kernel + self.bias
        order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        for t in order:
            z = proj[:, t] + h @ self.recurrent_kernel
            i, f, g, o = z.chunk(4, dim=-1)
            c_new = hard_sigmoid(f) * c + hard_sigmoid(i) * torch.tanh(g)
            h_new = hard_sigmoid(o) * torch.tanh(c_new)
            keep = mask[:, t, None]
            h = torch.where(keep, h_new, h)
            c = torch.where(keep, c_new, c)
        return h


class BlockLSTM(nn.Module):
    """TF's fused ``BlockLSTM`` with peepholes (``LSTMBlockFusedCell(use_peephole=True)``)."""

    def __init__(self, n_in: int, hidden: int, forget_bias: float, cell_clip: float) -> None:
        super().__init__()
        self.hidden = hidden
        self.forget_bias = forget_bias
        self.cell_clip = cell_clip
        self.kernel = nn.Parameter(torch.zeros(n_in + hidden, 4 * hidden))
        self.bias = nn.Parameter(torch.zeros(4 * hidden))
        self.w_i_diag = nn.Parameter(torch.zeros(hidden))
        self.w_f_diag = nn.Parameter(torch.zeros(hidden))
        self.w_o_diag = nn.Parameter(torch.zeros(hidden))

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``x`` (T, B, in) time-major -> (T, B, hidden), zero past each sequence's length."""
        steps, batch, n_in = x.shape
        h = x.new_zeros(batch, self.hidden)
        c = x.new_zeros(batch, self.hidden)
        w_x, w_h = self.kernel[:n_in], self.kernel[n_in:]
        proj = x @ w_x + self.bias
        outputs = []
        for t in range(steps):
            i, g, f, o = (proj[t] + h @ w_h).chunk(4, dim=-1)
            i = torch.sigmoid(i + c * self.w_i_diag)
            f = torch.sigmoid(f + self.forget_bias + c * self.w_f_diag)
            c = i * torch.tanh(g) + c * f
            if self.cell_clip > 0:
                c = c.clamp(-self.cell_clip, self.cell_clip)
            o = torch.sigmoid(o + c * self.w_o_diag)
            h = o * torch.tanh(c)
            outputs.append(h)
        out = torch.stack(outputs) if outputs else x.new_zeros(0, batch, self.hidden)
        valid = torch.arange(steps)[:, None] < lengths[None, :]
        return out * valid[..., None].to(out.dtype)


def reverse_sequences(x: Tensor, lengths: Tensor) -> Tensor:
    """``tf.reverse_sequence`` on time-major ``x``: each sequence reversed within its length."""
    steps = x.shape[0]
    t = torch.arange(steps)[:, None]
    index = torch.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)
    return torch.gather(x, 0, index[..., None].expand_as(x))


class SparkNerDLNetwork(nn.Module):
    """Spark NLP's NerDL graph (see the module docstring); weights come from a Spark download."""

    def __init__(
        self,
        embeddings: EmbeddingModule,
        tag_names: Sequence[str],
        *,
        chars: str,
        n_chars: int,
        char_dim: int,
        char_filters: int,
        char_hidden: int,
        hidden_size: int,
        lstm_layers: int,
        forget_bias: float,
        cell_clip: float,
    ) -> None:
        super().__init__()
        if len(chars) + 1 > n_chars:
            raise ValueError(f"{len(chars)} characters do not fit {n_chars} char embeddings")
        self.embeddings = embeddings
        self.char_index = {c: i + 1 for i, c in enumerate(chars)}
        self.cnn_embed = nn.Embedding(n_chars, char_dim)
        self.cnn = nn.Conv1d(char_dim, char_filters, 3, padding=1)
        self.lstm_embed = nn.Embedding(n_chars, char_dim)
        self.char_fw = KerasLSTM(char_dim, char_hidden, go_backwards=False)
        self.char_bw = KerasLSTM(char_dim, char_hidden, go_backwards=True)
        n_in = char_filters + 2 * char_hidden + embeddings.output_dim
        self.project = nn.Linear(n_in, 2 * hidden_size)
        self.fw = nn.ModuleList(
            BlockLSTM(2 * hidden_size, hidden_size, forget_bias, cell_clip)
            for _ in range(lstm_layers)
        )
        self.bw = nn.ModuleList(
            BlockLSTM(2 * hidden_size, hidden_size, forget_bias, cell_clip)
            for _ in range(lstm_layers)
        )
        self.out = nn.Linear(2 * hidden_size, len(tag_names))
        self.transitions = nn.Parameter(torch.zeros(len(tag_names), len(tag_names)))

    @property
    def device(self) -> torch.device:
        return self.out.weight.device

    def char_ids(self, sentences: Sequence[Sequence[str]]) -> tuple[Tensor, Tensor]:
        """``NerDatasetEncoder``: ids (B, T, longest word of the batch) and word lengths (B, T)."""
        width = max((len(s) for s in sentences), default=0)
        longest = max((len(w) for s in sentences for w in s), default=0)
        ids = torch.zeros(len(sentences), width, max(longest, 1), dtype=torch.long)
        lengths = torch.zeros(len(sentences), width, dtype=torch.long)
        for i, sent in enumerate(sentences):
            for j, word in enumerate(sent):
                lengths[i, j] = len(word)
                if word:
                    ids[i, j, : len(word)] = torch.tensor(
                        [self.char_index.get(c, 0) for c in word], dtype=torch.long
                    )
        return ids, lengths

    def scores(self, sentences: Sequence[Sequence[str]], word_vectors: Tensor) -> Tensor:
        """Tag scores (B, T, n_tags) from words and their embeddings (B, T, dim)."""
        ids, word_lengths = self.char_ids(sentences)
        batch, width, chars = ids.shape
        flat = ids.reshape(-1, chars).to(self.device)
        cnn = torch.relu(self.cnn(self.cnn_embed(flat).transpose(1, 2))).amax(dim=-1)
        mask = (torch.arange(chars)[None, :] < word_lengths.reshape(-1, 1)).to(self.device)
        emb = self.lstm_embed(flat)
        lstm = torch.cat([self.char_fw(emb, mask), self.char_bw(emb, mask)], dim=-1)
        x = torch.cat(
            [cnn.reshape(batch, width, -1), lstm.reshape(batch, width, -1), word_vectors], dim=-1
        )
        x = torch.relu(self.project(x)).transpose(0, 1)  # time-major, as the graph runs it
        lengths = torch.tensor([len(s) for s in sentences], dtype=torch.long)
        for fw, bw in zip(self.fw, self.bw, strict=True):
            back = reverse_sequences(bw(reverse_sequences(x, lengths), lengths), lengths)
            x = torch.cat([fw(x, lengths), back], dim=-1) + x
        return self.out(x.transpose(0, 1))

    def viterbi(self, scores: Tensor, lengths: Sequence[int]) -> list[list[int]]:
        """``tf.contrib.crf.crf_decode``: best path under unary scores + transitions."""
        trans = self.transitions.detach().cpu().numpy()
        paths = []
        for row, n in enumerate(lengths):
            if n == 0:
                paths.append([])
                continue
            unary = scores[row, :n].detach().cpu().numpy()
            best = unary[0]
            back = []
            for t in range(1, n):
                total = best[:, None] + trans
                back.append(total.argmax(axis=0))
                best = total.max(axis=0) + unary[t]
            path = [int(best.argmax())]
            for pointers in reversed(back):
                path.append(int(pointers[path[-1]]))
            paths.append(path[::-1])
        return paths

    def forward(
        self, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[int]] | None = None
    ) -> Decoded:
        if tags is not None:
            raise ValueError(
                "An imported Spark NLP NerDL tagger runs as it was trained; it cannot be "
                "trained further here (train new taggers with spacy_nerzoo.NerDL.v1)"
            )
        scores = self.scores(sentences, self.embeddings(sentences))
        lengths = [len(s) for s in sentences]
        probs = torch.softmax(scores.float(), dim=-1).detach().cpu().numpy()
        paths = self.viterbi(scores, lengths)
        return Decoded(paths, [probs[b, :n] for b, n in enumerate(lengths)])


def load_spark_weights(net: SparkNerDLNetwork, weights: dict[str, np.ndarray]) -> None:
    """Copy TF variables (names as in Spark NLP's graph) into ``net``; every one is required."""

    def get(name: str) -> Tensor:
        if name not in weights:
            raise KeyError(name)
        return torch.from_numpy(np.ascontiguousarray(weights[name], dtype=np.float32))

    lstm = "char_repr_lstm/sequential/bidirectional/{}_lstm/{}"
    state: dict[str, Any] = {
        "cnn_embed.weight": get("char_repr_cnn/char_embeddings"),
        "cnn.weight": get("char_repr_cnn/conv1d/kernel").permute(2, 1, 0),
        "cnn.bias": get("char_repr_cnn/conv1d/bias"),
        "lstm_embed.weight": get("char_repr_lstm/char_embeddings"),
        "project.weight": get("W").T,
        "project.bias": get("b"),
        "out.weight": get("context_repr/W").T,
        "out.bias": get("context_repr/b"),
        "transitions": get("inference/transition_params"),
    }
    for prefix, direction in (("char_fw", "forward"), ("char_bw", "backward")):
        for part in ("kernel", "recurrent_kernel", "bias"):
            state[f"{prefix}.{part}"] = get(lstm.format(direction, part))
    for layer in range(len(net.fw)):
        for prefix, cell in (("fw", "lstm_fused_cell"), ("bw", "lstm_fused_cell_1")):
            for part in ("kernel", "bias", "w_i_diag", "w_f_diag", "w_o_diag"):
                state[f"{prefix}.{layer}.{part}"] = get(f"context_repr/lstm-{layer}/{cell}/{part}")
    for key, value in state.items():
        target = net.get_parameter(key)
        if tuple(target.shape) != tuple(value.shape):
            raise ValueError(f"{key}: shape {tuple(value.shape)}, expected {tuple(target.shape)}")
        with torch.no_grad():
            target.copy_(value)


@spacy.registry.architectures("spacy_nerzoo.SparkNerDL.v1")
def build_spark_nerdl(
    embeddings: EmbeddingSource,
    chars: str,
    n_chars: int,
    char_dim: int = 25,
    char_filters: int = 30,
    char_hidden: int = 30,
    hidden_size: int = 128,
    lstm_layers: int = 3,
    forget_bias: float = 1.0,
    cell_clip: float = -1.0,
) -> Model[NerDLInput, Any]:
    """Spark NLP's NerDL graph for a tagger imported by ``nerzoo import-sparknlp``.

    ``chars`` is the model's character vocabulary (``DatasetEncoderParams.chars``, id = position
    + 1); the sizes are the graph's (``create_models.py`` defaults). The weights come from the
    imported pipeline; ``nlp.initialize`` on this architecture would start from zeros.
    """
    hparams = {
        "chars": chars,
        "n_chars": n_chars,
        "char_dim": char_dim,
        "char_filters": char_filters,
        "char_hidden": char_hidden,
        "hidden_size": hidden_size,
        "lstm_layers": lstm_layers,
        "forget_bias": forget_bias,
        "cell_clip": cell_clip,
    }
    return Model(
        "spark_nerdl",
        _forward,
        init=_init,
        attrs={"embeddings": embeddings, "hparams": hparams, "tag_names": None, "network": "spark"},
    )
