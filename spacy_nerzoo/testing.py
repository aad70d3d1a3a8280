"""Tiny random token classifiers with tokenizers trained in seconds, for tests and scripts.

The test suite's fixtures (tests/conftest.py) and the measuring scripts (scripts/soak.py,
scripts/memory_long_doc.py) build their models here, so they exercise the same checkpoints and
nothing is downloaded. The tokenizers have small vocabularies, so ordinary words split into
several pieces, which is what the alignment code needs to be tested on. Three tokenizer families
are covered: WordPiece (BERT, DistilBERT), SentencePiece-style Unigram with a metaspace (ALBERT)
and byte-level BPE (Longformer).

``build_parity_model`` builds the parity matrix's checkpoints (tests/components/
test_parity_matrix.py, docs/parity.md) from the same families: ten architectures, each tokenizer
saved as its own class or as the generic ``PreTrainedTokenizerFast``, with post-processor and
prefix-space variants. Needs ``transformers`` and ``tokenizers`` (torch extras), imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONLL_TAGS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]

CORPUS = [
    "Angela Merkel met Tim Cook in Berlin on Monday.",
    "The European Commission said on Thursday it disagreed with German advice.",
    "Peter Blackburn reported from Brussels for Reuters.",
    "Apple and Microsoft opened offices in London, Paris and New York.",
    "Der Bundestag tagt in Berlin. Москва и Санкт-Петербург. 東京とパリ。",
    "Emoji 😀 and symbols © ™ — dashes, quotes “like this” and numbers 1996-08-22.",
    "the quick brown fox jumps over the lazy dog while rain falls on the plain",
] * 20


def _cls_sep(tok: Any, cls: str, sep: str) -> None:
    """Add special tokens on encode, as real checkpoints' tokenizer.json files do."""
    from tokenizers import processors

    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", special_tokens=[(t, tok.token_to_id(t)) for t in (cls, sep)]
    )


def _train_wordpiece(lowercase: bool, specials: list[str], unk: str = "[UNK]") -> Any:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token=unk, max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        CORPUS, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials)
    )
    return tok


def _train_unigram(specials: list[str], unk: str) -> Any:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=150, special_tokens=specials, unk_token=unk)
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def _train_byte_bpe(specials: list[str], add_prefix_space: bool, vocab_size: int = 300) -> Any:
    from tokenizers import ByteLevelBPETokenizer

    tok = ByteLevelBPETokenizer(add_prefix_space=add_prefix_space)
    tok.train_from_iterator(CORPUS, vocab_size=vocab_size, special_tokens=specials)
    return tok._tokenizer


def _wordpiece(lowercase: bool) -> object:
    from transformers import BertTokenizerFast

    tok = _train_wordpiece(lowercase, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    _cls_sep(tok, "[CLS]", "[SEP]")
    return BertTokenizerFast(tokenizer_object=tok, do_lower_case=lowercase, model_max_length=512)


def _unigram() -> object:
    from transformers import AlbertTokenizerFast

    tok = _train_unigram(["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"], "<unk>")
    _cls_sep(tok, "[CLS]", "[SEP]")
    return AlbertTokenizerFast(tokenizer_object=tok, model_max_length=512)


def _byte_bpe() -> object:
    from tokenizers import processors
    from transformers import LongformerTokenizerFast

    tok = _train_byte_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"], add_prefix_space=True)
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>"))
    )
    return LongformerTokenizerFast(
        tokenizer_object=tok, add_prefix_space=True, model_max_length=4096
    )


def _model(kind: str, vocab_size: int, labels: list[str], **extra: Any) -> object:
    """A tiny random token classifier; ``extra`` config values (special token ids) are added."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    id2label = dict(enumerate(labels))
    common = {
        "vocab_size": vocab_size,
        "num_labels": len(labels),
        "id2label": id2label,
        "label2id": {v: k for k, v in id2label.items()},
        **extra,
    }
    small = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4}
    if kind == "albert":
        cfg = tf.AlbertConfig(embedding_size=16, intermediate_size=37, **small, **common)
        model = tf.AlbertForTokenClassification(cfg)
    elif kind == "distilbert":
        cfg = tf.DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=37, **common)
        model = tf.DistilBertForTokenClassification(cfg)
    elif kind == "longformer":
        cfg = tf.LongformerConfig(
            intermediate_size=37,
            attention_window=[8, 8],
            max_position_embeddings=4098,
            **small,
            **{"pad_token_id": 1, **common},
        )
        model = tf.LongformerForTokenClassification(cfg)
    elif kind == "bert":
        cfg = tf.BertConfig(intermediate_size=37, **small, **common)
        model = tf.BertForTokenClassification(cfg)
    # The parity matrix's other architectures (RoBERTa-style ones reserve pad_token_id + 1
    # positions, as published checkpoints do).
    elif kind == "electra":
        cfg = tf.ElectraConfig(embedding_size=16, intermediate_size=37, **small, **common)
        model = tf.ElectraForTokenClassification(cfg)
    elif kind == "mpnet":
        cfg = tf.MPNetConfig(intermediate_size=37, max_position_embeddings=514, **small, **common)
        model = tf.MPNetForTokenClassification(cfg)
    elif kind in ("roberta", "xlm-roberta"):
        config_class = tf.RobertaConfig if kind == "roberta" else tf.XLMRobertaConfig
        cfg = config_class(
            intermediate_size=37, max_position_embeddings=514, type_vocab_size=1, **small, **common
        )
        model = tf.AutoModelForTokenClassification.from_config(cfg)
    elif kind == "deberta-v2":  # DeBERTa-v3's settings: relative attention only
        cfg = tf.DebertaV2Config(
            intermediate_size=37,
            relative_attention=True,
            pos_att_type=["p2c", "c2p"],
            position_biased_input=False,
            position_buckets=64,
            norm_rel_ebd="layer_norm",
            share_att_key=True,
            type_vocab_size=0,
            **small,
            **common,
        )
        model = tf.DebertaV2ForTokenClassification(cfg)
    elif kind == "modernbert":
        cfg = tf.ModernBertConfig(
            intermediate_size=37, global_attn_every_n_layers=2, reference_compile=False,
            **small, **common,
        )  # fmt: skip
        model = tf.ModernBertForTokenClassification(cfg)
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


@dataclass(frozen=True)
class ParityArch:
    """How an architecture's checkpoints are published: tokenizer family and special tokens.

    ``specials`` are the vocabulary's first ids, in the order the architecture's vocabularies
    have them; ``own`` is transformers' tokenizer class for it (None: checkpoints name the generic
    ``PreTrainedTokenizerFast``, as ModernBERT's do); ``token_types``: its forward takes
    ``token_type_ids``; ``onnx``: it exports to ONNX with dynamic shapes.
    """

    family: str  # "wordpiece", "unigram" or "byte_bpe"
    specials: tuple[str, ...]
    cls: str
    sep: str
    pad: str
    unk: str
    mask: str
    own: str | None
    post: str = "template"  # how published tokenizer.json files add the specials
    token_types: bool = True
    onnx: bool = True

    @property
    def special_kwargs(self) -> dict[str, str]:
        return {
            "cls_token": self.cls,
            "sep_token": self.sep,
            "pad_token": self.pad,
            "unk_token": self.unk,
            "mask_token": self.mask,
        }


_BERT = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_ROBERTA = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
PARITY_ARCHS = {
    "bert": ParityArch("wordpiece", _BERT, "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]",
                       "BertTokenizerFast"),
    "distilbert": ParityArch("wordpiece", _BERT, "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]",
                             "DistilBertTokenizerFast", token_types=False),
    "electra": ParityArch("wordpiece", _BERT, "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]",
                          "ElectraTokenizerFast"),
    "mpnet": ParityArch("wordpiece", ("<s>", "<pad>", "</s>", "[UNK]", "<mask>"), "<s>", "</s>",
                        "<pad>", "[UNK]", "<mask>", "MPNetTokenizerFast", token_types=False),
    "albert": ParityArch("unigram", ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"), "[CLS]",
                         "[SEP]", "<pad>", "<unk>", "[MASK]", "AlbertTokenizerFast"),
    "xlm-roberta": ParityArch("unigram", _ROBERTA, "<s>", "</s>", "<pad>", "<unk>", "<mask>",
                              "XLMRobertaTokenizerFast"),
    "deberta-v2": ParityArch("unigram", ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"), "[CLS]",
                             "[SEP]", "[PAD]", "[UNK]", "[MASK]", "DebertaV2TokenizerFast"),
    "roberta": ParityArch("byte_bpe", _ROBERTA, "<s>", "</s>", "<pad>", "<unk>", "<mask>",
                          "RobertaTokenizerFast", post="roberta"),
    "longformer": ParityArch("byte_bpe", _ROBERTA, "<s>", "</s>", "<pad>", "<unk>", "<mask>",
                             "LongformerTokenizerFast", post="roberta", onnx=False),
    "modernbert": ParityArch("byte_bpe", ("[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"), "[CLS]",
                             "[SEP]", "[PAD]", "[UNK]", "[MASK]", None, token_types=False),
}  # fmt: skip


_PARITY_VOCABS: dict[str, str] = {}


def _word_initial_pieces(tok: Any) -> Any:
    """A trained Unigram tokenizer whose words never start with a lone "▁" piece.

    Trained on CORPUS, the tiny vocabulary starts many words with "▁" alone, which transformers'
    pipeline takes for a word of its own (its word boundaries come from offsets, and that piece
    covers only the space); real SentencePiece vocabularies rarely do that for common words.
    Here "▁" + every character of CORPUS becomes a piece and "▁" alone is removed, so the result
    holds whatever the (not deterministic) training gave.
    """
    import json
    import string

    from tokenizers import Tokenizer

    state = json.loads(tok.to_str())
    chars = {c for text in CORPUS for c in text.lower() if not c.isspace()}
    starts = {"▁" + c for c in chars | set(string.ascii_lowercase + string.digits)}
    vocab = [entry for entry in state["model"]["vocab"] if entry[0] != "▁"]
    have = {piece for piece, _ in vocab}
    vocab.extend([piece, -2.0] for piece in sorted(starts - have))
    state["model"]["vocab"] = vocab
    return Tokenizer.from_str(json.dumps(state))


def _parity_backend(name: str, post: str, add_prefix_space: bool) -> Any:
    """The Rust tokenizer of a parity checkpoint, its post-processor as ``post`` says.

    ``post``: "template" ([CLS] $A [SEP]), "roberta" (RobertaProcessing), "typed" (a template that
    gives the sentence token type 1) or "none" (a model trained without special tokens). The
    vocabulary is trained once per architecture (training is not deterministic), so every variant
    of it fits the same weights.
    """
    from tokenizers import Tokenizer, pre_tokenizers, processors

    arch = PARITY_ARCHS[name]
    if name not in _PARITY_VOCABS:
        specials = list(arch.specials)
        if arch.family == "wordpiece":
            trained = _train_wordpiece(False, specials, arch.unk)
        elif arch.family == "unigram":
            trained = _word_initial_pieces(_train_unigram(specials, arch.unk))
        else:
            # 500: enough merges that no word of CORPUS starts with a lone "Ġ" piece, which real
            # vocabularies never leave (transformers' pipeline would take that piece for a word).
            trained = _train_byte_bpe(specials, add_prefix_space=True, vocab_size=500)
        _PARITY_VOCABS[name] = trained.to_str()
    tok = Tokenizer.from_str(_PARITY_VOCABS[name])
    if arch.family == "byte_bpe":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    ids = [(t, tok.token_to_id(t)) for t in (arch.cls, arch.sep)]
    if post == "template":
        _cls_sep(tok, arch.cls, arch.sep)
    elif post == "typed":
        tok.post_processor = processors.TemplateProcessing(
            single=f"{arch.cls}:0 $A:1 {arch.sep}:1", special_tokens=ids
        )
    elif post == "roberta":
        tok.post_processor = processors.RobertaProcessing(ids[1], ids[0])
    elif post != "none":
        raise ValueError(post)
    return tok


def build_parity_model(
    path: Path,
    weights: Path,
    name: str,
    *,
    tokenizer: str = "own",
    post: str | None = None,
    add_prefix_space: bool = True,
) -> Path:
    """Save a parity checkpoint to ``path``: the model in ``weights`` (config.json and
    model.safetensors, copied with their times, so the ONNX export cache sees one model) and a
    tokenizer of the ``tokenizer`` class, "own" or "generic" (``PreTrainedTokenizerFast`` on the
    same tokenizer.json, as many checkpoints publish it).

    ``add_prefix_space`` is the byte-level pre-tokenizer's setting in tokenizer.json (and the own
    class's, saved in tokenizer_config.json).
    """
    import shutil

    import transformers as tf

    arch = PARITY_ARCHS[name]
    backend = _parity_backend(name, post or arch.post, add_prefix_space)
    path.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "model.safetensors"):
        shutil.copy2(weights / f, path / f)
    if tokenizer == "own" and arch.own is not None:
        own = getattr(tf, arch.own)
        kwargs: dict[str, Any] = {"model_max_length": 512}
        if arch.family == "wordpiece":
            kwargs["do_lower_case"] = False
        if arch.family == "byte_bpe":
            kwargs["add_prefix_space"] = add_prefix_space
        tok = own(tokenizer_object=backend, **arch.special_kwargs, **kwargs)
    elif tokenizer in ("own", "generic"):
        # Models without token types publish model_input_names without them (else transformers
        # itself would fail to run them); the others keep the generic class's default, which
        # gives token_type_ids.
        names = {} if arch.token_types else {"model_input_names": ["input_ids", "attention_mask"]}
        tok = tf.PreTrainedTokenizerFast(
            tokenizer_object=backend, model_max_length=512, **arch.special_kwargs, **names
        )
    else:
        raise ValueError(tokenizer)
    tok.save_pretrained(path)
    return path


def build_parity_weights(path: Path, name: str) -> Path:
    """The tiny random model of architecture ``name`` for :func:`build_parity_model`."""
    arch = PARITY_ARCHS[name]
    tok = _parity_backend(name, arch.post, True)
    ids = {f"{k}_token_id": tok.token_to_id(getattr(arch, k)) for k in ("pad", "cls", "sep")}
    if name in ("roberta", "xlm-roberta", "longformer", "mpnet"):
        ids.update(bos_token_id=ids["cls_token_id"], eos_token_id=ids["sep_token_id"])
    model = _model(name, tok.get_vocab_size(), CONLL_TAGS, **ids)
    model.save_pretrained(path)  # type: ignore[attr-defined]
    return path


def build_slow_model(path: Path) -> Path:
    """A tiny RoBERTa whose tokenizer is slow-only: PhobertTokenizer, which has no fast class."""
    from transformers import PhobertTokenizer

    chars = sorted({c for text in CORPUS for c in text if not c.isspace()})
    merges = [("e", "r"), ("i", "n"), ("o", "n"), ("e", "l</w>"), ("n", "d</w>")]
    pieces = [c + "@@" for c in chars] + chars + ["er@@", "er", "in@@", "in", "on@@", "on"]
    pieces += ["el", "nd"]
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("".join(f"{p} 1\n" for p in pieces), encoding="utf-8")
    (path / "bpe.codes").write_text("".join(f"{a} {b} 1\n" for a, b in merges), encoding="utf-8")
    tokenizer = PhobertTokenizer(str(path / "vocab.txt"), str(path / "bpe.codes"))
    tokenizer.save_pretrained(path)
    ids = {"pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}
    _model("roberta", len(tokenizer), CONLL_TAGS, **ids).save_pretrained(path)  # type: ignore[attr-defined]
    return path
