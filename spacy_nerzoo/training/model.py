"""The network being fine-tuned: casing classes as token types, and its optimizer."""

from __future__ import annotations

from typing import Any

import torch


def widen_token_types(model: Any, n: int) -> None:
    """Give the encoder ``n`` token types (casing classes), each starting as pretrained type 0.

    Copies rather than fresh random rows: the encoder's first forward pass is then exactly the
    pretrained one, and training learns only what each class should add (measured on this
    machine: extra embeddings initialised small next to the encoder's state were ignored).
    """
    embeddings = model.base_model.embeddings
    old = embeddings.token_type_embeddings
    new = torch.nn.Embedding(n, old.embedding_dim)
    with torch.no_grad():
        new.weight.copy_(old.weight[0].expand(n, -1))
    embeddings.token_type_embeddings = new
    # BERT keeps an all-zeros token_type_ids buffer for calls without them; it stays valid.
    model.config.type_vocab_size = n


def keep_layers(model: Any, n: int) -> None:
    """Keep the encoder's first ``n`` transformer layers: a student about ``n / L`` the cost.

    The bottom layers, not every other one: dropping the top layers of a pretrained encoder
    loses the least on downstream tagging (Sajjad et al., 2023, "On the effect of dropping
    layers of pre-trained transformer models"), and the kept layers stay a contiguous stack.
    """
    encoder = getattr(model.base_model, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise ValueError(f"--layers: no layer stack found in {model.config.model_type}")
    if not 0 < n <= len(layers):
        raise ValueError(f"--layers {n}: the encoder has {len(layers)} layers")
    encoder.layer = torch.nn.ModuleList(list(layers)[:n])
    model.config.num_hidden_layers = n


def add_casing(model: Any, n: int) -> Any:
    """The model with ``n`` casing classes as token types, by the route its encoder allows.

    BERT-style encoders widen their token-type table (:func:`widen_token_types`); MPNet, which has
    none, becomes :mod:`spacy_nerzoo.backends.cased`'s MPNet with a zero-initialised casing
    embedding added to its input embeddings (same weights, same first forward pass).
    """
    embeddings = getattr(model.base_model, "embeddings", None)
    if hasattr(embeddings, "token_type_embeddings"):
        widen_token_types(model, n)
        return model
    if model.config.model_type == "mpnet":
        from spacy_nerzoo.backends.cased import cased_config_from, cased_model_class

        cased = cased_model_class()(cased_config_from(model.config, n))
        missing, unexpected = cased.load_state_dict(model.state_dict(), strict=False)
        if unexpected or set(missing) != {"casing_embeddings.weight"}:
            raise RuntimeError(f"cased MPNet: missing {missing}, unexpected {unexpected}")
        return cased
    raise ValueError(
        f"--casing: {model.config.model_type} has no token-type embeddings and no casing route; "
        "train it without --casing"
    )


_CASING_PARAMS = ("token_type_embeddings", "casing_embeddings")


def make_optimizer(
    model: torch.nn.Module,
    lr: float,
    weight_decay: float,
    casing_lr: float | None = None,
    head_lr: float | None = None,
) -> torch.optim.AdamW:
    """AdamW without weight decay on biases and LayerNorm weights (the usual BERT recipe).

    ``casing_lr`` gives the casing table its own learning rate: MPNet's starts at zero and
    must grow to the scale of the word embeddings, which the encoder's small rate is too slow for.
    ``head_lr`` does the same for the new classifier: an encoder whose output is small (the
    sentence-transformers MPNet's hidden states are far smaller than MiniLM's) moves a head
    trained at the encoder's rate too slowly.
    """
    decay, no_decay, casing, head = [], [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if casing_lr is not None and any(key in name for key in _CASING_PARAMS):
            casing.append(p)
        elif head_lr is not None and name.startswith("classifier."):
            head.append(p)
        else:
            (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    groups: list[dict[str, Any]] = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if casing:
        groups.append({"params": casing, "weight_decay": 0.0, "lr": casing_lr})
    if head:
        groups.append({"params": head, "weight_decay": weight_decay, "lr": head_lr})
    return torch.optim.AdamW(groups, lr=lr)
