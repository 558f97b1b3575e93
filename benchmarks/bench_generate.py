#!/usr/bin/env python
"""What greedy decoding for `--task-accuracy` costs: fixed batches of 32 against token-budget batches.

Loads the demo's fine-tuning adapters (``sample_data/finetune/facts/epoch-*``)
one after another on one base model (pctce's ``ModelCache``), tokenizes the
held-out prompts once, and for each adapter times ``task_accuracy`` of a
reference tree (``--old``, a git revision: its ``scoring/generate.py`` is
loaded from git, so both versions run side by side in one process) and of
this tree, alternating which goes first. Every per-document outcome
(exact match, substring match, decoded generation) is checked to be
identical between the two.

Run from the repository root::

    python benchmarks/bench_generate.py                      # every epoch, prints Markdown
    python benchmarks/bench_generate.py --epochs 1,6,12 --threads 2
    python benchmarks/bench_generate.py --append docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def old_generate(rev: str):
    """``pctce_cli/scoring/generate.py`` at git revision ``rev``, imported as a module."""
    src = subprocess.run(["git", "show", f"{rev}:pctce_cli/scoring/generate.py"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "generate_old.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("generate_old", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", default="main", help="git revision of the reference generate.py")
    ap.add_argument("--epochs", default="1,2,3,4,5,6,7,8,9,10,11,12")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--append", default=None, help="Markdown file to append the section to (else print)")
    args = ap.parse_args(argv)

    import torch

    from pctce_cli.checkpoints import discover
    from pctce_cli.scoring import generate as new
    from pctce_cli.scoring.hf import ModelCache, load_tokenizer
    from pctce_cli.scoring.validation import prepare_data

    torch.set_num_threads(args.threads)
    old = old_generate(args.old)
    facts = ROOT / "sample_data" / "finetune" / "facts"
    wanted = {f"epoch-{e}" for e in args.epochs.split(",")}
    specs = [s for s in discover([facts]) if s.path.name in wanted]
    tok = load_tokenizer(specs[0])
    data = prepare_data(tok, [str(ROOT / "sample_data" / "finetune" / "test.jsonl")], prompt_field="prompt", completion_field="completion")
    cache = ModelCache(torch.device("cpu"), torch.float32)
    rows, totals = [], {"old": 0.0, "new": 0.0}
    for i, spec in enumerate(specs):
        model = cache.load(spec)
        runs = [("old", old.task_accuracy), ("new", new.task_accuracy)]
        if i % 2:
            runs.reverse()
        out, secs = {}, {}
        for name, fn in runs:
            t0 = time.perf_counter()
            out[name] = fn(model, tok, data.documents, data.records)
            secs[name] = time.perf_counter() - t0
            totals[name] += secs[name]
        same = all(np.array_equal(out["old"][c], out["new"][c]) for c in ("exact_match", "substring_match", "generation"))
        if not same:
            sys.exit(f"{spec.path.name}: the generations differ between {args.old} and this tree")
        rows.append((spec.path.name, secs["old"], secs["new"], float(out["new"]["exact_match"].mean())))
        print(f"{spec.path.name}: {args.old} {secs['old']:.2f} s, new {secs['new']:.2f} s, exact match {rows[-1][3]:.4f}", file=sys.stderr)

    lines = [
        "",
        "## Task accuracy: greedy decoding by token budget",
        "",
        f"`python benchmarks/bench_generate.py --threads {args.threads} --epochs {args.epochs}` — "
        f"{len(data.documents)} held-out prompts of the demo's fine-tuning study per adapter; "
        f"`{args.old}` decodes in fixed batches of 32, this tree in batches of at most "
        f"{new.GENERATE_BATCH_TOKENS} tokens (prompt + new tokens, sorted by length). Both run in one process, "
        f"alternating which goes first; every generation was identical. {platform.machine()}, "
        f"torch {torch.__version__}, {args.threads} threads, shared machine.",
        "",
        f"| adapter | {args.old} (s) | token budget (s) | ratio | exact match |",
        "|---|---:|---:|---:|---:|",
        *(f"| {n} | {o:.2f} | {w:.2f} | {o / w:.2f}× | {a:.4f} |" for n, o, w, a in rows),
        f"| **total** | {totals['old']:.2f} | {totals['new']:.2f} | {totals['old'] / totals['new']:.2f}× | |",
        "",
    ]
    text = "\n".join(lines)
    if args.append:
        with open(args.append, "a", encoding="utf-8") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
