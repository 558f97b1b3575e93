"""Break the fine-tuning miniature's scores down by phrasing format, as Appendix B does.

    python scripts/finetune_breakdown.py SCORES [--test sample_data/finetune/test.jsonl] [--top 20]

``SCORES`` is a store written by ``pctce score sample_data/finetune/facts --data
sample_data/finetune/test.jsonl --prompt-field prompt --completion-field completion
--task-accuracy``. Prints, per epoch: answer-token mean CE and greedy substring accuracy
for each held-out format; mean CE over the pairs answered correctly and incorrectly (the
paper's Table 6); and, for the last epoch, the pairs with the highest mean answer CE with
what the model generated (the paper's tail examples). docs/sample-data.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pctce_cli import load_scores
from pctce_cli.store import list_checkpoints


def per_pair(store: Path, checkpoint: str, test: list[dict]) -> pd.DataFrame:
    """One row per held-out pair: its format, answer CE (sum and token count) and greedy outcome."""
    s = load_scores(store, checkpoint, columns=("doc", "ce"))
    sums = np.bincount(s.doc, weights=s.ce, minlength=len(test))
    counts = np.bincount(s.doc, minlength=len(test))
    docs = s.docs.set_index("doc").reindex(range(len(test)))
    rows = pd.DataFrame(test)
    rows["ce_sum"], rows["n"] = sums, counts
    rows["correct"] = docs["substring_match"].astype(bool).to_numpy()
    rows["generation"] = docs["generation"].to_numpy()
    return rows


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scores", type=Path)
    ap.add_argument("--test", type=Path, default=Path("sample_data/finetune/test.jsonl"))
    ap.add_argument("--top", type=int, default=20, help="tail examples to list for the last epoch")
    args = ap.parse_args(argv)
    test = [json.loads(line) for line in args.test.read_text().splitlines() if line.strip()]
    cks = sorted(list_checkpoints(args.scores), key=lambda m: m["step"])
    by_format, split = [], []
    last = None
    for m in cks:
        r = per_pair(args.scores, m["id"], test)
        last = (m, r)
        g = r.groupby("format", sort=False)
        row = {"epoch": m["step"]}
        for fmt, sub in g:
            row[f"{fmt} CE"] = sub["ce_sum"].sum() / sub["n"].sum()
            row[f"{fmt} acc"] = sub["correct"].mean()
        by_format.append(row)
        ok, bad = r[r["correct"]], r[~r["correct"]]
        ce_ok = ok["ce_sum"].sum() / ok["n"].sum() if len(ok) else float("nan")
        ce_bad = bad["ce_sum"].sum() / bad["n"].sum() if len(bad) else float("nan")
        split.append({"epoch": m["step"], "accuracy": r["correct"].mean(), "mean CE (correct)": ce_ok,
                      "mean CE (incorrect)": ce_bad, "ratio": ce_bad / ce_ok})
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 40)
    print("Per held-out format: answer-token mean CE and greedy substring accuracy")
    print(pd.DataFrame(by_format).round(3).to_string(index=False))
    print("\nCorrect vs incorrect (greedy substring match): token-weighted mean CE")
    print(pd.DataFrame(split).round(3).to_string(index=False))
    m, r = last
    r = r.assign(pair_ce=r["ce_sum"] / r["n"]).sort_values("pair_ce", ascending=False).head(args.top)
    print(f"\n{m['id']}: the {args.top} held-out pairs with the highest mean answer CE")
    print("formats:", r["format"].value_counts().to_dict())
    for _, x in r.iterrows():
        print(f"  {x['pair_ce']:.2f}  [{x['format']}] {x['prompt']!r} -> {x['generation']!r} (expected{x['completion']})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
