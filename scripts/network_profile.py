"""Where the built-in model's int8 network spends its time, by onnxruntime's profiler.

Records the forward passes the pipeline makes on the first ``--docs`` CoNLL-2003 valid documents
(or built-in sentences without the corpus), replays them through one onnxruntime session with
profiling on (``--threads`` intra-op threads, spinning off, as the backend runs), and prints each
node group's share of the summed kernel time (node names with their numbers folded, so the six
layers' copies of one node add up).

    python scripts/network_profile.py --docs 24 --threads 1
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def profile(
    path: Path, batches: list[dict], threads: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Shares of kernel time by op type and by node group, in percent."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory() as tmp:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
        for batch in batches:
            session.run(None, {k: v for k, v in batch.items() if k in names})
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op: collections.Counter[str] = collections.Counter()
    by_node: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
            by_node[re.sub(r"\d+", "#", e["name"].removesuffix("_kernel_time"))] += e["dur"]
    total = sum(by_op.values()) or 1
    return (
        {k: 100 * v / total for k, v in by_op.most_common()},
        {k: 100 * v / total for k, v in by_node.most_common()},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm_conll03")
    parser.add_argument("--docs", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)

    from benchmark import DATA, FALLBACK_SENTENCES  # type: ignore[import-not-found]
    from int8_options import _runtime, record_batches  # type: ignore[import-not-found]

    from spacy_nerzoo.api import load
    from spacy_nerzoo.data.readers import read_documents

    nlp = load(args.model)
    valid = DATA / "valid.txt"
    if valid.is_file():
        docs = read_documents(valid)[: args.docs]
        texts = [[w for s in d.sentences for w in s.words] for d in docs]
    else:
        texts = [s.split() for s in FALLBACK_SENTENCES][: args.docs]
    batches = record_batches(nlp, texts)
    by_op, by_node = profile(Path(_runtime(nlp).backend.path), batches, args.threads)
    print(f"{args.model}: {len(batches)} forward passes, {args.threads} intra-op thread(s)")
    print("\n| op type | share of kernel time |\n|---|---:|")
    for k, v in list(by_op.items())[: args.top]:
        print(f"| {k} | {v:.1f}% |")
    print("\n| node group | share of kernel time |\n|---|---:|")
    for k, v in list(by_node.items())[: args.top]:
        print(f"| `{k}` | {v:.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
