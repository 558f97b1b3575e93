#!/usr/bin/env python
"""Benchmark of `pctce score` on CPU: throughput against bare forward passes, and peak memory.

Everything is built locally (nothing is downloaded): a random-init GPT-2
checkpoint with a word-level tokenizer whose words map one-to-one to token ids,
and documents of random token ids with varied lengths, written as JSONL text so
that the end-to-end path (``score_checkpoints``: read, tokenize, score, write
Parquet) sees exactly the documents the other methods get.

Methods, all over the same documents and the same windows (``plan_windows``)::

  a1  forward, backbone only   model.base_model(ids, mask) over the engine's own batches
  a2  forward, full logits     model(ids, mask).logits over the engine's own batches (the ceiling)
  b1  pctce engine             score_documents(HFAdapter(model), ...): per-token CE and rank
  b2  pctce end to end         score_checkpoints(...): read, tokenize, load, score, write the store
  c1  naive per-window loop    model(window, labels=...).loss, one window at a time, no padding
  c2  naive full log_softmax   log_softmax(model(ids, mask).logits) then gather, the engine's batches

Part 1, throughput: one worker process loads the model once and scores the
targets split into ``--segments`` equal parts of the documents; within each
segment the methods run back to back in rotated order, so every ratio is
paired on identical work measured at nearly the same moment (robust to other
load on the machine). The costlier methods (``--subset-methods``) run on every
``--subset-every``-th segment only. A step breakdown of the engine (same
operations as ``HFAdapter``'s fast path, timed one by one) runs on segment 0.

Part 1, memory: every method runs alone in its own subprocess on the first
``--rss-targets`` targets of segment 0;
peak RSS is ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, for the whole
subprocess and for the timed pass alone (high-water mark reset with
``echo 5 > /proc/self/clear_refs`` just before it, Linux).

Part 2, memory with a large vocabulary: a GPT-2 with a 150k vocabulary and a
small hidden size scored by pctce at several ``--batch-tokens`` and by the naive
full-logit method, whose (B, T, V) float32 logits grow with batch x vocab.

Run from the repository root::

    python benchmarks/bench_score.py --out docs/benchmarks.md    # full run
    python benchmarks/bench_score.py --quick                      # smoke test (< 1 min), prints Markdown
    python benchmarks/bench_score.py --from-json raw.json --out docs/benchmarks.md   # re-render only
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SECTION = "## Scoring (`pctce score`)"
METHODS = {
    "a1": ("forward, backbone only", "`model.base_model(input_ids, attention_mask)` on the engine's batches; no output layer, no loss"),
    "a2": ("forward, full logits", "`model(input_ids, attention_mask).logits` on the engine's batches; no loss — **the ceiling**"),
    "b1": ("pctce engine", "`score_documents(HFAdapter(model), …)`: per-token CE and rank of every target"),
    "b2": ("pctce end to end", "`score_checkpoints(…)`: read JSONL, tokenize, fingerprint, load the model, score, write the Parquet store"),
    "c1": ("naive per-window loop", "`model(window, labels=…).loss`, one window at a time, no padding (a mean per window, not per token)"),
    "c2": ("naive full log_softmax", "`log_softmax(model(ids, mask).logits)` over the (B,T,V) logits of the engine's batches, then gather"),
}
ALL_METHODS = "a1,a2,b1,b2,c1,c2"
N_SPECIAL = 4  # <|bos|> <|eos|> <|pad|> <|unk|>


# ----------------------------------------------------------------------------- small helpers


def _vm_mib(key: str = "VmRSS") -> float:
    """A /proc/self/status field in MiB (0 where unavailable)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _reset_peak() -> bool:
    """Reset the RSS high-water mark (and so ru_maxrss) of this process; Linux only."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def loadavg() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


# ----------------------------------------------------------------------------- setup


def make_checkpoint(path: Path, *, vocab: int, n_positions: int, n_embd: int, n_layer: int, n_head: int, seed: int) -> int:
    """A random-init GPT-2 with a word-level tokenizer (word ``w{i}`` is token ``N_SPECIAL + i``)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    specials = ["<|bos|>", "<|eos|>", "<|pad|>", "<|unk|>"]
    words = {t: i for i, t in enumerate(specials)}
    words.update({f"w{i}": N_SPECIAL + i for i in range(vocab - N_SPECIAL)})
    tok = Tokenizer(models.WordLevel(words, unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|eos|>", pad_token="<|pad|>", unk_token="<|unk|>",
        model_max_length=1_000_000,
    )
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(hf_tok), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        bos_token_id=0, eos_token_id=1, pad_token_id=2,
    )
    model = GPT2LMHeadModel(config).eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    hf_tok.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def make_documents(n_targets: int, vocab: int, min_len: int, max_len: int, seed: int) -> list[list[int]]:
    """Random word indices, lengths uniform in [min_len, max_len], until ``n_targets`` tokens."""
    import numpy as np

    rng = np.random.default_rng(seed)
    docs, total = [], 0
    while total < n_targets:
        n = int(rng.integers(min_len, max_len + 1))
        docs.append(rng.integers(0, vocab - N_SPECIAL, n).tolist())
        total += n  # with the BOS prefix every token of the text is a target
    return docs


def write_jsonl(path: Path, docs: list[list[int]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"text": " ".join(f"w{i}" for i in d)}) + "\n")


def split_segments(docs: list[list[int]], k: int) -> list[list[list[int]]]:
    """Contiguous parts with about equal target counts."""
    total = sum(len(d) for d in docs)
    out, cur, acc = [], [], 0
    for d in docs:
        cur.append(d)
        acc += len(d)
        if len(out) < k - 1 and acc >= total * (len(out) + 1) / k:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


# ----------------------------------------------------------------------------- methods (inside workers)


class Bench:
    """A loaded model and the documents of every data file of a worker."""

    def __init__(self, spec: dict):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from pctce_cli.scoring.run import pad_id_of as _pad_id

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.spec = spec
        self.L, self.S = spec["max_length"], spec["stride"]
        self.model = AutoModelForCausalLM.from_pretrained(spec["ckpt"], dtype=torch.float32).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(spec["ckpt"])
        self.pad_id = _pad_id(self.model)  # what score_checkpoints uses
        self.V = self.model.config.vocab_size
        self.adapter = None  # an HFAdapter whose output-layer check is done

    def documents(self, path: str):
        from pctce_cli.data import read_records, tokenize_records

        docs, _ = tokenize_records(read_records([path]), self.tokenizer)
        return docs

    def prepare(self, docs, batch_tokens):
        """The engine's windows and batches, as tensors (built outside any timed region)."""
        import torch

        from pctce_cli.scoring.engine import _batch_tensors, plan_batches, plan_windows

        windows = plan_windows(docs, self.L, self.S)
        batches = []
        for b in plan_batches(windows, batch_tokens):
            ids, mask, rows, cols, targets, _, _ = _batch_tensors(b, docs, self.pad_id)
            batches.append(tuple(torch.from_numpy(x) for x in (ids, mask, rows, cols, targets)))
        return {"docs": docs, "windows": windows, "batches": batches, "batch_tokens": batch_tokens}

    def checked_adapter(self, prepared):
        """A fresh HFAdapter whose output-layer check ran on the first batch; returns (adapter, seconds)."""
        import torch

        from pctce_cli.scoring.hf import HFAdapter

        adapter = HFAdapter(self.model)
        ids, mask, rows, cols, _ = prepared["batches"][0]
        t = time.perf_counter()
        with torch.inference_mode():
            adapter.fast = adapter._check_fast_path(ids, mask, rows, cols)
        return adapter, time.perf_counter() - t

    def run(self, method: str, prepared: dict, *, data_path: str | None = None, scratch: str | None = None) -> dict:
        """One pass of ``method``; returns targets, ce_sum and extras (not timed here)."""
        import numpy as np
        import torch

        from pctce_cli.scoring.engine import score_documents

        docs, windows, batches, bt = prepared["docs"], prepared["windows"], prepared["batches"], prepared["batch_tokens"]
        if method == "b1":
            shard = score_documents(self.adapter, docs, max_length=self.L, stride=self.S, batch_tokens=bt, pad_id=self.pad_id)
            return {"targets": len(shard.ce), "ce_sum": float(shard.ce.astype(np.float64).sum())}
        if method == "b2":
            from pctce_cli.scoring.options import ScoreOptions
            from pctce_cli.scoring.run import score_checkpoints
            from pctce_cli.store import load_scores

            opts = ScoreOptions(
                data=[data_path], out=Path(scratch), max_length=self.L, stride=self.S, batch_tokens=bt,
                device="cpu", dtype="float32", force=True,
            )
            [r] = score_checkpoints([self.spec["ckpt"]], opts)
            if r.status != "scored":
                raise RuntimeError(f"score_checkpoints failed: {r.message}")
            s = load_scores(scratch, r.id, columns=("ce",))
            shutil.rmtree(scratch, ignore_errors=True)
            return {"targets": len(s.ce), "ce_sum": float(s.ce.astype(np.float64).sum()),
                    "engine_seconds": r.manifest.get("scoring_seconds")}
        ce_sum, n, biggest = 0.0, 0, 0
        with torch.inference_mode():
            if method == "a1":
                for ids, mask, rows, cols, targets in batches:
                    self.model.base_model(input_ids=ids, attention_mask=mask, use_cache=False)[0]
                    n += len(rows)
                return {"targets": n, "ce_sum": None}
            if method == "a2":
                for ids, mask, rows, cols, targets in batches:
                    self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
                    n += len(rows)
                    biggest = max(biggest, ids.numel() * self.V * 4)
                return {"targets": n, "ce_sum": None, "largest_logits_bytes": biggest}
            if method == "c2":
                for ids, mask, rows, cols, targets in batches:
                    logits = self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits  # (B, T, V)
                    logp = torch.log_softmax(logits.float(), dim=-1)  # (B, T, V)
                    ce_sum += float(-logp[rows, cols, targets].double().sum())
                    n += len(rows)
                    biggest = max(biggest, ids.numel() * self.V * 4)
                    del logits, logp
                return {"targets": n, "ce_sum": ce_sum, "largest_logits_bytes": biggest}
            if method == "c1":
                for w in windows:
                    d = docs[w.doc]
                    ids = torch.from_numpy(d.input_ids[w.start : w.end])[None]  # (1, T)
                    keep = d.targets[w.start : w.end].copy()
                    keep[: w.score_from - w.start] = False
                    labels = ids.clone()
                    labels[0, torch.from_numpy(~keep)] = -100
                    loss = self.model(input_ids=ids, labels=labels, use_cache=False).loss  # mean over the window
                    k = int(keep.sum())
                    ce_sum += float(loss) * k
                    n += k
                return {"targets": n, "ce_sum": ce_sum}
        raise ValueError(f"unknown method {method}")

    def breakdown(self, prepared: dict) -> dict:
        """The engine's fast-path steps on ``prepared``, timed one by one (same operations as HFAdapter)."""
        import torch

        from pctce_cli.scoring.engine import _batch_tensors, ce_and_rank, plan_batches, plan_windows

        a = self.adapter
        docs, bt = prepared["docs"], prepared["batch_tokens"]
        t: dict = {}

        def add(key, t0):
            t[key] = t.get(key, 0.0) + time.perf_counter() - t0

        t0 = time.perf_counter()
        plan = plan_batches(plan_windows(docs, self.L, self.S), bt)
        add("plan_windows + plan_batches", t0)
        with torch.inference_mode():
            for batch in plan:
                t0 = time.perf_counter()
                ids, mask, rows, cols, targets, _, _ = _batch_tensors(batch, docs, self.pad_id)
                ids, mask, rows, cols, targets = (torch.from_numpy(x) for x in (ids, mask, rows, cols, targets))
                add("_batch_tensors", t0)
                t0 = time.perf_counter()
                hidden = a._hidden(ids, mask)
                add("backbone", t0)
                t0 = time.perf_counter()
                picked = hidden[rows, cols]
                del hidden
                add("gather hidden at targets", t0)
                # one reused chunk buffer, as HFAdapter's fast path does for a plain float32 head
                buf = picked.new_empty(a.chunk, a.vocab_size) if a._plain_head() else None
                for s in range(0, picked.shape[0], a.chunk):
                    t0 = time.perf_counter()
                    part = picked[s : s + a.chunk]
                    logits = a._project(part, out=None if buf is None else buf[: part.shape[0]])
                    add("output layer (chunks)", t0)
                    t0 = time.perf_counter()
                    ce, rank = ce_and_rank(logits, targets[s : s + a.chunk])
                    ce.cpu(), rank.cpu()
                    add("ce_and_rank", t0)
                    del logits
        return t


def _worker_timing(spec: dict) -> dict:
    """Part 1 throughput: all methods in one process, interleaved per segment."""
    import torch

    torch.set_num_threads(spec["threads"])
    bench = Bench(spec)
    bt = spec["batch_tokens"]
    warm = bench.prepare(bench.documents(spec["warm_data"]), bt)
    segs = [bench.prepare(bench.documents(p), bt) for p in spec["segments"]]
    info = {
        "threads": torch.get_num_threads(),
        "windows": [len(p["windows"]) for p in segs],
        "batches": [len(p["batches"]) for p in segs],
        "padded_tokens": [int(sum(b[0].numel() for b in p["batches"])) for p in segs],
        "window_tokens": [int(sum(w.length for w in p["windows"])) for p in segs],
        "targets": [int(sum(int(d.targets.sum()) for d in p["docs"])) for p in segs],
    }
    # output-layer check once (it is a per-checkpoint cost; b2 pays it in every call)
    bench.adapter, info["check_seconds_warm"] = bench.checked_adapter(warm)
    info["fast_path"] = bench.adapter.fast
    info["check_max_abs_diff"] = bench.adapter.check_max_abs_diff
    info["chunk_rows"] = bench.adapter.chunk
    scratch = Path(spec["scratch"])
    for m in spec["methods"]:  # warm-up, same code paths
        bench.run(m, warm, data_path=spec["warm_data"], scratch=str(scratch / "warm"))
    runs = []
    for k, prepared in enumerate(segs):
        todo = [m for m in spec["methods"] if m not in spec["subset_methods"] or k % spec["subset_every"] == 0]
        r0 = k % len(todo)
        for m in todo[r0:] + todo[:r0]:
            t0, c0 = time.perf_counter(), time.process_time()
            res = bench.run(m, prepared, data_path=spec["segments"][k], scratch=str(scratch / f"{m}-{k}"))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            runs.append({"method": m, "segment": k, "wall": wall, "cpu": cpu, **res})
            log(f"  [part 1] segment {k} {m}: {res['targets']} targets, {wall:.2f} s, {res['targets'] / wall:.0f} tok/s")
    if spec.get("breakdown", True):
        bench.breakdown(warm)
        t0 = time.perf_counter()
        info["breakdown"] = bench.breakdown(segs[0])
        info["breakdown_wall"] = time.perf_counter() - t0
        info["breakdown_targets"] = info["targets"][0]
    info["runs"] = runs
    return info


def _worker_rss(spec: dict) -> dict:
    """Peak memory of one method alone in this process."""
    import torch

    torch.set_num_threads(spec["threads"])
    m, bt = spec["method"], spec["batch_tokens"]
    res = {"method": m, "batch_tokens": bt, "rss_after_import_mib": _vm_mib()}
    scratch = Path(spec["scratch"])
    if m == "b2":  # score_checkpoints loads its own model and data
        bench = Bench.__new__(Bench)
        bench.spec, bench.L, bench.S = spec, spec["max_length"], spec["stride"]
        warm = prepared = {"docs": None, "windows": None, "batches": None, "batch_tokens": bt}
        res["rss_loaded_mib"] = _vm_mib()
        bench.run(m, warm, data_path=spec["warm_data"], scratch=str(scratch / "warm"))
        res["peak_setup_mib"] = _maxrss_mib()
        return _timed_pass(bench, m, prepared, spec, scratch, res)
    bench = Bench(spec)
    warm = bench.prepare(bench.documents(spec["warm_data"]), bt)
    prepared = bench.prepare(bench.documents(spec["data"]), bt)
    res["rss_loaded_mib"] = _vm_mib()
    res["first_batch_shape"] = list(prepared["batches"][0][0].shape)
    if m == "b1":
        bench.adapter, _ = bench.checked_adapter(warm)
    bench.run(m, warm, data_path=spec["warm_data"], scratch=str(scratch / "warm"))
    if m == "b1":
        # the per-checkpoint output-layer check of a fresh adapter, on the first (largest) batch of the data
        res["peak_before_check_mib"] = _maxrss_mib()
        _reset_peak()
        res["rss_before_check_mib"] = _vm_mib()
        adapter, res["check_seconds"] = bench.checked_adapter(prepared)
        res["peak_check_mib"] = _maxrss_mib()
        bench.adapter = adapter
    res["peak_setup_mib"] = max(_maxrss_mib(), res.get("peak_before_check_mib", 0.0))
    return _timed_pass(bench, m, prepared, spec, scratch, res)


def _timed_pass(bench, m, prepared, spec, scratch, res) -> dict:
    """The measured pass of a memory worker: peak RSS from a reset high-water mark, wall time."""
    res["hwm_reset"] = _reset_peak()
    res["rss_base_mib"] = _vm_mib()
    t0 = time.perf_counter()
    out = bench.run(m, prepared, data_path=spec["data"], scratch=str(scratch / "run"))
    res["wall"] = time.perf_counter() - t0
    res["peak_timed_mib"] = _maxrss_mib()
    res["peak_process_mib"] = max(res["peak_setup_mib"], res["peak_timed_mib"])
    res.update(out)
    return res


# ----------------------------------------------------------------------------- orchestration


def _start_worker(spec: dict, threads: int):
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
    )
    # stderr (progress, errors) passes through
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                            stdout=subprocess.PIPE, text=True, env=env)
    return proc, time.perf_counter()


def _finish_worker(spec: dict, proc, t0: float) -> dict:
    stdout, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"worker {spec.get('kind')} {spec.get('method', '')} failed (exit {proc.returncode})")
    res = json.loads(stdout.strip().splitlines()[-1])
    res["process_seconds"] = time.perf_counter() - t0
    return res


def run_workers(specs: list[dict], threads: int, concurrent: bool = False) -> list[dict]:
    """Run worker subprocesses one after another (or all at once, for the smoke test only)."""
    if concurrent:
        started = [(spec, *_start_worker(spec, threads)) for spec in specs]
        return [_finish_worker(spec, proc, t0) for spec, proc, t0 in started]
    return [_finish_worker(spec, *_start_worker(spec, threads)) for spec in specs]


def machine_info() -> dict:
    import torch
    import transformers

    from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

    cpu = cpu_name()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "transformers": transformers.__version__,
        "python": platform.python_version(), "os": f"{platform.system()} {platform.release()}",
    }


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _methods(text: str, ap) -> list[str]:
    ms = [m.strip() for m in text.split(",") if m.strip()]
    for m in ms:
        if m not in METHODS:
            ap.error(f"unknown method {m!r} (choose from {ALL_METHODS})")
    return ms


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small smoke version (< 1 minute)")
    ap.add_argument("--targets", type=int, default=None, help="target tokens in part 1 (default 200000; quick 2000)")
    ap.add_argument("--segments", type=int, default=None, help="equal parts of the part-1 documents (default 10; quick 1)")
    ap.add_argument("--methods", default=ALL_METHODS, help=f"comma list from {ALL_METHODS}")
    ap.add_argument("--subset-methods", default="b2,c1,c2", help="methods run only on every --subset-every-th segment")
    ap.add_argument("--subset-every", type=int, default=3, help="(default 3: segments 0, 3, 6, 9 of 10)")
    ap.add_argument("--rss-methods", default=None, help="methods whose peak RSS is measured alone (default: all; quick: b1,c2)")
    ap.add_argument("--rss-targets", type=int, default=None,
                    help="targets of the per-method memory runs: the first documents of segment 0 (default 12000; quick: all of it)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads in every method (default: all cores)")
    ap.add_argument("--vocab", type=int, default=None)
    ap.add_argument("--n-embd", type=int, default=None)
    ap.add_argument("--n-layer", type=int, default=None)
    ap.add_argument("--n-head", type=int, default=None)
    ap.add_argument("--max-length", type=int, default=None, help="window length = model context (default 512; quick 128)")
    ap.add_argument("--stride", type=int, default=None, help="default max_length // 2, as pctce")
    ap.add_argument("--batch-tokens", type=int, default=None, help="token budget of every batched method (default: pctce's CPU default)")
    ap.add_argument("--min-len", type=int, default=50, help="shortest document (tokens)")
    ap.add_argument("--max-len", type=int, default=600, help="longest document (tokens; quick 150)")
    ap.add_argument("--mem-vocab", type=int, default=None)
    ap.add_argument("--mem-n-embd", type=int, default=64)
    ap.add_argument("--mem-n-layer", type=int, default=2)
    ap.add_argument("--mem-n-head", type=int, default=2)
    ap.add_argument("--mem-targets", type=int, default=None, help="target tokens in part 2 (default 12000; quick 1500)")
    ap.add_argument("--mem-batch-tokens", default=None, help="pctce budgets in part 2 (default 1024,4096,16384; quick 1024)")
    ap.add_argument("--mem-naive-batch-tokens", default=None, help="naive (c2) budgets in part 2 (default 1024,4096; quick 1024)")
    ap.add_argument("--skip-memory", action="store_true", help="skip part 2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="scratch directory (default: a temporary one, removed at the end)")
    ap.add_argument("--out", default=None, help="write the section into this Markdown file (e.g. docs/benchmarks.md); default: print it")
    ap.add_argument("--json", default=None, help="also save the raw results to this JSON file")
    ap.add_argument("--from-json", default=None, help="render a saved JSON file instead of running")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker is not None:
        spec = json.loads(args.worker)
        fn = {"timing": _worker_timing, "rss": _worker_rss}[spec["kind"]]
        print(json.dumps(fn(spec)))
        return 0

    if args.from_json:
        raw = json.loads(Path(args.from_json).read_text())
    else:
        raw = run_all(args, ap)
        if args.json:
            Path(args.json).write_text(json.dumps(raw, indent=1))
    md = render(raw)
    if args.out:
        write_section(Path(args.out), md)
        log(f"wrote {args.out}")
    else:
        print(md)
    return 0


def run_all(args, ap) -> dict:
    q = args.quick
    # full run / --quick (a tiny model, so that the smoke test is about the plumbing, not the numbers)
    for key, full, quick in (("vocab", 32000, 8000), ("n_embd", 256, 128), ("n_layer", 6, 2), ("n_head", 4, 2),
                             ("max_length", 512, 128), ("mem_vocab", 150_000, 50_000)):
        if getattr(args, key) is None:
            setattr(args, key, quick if q else full)
    if args.stride is None:
        args.stride = max(1, args.max_length // 2)
    if q and args.max_len == 600:
        args.max_len = 150
    cfg = {
        "command": "python benchmarks/bench_score.py" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else ""),
        "targets": args.targets or (2000 if q else 200_000),
        "segments": args.segments or (1 if q else 10),
        "methods": _methods(args.methods, ap),
        "subset_methods": _methods(args.subset_methods, ap),
        "subset_every": max(1, args.subset_every),
        "rss_methods": _methods(args.rss_methods or ("b1,c2" if q else args.methods), ap),
        "mem_targets": args.mem_targets or (1500 if q else 12_000),
        "rss_targets": args.rss_targets or (10**9 if q else 12_000),
        "mem_bt": _ints(args.mem_batch_tokens or ("1024" if q else "1024,4096,16384")),
        "mem_naive_bt": _ints(args.mem_naive_batch_tokens or ("1024" if q else "1024,4096")),
        **{k: getattr(args, k) for k in (
            "threads", "vocab", "n_embd", "n_layer", "n_head", "max_length", "stride", "batch_tokens", "min_len",
            "max_len", "mem_vocab", "mem_n_embd", "mem_n_layer", "mem_n_head", "seed", "skip_memory")},
    }
    if cfg["batch_tokens"] is None:
        from pctce_cli.scoring.options import CPU_BATCH_TOKENS

        cfg["batch_tokens"] = CPU_BATCH_TOKENS
    raw = {"config": cfg, "machine": machine_info(), "load_start": loadavg()}
    t_start = time.perf_counter()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="pctce-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        log(f"[setup] checkpoints and data in {work}")
        ckpt = work / "ckpt-main"
        raw["n_params"] = make_checkpoint(
            ckpt, vocab=cfg["vocab"], n_positions=cfg["max_length"], n_embd=cfg["n_embd"], n_layer=cfg["n_layer"],
            n_head=cfg["n_head"], seed=cfg["seed"],
        )
        docs = make_documents(cfg["targets"], cfg["vocab"], cfg["min_len"], cfg["max_len"], cfg["seed"])
        segs = split_segments(docs, cfg["segments"])
        raw["n_docs"] = len(docs)
        write_jsonl(work / "warm.jsonl", docs[-4:])
        seg_files = []
        for k, seg in enumerate(segs):
            seg_files.append(str(work / f"seg{k}.jsonl"))
            write_jsonl(Path(seg_files[-1]), seg)
        rss_docs, n = [], 0
        for d in segs[0]:
            if n >= cfg["rss_targets"]:
                break
            rss_docs.append(d)
            n += len(d)
        raw["rss_n_targets"] = n
        write_jsonl(work / "rss.jsonl", rss_docs)
        base = dict(
            ckpt=str(ckpt), max_length=cfg["max_length"], stride=cfg["stride"], batch_tokens=cfg["batch_tokens"],
            threads=cfg["threads"], warm_data=str(work / "warm.jsonl"),
        )
        specs = [dict(
            base, kind="timing", segments=seg_files, methods=cfg["methods"], subset_methods=cfg["subset_methods"],
            subset_every=cfg["subset_every"], scratch=str(work / "t-store"),
        )]
        specs += [dict(base, kind="rss", part=1, method=m, data=str(work / "rss.jsonl"), scratch=str(work / f"rss-{m}"))
                  for m in cfg["rss_methods"]]
        if not cfg["skip_memory"]:
            mckpt = work / "ckpt-bigvocab"
            raw["mem_params"] = make_checkpoint(
                mckpt, vocab=cfg["mem_vocab"], n_positions=cfg["max_length"], n_embd=cfg["mem_n_embd"],
                n_layer=cfg["mem_n_layer"], n_head=cfg["mem_n_head"], seed=cfg["seed"],
            )
            mdocs = make_documents(cfg["mem_targets"], cfg["mem_vocab"], cfg["min_len"], cfg["max_len"], cfg["seed"] + 1)
            raw["mem_n_targets"] = sum(len(d) for d in mdocs)
            write_jsonl(work / "mem.jsonl", mdocs)
            write_jsonl(work / "mem-warm.jsonl", mdocs[-2:])
            specs += [dict(
                base, kind="rss", part=2, ckpt=str(mckpt), method=m, batch_tokens=bt, data=str(work / "mem.jsonl"),
                warm_data=str(work / "mem-warm.jsonl"), scratch=str(work / f"mrss-{m}-{bt}"),
            ) for m, bt in [("b1", bt) for bt in cfg["mem_bt"]] + [("c2", bt) for bt in cfg["mem_naive_bt"]]]
        log(f"[run] {len(specs)} worker processes" + (", concurrently (--quick: smoke test, numbers meaningless)" if q else ""))
        results = run_workers(specs, cfg["threads"], concurrent=q)
        raw["timing"] = results[0]
        raw["rss"] = [r for spec, r in zip(specs, results) if spec.get("part") == 1]
        raw["memory"] = [r for spec, r in zip(specs, results) if spec.get("part") == 2]
        for spec, r in zip(specs[1:], results[1:]):
            log(f"[part {spec['part']}] {r['method']} --batch-tokens {r['batch_tokens']}: peak RSS "
                f"{r['peak_process_mib']:.0f} MiB (timed pass {r['peak_timed_mib']:.0f})")
        raw["concurrent_workers"] = q
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    raw["load_end"] = loadavg()
    raw["total_seconds"] = time.perf_counter() - t_start
    return raw


# ----------------------------------------------------------------------------- report


def _f(x, nd=0) -> str:
    return "–" if x is None else f"{x:,.{nd}f}"


def summarize(raw: dict) -> dict:
    """Per-method medians and paired ratios from the timing worker's runs."""
    runs = raw["timing"]["runs"]
    by: dict = {}
    for r in runs:
        by.setdefault(r["method"], {})[r["segment"]] = r

    def tps(r):
        return r["targets"] / r["wall"]

    out = {}
    for m, segs in by.items():
        rs = list(segs.values())
        row = {
            "segments": sorted(segs), "targets": sum(r["targets"] for r in rs),
            "tps": [tps(r) for r in rs], "tps_median": statistics.median(tps(r) for r in rs),
            "cpu_per_wall": statistics.median(r["cpu"] / r["wall"] for r in rs), "wall": sum(r["wall"] for r in rs),
        }
        for ref in ("a1", "a2", "b1"):
            if ref in by:
                vals = [tps(segs[k]) / tps(by[ref][k]) for k in segs if k in by[ref]]
                row[f"vs_{ref}"] = statistics.median(vals) if vals else None
                row[f"vs_{ref}_range"] = (min(vals), max(vals)) if vals else None
                # the same ratio in targets per CPU second: less sensitive to other load on the machine
                cpu = [(segs[k]["targets"] / segs[k]["cpu"]) / (by[ref][k]["targets"] / by[ref][k]["cpu"])
                       for k in segs if k in by[ref]]
                row[f"vs_{ref}_cpu"] = statistics.median(cpu) if cpu else None
        out[m] = row
    return out


def render(raw: dict) -> str:
    c, mach, tim = raw["config"], raw["machine"], raw["timing"]
    summ = summarize(raw)
    nseg = len(tim["targets"])
    L: list[str] = [SECTION, ""]
    L.append("Generated by `benchmarks/bench_score.py` (see its docstring for the design); every number below was "
             "measured in the run described here. Ratios are the point, not absolute seconds.")
    L += ["", "```bash", c["command"], "```", ""]
    if raw.get("concurrent_workers"):
        L += ["> **Smoke test (`--quick`)**: a tiny model, and the worker processes ran concurrently; these numbers "
              "check the plumbing and mean nothing about performance.", ""]
    L.append(
        f"**Machine.** {mach['cpu']}, {mach['cores']} cores visible, {mach['os']}, Python {mach['python']}, "
        f"torch {mach['torch']}, transformers {mach['transformers']}; CPU only, float32. "
        f"`torch.set_num_threads({c['threads']})` and `OMP_NUM_THREADS={c['threads']}` in every method. "
        f"Load average (1, 5, 15 min) {raw['load_start']} at the start and {raw['load_end']} at the end: other "
        f"processes shared the machine whenever it exceeds {c['threads']}, which slows every method and adds noise "
        f"(hence the paired, interleaved design). Whole benchmark: {raw['total_seconds']:.0f} s."
    )
    L.append("")
    tot_t, tot_p, tot_w = sum(tim["targets"]), sum(tim["padded_tokens"]), sum(tim["window_tokens"])
    L.append(
        f"**Model and data.** Random-init GPT-2: {c['n_layer']} layers, {c['n_embd']} dims, {c['n_head']} heads, "
        f"context {c['max_length']}, vocabulary {c['vocab']:,} (a word-level tokenizer built locally; output layer "
        f"tied to the embedding), {raw['n_params'] / 1e6:.1f}M parameters. {raw['n_docs']} documents of random "
        f"token ids, lengths uniform in [{c['min_len']}, {c['max_len']}], written as JSONL text that the tokenizer "
        f"maps back to the same ids; with the BOS prefix every token is a target: {tot_t:,} targets in {nseg} "
        f"segments of {min(tim['targets']):,}–{max(tim['targets']):,}. Windows of {c['max_length']} tokens, stride "
        f"{c['stride']} (a document of more than {c['max_length'] - 1} targets gets a second window that re-reads "
        f"{c['max_length'] - c['stride']} tokens of context); `--batch-tokens {c['batch_tokens']}`. The engine's plan: "
        f"{sum(tim['windows']):,} windows in {sum(tim['batches']):,} batches, {tot_w:,} window tokens, {tot_p:,} "
        f"tokens with padding ({100 * (tot_p - tot_w) / tot_p:.1f} % padding); targets are "
        f"{100 * tot_t / tot_p:.1f} % of the padded positions."
    )
    L.append("")
    sub = [m for m in c["methods"] if m in c["subset_methods"]]
    shapes = [r["first_batch_shape"] for r in raw.get("rss", []) if r.get("first_batch_shape")]
    shape_txt = f"first batch {shapes[0][0]} × {shapes[0][1]} tokens; " if shapes else ""
    L.append(
        "**How it is measured.** *Throughput*: one worker process loads the model once; for each segment the "
        "methods run back to back, in an order rotated from segment to segment, after one warm-up pass of every "
        "method over 4 other documents. Wall time by `time.perf_counter`, CPU time by `time.process_time`; "
        "tokens/s = targets / wall seconds for every method (the forward-only methods process the same windows "
        "and batches, built with the engine's `plan_windows`, `plan_batches` and `_batch_tensors` outside the timed "
        "region). Each segment is one repeat (different documents, same distribution); the table gives the median "
        "over segments, and each ratio is taken per segment (same documents, minutes apart at most) before the "
        "median. *vs (a2), per CPU s* is the same paired ratio in targets per CPU second (`process_time`), which "
        "depends less on how much of the machine other processes took during each run. "
        + (f"{', '.join(f'({m})' for m in sub)} ran on segments {', '.join(str(k) for k in summ[sub[0]]['segments'])} "
           "only, to keep the run short; their ratios are paired on those segments. " if sub and sub[0] in summ else "")
        + "pctce's one-time output-layer check (a full forward of one window, per checkpoint) ran before timing "
        f"for (b1) ({tim['check_seconds_warm']:.2f} s on the warm-up batch) and inside every (b2) call. "
        f"*Memory*: each method runs alone in its own subprocess on the first {raw.get('rss_n_targets', 0):,} targets "
        f"of segment 0 ({shape_txt}same warm-up); peak RSS is "
        "`resource.getrusage(RUSAGE_SELF).ru_maxrss` — *process*: the whole subprocess (imports, model, data, "
        "warm-up, run); *pass*: the timed pass alone, after resetting the high-water mark with "
        "`echo 5 > /proc/self/clear_refs`; *base*: the RSS at that moment."
    )
    L.append("")
    rss = {r["method"]: r for r in raw.get("rss", [])}
    L.append("| | method | what runs | segments (targets) | tokens/s, median | min – max | vs (a2) | vs (a2), per CPU s | vs (a1) | CPU s per wall s | peak RSS MiB, process / pass (base) |")
    L.append("|---|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    for m in c["methods"]:
        if m not in summ:
            continue
        s = summ[m]
        r = rss.get(m)
        mem = f"{r['peak_process_mib']:,.0f} / {r['peak_timed_mib']:,.0f} ({r['rss_base_mib']:,.0f})" if r else "not measured"
        L.append(
            f"| ({m}) | {METHODS[m][0]} | {METHODS[m][1]} | {len(s['segments'])} ({s['targets']:,}) | "
            f"{s['tps_median']:,.0f} | {min(s['tps']):,.0f} – {max(s['tps']):,.0f} | "
            f"{'1' if m == 'a2' else _f(s.get('vs_a2'), 2)} | {'1' if m == 'a2' else _f(s.get('vs_a2_cpu'), 2)} | "
            f"{'1' if m == 'a1' else _f(s.get('vs_a1'), 2)} | "
            f"{s['cpu_per_wall']:.2f} | {mem} |"
        )
    L.append("")
    notes = []
    by: dict = {}
    for r in tim["runs"]:
        by.setdefault(r["method"], {})[r["segment"]] = r
    if "b1" in by:
        devs = []
        for m in ("b2", "c1", "c2"):
            if m in by:
                d = [abs(by[m][k]["ce_sum"] - by["b1"][k]["ce_sum"]) / abs(by["b1"][k]["ce_sum"]) for k in by[m] if k in by["b1"]]
                if d:
                    devs.append(f"({m}) {max(d):.1e}")
        mean_ce = sum(r["ce_sum"] for r in by["b1"].values()) / sum(r["targets"] for r in by["b1"].values())
        notes.append(
            "Same work: on every segment, the summed CE of "
            + ", ".join(devs) + " differs from pctce's (b1) by at most that relative amount; "
            f"mean CE {mean_ce:.4f} nats (ln V = {math.log(c['vocab']):.4f}: a random-init model). pctce took its "
            f"chunked output-layer path (check passed: {tim['fast_path']}, max |Δlogit| {tim['check_max_abs_diff']:.1e}; "
            f"{tim['chunk_rows']} positions per logit chunk)."
        )
    if "b2" in by:
        e = [by["b2"][k] for k in sorted(by["b2"])]
        notes.append(
            "(b2) per segment, wall: " + ", ".join(f"{r['wall']:.1f} s" for r in e)
            + "; of which in the engine (`scoring_seconds` of the manifest): "
            + ", ".join(f"{r['engine_seconds']:.1f} s" for r in e)
            + " (this includes the output-layer check, which runs inside the first batch). The rest: reading and "
            "tokenizing the JSONL, fingerprinting, loading the model, writing and re-reading the store."
        )
    big = max((r.get("largest_logits_bytes") or 0) for r in raw.get("rss", [])) if raw.get("rss") else 0
    if big:
        notes.append(f"(a2) and (c2) materialize the (B, T, V) float32 logits of a batch, up to {big / 2**20:,.0f} MiB "
                     "here; (c2) also holds their log_softmax, as large.")
    if "b1" in rss and "peak_check_mib" in rss["b1"]:
        r = rss["b1"]
        notes.append(
            f"pctce's output-layer check on the first batch of the memory run took {r['check_seconds']:.2f} s and peaked at "
            f"{r['peak_check_mib']:,.0f} MiB (RSS {r['rss_before_check_mib']:,.0f} MiB before it); it is included in "
            "*process*, not in *pass*."
        )
    L.extend(f"- {n}" for n in notes)
    L.append("")

    if tim.get("breakdown"):
        bd = tim["breakdown"]
        tot = sum(bd.values())
        L.append(
            f"**Where pctce's time goes** (segment 0, {tim['breakdown_targets']:,} targets; the engine's steps "
            "re-run one by one with the same calls as `HFAdapter`'s fast path and `score_documents`, each timed "
            f"separately; {tot:.1f} s in all):"
        )
        L.append("")
        L.append("| step | seconds | share |")
        L.append("|---|---:|---:|")
        for k, v in bd.items():
            L.append(f"| {k} | {v:.2f} | {100 * v / tot:.1f} % |")
        L.append("")

    if raw.get("memory"):
        L.append(
            f"**Memory with a {c['mem_vocab']:,}-token vocabulary.** Random-init GPT-2: {c['mem_n_layer']} layers, "
            f"{c['mem_n_embd']} dims, {c['mem_n_head']} heads, context {c['max_length']}, "
            f"{raw['mem_params'] / 1e6:.1f}M parameters, almost all in the tied embedding / output layer. "
            f"{raw['mem_n_targets']:,} targets of random ids, same lengths, windows and stride as above. One "
            "subprocess per row, measured as above; for pctce the output-layer check of a fresh adapter runs on the "
            "first batch before the pass and its own peak is shown apart (it does not depend on `--batch-tokens`)."
        )
        L.append("")
        L.append("| method | `--batch-tokens` | peak RSS MiB, process | peak RSS MiB, pass | RSS MiB before the pass | largest (B,T,V) logits | peak MiB of the output-layer check | tokens/s (one run) |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in raw["memory"]:
            big = r.get("largest_logits_bytes")
            L.append(
                f"| ({r['method']}) {METHODS[r['method']][0]} | {r['batch_tokens']:,} | {r['peak_process_mib']:,.0f} | "
                f"{r['peak_timed_mib']:,.0f} | {r['rss_base_mib']:,.0f} | "
                f"{'–' if not big else f'{big / 2**20:,.0f} MiB'} | {_f(r.get('peak_check_mib'))} | "
                f"{r['targets'] / r['wall']:,.0f} |"
            )
        L.append("")
    L.extend(reading(raw, summ))
    return "\n".join(L).rstrip("\n") + "\n"


def reading(raw: dict, summ: dict) -> list[str]:
    """A short reading of the numbers, computed from them (no number here is typed in)."""
    c, tim = raw["config"], raw["timing"]
    out = ["**Reading.**", ""]
    if "b1" in summ and "a2" in summ:
        s = summ["b1"]
        lo, hi = s["vs_a2_range"]
        verdict = "meets" if s["vs_a2"] >= 0.9 else "is **below**"
        out.append(
            f"- pctce's engine (b1) runs at {s['vs_a2']:.2f} × the bare full-logit forward (a2) (median of the "
            f"per-segment ratios; {lo:.2f}–{hi:.2f} across segments; {s['vs_a2_cpu']:.2f} × per CPU second): this "
            f"{verdict} the 0.9 goal."
        )
        bd = tim.get("breakdown") or {}
        if bd:
            tot = sum(bd.values())
            ce = bd.get("ce_and_rank", 0.0)
            head = bd.get("output layer (chunks)", 0.0)
            bb = bd.get("backbone", 0.0)
            out.append(
                f"  Why: in the step breakdown the backbone takes {100 * bb / tot:.0f} % of the engine's time, the "
                f"output layer at the target positions {100 * head / tot:.0f} %, and `ce_and_rank` {100 * ce / tot:.0f} % "
                f"— {ce / head:.2f} × the output layer's own matmul; planning, batch tensors and gathers "
                f"{100 * (tot - bb - head - ce) / tot:.1f} %. pctce saves output-layer work against (a2): it applies the "
                f"layer only at targets, {100 * sum(tim['targets']) / sum(tim['padded_tokens']):.0f} % of the padded "
                "positions, and never materializes (B, T, V). (a2) computes no loss at all; "
                + (
                    "here CE and rank cost less than the padding and context positions pctce skips, so it passes (a2)."
                    if s["vs_a2"] >= 1
                    else "here CE and rank cost more than the padding and context positions pctce skips."
                )
            )
    if "b1" in summ and "a1" in summ:
        out.append(
            f"- Against the backbone alone (a1) pctce runs at {summ['b1']['vs_a1']:.2f} ×: with a {c['vocab']:,} "
            f"vocabulary and {c['n_embd']} hidden dims the output layer costs about as much as the {c['n_layer']}-layer "
            "backbone, so nothing that produces per-token CE can come near (a1) on this model."
        )
    if "b2" in summ and "b1" in summ and summ["b2"].get("vs_b1") is not None:
        b2 = summ["b2"]
        out.append(
            f"- End to end (b2) runs at {b2['vs_a2']:.2f} × (a2) and {b2['vs_b1']:.2f} × the engine alone (paired on "
            f"its segments; {b2['vs_b1_cpu']:.2f} × per CPU second); the manifest's engine time is nearly all of its "
            "wall time, so reading, tokenizing, loading and the Parquet store cost little next to the forward passes."
        )
    for m in ("c1", "c2"):
        if m in summ and summ[m].get("vs_b1") is not None:
            r, rc = 1 / summ[m]["vs_b1"], 1 / summ[m]["vs_b1_cpu"]
            out.append(
                f"- Against the naive ({m}) {METHODS[m][0]}, pctce's engine is {r:.2f} × as fast (paired on "
                f"({m})'s segments; {rc:.2f} × per CPU second)"
                + (" — and (c1) returns only a mean per window, not per-token CE and rank." if m == "c1" else ".")
            )
    rss = {r["method"]: r for r in raw.get("rss", [])}
    if "b1" in rss and "c2" in rss:
        out.append(
            f"- Peak RSS of the pass at `--batch-tokens {c['batch_tokens']}`: pctce {rss['b1']['peak_timed_mib']:,.0f} MiB, "
            f"naive full log_softmax {rss['c2']['peak_timed_mib']:,.0f} MiB"
            + (f", bare full-logit forward {rss['a2']['peak_timed_mib']:,.0f} MiB" if "a2" in rss else "")
            + (f", backbone alone {rss['a1']['peak_timed_mib']:,.0f} MiB" if "a1" in rss else "") + "."
        )
    mem = raw.get("memory") or []
    b1 = [r for r in mem if r["method"] == "b1"]
    c2 = [r for r in mem if r["method"] == "c2"]
    if b1:
        out.append(
            f"- With a {c['mem_vocab']:,} vocabulary, pctce's pass peaks at "
            + ", ".join(f"{r['peak_timed_mib']:,.0f} MiB" for r in b1) + " at `--batch-tokens` "
            + ", ".join(f"{r['batch_tokens']:,}" for r in b1)
            + ": flat, its logits never exceed one chunk. The naive full log_softmax peaks at "
            + ", ".join(f"{r['peak_timed_mib']:,.0f} MiB" for r in c2) + " at "
            + ", ".join(f"{r['batch_tokens']:,}" for r in c2)
            + ", growing with batch × vocabulary ((B, T, V) float32 logits, then as much again for the log_softmax)."
        )
        chk = [r["peak_check_mib"] for r in b1 if r.get("peak_check_mib")]
        if chk:
            passes = max(r["peak_timed_mib"] for r in b1)
            out.append(
                f"- pctce's one-time output-layer check peaks at {min(chk):,.0f}–{max(chk):,.0f} MiB here, "
                + ("above" if min(chk) > passes else "within")
                + " its passes: it compares the model's own logits with pctce's on a 32-position prefix of one "
                "window (independent of `--batch-tokens`)."
            )
        if c2:
            b, n = b1[0], c2[0]
            tb, tn = b["targets"] / b["wall"], n["targets"] / n["wall"]
            out.append(
                f"- In this output-layer-bound configuration ({c['mem_n_embd']} hidden dims) pctce is "
                + ("faster than" if tb > tn else "slower than")
                + f" the naive full log_softmax (one run each at `--batch-tokens` {b['batch_tokens']:,}: "
                f"{tb:,.0f} vs {tn:,.0f} tokens/s; pctce also computes the rank, which the naive method does not)."
            )
    runs = tim["runs"]
    cpw = max(r["cpu"] / r["wall"] for r in runs)
    spread = max(max(v["tps"]) / min(v["tps"]) for v in summ.values())
    line = (
        f"- Noise: the machine was shared (see the load averages; *CPU s per wall s* was at most {cpw:.2f} in any "
        f"timed pass although {c['threads']} threads were set), so a method's tokens/s varied by up to {spread:.1f} × "
        "between segments"
    )
    if "b1" in summ and "a2" in summ:
        by: dict = {}
        for r in runs:
            by.setdefault(r["method"], {})[r["segment"]] = r
        ks = [k for k in by["b1"] if k in by["a2"]]
        wall = [(by["b1"][k]["targets"] / by["b1"][k]["wall"]) / (by["a2"][k]["targets"] / by["a2"][k]["wall"]) for k in ks]
        cpu = [(by["b1"][k]["targets"] / by["b1"][k]["cpu"]) / (by["a2"][k]["targets"] / by["a2"][k]["cpu"]) for k in ks]
        line += (
            f"; the paired ratio (b1)/(a2) ranged {min(wall):.2f}–{max(wall):.2f} by wall time and "
            f"{min(cpu):.2f}–{max(cpu):.2f} per CPU second, so its median is the number to read"
        )
    out.append(line + ".")
    out.append("")
    return out


def write_section(path: Path, section: str) -> None:
    """Replace (or append) this section of ``path``, keeping every other section."""
    if path.exists():
        text = path.read_text(encoding="utf-8")
    else:
        text = ("# Benchmarks\n\nMeasured performance of pctce. Each section is generated by a script under "
                "`benchmarks/` and states the exact command that produced it.\n")
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        rest = lines[end:]
        new = "\n".join(lines[:start] + section.rstrip("\n").splitlines() + ([""] + rest if rest else [])).rstrip("\n") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
