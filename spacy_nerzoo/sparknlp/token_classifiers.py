"""Spark NLP token classifiers -> Hugging Face folders our ``token_classifier`` loads.

A ``*ForTokenClassification`` download is a TF2 SavedModel of the Hugging Face TF class (Spark NLP
imports them with ``loadSavedModel``), so its variables carry the Keras names the TF class gives
them and transformers' own TF->PyTorch name mapping applies. What the zip lacks is the model
config: sizes are read off the weight shapes; the attention heads and ALBERT's layer count (its
layers share weights) off the graph's constants (the ``(batch, -1, heads, head_size)`` reshapes,
the unrolled layer scopes); ``num_attention_heads`` overrides the former.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .archive import SparkNLPArchive
from .errors import SparkNLPFormatError
from .tfread import parse_graph, read_variables

HEAD_SIZE = 64


@dataclass(frozen=True)
class Architecture:
    """How one Spark NLP token classifier maps onto transformers."""

    annotator: str
    model_type: str
    tf_files: tuple[str, ...]
    case_sensitive_default: bool
    config: Callable[[dict[str, np.ndarray], Any, int | None], dict[str, Any]]
    tokenizer: Callable[[SparkNLPArchive, Path, bool], None]
    head: bool = True  # False: an embeddings annotator (the encoder alone, no labels)


def _get(weights: dict[str, np.ndarray], suffix: str) -> np.ndarray:
    hits = [v for k, v in weights.items() if k.endswith(suffix)]
    if len(hits) != 1:
        raise SparkNLPFormatError(
            f"the TensorFlow variables have {len(hits)} matches for '{suffix}', expected one "
            "(is this the annotator's own network?)"
        )
    return hits[0]


def _count(weights: dict[str, np.ndarray], pattern: str) -> int:
    return len({m.group(1) for k in weights if (m := re.search(pattern, k))})


def _heads(hidden: int, graph: Any, override: int | None) -> int:
    heads = override or _heads_from_graph(graph, hidden)
    if hidden % heads:
        raise SparkNLPFormatError(f"hidden size {hidden} is not divisible by {heads} heads")
    return heads


def _heads_from_graph(graph: Any, hidden: int) -> int:
    """The H of the attention's ``reshape(x, (batch, -1, H, D))`` (``H`` divides ``hidden``)."""
    consts: dict[str, dict[int, int]] = {}
    for fn in graph.library.function:
        for node in fn.node_def:
            m = re.search(r"^(.*attention.*/Reshape(?:_\d+)?)/shape/([123])$", node.name)
            if m and node.op == "Const" and len(node.attr["value"].tensor.int_val) == 1:
                key = fn.signature.name + ":" + m.group(1)
                consts.setdefault(key, {})[int(m.group(2))] = node.attr["value"].tensor.int_val[0]
    votes: dict[int, int] = {}
    for dims in consts.values():
        heads = dims.get(2, 0)
        if dims.get(1) != -1 or heads < 1 or hidden % heads:
            continue
        if 3 not in dims or heads * dims[3] == hidden:
            votes[dims[2]] = votes.get(dims[2], 0) + 1
    if votes:
        return max(votes, key=lambda h: votes[h])
    # Not found: every published checkpoint of these architectures has 64-wide heads.
    return max(hidden // HEAD_SIZE, 1)


def _distilbert_config(w: dict[str, np.ndarray], graph: Any, heads: int | None) -> dict[str, Any]:
    vocab, dim = _get(w, "embeddings/word_embeddings/weight").shape
    return {
        "vocab_size": int(vocab),
        "dim": int(dim),
        "max_position_embeddings": int(_get(w, "position_embeddings/embeddings").shape[0]),
        "n_layers": _count(w, r"layer_\._(\d+)/"),
        "hidden_dim": int(_get(w, "layer_._0/ffn/lin1/kernel").shape[1]),
        "n_heads": _heads(int(dim), graph, heads),
    }


def _albert_layers(graph: Any, inner_group_num: int) -> int:
    """ALBERT applies shared layers N times: count the query projections in one call graph.

    Each application of a layer adds one ``attention/query/Tensordot[_k]/MatMul`` node, and one
    forward pass applies ``num_hidden_layers * inner_group_num`` layers.
    """
    pattern = re.compile(r"albert_layers_\._\d+/attention/query/Tensordot(?:_\d+)?/MatMul$")
    best = max(
        (sum(1 for n in fn.node_def if pattern.search(n.name)) for fn in graph.library.function),
        default=0,
    )
    if not best or best % inner_group_num:
        raise SparkNLPFormatError(
            "cannot count ALBERT's layers in the graph (no albert_layers_._N/attention/query "
            "MatMul ops)"
        )
    return best // inner_group_num


def _albert_config(w: dict[str, np.ndarray], graph: Any, heads: int | None) -> dict[str, Any]:
    vocab, emb = _get(w, "embeddings/word_embeddings/weight").shape
    hidden = int(_get(w, "encoder/embedding_hidden_mapping_in/kernel").shape[1])
    groups = _count(w, r"albert_layer_groups_\._(\d+)/")
    inner = _count(w, r"albert_layers_\._(\d+)/")
    return {
        "vocab_size": int(vocab),
        "embedding_size": int(emb),
        "hidden_size": hidden,
        "max_position_embeddings": int(_get(w, "position_embeddings/embeddings").shape[0]),
        "type_vocab_size": int(_get(w, "token_type_embeddings/embeddings").shape[0]),
        "intermediate_size": int(_get(w, "albert_layers_._0/ffn/kernel").shape[1]),
        "num_hidden_groups": groups,
        "inner_group_num": inner,
        "num_hidden_layers": _albert_layers(graph, inner),
        "num_attention_heads": _heads(hidden, graph, heads),
    }


def _longformer_config(w: dict[str, np.ndarray], graph: Any, heads: int | None) -> dict[str, Any]:
    vocab, hidden = _get(w, "embeddings/word_embeddings/weight").shape
    layers = _count(w, r"layer_\._(\d+)/")
    window = _longformer_window(graph)
    return {
        "vocab_size": int(vocab),
        "hidden_size": int(hidden),
        "max_position_embeddings": int(_get(w, "position_embeddings/embeddings").shape[0]),
        "type_vocab_size": int(_get(w, "token_type_embeddings/embeddings").shape[0]),
        "intermediate_size": int(_get(w, "layer_._0/intermediate/dense/kernel").shape[1]),
        "num_hidden_layers": layers,
        "num_attention_heads": _heads(int(hidden), graph, heads),
        "attention_window": [window] * layers,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
    }


def _longformer_window(graph: Any) -> int:
    """The attention window: the ``seq_len % window`` constant of ``_pad_to_window_size``."""
    votes: dict[int, int] = {}
    for fn in graph.library.function:
        for node in fn.node_def:
            if re.search(r"(^|/)longformer/mod/y$", node.name) or (
                node.name == "mod/y" and "longformer_layer_call" in fn.signature.name
            ):
                values = node.attr["value"].tensor.int_val
                if node.op == "Const" and len(values) == 1 and values[0] > 0:
                    votes[values[0]] = votes.get(values[0], 0) + 1
    if not votes:
        raise SparkNLPFormatError(
            "cannot find Longformer's attention window in the graph (no longformer/mod/y constant)"
        )
    return max(votes, key=lambda w: votes[w])


def _write_vocab_txt(archive: SparkNLPArchive, out: Path) -> Path:
    vocab = archive.map_feature("vocabulary")
    ordered = sorted(vocab.items(), key=lambda kv: int(kv[1]))
    if [int(i) for _, i in ordered] != list(range(len(ordered))):
        raise SparkNLPFormatError("the 'vocabulary' field's ids are not 0..n-1")
    path = out / "vocab.txt"
    path.write_text("".join(f"{piece}\n" for piece, _ in ordered), encoding="utf-8")
    return path


def _distilbert_tokenizer(archive: SparkNLPArchive, out: Path, case_sensitive: bool) -> None:
    from transformers import DistilBertTokenizerFast

    vocab = _write_vocab_txt(archive, out)
    tok = DistilBertTokenizerFast(vocab_file=str(vocab), do_lower_case=not case_sensitive)
    tok.save_pretrained(out)


def _albert_tokenizer(archive: SparkNLPArchive, out: Path, case_sensitive: bool) -> None:
    from transformers import AlbertTokenizerFast

    if not archive.has("albert_spp"):
        raise SparkNLPFormatError(
            f"{archive.path}: no albert_spp (the SentencePiece model every "
            "AlbertForTokenClassification saves next to metadata/)"
        )
    spm = out / "spiece.model"
    spm.write_bytes(archive.read("albert_spp"))
    try:
        tok = AlbertTokenizerFast(vocab_file=str(spm), do_lower_case=not case_sensitive)
    except Exception as e:  # sentencepiece/protobuf errors on a bad model
        raise SparkNLPFormatError(f"albert_spp is not a SentencePiece model ({e})") from None
    tok.save_pretrained(out)


def _longformer_tokenizer(archive: SparkNLPArchive, out: Path, case_sensitive: bool) -> None:
    from transformers import LongformerTokenizerFast

    vocab = archive.map_feature("vocabulary")
    merges = archive.map_feature("merges")
    if not all(isinstance(k, tuple) and len(k) == 2 for k in merges):
        raise SparkNLPFormatError("the 'merges' field is not a map of (piece, piece) -> rank")
    (out / "vocab.json").write_text(json.dumps({k: int(v) for k, v in vocab.items()}), "utf-8")
    lines = [f"{a} {b}" for (a, b), _ in sorted(merges.items(), key=lambda kv: int(kv[1]))]
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(lines) + "\n", "utf-8")
    tok = LongformerTokenizerFast(
        vocab_file=str(out / "vocab.json"),
        merges_file=str(out / "merges.txt"),
        add_prefix_space=True,
    )
    tok.save_pretrained(out)


ARCHITECTURES = {
    a.annotator: a
    for a in (
        Architecture(
            "AlbertForTokenClassification",
            "albert",
            ("albert_classification_tensorflow",),
            False,
            _albert_config,
            _albert_tokenizer,
        ),
        Architecture(
            "DistilBertForTokenClassification",
            "distilbert",
            # Before spark-nlp commit 3979b38e5 (2021-08-09) this file had BERT's name.
            ("distilbert_classification_tensorflow", "bert_classification_tensorflow"),
            True,
            _distilbert_config,
            _distilbert_tokenizer,
        ),
        # The encoder of a NerDL pipeline (ner_conll_distilbert_base_cased): last hidden state.
        Architecture(
            "DistilBertEmbeddings",
            "distilbert",
            ("distilbert_tensorflow",),
            False,
            _distilbert_config,
            _distilbert_tokenizer,
            head=False,
        ),
        Architecture(
            "LongformerForTokenClassification",
            "longformer",
            ("longformer_classification_tensorflow",),
            True,
            _longformer_config,
            _longformer_tokenizer,
        ),
    )
}


def _labels(archive: SparkNLPArchive) -> dict[int, str]:
    labels = archive.map_feature("labels")
    id2label = {int(i): str(t) for t, i in labels.items()}
    if sorted(id2label) != list(range(len(id2label))):
        raise SparkNLPFormatError("the 'labels' field's ids are not 0..n-1")
    return id2label


def convert_token_classifier(
    archive: SparkNLPArchive, output: Path, *, num_attention_heads: int | None = None
) -> dict[str, Any]:
    """Write ``output`` (config.json, tokenizer, model.safetensors); return Spark's params."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification
    from transformers.modeling_tf_pytorch_utils import load_tf2_state_dict_in_pytorch_model
    from transformers.utils import logging as hf_logging

    arch = ARCHITECTURES[archive.class_name.rsplit(".", 1)[-1]]
    case_sensitive = bool(archive.param("caseSensitive", arch.case_sensitive_default))
    max_sentence_length = int(archive.param("maxSentenceLength", 128))
    with archive.tensorflow(*arch.tf_files) as bundle:
        weights = read_variables(bundle.variables_prefix)
        graph = parse_graph(bundle.graph_def)
    sizes = arch.config(weights, graph, num_attention_heads)
    if arch.head:
        id2label = _labels(archive)
        n_labels = int(_get(weights, "classifier/kernel").shape[1])
        if n_labels != len(id2label):
            raise SparkNLPFormatError(
                f"the classifier has {n_labels} outputs but the 'labels' field {len(id2label)} tags"
            )
        sizes["id2label"] = id2label
        sizes["label2id"] = {v: k for k, v in id2label.items()}
    config = AutoConfig.for_model(arch.model_type, **sizes)
    torch.manual_seed(0)
    model = (AutoModelForTokenClassification if arch.head else AutoModel).from_config(config)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its "all weights were used" notes are not news here
    try:
        _, info = load_tf2_state_dict_in_pytorch_model(model, weights, output_loading_info=True)
    except (AttributeError, ValueError, RuntimeError) as e:
        raise SparkNLPFormatError(
            f"the TensorFlow weights do not fit a {arch.model_type} model ({e})"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    if info["missing_keys"]:
        raise SparkNLPFormatError(
            f"weights missing from the Spark NLP model: {info['missing_keys'][:5]}"
        )
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output, safe_serialization=True)
    arch.tokenizer(archive, output, case_sensitive)
    params = {"caseSensitive": case_sensitive, "maxSentenceLength": max_sentence_length}
    if not arch.head:
        params["storageRef"] = str(archive.param("storageRef", ""))
    return params
