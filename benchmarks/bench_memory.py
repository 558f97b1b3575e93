#!/usr/bin/env python
"""Benchmark: `pctce summary` of one checkpoint with 1e9 targets in bounded memory, side by side with DuckDB.

Builds (or reuses) a one-checkpoint store of ``--targets`` rows written by the
store's own writer (all five token columns, 1M-row shards, zstd, checksums),
then runs, each in its own fresh process, with peak RSS from ``os.wait4``:

  pctce      ``pctce summary STORE --format json`` (streams the ce and rank columns twice)
  duckdb     ``count(*), avg(ce::DOUBLE), quantile_cont(ce::DOUBLE, [0.5, 0.9, 0.95, 0.99])``
  pctce-ci   ``pctce summary STORE --ci 0.95``: the bootstrap states its cost and refuses when it would not fit

and checks that the two agree (percentiles exactly, mean to 1e-9 relative).

    python benchmarks/bench_memory.py --out docs/benchmarks.md                 # 1e9 targets (~6 GB on disk)
    python benchmarks/bench_memory.py --targets 50000000 --data-dir /tmp/m50   # a smaller check
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_name  # noqa: E402

SECTION = "## Memory: one checkpoint with 1e9 targets"
SHARD = 1 << 20
DOC_LEN = 512
CK = "big"

DUCK = r"""
import json, sys, duckdb
con = duckdb.connect(); con.execute("SET enable_progress_bar = false")
n, mean, pct = con.execute(sys.argv[1]).fetchall()[0]
print(json.dumps({"n": n, "mean": mean, "pct": [float(x) for x in pct]}))
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build(root: Path, targets: int, seed: int = 0) -> float:
    """Write the store unless it holds exactly these targets; returns generation seconds (0 when reused)."""
    from pctce_cli.store import finish_partition, start_partition, write_shard

    man = root / f"checkpoint={CK}" / "_manifest.json"
    if man.is_file() and json.loads(man.read_text()).get("targets") == targets:
        log(f"[data] reusing {root}")
        return 0.0
    if root.exists():
        shutil.rmtree(root)
    t0 = time.perf_counter()
    part = start_partition(root, CK, {"weights": "w"}, fresh=True)
    n_shards = -(-targets // SHARD)
    rng = np.random.default_rng(seed)
    for k in range(n_shards):
        n = min(SHARD, targets - k * SHARD)
        first = k * SHARD
        idx = np.arange(first, first + n, dtype=np.int64)
        doc = idx // DOC_LEN
        ids = np.unique(doc)
        scored = SimpleNamespace(
            doc=doc, pos=(idx % DOC_LEN).astype(np.int32), token=rng.integers(0, 50257, n, dtype=np.int32),
            ce=np.minimum(rng.gamma(1.3, 2.2, n), 25.0).astype(np.float32), rank=rng.geometric(0.3, n).astype(np.int32) - 1,
            doc_table={"doc": ids, "n_targets": np.bincount(doc - ids[0]).astype(np.int64), "n_bytes": np.full(ids.size, 2048), "n_words": np.full(ids.size, 400)},
            seconds=0.0,
        )
        write_shard(part, k, 0, scored)
        if k % 100 == 0:
            log(f"[data] shard {k}/{n_shards} ({time.perf_counter() - t0:.0f} s)")
    finish_partition(part, {"id": CK, "step": 1, "fingerprints": {"data": "d", "tokenizer": "t", "documents": "x"}, "settings": {}}, n_shards)
    return time.perf_counter() - t0


def timed(cmd: list[str]) -> dict:
    """Run ``cmd``; wall seconds, CPU seconds and peak RSS (MiB) of that process alone."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, ru = os.wait4(proc.pid, 0)
    return {
        "wall": time.perf_counter() - t0, "cpu": ru.ru_utime + ru.ru_stime, "rss_mib": ru.ru_maxrss / 1024,
        "rc": os.waitstatus_to_exitcode(status), "stdout": out.decode(), "stderr": err.decode(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", type=int, default=1_000_000_000)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/pctce-bench-memory"))
    ap.add_argument("--out", type=Path, help="Markdown file to update (section replaced); default: print")
    ap.add_argument("--keep", action="store_true", help="keep the store afterwards (default: delete it when generated here)")
    args = ap.parse_args(argv)
    gen = build(args.data_dir, args.targets)
    size = sum(f.stat().st_size for f in args.data_dir.rglob("*") if f.is_file())
    pctce = str(Path(sys.executable).with_name("pctce"))
    runs = {}
    glob = f"{args.data_dir}/*/*.parquet"
    sql = f"SELECT count(*), avg(ce::DOUBLE), quantile_cont(ce::DOUBLE, [0.5, 0.9, 0.95, 0.99]) FROM read_parquet('{glob}')"
    for rep in range(2):  # the first pass also warms the page cache; both are reported
        runs[f"pctce-{rep}"] = timed([pctce, "summary", str(args.data_dir), "--format", "json"])
        runs[f"duckdb-{rep}"] = timed([sys.executable, "-c", DUCK, sql])
        log(f"[run {rep}] pctce {runs[f'pctce-{rep}']['wall']:.1f} s, duckdb {runs[f'duckdb-{rep}']['wall']:.1f} s")
    runs["pctce-ci"] = timed([pctce, "summary", str(args.data_dir), "--ci", "0.95"])
    for name, r in runs.items():
        if name != "pctce-ci" and r["rc"] != 0:
            raise SystemExit(f"{name} failed: {r['stderr']}")
    p = json.loads(runs["pctce-1"]["stdout"])["Per-token CE summaries (nats)"][0]
    d = json.loads(runs["duckdb-1"]["stdout"])
    agree = {
        "n": p["targets"] == d["n"],
        "mean_rel": abs(p["mean"] - d["mean"]) / d["mean"],
        "pct_max_abs": max(abs(p[k] - v) for k, v in zip(("p50", "p90", "p95", "p99"), d["pct"])),
    }
    text = render(args, gen, size, runs, agree)
    if args.out:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_score

        bench_score.SECTION = SECTION
        bench_score.write_section(args.out, text)
    else:
        print(text)
    if gen and not args.keep:
        shutil.rmtree(args.data_dir)
    return 0


def render(args, gen, size, runs, agree) -> str:
    cmd = "python benchmarks/bench_memory.py" + (f" --targets {args.targets}" if args.targets != 1_000_000_000 else "") + (f" --out {args.out}" if args.out else "")
    lines = [
        SECTION, "",
        f"Command: `{cmd}` ({time.strftime('%Y-%m-%d %H:%M')}). Machine: {cpu_name()}, {os.cpu_count()} cores. "
        f"Store: one checkpoint, {args.targets:,} targets in {-(-args.targets // SHARD):,} shards, {size / 2**30:.1f} GiB on disk"
        + (f", generated in {gen / 60:.1f} min" if gen else "") + ".",
        "", "| run | what | wall s | CPU s | peak RSS MiB | exit |", "|---|---|---:|---:|---:|---:|",
    ]
    what = {"pctce": "`pctce summary STORE --format json`", "duckdb": "DuckDB `count, avg, quantile_cont` (ce::DOUBLE)"}
    for name, r in runs.items():
        label = "`pctce summary STORE --ci 0.95`" if name == "pctce-ci" else what[name.rsplit("-", 1)[0]]
        lines.append(f"| {name} | {label} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['rss_mib']:,.0f} | {r['rc']} |")
    ratio = runs["pctce-1"]["wall"] / runs["duckdb-1"]["wall"]
    ci_msg = " ".join(runs["pctce-ci"]["stderr"].split())[:300]
    lines += [
        "",
        f"Second runs (warm cache): pctce takes {ratio:.2f}× DuckDB's wall time, peak RSS {runs['pctce-1']['rss_mib']:,.0f} MiB "
        f"(goal < 1,536 MiB: {'met' if runs['pctce-1']['rss_mib'] < 1536 else 'NOT met'}) against DuckDB's {runs['duckdb-1']['rss_mib']:,.0f} MiB.",
        f"Agreement: same count: {agree['n']}; mean relative difference {agree['mean_rel']:.1e}; max |Δ| over p50/p90/p95/p99 {agree['pct_max_abs']:.1e} nats.",
        f"`--ci` at this size: exit {runs['pctce-ci']['rc']}, “{ci_msg}”",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
