#!/usr/bin/env python
"""Benchmark of `pctce summary --by` (per-subset summaries, SPEC §7) against the pooled `pctce summary`.

One run of this script:

0. builds (or reuses) the synthetic store of ``bench_analysis.py`` (by default
   30 checkpoints × 10M targets, 20k documents, 10 shards each) and gives every
   checkpoint a subset field ``domain`` with 20 values, assigned to documents at
   random (seeded) by ``pctce_cli.store.write_labels``, as ``pctce score
   --subset-field`` would (labels beside the scores: nothing is re-scored);
1. reads every file once (page cache warm for both commands alike);
2. times, in alternating rounds, the whole CLI ``pctce summary DIR --format
   json`` and ``pctce summary DIR --by domain --format json`` (fresh
   subprocesses: start-up and imports counted);
3. checks the per-subset output: subsets' targets add up to the pooled
   targets, and DuckDB's per-subset ``quantile_cont(ce, 0.5)`` (the query in
   docs/subsets.md) equals pctce's p50 for every checkpoint and subset.

Run from the repository root::

    python benchmarks/bench_subsets.py --out docs/benchmarks.md        # full (30 × 10M)
    python benchmarks/bench_subsets.py --quick                          # smoke test (3 × 1M), prints Markdown

The ratio is taken per round (the two commands run back to back), then the
median; the load average is reported because the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_analysis as ba  # noqa: E402  (the store builder and timing helpers)
from _machine import cpu_name  # noqa: E402

SECTION = "## Subsets (`pctce summary --by`)"
FIELD = "domain"
DUCK_SUBSET_SQL = """
SELECT t.checkpoint, l.{field} AS subset, quantile_cont(t.ce::DOUBLE, 0.5) AS p50
FROM read_parquet('{root}/*/*.parquet', hive_partitioning = true) AS t
JOIN read_parquet('{root}/*/_labels/*.parquet', hive_partitioning = true) AS l
  ON t.checkpoint = l.checkpoint AND t.doc = l.doc
GROUP BY ALL ORDER BY ALL
"""


def add_labels(root: Path, n_ck: int, n_docs: int, n_subsets: int, seed: int) -> float:
    """Give every checkpoint the same random ``domain`` labels (skewed sizes, like real mixtures)."""
    from pctce_cli.store import write_labels

    rng = np.random.default_rng([seed, 77])
    weights = rng.dirichlet(np.full(n_subsets, 2.0))
    labels = [f"d{k:02d}" for k in rng.choice(n_subsets, n_docs, p=weights)]
    t0 = time.perf_counter()
    for i in range(n_ck):
        write_labels(root, ba.ck_id(i), {FIELD: labels}, range(n_docs))
    return time.perf_counter() - t0


def run_summary(root: Path, by: bool) -> dict:
    cmd = ba.pctce_cmd() + ["summary", str(root), "--format", "json"] + (["--by", FIELD] if by else [])
    r = ba.timed(cmd)
    r["out"] = json.loads(r.pop("stdout"))
    return r


def duck_subset_p50(root: Path) -> dict:
    sql = DUCK_SUBSET_SQL.format(field=FIELD, root=root)
    code = ba.DUCK_CODE.replace('print(json.dumps({str(k): [float(x) for x in v] for k, v in rows}))', 'print(json.dumps({f"{k}|{s}": float(v) for k, s, v in rows}))')
    r = ba.timed([sys.executable, "-c", code, json.dumps({"threads": 2, "sql": sql})])
    r["values"] = json.loads(r.pop("stdout").strip().splitlines()[-1])
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: 3 checkpoints × 1M targets, one round")
    ap.add_argument("--subsets", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=None, help="alternating rounds (default 3; quick 1)")
    ap.add_argument("--data-dir", default=None, help="the bench_analysis store (default /tmp/pctce-bench-analysis[-quick])")
    ap.add_argument("--out", default=None, help="write the section into this Markdown file; default: print")
    args = ap.parse_args(argv)
    q = args.quick
    params, root = ba.default_store(q, args.data_dir)  # bench_analysis.py's store, reused
    generated, gen_s = ba.ensure_store(root, params)
    label_s = add_labels(root, params["checkpoints"], params["documents"], args.subsets, params["seed"])
    ba.warm_cache(root)
    load_start = ba.loadavg()
    pooled, by = [], []
    for k in range(args.repeats or (1 if q else 3)):
        first, second = (False, True) if k % 2 == 0 else (True, False)  # alternate who goes first
        for flag in (first, second):
            r = run_summary(root, flag)
            (by if flag else pooled).append(r)
            ba.log(f"[round {k}] {'--by' if flag else 'pooled'}: {r['wall']:.1f} s")
    load_end = ba.loadavg()
    ratios = [b["wall"] / p["wall"] for p, b in zip(pooled, by)]
    rows = by[-1]["out"][f"Per-token CE summaries by {FIELD} (nats)"]
    pooled_rows = {r["checkpoint"]: r for r in pooled[-1]["out"]["Per-token CE summaries (nats)"]}
    totals: dict[str, int] = {}
    for r in rows:
        totals[r["checkpoint"]] = totals.get(r["checkpoint"], 0) + r["targets"]
    covered = all(totals[c] == pooled_rows[c]["targets"] for c in pooled_rows)
    duck = duck_subset_p50(root)
    worst = max(abs(duck["values"][f"{r['checkpoint']}|{r['subset']}"] - r["p50"]) for r in rows)
    n_sub = len({r["subset"] for r in rows})
    cmd = "python benchmarks/bench_subsets.py" + (" --quick" if q else "") + (f" --out {args.out}" if args.out else "")
    L = [
        SECTION,
        "",
        f"`{cmd}` on {time.strftime('%Y-%m-%d')}, {cpu_name()}, {os.cpu_count()} cores.",
        f"Store: {params['checkpoints']} checkpoints × {params['targets']:,} targets ({params['documents']:,} documents, "
        f"{params['shards']} shards each; bench_analysis.py's synthetic store{', built now' if generated else ', reused'}), "
        f"with a subset field `{FIELD}` of {n_sub} values over the documents (skewed sizes; written beside the scores "
        f"in {label_s:.1f} s for all checkpoints, nothing re-scored). Load average {load_start} at the start, {load_end} at the end.",
        "",
        "| round | `pctce summary` (s) | `pctce summary --by domain` (s) | ratio |",
        "|---|---|---|---|",
        *[f"| {k + 1} | {p['wall']:.1f} | {b['wall']:.1f} | {b['wall'] / p['wall']:.2f} |" for k, (p, b) in enumerate(zip(pooled, by))],
        "",
        f"**Median ratio {statistics.median(ratios):.2f}** (goal ≤ 1.5). Peak RSS: pooled {max(p['rss_mib'] for p in pooled):,.0f} MiB, "
        f"`--by` {max(b['rss_mib'] for b in by):,.0f} MiB.",
        f"Checks: the subsets' targets add up to the pooled targets for every checkpoint: {'yes' if covered else '**no**'}; "
        f"DuckDB's per-subset `quantile_cont(ce::DOUBLE, 0.5)` (the join of the token shards with `_labels/*.parquet`, docs/subsets.md) "
        f"agrees with pctce's p50 to {worst:.1e} over {len(rows)} checkpoint × subset cells (DuckDB took {duck['wall']:.1f} s).",
        "",
    ]
    text = "\n".join(L)
    if args.out:
        ba.write_section(Path(args.out), text)
    else:
        print(text)
    return 0 if covered else 1


if __name__ == "__main__":
    sys.exit(main())
