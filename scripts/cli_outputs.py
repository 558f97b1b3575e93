"""Run a fixed battery of pctce commands over two demo stores and keep every output, to diff two versions.

A refactor that promises "behaviour unchanged" is checked by running this
script with the old tree and with the new one on the same stores, then diffing
the two output directories:

    pctce demo --out /tmp/demo -q                      # the stores (once)
    PYTHONPATH=/path/to/old/checkout python scripts/cli_outputs.py /tmp/demo /tmp/out-old
    python scripts/cli_outputs.py /tmp/demo /tmp/out-new
    diff -r /tmp/out-old /tmp/out-new

Each command runs as ``python -m pctce_cli`` in a fresh process (the version on
``PYTHONPATH`` wins), with machine formats (JSON, CSV, Markdown) and the files
the command writes; a file ``NAME.out`` holds the exit code, stdout and stderr.
Nothing is compared here: ``diff`` does that.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def battery(store: Path, out: Path) -> dict[str, list[str]]:
    """The commands, by output name; ``{out}`` marks files the command writes."""
    d, f = str(store / "distill"), str(store / "finetune")
    meta = str(ROOT / "sample_data" / "meta.csv")
    teacher, top5, top15 = f"{d}:teacher.checkpoint-1200", f"{d}:topk5.checkpoint-1200", f"{d}:topk15.checkpoint-1200"
    group = ["-g", "distilled=top*", "-g", "controls=scratch*"]
    w = str(out / "files")
    return {
        "summary": ["summary", d, "-f", "json"],
        "summary-csv": ["summary", f, "-f", "csv"],
        "summary-md": ["summary", d, "-f", "markdown", "-c", "*-1200"],
        "summary-ci": ["summary", d, "-c", "topk*", "--ci", "0.9", "--bootstrap", "200", "-f", "json"],
        "summary-vs": ["summary", d, "--vs", "teacher.checkpoint-1200", *group, "-f", "json"],
        "summary-pct-meta": ["summary", d, "--percentiles", "10,50,99.9", "--meta", meta, "-f", "json"],
        "summary-output": ["summary", f, "-f", "json", "--output", f"{w}/summary.json"],
        "concord": ["concord", d, "--pairs", *group, "-f", "json"],
        "concord-md": ["concord", d, "--pairs", "-f", "markdown"],
        "concord-meta-set": ["concord", d, "--meta", meta, "--set", "mean,p50,p99", "-f", "json"],
        "select-meta": ["select", d, "--meta", meta, "-f", "json"],
        "select-task": ["select", f, "--task", "accuracy", "-f", "json"],
        "shape": ["shape", d, *group, "-f", "json"],
        "shape-ecdf": ["shape", d, "-c", "topk5*", "--ecdf", "-f", "csv"],
        "decompose": ["decompose", f, "-f", "json"],
        "compare": ["compare", teacher, top15, "--bootstrap", "200", "-f", "json"],
        "compare-store": ["compare", "teacher.checkpoint-1200", "topk5.checkpoint-1200", "--store", d, "--bootstrap", "100", "--top", "3", "-f", "markdown"],
        "gate-fail": ["gate", d, "--baseline", "teacher.checkpoint-1200", "--candidate", "topk*-1200", "--rule", "p50:+0.01",
                      "--rule", "mean:+5%", "--bootstrap", "200", "-f", "json", "--json", f"{w}/gate.json",
                      "--markdown", f"{w}/gate.md", "--junit", f"{w}/gate.xml"],
        "gate-pass": ["gate", d, "--baseline", "topk5.checkpoint-1200", "--candidate", "teacher.checkpoint-1200", "--rule", "mean:+0.01", "--bootstrap", "100", "-f", "json"],
        "tail": ["tail", top5, "--top", "5", "-f", "json"],
        "tail-doc-vs": ["tail", top5, "--by", "document", "--top", "3", "--vs", teacher, "-f", "json"],
        "tail-nodecode": ["tail", "facts.epoch-12", "--store", f, "--no-decode", "--top", "4", "-f", "csv"],
        "verify": ["verify", d, "-f", "json"],
        "report": ["report", d, "-c", "topk*", "-c", "teacher*", "--out", f"{w}/report.html", "--meta", meta, "--vs", "teacher.checkpoint-1200"],
        "report-md": ["report", f, "--markdown", "--out", f"{w}/report.md", "--task", "accuracy", "--tail-top", "3"],
        "plot-ecdf": ["plot", "ecdf", d, "-c", "*-1200", "--out", f"{w}/ecdf.svg"],
        "plot-trajectory": ["plot", "trajectory", d, "--meta", meta, "--vs", "teacher.checkpoint-1200", "--out", f"{w}/trajectory.svg"],
        "plot-concord": ["plot", "concord", d, *group, "--out", f"{w}/concord.svg"],
        "plot-agreement": ["plot", "agreement", f, "--task", "accuracy", "--out", f"{w}/agreement.svg"],
        "plot-bands": ["plot", "bands", d, "-c", "topk*", "--out", f"{w}/bands.svg"],
        "err-glob": ["summary", d, "-c", "nothing*"],
        "err-mixed": ["summary", d, f],
        "err-pair": ["compare", teacher, f"{f}:facts.epoch-1"],
        "err-percentiles": ["summary", d, "--percentiles", "50,x"],
        "err-set": ["concord", d, "--set", "mean,q9"],
        "err-vs": ["summary", d, "--vs", "nope"],
        "err-task": ["select", d, "--task", "nope"],
        "err-tail-glob": ["report", d, "--out", f"{w}/x.html", "--tail-checkpoint", "zzz*"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", type=Path, help="directory written by 'pctce demo --out' (holds distill/ and finetune/)")
    ap.add_argument("out", type=Path, help="output directory (replaced)")
    ap.add_argument("--only", nargs="*", help="run only these output names")
    args = ap.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    (args.out / "files").mkdir(parents=True)
    env = dict(os.environ, COLUMNS="100", NO_COLOR="1", TERM="dumb", PCTCE_WORKERS="2")
    for name, cmd in battery(args.store.resolve(), args.out.resolve()).items():
        if args.only and name not in args.only:
            continue
        r = subprocess.run([sys.executable, "-m", "pctce_cli", *cmd], capture_output=True, text=True, env=env, cwd=args.out)
        text = f"exit {r.returncode}\n--- stdout\n{r.stdout}--- stderr\n{r.stderr}"
        (args.out / f"{name}.out").write_text(text.replace(str(args.out.resolve()), "<out>"), encoding="utf-8")
        print(f"{name}: exit {r.returncode}", flush=True)


if __name__ == "__main__":
    main()
