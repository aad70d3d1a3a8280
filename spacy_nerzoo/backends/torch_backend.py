"""PyTorch backend: any ``AutoModelForTokenClassification`` checkpoint, fp32 or bf16 autocast."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import numpy as np

from .base import IdArray, check_precision

_FORK_HOOK_SET = False


def _single_thread_after_fork() -> None:
    """Make forked children (``nlp.pipe(n_process=...)``) use one torch thread.

    torch's OpenMP thread pool is not fork-safe: a child that inherits a used pool and runs a
    parallel op blocks forever (a pitfall spaCy users report with ``n_process``). One thread per
    process is also the right share of the cores when several processes run.
    """
    global _FORK_HOOK_SET
    if not _FORK_HOOK_SET:
        import torch

        os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))
        _FORK_HOOK_SET = True


class TorchBackend:
    """Runs an HF token classifier with torch.

    bf16 uses CPU autocast (fp32 weights, bf16 matmuls): on CPUs with AVX-512 BF16 it is several
    times faster at a negligible accuracy cost. The model goes to the GPU when spaCy's
    ``prefer_gpu()``/``require_gpu()`` is active, as spaCy's own torch components do.
    """

    name = "torch"

    def __init__(self, model: Any, precision: str = "fp32") -> None:
        from thinc.util import get_torch_default_device

        check_precision("torch", precision)
        _single_thread_after_fork()
        self.precision = precision
        self.device = get_torch_default_device()
        self.model = model.to(self.device).eval()
        self.num_labels = int(model.config.num_labels)
        # DistilBERT, MPNet and ModernBERT, among others, have no token types to be given.
        self.takes_token_types = "token_type_ids" in inspect.signature(model.forward).parameters

    @classmethod
    def from_pretrained(cls, location: str | Path, precision: str = "fp32") -> TorchBackend:
        from transformers import AutoModelForTokenClassification

        from .cased import register_model

        register_model()
        model = AutoModelForTokenClassification.from_pretrained(str(location))
        return cls(model, precision)

    def predict(
        self, input_ids: IdArray, attention_mask: IdArray, token_type_ids: IdArray | None = None
    ) -> np.ndarray:
        import torch  # not stored on self: modules cannot be pickled (spawned processes)

        def tensor(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64)).to(self.device)

        inputs = {"input_ids": tensor(input_ids), "attention_mask": tensor(attention_mask)}
        if token_type_ids is not None:
            inputs["token_type_ids"] = tensor(token_type_ids)
        with torch.inference_mode():
            if self.precision == "bf16":
                with torch.autocast(self.device.type, dtype=torch.bfloat16):
                    logits = self.model(**inputs).logits
            else:
                logits = self.model(**inputs).logits
        return logits.float().cpu().numpy()

    def save(self, path: Path) -> None:
        self.model.save_pretrained(str(path), safe_serialization=True)
