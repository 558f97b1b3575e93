#!/usr/bin/env python
"""Two versions of pctce side by side: the same commands on the same inputs, alternating, in one run.

A refactor promises "no slowdown"; this measures it. Each round runs every
command once with the old tree and once with the new one (which goes first
alternates), each as a fresh ``python -m pctce_cli`` subprocess with that
tree first on ``PYTHONPATH``; the reported ratio is the median over rounds of
new wall time / old wall time, so load that comes and goes hits both alike.

Commands:

* ``summary`` over a synthetic store (the analysis benchmark's generator,
  default 6 checkpoints × 2M targets), the percentiles of the analysis
  benchmark, JSON output;
* ``report`` over the same store (every section, no plots needed);
* ``score`` of one shipped sample checkpoint (``sample_data/distill/teacher``'s
  last step) on the distillation validation set, ``--force`` into a scratch store.

Run from the repository root, with an old checkout beside it::

    git worktree add /tmp/pctce-old pre-house
    python benchmarks/bench_versions.py --old /tmp/pctce-old --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_analysis as ba  # noqa: E402
from _machine import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Old tree vs new tree (bench_versions.py)"


def commands(store: Path, scratch: Path) -> dict[str, list[str]]:
    sample = ROOT / "sample_data" / "distill"
    teacher = sorted((sample / "teacher").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
    return {
        "summary": ["summary", str(store), "--percentiles", "10,50,90,95,99", "--format", "json"],
        "report": ["report", str(store), "--out", str(scratch / "report.html"), "--tail-top", "0"],
        "score": ["score", str(teacher), "--data", str(sample / "val.jsonl"), "--out", str(scratch / "scores"), "--force", "-q", "--format", "json"],
    }


def run(tree: Path, args: list[str]) -> dict:
    env_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(tree) + (os.pathsep + env_path if env_path else "")
    try:
        return ba.timed([sys.executable, "-m", "pctce_cli", *args])
    finally:
        if env_path is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = env_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, required=True, help="checkout of the old version (e.g. a git worktree of pre-house)")
    ap.add_argument("--new", type=Path, default=ROOT, help="checkout of the new version (default: this one)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--checkpoints", type=int, default=6)
    ap.add_argument("--targets", type=int, default=2_000_000)
    ap.add_argument("--only", nargs="*", help="run only these commands")
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/pctce-bench-versions"))
    ap.add_argument("--out", default=None, help="write the section into this Markdown file; default: print")
    args = ap.parse_args(argv)
    params = {"checkpoints": args.checkpoints, "targets": args.targets, "documents": 4000, "shards": 2, "seed": 0}
    ba.ensure_store(args.data_dir, params)
    ba.warm_cache(args.data_dir)
    times: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cmds = {k: v for k, v in commands(args.data_dir, Path(tmp)).items() if not args.only or k in args.only}
        for r in range(args.rounds):
            order = [("old", args.old), ("new", args.new)][:: 1 if r % 2 == 0 else -1]
            for name, cmd in cmds.items():
                for label, tree in order:
                    t = run(tree, cmd)["wall"]
                    times.setdefault(name, {}).setdefault(label, []).append(t)
                    ba.log(f"[round {r + 1}] {name} {label}: {t:.2f} s")
    lines = [
        SECTION,
        "",
        f"`python benchmarks/bench_versions.py --old {args.old} --rounds {args.rounds}` on {cpu_name()}, "
        f"{os.cpu_count()} cores, load {ba.loadavg()} at the end; store: {args.checkpoints} checkpoints × "
        f"{args.targets:,} targets. Wall seconds, medians over {args.rounds} alternating rounds; "
        "the ratio is the median of the per-round ratios new / old.",
        "",
        "| command | old (s) | new (s) | new / old |",
        "|---|---:|---:|---:|",
    ]
    for name, t in times.items():
        ratio = statistics.median(n / o for n, o in zip(t["new"], t["old"]))
        lines.append(f"| {name} | {statistics.median(t['old']):.2f} | {statistics.median(t['new']):.2f} | {ratio:.3f} |")
    text = "\n".join(lines) + "\n"
    if args.out:
        ba.write_section(Path(args.out), text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
