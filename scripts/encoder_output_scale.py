"""Scale of the encoders' last hidden states: why the MPNet teacher needs its own head rate.

A classifier head trained at the encoder's learning rate learns in proportion to the size of the
features it reads. This prints, for all-MiniLM-L6-v2 and all-mpnet-base-v2, the mean absolute
value and the mean per-token norm of the last hidden state over the first N CoNLL-2003 sentences.

Usage::

    python scripts/encoder_output_scale.py ../shared/data/conll2003/valid.txt --sentences 200
"""

from __future__ import annotations

import argparse
import sys

import torch
from transformers import AutoModel, AutoTokenizer

from spacy_nerzoo.data.readers import read_documents
from spacy_nerzoo.training.encoders import minilm_path, mpnet_path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("data", help="CoNLL-2003 file")
    p.add_argument("--sentences", type=int, default=200)
    args = p.parse_args(argv)
    sents = [s.words for d in read_documents(args.data) for s in d.sentences][: args.sentences]
    print("| encoder | mean abs value | mean token norm |\n|---|---:|---:|")
    for name, path in (("all-MiniLM-L6-v2", minilm_path()), ("all-mpnet-base-v2", mpnet_path())):
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path).eval()
        values, norms = [], []
        with torch.inference_mode():
            for start in range(0, len(sents), 32):
                enc = tok(
                    sents[start : start + 32],
                    is_split_into_words=True,
                    padding=True,
                    return_tensors="pt",
                )
                hidden = model(**enc).last_hidden_state[enc["attention_mask"].bool()]
                values.append(hidden.abs().mean(dim=1))
                norms.append(hidden.norm(dim=1))
        print(f"| {name} | {torch.cat(values).mean():.3f} | {torch.cat(norms).mean():.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
