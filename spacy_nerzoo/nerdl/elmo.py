"""ELMo's character-CNN biLM in torch, reading the published ``options.json`` + ``weights.hdf5``.

Why our own implementation: AllenNLP (the usual torch port) is archived and pins old torch; TF Hub
needs TensorFlow. The network is small enough to write down exactly, and the golden outputs of
allenai/bilm-tf (tests/nerdl/test_nerdl_elmo.py) pin every detail of the format:

- characters are UTF-8 bytes in begin/end-of-word marks, padded to ``max_characters_per_token``;
  every sentence is wrapped in begin/end-of-sentence tokens, removed from the outputs;
- char CNN: max over positions, then the activation named in ``options["char_cnn"]``;
- highway layers as in bilm-tf: ``g = sigmoid(x W_carry + b_carry)``, ``t = relu(x W_transform +
  b_transform)``, ``g * t + (1 - g) * x`` (weights stored as ``(in, out)`` for ``x @ W``);
- LSTM cells in TensorFlow's ``LSTMCell`` layout: gates i, j, f, o from ``[x, h] @ W_0 + B``, forget
  bias +1.0, cell clipped to ``cell_clip``, projection ``W_P_0`` then clipped to ``proj_clip``;
  optional residual connections between layers (``use_skip_connections``).

Outputs are Spark NLP's pooling layers: ``word_emb`` (the token layer, concatenated with itself to
``2 * projection_dim`` as AllenNLP does, so every layer has one width), ``lstm_outputs1``,
``lstm_outputs2`` (forward and backward halves concatenated) and ``elmo``, a learned scalar mix of
the three (softmax weights times gamma, as TF Hub's module and AllenNLP's ``ScalarMix`` do).

Two extensions carry what a converted Spark NLP ``ElmoEmbeddings`` download (TF Hub's module) has
and the published files do not: ``"double_word_emb": false`` in the options makes ``word_emb`` the
``projection_dim``-wide token layer, as TF Hub's ``word_emb`` output is (the ``elmo`` mix still
uses the doubled layer); and ``aggregation/weights`` + ``aggregation/scaling`` in the weight file
are the module's trained layer weights, the starting values of the ``elmo`` scalar mix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ..errors import ModelLoadError

PoolingLayer = Literal["word_emb", "lstm_outputs1", "lstm_outputs2", "elmo"]
POOLING_LAYERS: tuple[str, ...] = ("word_emb", "lstm_outputs1", "lstm_outputs2", "elmo")

# bilm-tf's special character ids (UTF-8 bytes take 0..255).
BOS_CHAR = 256
EOS_CHAR = 257
BOW_CHAR = 258
EOW_CHAR = 259
PAD_CHAR = 260

# TensorFlow's LSTMCell adds this to the forget gate's pre-activation.
FORGET_BIAS = 1.0

_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}

State = tuple[Tensor, Tensor]  # (h, c) of one cell: (batch, proj), (batch, dim)


def read_options(path: str | Path) -> dict[str, Any]:
    """Parse an ELMo ``options.json`` (the architecture: char CNN, highway layers, LSTM sizes)."""
    return dict(json.loads(Path(path).read_text(encoding="utf8")))


def word_char_ids(word: str, max_chars: int) -> list[int]:
    """Character ids of one token: UTF-8 bytes in begin/end-of-word marks, padded.

    Long tokens are truncated to ``max_chars - 2`` bytes, as bilm-tf and AllenNLP do.
    """
    data = word.encode("utf-8", "ignore")[: max_chars - 2]
    ids = [PAD_CHAR] * max_chars
    ids[0] = BOW_CHAR
    ids[1 : 1 + len(data)] = list(data)
    ids[1 + len(data)] = EOW_CHAR
    return ids


def _boundary_ids(char: int, max_chars: int) -> list[int]:
    ids = [PAD_CHAR] * max_chars
    ids[0], ids[1], ids[2] = BOW_CHAR, char, EOW_CHAR
    return ids


def batch_to_ids(sentences: Sequence[Sequence[str]], max_chars: int = 50) -> tuple[Tensor, Tensor]:
    """Character ids ``(batch, T + 2, max_chars)`` with sentence boundaries, and the lengths.

    Lengths count the boundary tokens; rows are padded with ``PAD_CHAR`` everywhere (the padded
    positions are masked out of the LSTM and never read).
    """
    lengths = [len(s) + 2 for s in sentences]
    width = max(lengths, default=2)
    ids = torch.full((len(sentences), width, max_chars), PAD_CHAR, dtype=torch.long)
    bos = _boundary_ids(BOS_CHAR, max_chars)
    eos = _boundary_ids(EOS_CHAR, max_chars)
    for row, sent in enumerate(sentences):
        rows = [bos] + [word_char_ids(w, max_chars) for w in sent] + [eos]
        ids[row, : len(rows)] = torch.tensor(rows, dtype=torch.long)
    return ids, torch.tensor(lengths, dtype=torch.long)


class Highway(nn.Module):
    """A bilm-tf highway layer: ``g * relu(x W_t + b_t) + (1 - g) * x``, ``g = σ(x W_c + b_c)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.carry = nn.Linear(dim, dim)
        self.transform = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        gate = torch.sigmoid(self.carry(x))
        return gate * torch.relu(self.transform(x)) + (1.0 - gate) * x


class CharEncoder(nn.Module):
    """Token representations from characters: embedding, CNN, highway layers, projection."""

    def __init__(self, options: dict[str, Any], n_char_rows: int | None = None) -> None:
        super().__init__()
        cnn = options["char_cnn"]
        self.max_chars = int(cnn["max_characters_per_token"])
        activation = cnn.get("activation", "relu")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"Unknown char CNN activation {activation!r} in ELMo options")
        self.activation = activation
        # bilm-tf's inference graph has 261 rows (ids 0..260); some files store n_characters.
        rows = n_char_rows if n_char_rows is not None else 261
        self.char_embed = nn.Embedding(rows, int(cnn["embedding"]["dim"]))
        self.convs = nn.ModuleList(
            nn.Conv1d(int(cnn["embedding"]["dim"]), int(num), int(width))
            for width, num in cnn["filters"]
        )
        n_filters = sum(int(num) for _, num in cnn["filters"])
        self.highways = nn.ModuleList(Highway(n_filters) for _ in range(int(cnn["n_highway"])))
        self.proj = nn.Linear(n_filters, int(options["lstm"]["projection_dim"]))

    def forward(self, chars: Tensor) -> Tensor:
        """``(..., max_chars)`` ids -> ``(..., projection_dim)``."""
        shape = chars.shape[:-1]
        x = self.char_embed(chars.reshape(-1, chars.shape[-1])).transpose(1, 2)
        act = _ACTIVATIONS[self.activation]
        h = torch.cat([act(conv(x).max(dim=-1).values) for conv in self.convs], dim=-1)
        for hw in self.highways:
            h = hw(h)
        return self.proj(h).reshape(*shape, -1)


class TFLSTMCell(nn.Module):
    """TensorFlow's ``LSTMCell`` with projection and clipping, in its weight layout."""

    def __init__(
        self,
        input_dim: int,
        dim: int,
        proj_dim: int,
        cell_clip: float | None,
        proj_clip: float | None,
    ) -> None:
        super().__init__()
        self.input_dim, self.dim, self.proj_dim = input_dim, dim, proj_dim
        self.cell_clip, self.proj_clip = cell_clip, proj_clip
        # W_0 is stored (input_dim + proj_dim, 4 * dim) for [x, h] @ W_0; kept as TF has it.
        self.W_0 = nn.Parameter(torch.zeros(input_dim + proj_dim, 4 * dim))
        self.B = nn.Parameter(torch.zeros(4 * dim))
        self.W_P_0 = nn.Parameter(torch.zeros(dim, proj_dim))

    def run(self, x: Tensor, mask: Tensor, state: State) -> tuple[Tensor, State]:
        """Run over ``x`` ``(batch, T, input_dim)``; padded steps (mask False) keep the state.

        Returns the outputs ``(batch, T, proj_dim)`` (zero at padded steps) and the final state,
        i.e. the state after each row's last real step, as TensorFlow's ``dynamic_rnn`` gives.
        """
        h, c = state
        x_gates = x @ self.W_0[: self.input_dim] + self.B  # input part of every step at once
        w_h = self.W_0[self.input_dim :]
        outputs = []
        for t in range(x.shape[1]):
            gates = x_gates[:, t] + h @ w_h
            i, j, f, o = gates.chunk(4, dim=-1)
            c_new = torch.sigmoid(f + FORGET_BIAS) * c + torch.sigmoid(i) * torch.tanh(j)
            if self.cell_clip:
                c_new = c_new.clamp(-self.cell_clip, self.cell_clip)
            h_new = (torch.sigmoid(o) * torch.tanh(c_new)) @ self.W_P_0
            if self.proj_clip:
                h_new = h_new.clamp(-self.proj_clip, self.proj_clip)
            m = mask[:, t, None]
            h = torch.where(m, h_new, h)
            c = torch.where(m, c_new, c)
            outputs.append(h_new * m)
        out = torch.stack(outputs, dim=1) if outputs else x.new_zeros(x.shape[0], 0, self.proj_dim)
        return out, (h, c)


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row's first ``lengths[b]`` steps, leaving padding in place (TF's
    ``reverse_sequence``)."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :]
    lens = lengths.to(x.device)[:, None]
    index = torch.where(steps < lens, lens - 1 - steps, steps)
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[2]))


class ElmoBiLM(nn.Module):
    """The biLM: char encoder and ``n_layers`` LSTM layers in each direction.

    ``forward`` returns the raw layers including boundary tokens: ``[token, layer1, layer2, ...]``,
    each ``(batch, T + 2, 2 * projection_dim)`` as ``[forward, backward]`` halves (the token layer
    is duplicated). With ``stateful=True`` the LSTM states carry over from one call to the next
    (per batch row), which is how bilm-tf produced its golden outputs; taggers use it stateless.
    """

    def __init__(self, options: dict[str, Any], n_char_rows: int | None = None) -> None:
        super().__init__()
        lstm = options["lstm"]
        self.options = options
        self.n_layers = int(lstm.get("n_layers", 2))
        self.dim = int(lstm["dim"])
        self.proj_dim = int(lstm["projection_dim"])
        self.skip = bool(lstm.get("use_skip_connections", False))
        self.char_encoder = CharEncoder(options, n_char_rows)
        cell_clip = lstm.get("cell_clip")
        proj_clip = lstm.get("proj_clip")
        self.cells = nn.ModuleList(
            nn.ModuleList(
                TFLSTMCell(self.proj_dim, self.dim, self.proj_dim, cell_clip, proj_clip)
                for _ in range(self.n_layers)
            )
            for _ in range(2)  # direction 0 forward, 1 backward
        )
        self.stateful = False
        self._states: list[list[State]] | None = None
        # The weight file's trained scalar mix (TF Hub's aggregation), if it has one.
        self.mix_init: tuple[Tensor, Tensor] | None = None

    @property
    def max_chars(self) -> int:
        return self.char_encoder.max_chars

    @property
    def output_dim(self) -> int:
        return 2 * self.proj_dim

    def reset_states(self) -> None:
        self._states = None

    def _zero_states(self, batch: int, ref: Tensor) -> list[list[State]]:
        return [
            [(ref.new_zeros(batch, self.proj_dim), ref.new_zeros(batch, self.dim)) for _ in cells]
            for cells in self.cells
        ]

    def forward(self, chars: Tensor, lengths: Tensor) -> list[Tensor]:
        """``chars`` from ``batch_to_ids`` -> the ``n_layers + 1`` layers (boundaries kept)."""
        tokens = self.char_encoder(chars)
        batch, width = tokens.shape[:2]
        mask = (
            torch.arange(width, device=tokens.device)[None, :] < lengths.to(tokens.device)[:, None]
        )
        states = self._states
        if not self.stateful or states is None or states[0][0][0].shape[0] != batch:
            states = self._zero_states(batch, tokens)
        new_states: list[list[State]] = [[], []]
        per_dir: list[list[Tensor]] = [[], []]
        for d in range(2):
            x = tokens if d == 0 else reverse_padded(tokens, lengths)
            for layer, cell in enumerate(self.cells[d]):
                out, state = cell.run(x, mask, states[d][layer])
                new_states[d].append(state)
                if self.skip and layer > 0:
                    out = out + x
                per_dir[d].append(out if d == 0 else reverse_padded(out, lengths))
                x = out
        if self.stateful:
            self._states = [[(h.detach(), c.detach()) for h, c in s] for s in new_states]
        layers = [torch.cat([tokens, tokens], dim=-1) * mask[:, :, None]]
        layers += [torch.cat([f, b], dim=-1) for f, b in zip(per_dir[0], per_dir[1], strict=True)]
        return layers


def load_bilm_weights(bilm: ElmoBiLM, weight_file: str | Path) -> None:
    """Copy a published ``weights.hdf5`` into ``bilm`` (see the fixture README for the names)."""
    import h5py

    def t(array: Any) -> Tensor:
        return torch.from_numpy(array[...].copy())

    enc = bilm.char_encoder
    with h5py.File(str(weight_file), "r") as f, torch.no_grad():
        enc.char_embed.weight.copy_(t(f["char_embed"]))
        for i, conv in enumerate(enc.convs):
            # TF conv2d kernel (1, width, in, out) -> torch Conv1d (out, in, width)
            conv.weight.copy_(t(f[f"CNN/W_cnn_{i}"])[0].permute(2, 1, 0))
            conv.bias.copy_(t(f[f"CNN/b_cnn_{i}"]))
        for i, hw in enumerate(enc.highways):
            g = f[f"CNN_high_{i}"]
            hw.carry.weight.copy_(t(g["W_carry"]).T)
            hw.carry.bias.copy_(t(g["b_carry"]))
            hw.transform.weight.copy_(t(g["W_transform"]).T)
            hw.transform.bias.copy_(t(g["b_transform"]))
        enc.proj.weight.copy_(t(f["CNN_proj/W_proj"]).T)
        enc.proj.bias.copy_(t(f["CNN_proj/b_proj"]))
        for d, cells in enumerate(bilm.cells):
            for layer, cell in enumerate(cells):
                g = f[f"RNN_{d}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"]
                cell.W_0.copy_(t(g["W_0"]))
                cell.B.copy_(t(g["B"]))
                cell.W_P_0.copy_(t(g["W_P_0"]))
        if "aggregation" in f:
            weights = t(f["aggregation/weights"]).reshape(-1)
            if weights.numel() != bilm.n_layers + 1:
                raise ValueError(
                    f"aggregation/weights has {weights.numel()} entries for "
                    f"{bilm.n_layers + 1} layers"
                )
            bilm.mix_init = (weights, t(f["aggregation/scaling"]).reshape(1))


def char_rows(weight_file: str | Path) -> int:
    """Number of rows of ``char_embed`` in a weight file (261 or 262 in published files)."""
    import h5py

    with h5py.File(str(weight_file), "r") as f:
        return int(f["char_embed"].shape[0])


def load_bilm(options_file: str | Path, weight_file: str | Path, *, what: str = "ELMo") -> ElmoBiLM:
    """Build the biLM from ``options.json`` and ``weights.hdf5``; any failure is a ModelLoadError.

    The message names both files and says which one failed, because the two come from different
    downloads and a mismatch (options of one model, weights of another) is the usual mistake.
    """
    tried = f"options_file={str(options_file)!r}, weight_file={str(weight_file)!r}"
    for key, p in (("options_file", options_file), ("weight_file", weight_file)):
        if not Path(p).is_file():
            raise ModelLoadError(
                f"Could not load {what}: {key} {str(Path(p).expanduser().resolve())!r} does not "
                f"exist (tried {tried}). Download the ELMo options.json and weights.hdf5 (e.g. "
                "AllenNLP's elmo_2x4096_512_2048cnn_2xhighway_{options.json,weights.hdf5}) and set "
                "both config keys."
            )
    try:
        options = read_options(options_file)
        bilm = ElmoBiLM(options, char_rows(weight_file))
    except Exception as e:  # noqa: BLE001 - one actionable error for any unreadable file
        raise ModelLoadError(f"Could not read {what} options ({tried}): {e}") from None
    try:
        load_bilm_weights(bilm, weight_file)
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(
            f"Could not load {what} weights ({tried}): {e}. Check that the weights file belongs "
            "to the options file (same char CNN filters, LSTM dim and projection)."
        ) from None
    return bilm


class ScalarMix(nn.Module):
    """``gamma * sum_k softmax(s)_k * layer_k``: the learned layer weighting of ELMo."""

    def __init__(self, n_layers: int, init: tuple[Tensor, Tensor] | None = None) -> None:
        super().__init__()
        self.scalars = nn.Parameter(torch.zeros(n_layers))
        self.gamma = nn.Parameter(torch.ones(1))
        if init is not None:
            with torch.no_grad():
                self.scalars.copy_(init[0])
                self.gamma.copy_(init[1])

    def forward(self, layers: Sequence[Tensor]) -> Tensor:
        weights = torch.softmax(self.scalars, dim=0)
        return self.gamma * sum(w * x for w, x in zip(weights, layers, strict=True))


class Elmo(nn.Module):
    """A frozen biLM plus the chosen pooling layer, for words of sentences (no boundaries).

    The biLM is frozen, as Spark NLP's embeddings are: it runs without gradients and stays in
    eval mode; only the scalar mix of the ``elmo`` layer is trained.
    """

    def __init__(self, bilm: ElmoBiLM, pooling_layer: PoolingLayer = "elmo") -> None:
        super().__init__()
        if pooling_layer not in POOLING_LAYERS:
            raise ValueError(
                f"Unknown ELMo pooling layer {pooling_layer!r}; choose one of {POOLING_LAYERS}"
            )
        self.bilm = bilm
        self.bilm.requires_grad_(False)
        self.pooling_layer = pooling_layer
        self.mix = ScalarMix(bilm.n_layers + 1, bilm.mix_init) if pooling_layer == "elmo" else None
        # TF Hub's word_emb is the token layer itself; AllenNLP's is doubled to one width.
        self.double_word_emb = bool(bilm.options.get("double_word_emb", True))

    @property
    def output_dim(self) -> int:
        if self.pooling_layer == "word_emb" and not self.double_word_emb:
            return self.bilm.proj_dim
        return self.bilm.output_dim

    def train(self, mode: bool = True) -> Elmo:
        super().train(mode)
        self.bilm.eval()
        return self

    def forward(self, sentences: Sequence[Sequence[str]]) -> Tensor:
        """``(batch, T, 2 * projection_dim)`` for the words of each sentence (zero-padded)."""
        device = self.bilm.cells[0][0].W_0.device
        chars, lengths = batch_to_ids(sentences, self.bilm.max_chars)
        with torch.no_grad():
            layers = self.bilm(chars.to(device), lengths)
        width = max((len(s) for s in sentences), default=0)
        # Drop the boundary tokens: position 0 is <S>, position len + 1 is </S> (or padding).
        layers = [x[:, 1 : 1 + width] for x in layers]
        mask = torch.arange(width, device=device)[None, :] < (lengths.to(device) - 2)[:, None]
        layers = [x * mask[:, :, None] for x in layers]
        if self.mix is not None:
            return self.mix(layers)
        if self.pooling_layer == "word_emb" and not self.double_word_emb:
            return layers[0][:, :, : self.bilm.proj_dim]
        return layers[POOLING_LAYERS.index(self.pooling_layer)]
