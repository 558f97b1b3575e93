#!/usr/bin/env python
"""Which `--batch-tokens` is fastest for the scoring engine on this machine?

Scores the same random documents with ``score_documents(HFAdapter(model), …)``
at several token budgets, in rounds (every budget once per round, order rotated),
on a random-init GPT-2, and reports targets/s (best and median of the rounds)
and the ratio to the 16384 budget measured in the same round. The summed CE of
every run is checked to agree (batching must not change the numbers).

Run from the repository root::

    python benchmarks/bench_batch_tokens.py                                  # 13M GPT-2 (6 x 256, vocab 32k)
    python benchmarks/bench_batch_tokens.py --n-embd 512 --n-layer 4 --vocab 50257 --docs 60
    python benchmarks/bench_batch_tokens.py --out docs/benchmarks.md         # replace its section there
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budgets", default="1024,2048,4096,8192,16384")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--n-layer", type=int, default=6)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--docs", type=int, default=100, help="documents, lengths uniform in [50, 600]")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", default=None, help="Markdown file whose section for this model is replaced (else print)")
    args = ap.parse_args(argv)

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from pctce_cli.data import Document
    from pctce_cli.scoring.engine import score_documents
    from pctce_cli.scoring.hf import HFAdapter

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    cfg = GPT2Config(vocab_size=args.vocab, n_positions=args.context, n_embd=args.n_embd, n_layer=args.n_layer, n_head=args.n_head, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(cfg).eval()
    params = sum(p.numel() for p in model.parameters())
    rng = np.random.default_rng(0)
    docs = []
    for k in range(args.docs):
        n = int(rng.integers(50, 600))
        targets = np.ones(n + 1, bool)
        targets[0] = False
        docs.append(Document(k, rng.integers(0, args.vocab, n + 1).astype(np.int64), targets, 1, n, n, "random"))
    n_targets = sum(int(d.targets.sum()) for d in docs)
    budgets = [int(b) for b in args.budgets.split(",")]
    stride = args.context // 2

    def run(budget):
        t0 = time.perf_counter()
        shard = score_documents(HFAdapter(model), docs, max_length=args.context, stride=stride, batch_tokens=budget)
        return time.perf_counter() - t0, float(np.sum(shard.ce, dtype=np.float64))

    load0 = os.getloadavg()
    with torch.inference_mode():
        run(budgets[0])  # warm-up (and the adapter's output-layer check path)
        secs: dict[int, list[float]] = {b: [] for b in budgets}
        sums = set()
        for r in range(args.rounds):
            order = budgets[r % len(budgets) :] + budgets[: r % len(budgets)]
            for b in order:
                dt, total = run(b)
                secs[b].append(dt)
                sums.add(round(total, 2))
                print(f"round {r} batch_tokens {b}: {n_targets / dt:,.0f} targets/s", flush=True)
    load1 = os.getloadavg()
    ref = 16384 if 16384 in budgets else budgets[-1]
    rows = []
    for b in budgets:
        ratios = [secs[ref][i] / secs[b][i] for i in range(args.rounds)]
        rows.append(
            f"| {b:,} | {n_targets / min(secs[b]):,.0f} | {n_targets / statistics.median(secs[b]):,.0f} | "
            f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) |"
        )
    from pctce_cli.scoring.options import CPU_BATCH_TOKENS

    med = {b: statistics.median(secs[b]) for b in budgets}
    fastest = min(budgets, key=med.get)
    ref_speed = med[ref] / med[fastest]
    cmd = "python benchmarks/bench_batch_tokens.py " + " ".join(argv if argv is not None else os.sys.argv[1:])
    md = "\n".join(
        [
            f"## Scoring: `--batch-tokens` on CPU ({args.n_layer} × {args.n_embd}, vocabulary {args.vocab:,})",
            "",
            "```bash",
            cmd.strip(),
            "```",
            "",
            f"Random-init GPT-2, {args.n_layer} layers × {args.n_embd} dims, vocabulary {args.vocab:,}, context "
            f"{args.context} ({params / 1e6:.1f}M parameters); {args.docs} random documents of 50–600 tokens, "
            f"{n_targets:,} targets, stride {stride}; `score_documents(HFAdapter(model), …)`, {args.threads} torch "
            f"threads, {args.rounds} rounds (order rotated). {platform.machine()} Linux, torch {torch.__version__}; "
            f"load average {load0[0]:.2f} at the start, {load1[0]:.2f} at the end. Every run's summed CE agreed "
            f"({'yes' if len(sums) == 1 else 'NO: ' + str(sorted(sums))}).",
            "",
            f"| `--batch-tokens` | targets/s, best | targets/s, median | speed vs {ref:,} in the same round, median (range) |",
            "|---:|---:|---:|---:|",
            *rows,
            "",
            f"Fastest by median: `--batch-tokens {fastest:,}`, {ref_speed:.2f}× the {ref:,} budget. "
            f"pctce's default on CPU is {CPU_BATCH_TOKENS:,} (`CPU_BATCH_TOKENS` in `pctce_cli/scoring/run.py`).",
            "",
        ]
    )
    if args.out:
        path = Path(args.out)
        text = path.read_text(encoding="utf-8")
        title = md.splitlines()[0]
        pattern = re.escape(title) + r"\n.*?(?=\n## |\Z)"
        new, n = re.subn(pattern, lambda m: md.rstrip("\n"), text, flags=re.S)
        path.write_text(new if n else text.rstrip("\n") + "\n\n" + md, encoding="utf-8")
    else:
        print(md)


if __name__ == "__main__":
    main()
