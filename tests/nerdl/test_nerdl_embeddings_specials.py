"""NerDL's transformer embeddings wrap windows in the special tokens the tokenizer really adds."""

from __future__ import annotations

import pytest

transformers = pytest.importorskip("transformers")

from spacy_nerzoo.backends.loading import load_tokenizer  # noqa: E402
from spacy_nerzoo.nerdl.embeddings import TransformerModule  # noqa: E402


@pytest.mark.parametrize(("tokenizer", "post"), [("own", None), ("generic", None), ("own", "none")])
def test_windows_get_the_post_processors_specials(parity_model, tokenizer, post) -> None:
    """The generic PreTrainedTokenizerFast adds nothing in build_inputs_with_special_tokens while
    its tokenizer.json adds [CLS]/[SEP]; a tokenizer.json without a post-processor adds none."""
    path = parity_model("bert", tokenizer, **({"post": post} if post else {}))
    config = transformers.AutoConfig.from_pretrained(path)
    tok = load_tokenizer(path, config)
    encoder = transformers.AutoModel.from_pretrained(path)
    module = TransformerModule(
        encoder, tok, layer=-1, pooling="first", max_length=16, stride=None, lowercase=False
    )
    want = tok(["Paris"], is_split_into_words=True)["input_ids"]
    pieces = tok(["Paris"], is_split_into_words=True, add_special_tokens=False)["input_ids"]
    assert [*module.prefix, *pieces, *module.suffix] == want
    if post == "none":
        assert module.prefix == module.suffix == []
    else:
        assert module.prefix == [tok.cls_token_id] and module.suffix == [tok.sep_token_id]
        assert module.window == 14
