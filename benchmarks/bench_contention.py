#!/usr/bin/env python
"""Benchmark: `pctce score` alone vs two and three at once on the same cores, with and without pctce's thread policy.

Each job is a real ``pctce score`` process (console script, fresh interpreter)
scoring the same local random-init GPT-2 on the same documents into its own
store. For each policy the jobs run 1, 2 and 3 at a time; every job's wall time
is recorded and the reading is the ratio of the mean job time at k jobs to the
time alone, within the same policy and the same run.

Policies:
  pctce   the default: passive OpenMP waiting and the usable CPU count (pctce_cli/threads.py)
  native  PCTCE_THREAD_POLICY=native: OpenMP's own defaults (spinning waits, all host cores), as before issue 14

The same comparison for the test suite: ``pytest tests/test_stats_*.py`` alone
and beside one scoring job, under each policy (the suite's torch work inherits
the policy through the environment only when pctce's CLI is the entry point, so
this shows what a neighbouring scoring job does to other work).

Run from the repository root on an otherwise idle machine::

    python benchmarks/bench_contention.py --out docs/benchmarks.md
    python benchmarks/bench_contention.py --quick          # smaller job, prints Markdown
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_name  # noqa: E402
from bench_score import make_checkpoint, make_documents, write_jsonl, write_section as _write_section  # noqa: E402

SECTION = "## Contention: several jobs on the same cores"
ROOT = Path(__file__).resolve().parents[1]


def job_env(policy: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "PCTCE_THREAD_POLICY", "MKL_NUM_THREADS")}
    if policy == "native":
        env["PCTCE_THREAD_POLICY"] = "native"
    return env


def score_cmd(ckpt: Path, data: Path, out: Path) -> list[str]:
    pctce = Path(sys.executable).with_name("pctce")
    return [str(pctce), "score", str(ckpt), "--data", str(data), "--out", str(out), "--quiet", "--force"]


def run_together(cmds: list[list[str]], env: dict) -> list[float]:
    """Start every command at once; return each one's wall time."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in cmds]
    times = [0.0] * len(procs)
    pending = set(range(len(procs)))
    while pending:
        for i in list(pending):
            if procs[i].poll() is not None:
                times[i] = time.perf_counter() - t0
                pending.discard(i)
                if procs[i].returncode != 0:
                    raise SystemExit(f"job failed: {shlex.join(cmds[i])}\n{procs[i].stderr.read().decode()}")
        time.sleep(0.02)
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="Markdown file to update (section replaced); default: print")
    ap.add_argument("--quick", action="store_true", help="smaller job and one repetition")
    ap.add_argument("--targets", type=int, default=None, help="targets per job (default 120k, quick 30k)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions of each configuration (default 2, quick 1)")
    args = ap.parse_args(argv)
    targets = args.targets or (30_000 if args.quick else 120_000)
    reps = args.reps or (1 if args.quick else 2)
    work = Path(tempfile.mkdtemp(prefix="pctce-contention-"))
    ckpt = work / "model"
    params = make_checkpoint(ckpt, vocab=8192, n_positions=256, n_embd=256, n_layer=4, n_head=4, seed=0)
    data = work / "val.jsonl"
    write_jsonl(data, make_documents(targets, 8192, 50, 400, seed=1))
    started = time.strftime("%Y-%m-%d %H:%M")
    load_start = os.getloadavg()
    rows = []
    for policy in ("pctce", "native"):
        env = job_env(policy)
        for k in (1, 2, 3):
            for r in range(reps):
                cmds = [score_cmd(ckpt, data, work / f"out-{policy}-{k}-{r}-{j}") for j in range(k)]
                times = run_together(cmds, env)
                rows.append({"policy": policy, "jobs": k, "rep": r, "times": times})
                print(f"{policy} k={k} rep={r}: " + ", ".join(f"{t:.1f}s" for t in times), file=sys.stderr)
    # the test suite beside one scoring job
    tests = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *sorted(str(p) for p in (ROOT / "tests").glob("test_stats_*.py"))]
    suite = []
    for policy in ("pctce", "native"):
        env = job_env(policy)
        alone = run_together([tests], env)[0]
        t0 = time.perf_counter()
        neighbour = subprocess.Popen(score_cmd(ckpt, data, work / f"out-suite-{policy}"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        beside = run_together([tests], env)[0]
        neighbour.wait()
        suite.append({"policy": policy, "alone": alone, "beside": beside, "neighbour": time.perf_counter() - t0})
    load_end = os.getloadavg()
    text = render(rows, suite, params, targets, reps, started, load_start, load_end, args)
    if args.out:
        _write_section_named(args.out, text)
    else:
        print(text)
    return 0


def render(rows, suite, params, targets, reps, started, load_start, load_end, args) -> str:
    def mean_time(policy, k):
        return statistics.mean(t for r in rows if r["policy"] == policy and r["jobs"] == k for t in r["times"])

    cmd = "python benchmarks/bench_contention.py" + (" --quick" if args.quick else "") + (f" --out {args.out}" if args.out else "")
    lines = [
        SECTION,
        "",
        f"Command: `{cmd}` ({started}). Machine: {cpu_name()}, {os.cpu_count()} cores; "
        f"load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end. "
        f"Job: `pctce score` of a random-init GPT-2 ({params / 1e6:.1f}M parameters) on {targets:,} targets, "
        f"{reps} repetition(s) per configuration; every job of a configuration starts at the same moment.",
        "",
        "| policy | jobs at once | mean job wall s | ratio to alone | goal |",
        "|---|---:|---:|---:|---|",
    ]
    verdicts = []
    for policy in ("pctce", "native"):
        alone = mean_time(policy, 1)
        for k in (1, 2, 3):
            t = mean_time(policy, k)
            goal = "" if k == 1 else f"≤ {k:.1f}×"
            lines.append(f"| {policy} | {k} | {t:.1f} | {t / alone:.2f} | {goal} |")
            if policy == "pctce" and k > 1:
                verdicts.append((k, t / alone))
    base = mean_time("native", 1)
    lines += [
        "",
        f"Alone, pctce's policy takes {mean_time('pctce', 1) / base:.2f}× the native policy's time.",
        "",
        "| policy | test suite (tests/test_stats_*.py) alone s | beside one scoring job s | ratio |",
        "|---|---:|---:|---:|",
    ]
    for s in suite:
        lines.append(f"| {s['policy']} | {s['alone']:.1f} | {s['beside']:.1f} | {s['beside'] / s['alone']:.2f} |")
    met = all(r <= k for k, r in verdicts)
    lines += ["", "Reading: " + ("goal met" if met else "goal NOT met") + " — "
              + "; ".join(f"{k} jobs at once take {r:.2f}× the time alone (goal ≤ {k}×)" for k, r in verdicts) + "."]
    return "\n".join(lines) + "\n"


def _write_section_named(path: Path, text: str) -> None:
    import bench_score

    old = bench_score.SECTION
    bench_score.SECTION = SECTION
    try:
        _write_section(path, text)
    finally:
        bench_score.SECTION = old


if __name__ == "__main__":
    sys.exit(main())
