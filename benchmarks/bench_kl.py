#!/usr/bin/env python
"""What ``pctce score --reference`` costs: scoring with a reference vs scoring alone, side by side, and peak memory.

Everything is built locally: two random-init GPT-2s of the same shape (a 32,768-entry
output layer, so that the divergence's passes over the vocabulary weigh as they do
with real vocabularies) sharing one small trained tokenizer, and JSONL documents
of English sentences. Each round scores the candidate into a fresh store twice,
once alone and once with ``--reference``, each in its own Python process (so that
its peak resident memory is its own), the order alternating between rounds; the
ratio with/alone is paired within the round and the median over rounds reported.
Wall time is of the whole ``pctce score`` (read, tokenize, load, score, write).

Run from the repository root::

    python benchmarks/bench_kl.py                             # prints the Markdown section
    python benchmarks/bench_kl.py --out docs/benchmarks.md    # replaces its section there
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SECTION = "## Divergence from a reference model"
COMMAND = "python benchmarks/bench_kl.py --out docs/benchmarks.md"

RUN = """
import json, resource, sys, time
from pctce_cli.scoring.options import ScoreOptions
from pctce_cli.scoring.run import score_checkpoints
cand, data, out, ref = sys.argv[1:5]
t = time.perf_counter()
[r] = score_checkpoints([cand], ScoreOptions(data=[data], out=out, max_length=256, reference=ref or None))
assert r.status == "scored", r.message
print(json.dumps({"seconds": time.perf_counter() - t, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "targets": r.targets}))
"""


def build(base: Path, args) -> tuple[Path, Path, Path]:
    """Two GPT-2s (seeds 0 and 1) with one tokenizer, and the data file."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from pctce_cli.testing import CORPUS, make_tokenizer

    tok = make_tokenizer()
    paths = []
    for seed, name in ((0, "reference"), (1, "candidate")):
        torch.manual_seed(seed)
        cfg = GPT2Config(vocab_size=args.vocab, n_positions=256, n_embd=args.width, n_layer=args.layers, n_head=4,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        GPT2LMHeadModel(cfg).eval().save_pretrained(base / name)
        tok.save_pretrained(base / name)
        paths.append(base / name)
    import random

    rnd = random.Random(0)
    data = base / "val.jsonl"
    with open(data, "w", encoding="utf-8") as f:
        for _ in range(args.docs):
            f.write(json.dumps({"text": " ".join(rnd.choice(CORPUS) for _ in range(12))}) + "\n")
    return paths[0], paths[1], data


def one(cand: Path, data: Path, out: Path, ref: Path | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    res = subprocess.run([sys.executable, "-c", RUN, str(cand), str(data), str(out), str(ref or "")], capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--docs", type=int, default=60)
    ap.add_argument("--vocab", type=int, default=32768)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--out", type=Path, help="replace the section of this Markdown file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ref, cand, data = build(base, args)
        rows = []
        for k in range(args.rounds):
            order = [None, ref] if k % 2 == 0 else [ref, None]
            got = {("with" if r else "alone"): one(cand, data, base / f"out-{k}-{bool(r)}", r) for r in order}
            rows.append(got)
    ratios = [r["with"]["seconds"] / r["alone"]["seconds"] for r in rows]
    med = lambda key, what: statistics.median(r[key][what] for r in rows)  # noqa: E731
    text = "\n".join([
        SECTION,
        "",
        f"`pctce score --reference` against `pctce score` alone: two random GPT-2s ({args.layers} layers, width {args.width}, "
        f"vocabulary {args.vocab:,}), {rows[0]['alone']['targets']:,} targets, windows of 256, CPU float32, "
        f"{args.rounds} rounds alternating the order, each run its own process ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, shared). Command: `{' '.join(['python', 'benchmarks/bench_kl.py', *sys.argv[1:]])}`. "
        "Wall time is the whole process (start, imports, tokenization, loading, scoring, writing), so the fixed part dilutes the ratio "
        "of the scoring itself.",
        "",
        "| run | wall s (median) | peak RSS MiB (median) |",
        "|---|---:|---:|",
        f"| alone | {med('alone', 'seconds'):.2f} | {med('alone', 'rss_mib'):.0f} |",
        f"| --reference | {med('with', 'seconds'):.2f} | {med('with', 'rss_mib'):.0f} |",
        "",
        f"Ratio with/alone, paired within each round: median **{statistics.median(ratios):.2f}×** "
        f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)}; goal ≤ 2.3×: two forward passes, the divergence's "
        "log-softmax of both chunks, and the second model resident).",
        "",
    ])
    if args.out:
        doc = args.out.read_text(encoding="utf-8")
        if SECTION in doc:
            start = doc.index(SECTION)
            nxt = doc.find("\n## ", start + len(SECTION))
            doc = doc[:start] + text + (doc[nxt + 1 :] if nxt >= 0 else "")
        else:
            doc = doc.rstrip("\n") + "\n\n" + text
        args.out.write_text(doc, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
