#!/usr/bin/env python
"""Benchmark of `pctce summary --unit word|byte` and `--value kl` with `--by`/`--ci` above PCTCE_STREAM_ABOVE (streamed).

For each size given (targets in one checkpoint), one run of this script:

0. builds (or reuses) a synthetic store shard by shard (never holding the
   checkpoint in memory): documents of ~1,000 targets (long-tailed lengths),
   words of 1–3 tokens, 1–8 bytes a token (a few empty spans), CE lognormal
   times a per-document difficulty, ``kl`` lognormal with a heavy tail, ``dp``
   and ``same_top1``, a ``domain`` label per document (20 values, skewed sizes);
1. runs ``pctce summary`` (the CLI, ``--format json``, a fresh process each)
   with ``PCTCE_STREAM_ABOVE=0`` for each option set below, with wall time and
   peak RSS from ``/usr/bin/time``;
2. with ``--check``, on the smallest size, runs each option set in memory too
   and reports the largest difference of every number.

Run from the repository root::

    python benchmarks/bench_stream_units.py --sizes 1e7,1e8 --out docs/benchmarks.md
    python benchmarks/bench_stream_units.py --sizes 1e6 --check --bootstrap 200     # smoke test
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_analysis as ba  # noqa: E402  (timing helpers)
import bench_streaming  # noqa: E402  (the synthetic store builder)
from _machine import cpu_name  # noqa: E402

SECTION = "## Streamed words, bytes and KL (`summary --unit word|byte`, `--value kl` above PCTCE_STREAM_ABOVE)"
SHARD_TARGETS = 1 << 22
DOC_TARGETS = 1000
N_SUBSETS = 20
STAMP = "_bench_stream_units.json"
OPTIONS = {
    "--unit word --by domain": ["--unit", "word", "--by", "domain"],
    "--unit byte --by domain": ["--unit", "byte", "--by", "domain"],
    "--unit word --ci 0.95": ["--unit", "word", "--ci", "0.95"],
    "--value kl --by domain": ["--value", "kl", "--by", "domain"],
    "--value kl --ci 0.95": ["--value", "kl", "--ci", "0.95"],
}


def unit_fields(rng, n: int, n_docs: int, counts, local, starts, ce) -> tuple[dict, dict]:
    """A shard's words (1–3 tokens), bytes (1–8 a token, a few empty spans) and divergence columns, and the per-document counts."""
    new_word = rng.random(n) < 0.7
    new_word[starts] = True
    word_all = np.cumsum(new_word) - 1
    word = (word_all - word_all[starts][local]).astype(np.int32)  # the word's index within its document
    nbytes = rng.integers(1, 9, n).astype(np.int32)
    empty = rng.random(n) < 0.002  # special tokens: in no word or byte
    nbytes[empty], word[empty] = 0, -1
    kl = (rng.lognormal(-5.0, 2.0, n)).astype(np.float32)
    dp = np.clip(rng.normal(0.0, 0.05, n), -1, 1).astype(np.float32)
    cols = {"pos": (np.arange(n) - starts[local]).astype(np.int32), "rank": np.zeros(n, np.int32), "nbytes": nbytes, "word": word,
            "kl": kl, "dp": dp, "same_top1": (rng.random(n) < 0.9).astype(np.int8)}  # fmt: skip
    doc_cols = {"n_bytes": np.add.reduceat(nbytes.astype(np.int64), starts), "n_words": np.add.reduceat(new_word.astype(np.int64), starts),
                "n_empty": np.add.reduceat(empty.astype(np.int64), starts)}  # fmt: skip
    return cols, doc_cols


def build(root: Path, n_targets: int, seed: int = 0) -> float:
    """Write one checkpoint ``ck-000`` of ``n_targets`` targets with words, bytes and divergence, shard by shard, and its labels."""
    extra = {"units": {"available": True, "rule": ba.SETTINGS["units"]}, "reference": {"path": "/ck/reference", "fingerprint": "r" * 64}}
    return bench_streaming.build(root, n_targets, seed, STAMP, unit_fields, extra)


def run(root: Path, args: list[str], n_boot: int, streamed: bool = True) -> dict:
    """``pctce summary ROOT ARGS --format json`` in a fresh process, timed (streamed: ``PCTCE_STREAM_ABOVE=0``)."""
    env_bound = "0" if streamed else str(10**12)
    cmd = ["env", f"PCTCE_STREAM_ABOVE={env_bound}", *ba.pctce_cmd(), "summary", str(root), *args, "--bootstrap", str(n_boot), "--format", "json"]
    r = ba.timed(cmd)
    r["out"] = json.loads(r.pop("stdout"))
    return r


def largest_difference(a: dict, b: dict) -> tuple[float, float]:
    """Largest |a − b| of percentiles, counts and their bounds; largest relative one of the means (summed in another order)."""
    exact, rel = 0.0, 0.0
    for title, rows in a.items():
        if title == "notes":
            continue
        for ra, rb in zip(rows, b[title]):
            for k, va in ra.items():
                vb = rb.get(k)
                if not isinstance(va, (int, float)) or isinstance(va, bool) or vb is None or (isinstance(va, float) and math.isnan(va)):
                    continue
                if k.split("_")[0] in ("mean", "ppl", "bpb", "byte", "word", "z95", "iqr", "macro"):
                    rel = max(rel, abs(va - vb) / max(abs(va), 1e-300))
                else:
                    exact = max(exact, abs(va - vb))
    return exact, rel


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e7", help="targets per checkpoint, comma-separated (e.g. 1e7,1e8)")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--data-dir", default="/tmp/pctce-bench-stream-units")
    ap.add_argument("--check", action="store_true", help="also compare streamed with in-memory on the smallest size")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    lines, checks = [], []
    for n in sizes:
        root = Path(args.data_dir) / f"n{n}"
        gen = build(root, n)
        size_gib = ba.dir_size(root) / 2**30
        for name, opts in OPTIONS.items():
            r = run(root, opts, args.bootstrap)
            lines.append(f"| {n:,} | {size_gib:.2f} | {gen:.0f} | `{name}` | {r['wall']:.0f} | {r['rss_mib']:,.0f} |")
            ba.log(lines[-1])
            if args.check and n == sizes[0]:
                mem = run(root, opts, args.bootstrap, streamed=False)
                checks.append((name, *largest_difference(mem["out"], r["out"]), mem["rss_mib"], r["rss_mib"]))
    cmd = f"python benchmarks/bench_stream_units.py --sizes {args.sizes} --bootstrap {args.bootstrap}" + (" --check" if args.check else "")
    L = [
        SECTION, "",
        f"`{cmd}` on {time.strftime('%Y-%m-%d')}, {cpu_name()}, {os.cpu_count()} cores (shared with other jobs; load {ba.loadavg()} at the end).",
        f"One checkpoint, documents of ~{DOC_TARGETS:,} targets, words of 1–3 tokens, 1–8 bytes a token, {N_SUBSETS} `domain` subsets, "
        f"shards of {SHARD_TARGETS:,} targets; `--ci` with {args.bootstrap} resamples of the default summaries. The CLI "
        "(`pctce summary … --format json`, `PCTCE_STREAM_ABOVE=0`), a fresh process each: wall seconds and peak RSS (MiB).", "",
        "| targets | store (GiB) | build (s) | options | wall (s) | RSS (MiB) |",
        "|---|---|---|---|---|---|",
        *lines, "",
    ]  # fmt: skip
    if checks:
        L += bench_streaming.check_table(f"Streamed against in memory at {sizes[0]:,} targets (the same command with `PCTCE_STREAM_ABOVE` above the size):", "percentiles, max, counts", checks)
    bench_streaming.emit(L, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
