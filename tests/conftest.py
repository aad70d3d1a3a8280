"""Shared fixtures: tiny random token classifiers with tokenizers trained here in seconds.

The tokenizers have small vocabularies, so ordinary words split into several pieces, which is what
the alignment tests need. Three tokenizer families are covered: WordPiece (BERT, DistilBERT),
SentencePiece-style Unigram with a metaspace (ALBERT) and byte-level BPE (Longformer).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CONLL_TAGS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"

CORPUS = [
    "Angela Merkel met Tim Cook in Berlin on Monday.",
    "The European Commission said on Thursday it disagreed with German advice.",
    "Peter Blackburn reported from Brussels for Reuters.",
    "Apple and Microsoft opened offices in London, Paris and New York.",
    "Der Bundestag tagt in Berlin. Москва и Санкт-Петербург. 東京とパリ。",
    "Emoji 😀 and symbols © ™ — dashes, quotes “like this” and numbers 1996-08-22.",
    "the quick brown fox jumps over the lazy dog while rain falls on the plain",
] * 20


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _cls_sep(tok: Any, cls: str, sep: str) -> None:
    """Add special tokens on encode, as real checkpoints' tokenizer.json files do."""
    from tokenizers import processors

    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", special_tokens=[(t, tok.token_to_id(t)) for t in (cls, sep)]
    )


def _wordpiece(lowercase: bool) -> object:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(
        CORPUS, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials)
    )
    _cls_sep(tok, "[CLS]", "[SEP]")
    return BertTokenizerFast(tokenizer_object=tok, do_lower_case=lowercase, model_max_length=512)


def _unigram() -> object:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import AlbertTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    specials = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    trainer = trainers.UnigramTrainer(vocab_size=150, special_tokens=specials, unk_token="<unk>")
    tok.train_from_iterator(CORPUS, trainer)
    _cls_sep(tok, "[CLS]", "[SEP]")
    return AlbertTokenizerFast(tokenizer_object=tok, model_max_length=512)


def _byte_bpe() -> object:
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import LongformerTokenizerFast

    tok = ByteLevelBPETokenizer(add_prefix_space=True)
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok.train_from_iterator(CORPUS, vocab_size=300, special_tokens=specials)
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>"))
    )
    return LongformerTokenizerFast(
        tokenizer_object=tok._tokenizer, add_prefix_space=True, model_max_length=4096
    )


def _model(kind: str, vocab_size: int, labels: list[str]) -> object:
    import torch
    import transformers as tf

    torch.manual_seed(0)
    id2label = dict(enumerate(labels))
    common = {
        "vocab_size": vocab_size,
        "num_labels": len(labels),
        "id2label": id2label,
        "label2id": {v: k for k, v in id2label.items()},
    }
    if kind == "albert":
        cfg = tf.AlbertConfig(
            embedding_size=16,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            **common,
        )
        model = tf.AlbertForTokenClassification(cfg)
    elif kind == "distilbert":
        cfg = tf.DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=37, **common)
        model = tf.DistilBertForTokenClassification(cfg)
    elif kind == "longformer":
        cfg = tf.LongformerConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            attention_window=[8, 8],
            max_position_embeddings=4098,
            pad_token_id=1,
            **common,
        )
        model = tf.LongformerForTokenClassification(cfg)
    elif kind == "bert":
        cfg = tf.BertConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            **common,
        )
        model = tf.BertForTokenClassification(cfg)
    else:
        raise ValueError(kind)
    # Random classifier heads are nearly uniform; a larger scale gives decisive, varied tags.
    with torch.no_grad():
        model.classifier.weight.mul_(40.0)
    return model.eval()


def build_tiny_model(path: Path, kind: str, labels: list[str] | None = None) -> Path:
    """Save a tiny random token classifier of ``kind`` with a matching tokenizer to ``path``."""
    labels = labels or CONLL_TAGS
    tokenizer: object = {"albert": _unigram, "longformer": _byte_bpe}.get(
        kind, lambda: _wordpiece(lowercase=kind == "bert")
    )()
    model = _model(kind, len(tokenizer), labels)  # type: ignore[arg-type]
    model.save_pretrained(path)  # type: ignore[attr-defined]
    tokenizer.save_pretrained(path)  # type: ignore[attr-defined]
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``tiny_model(kind, labels=None)`` -> folder; each kind is built once per session."""
    cache: dict[tuple[str, tuple[str, ...] | None], Path] = {}

    def get(kind: str, labels: list[str] | None = None) -> Path:
        key = (kind, tuple(labels) if labels else None)
        if key not in cache:
            path = tmp_path_factory.mktemp(f"tiny-{kind}")
            cache[key] = build_tiny_model(path, kind, labels)
        return cache[key]

    return get


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the repo; tests that need it skip when it is absent."""
    path = SHARED / "data"
    if not path.exists():
        pytest.skip("../shared/data is absent")
    return path.resolve()
