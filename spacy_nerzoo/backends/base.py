"""What every inference backend offers the components.

The component never knows which runtime runs the network, and a backend never sees a ``Doc``: the
contract between them is a padded batch of wordpiece ids in, per-wordpiece logits out, as NumPy
arrays. That keeps torch out of the ONNX path and lets tests swap in any backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

BackendName = Literal["torch", "onnx"]
Precision = Literal["fp32", "bf16", "int8"]
IdArray = np.ndarray  # int64 ``(batch, seq_len)``: wordpiece ids, attention mask, token types

# Which precisions each backend can run. bf16 autocast is a torch feature; dynamic int8
# quantisation is an onnxruntime one. Anything else is refused with a clear error.
SUPPORTED_PRECISIONS: dict[str, tuple[str, ...]] = {
    "torch": ("fp32", "bf16"),
    "onnx": ("fp32", "int8"),
}


@runtime_checkable
class Backend(Protocol):
    """Runs a token-classification network on padded batches of wordpiece ids."""

    name: str
    precision: str
    num_labels: int

    def predict(
        self, input_ids: IdArray, attention_mask: IdArray, token_type_ids: IdArray | None = None
    ) -> np.ndarray:
        """Return float32 logits of shape ``(batch, seq_len, num_labels)``.

        ``input_ids`` and ``attention_mask`` are int64 arrays of shape ``(batch, seq_len)``;
        ``token_type_ids`` (same shape) carries casing classes for models trained with them
        (``spacy_nerzoo.casing``), None for the model's default.
        """
        ...

    def save(self, path: Path) -> None:
        """Write the network's weights into the folder ``path`` (which may hold other files)."""
        ...


def check_precision(backend: str, precision: str) -> None:
    """Refuse backend/precision pairs that make no sense, saying which ones do."""
    allowed = SUPPORTED_PRECISIONS.get(backend)
    if allowed is None:
        raise ValueError(
            f"Unknown backend {backend!r}: choose one of {sorted(SUPPORTED_PRECISIONS)}"
        )
    if precision not in allowed:
        pairs = ", ".join(f"{b}: {'/'.join(p)}" for b, p in SUPPORTED_PRECISIONS.items())
        raise ValueError(
            f"precision={precision!r} is not available with backend={backend!r} "
            f"(supported combinations: {pairs})"
        )
