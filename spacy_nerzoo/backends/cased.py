"""Casing classes for encoders without token-type embeddings (MPNet).

BERT-style encoders take a word's casing class (:mod:`spacy_nerzoo.casing`) through their widened
token-type table. MPNet has no such table, so :class:`CasedMPNetForTokenClassification` adds a
casing embedding to the word-piece embeddings before MPNet's own position embeddings and layer
norm. The table starts at zero, so the first forward pass is exactly the pretrained encoder, and
the classes still arrive as ``token_type_ids``: the component, the trainer and the ONNX export feed
every casing model the same way.

The architecture has its own ``model_type`` (``nerzoo-cased-mpnet``), registered with
transformers' Auto classes by :func:`register` (called when spaCy-nerzoo loads a checkpoint), so a
saved checkpoint loads with ``AutoConfig`` / ``AutoModelForTokenClassification`` once
``spacy_nerzoo`` is imported. The config part needs no torch (ONNX-only installs read it).
"""

from __future__ import annotations

import functools
from typing import Any

from transformers import AutoConfig, MPNetConfig

MODEL_TYPE = "nerzoo-cased-mpnet"


class CasedMPNetConfig(MPNetConfig):  # type: ignore[misc]
    """MPNet's config plus ``type_vocab_size``: the number of casing classes."""

    model_type = MODEL_TYPE

    def __init__(self, type_vocab_size: int = 6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.type_vocab_size = type_vocab_size


@functools.cache
def register() -> None:
    """Make ``AutoConfig`` know the cased architectures (once, cheap, no torch): enough to read a
    checkpoint's config and run its ONNX graph."""
    AutoConfig.register(MODEL_TYPE, CasedMPNetConfig, exist_ok=True)


@functools.cache
def register_model() -> None:
    """:func:`register`, plus the torch model class for ``AutoModelForTokenClassification``.

    Separate because importing transformers' modelling code costs seconds, which an ONNX-only
    load should not pay."""
    from transformers import AutoModelForTokenClassification

    register()
    AutoModelForTokenClassification.register(CasedMPNetConfig, _model_class(), exist_ok=True)


@functools.cache
def _model_class() -> type:
    """The torch model class, defined on first use so that importing this module needs no torch."""
    return _define_model()


def _define_model() -> type:
    import torch
    from transformers import MPNetForTokenClassification
    from transformers.models.mpnet.modeling_mpnet import create_position_ids_from_input_ids

    class CasedMPNetForTokenClassification(MPNetForTokenClassification):  # type: ignore[misc]
        """MPNet token classifier whose input embedding adds one vector per casing class."""

        config_class = CasedMPNetConfig

        def __init__(self, config: CasedMPNetConfig) -> None:
            super().__init__(config)
            self.casing_embeddings = torch.nn.Embedding(config.type_vocab_size, config.hidden_size)
            torch.nn.init.zeros_(self.casing_embeddings.weight)

        def forward(  # type: ignore[override]
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor | None = None,
            token_type_ids: torch.Tensor | None = None,
            labels: torch.Tensor | None = None,
            **kwargs: Any,
        ) -> Any:
            embeddings = self.mpnet.embeddings
            inputs_embeds = embeddings.word_embeddings(input_ids)
            if token_type_ids is not None:
                inputs_embeds = inputs_embeds + self.casing_embeddings(token_type_ids)
            # The positions MPNet derives from input_ids (padding-aware), not the sequential
            # ones it would assume for inputs_embeds: the same numbers as the plain model.
            position_ids = create_position_ids_from_input_ids(input_ids, embeddings.padding_idx)
            return super().forward(
                attention_mask=attention_mask,
                position_ids=position_ids,
                inputs_embeds=inputs_embeds,
                labels=labels,
                **kwargs,
            )

    return CasedMPNetForTokenClassification


def cased_model_class() -> type:
    """The torch class of the cased MPNet token classifier (registered with the Auto classes)."""
    register_model()
    return _model_class()


def cased_config_from(config: Any, n_classes: int) -> CasedMPNetConfig:
    """A cased config with everything of the MPNet ``config`` (labels included)."""
    if getattr(config, "model_type", None) not in ("mpnet", MODEL_TYPE):
        raise ValueError(f"not an MPNet config: {getattr(config, 'model_type', None)!r}")
    data = config.to_dict()
    for key in ("model_type", "architectures", "transformers_version"):
        data.pop(key, None)
    data["type_vocab_size"] = n_classes
    return CasedMPNetConfig(**data)
