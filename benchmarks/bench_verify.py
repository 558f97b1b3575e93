#!/usr/bin/env python
"""What verifying the store costs: `load_scores` (checked) vs a bare pyarrow read of the same columns, side by side.

`load_scores` checks every shard's SHA-256 against the manifest, Parquet page
checksums, row counts and values (CE finite and ≥ 0, rank ≥ 0) before a
number is computed (issue 14: "a store that cannot lie"). This measures that
cost on the analysis benchmark's synthetic store (default 30 checkpoints × 10M
targets, built or reused with ``bench_analysis.ensure_store``): in alternating
rounds, in one process, with a warm page cache,

* ``checked``: ``load_scores(store, id, columns=("doc", "ce", "rank"))`` for every checkpoint;
* ``bare``: the same files read into the same numpy arrays and documents DataFrame, no checks.

    python benchmarks/bench_verify.py --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_analysis as ba  # noqa: E402
from _machine import cpu_name  # noqa: E402

SECTION = "## Verification: what checking the store costs"
COLUMNS = ("doc", "ce", "rank")


def checked(root: Path, ids: list[str]) -> int:
    from pctce_cli.store import load_scores

    return sum(len(load_scores(root, i, columns=COLUMNS).ce) for i in ids)


def bare(root: Path, ids: list[str]) -> int:
    """What load_scores does less the checks: the same files into the same numpy arrays and DataFrame."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 0
    for i in ids:
        part = root / f"checkpoint={i}"
        toks = pa.concat_tables([pq.read_table(f, columns=list(COLUMNS)) for f in sorted(part.glob("part-*.parquet"))])
        arrays = {c: toks.column(c).to_numpy() for c in COLUMNS}
        pa.concat_tables([pq.read_table(f) for f in sorted((part / "_docs").glob("*.parquet"))], promote_options="default").to_pandas()
        n += len(arrays["ce"])
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", type=int, default=30)
    ap.add_argument("--targets", type=int, default=10_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/pctce-bench-analysis"))
    ap.add_argument("--out", default=None, help="write the section into this Markdown file; default: print")
    args = ap.parse_args(argv)
    params = {"checkpoints": args.checkpoints, "targets": args.targets, "documents": 20000, "shards": 10, "seed": 0}
    ba.ensure_store(args.data_dir, params)
    ba.warm_cache(args.data_dir)
    ids = [ba.ck_id(i) for i in range(args.checkpoints)]
    times: dict[str, list[float]] = {"checked": [], "bare": []}
    for r in range(args.rounds):
        for name in (("checked", "bare") if r % 2 == 0 else ("bare", "checked")):
            t0 = time.perf_counter()
            n = (checked if name == "checked" else bare)(args.data_dir, ids)
            times[name].append(time.perf_counter() - t0)
            ba.log(f"[round {r + 1}] {name}: {times[name][-1]:.2f} s ({n:,} rows)")
    ratio = statistics.median(c / b for c, b in zip(times["checked"], times["bare"]))
    text = "\n".join(
        [
            SECTION,
            "",
            f"`python benchmarks/bench_verify.py --rounds {args.rounds}` on {cpu_name()}, {os.cpu_count()} cores, "
            f"load {ba.loadavg()} at the end; store: {args.checkpoints} checkpoints × {args.targets:,} targets, columns "
            f"{', '.join(COLUMNS)}, warm page cache. Seconds for all checkpoints, medians over {args.rounds} alternating rounds.",
            "",
            "| read | s | per checkpoint s |",
            "|---|---:|---:|",
            *(f"| {k} | {statistics.median(v):.2f} | {statistics.median(v) / args.checkpoints:.3f} |" for k, v in times.items()),
            "",
            f"Verification (SHA-256 of every shard, page checksums, row counts, CE and rank values) costs {ratio:.2f}× "
            "the bare read (median of per-round ratios).",
        ]
    )
    if args.out:
        ba.write_section(Path(args.out), text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
