"""Interim demo: build a tiny local run (3 random-init GPT-2 checkpoints), score it, summarize it.

Random weights show the mechanics, not the phenomenon; `pctce demo` on the shipped
sample checkpoints replaces this once they exist. Runs offline in well under a minute.

    python scripts/quickstart.py [WORKDIR]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pctce_cli.testing import CORPUS, make_gpt2, make_tokenizer


def main(workdir: str = "quickstart") -> None:
    work = Path(workdir)
    tok = make_tokenizer()
    for seed, step in enumerate((100, 200, 300)):
        ckpt = work / "run" / f"checkpoint-{step}"
        if not ckpt.exists():
            make_gpt2(ckpt, tokenizer=tok, seed=seed)
    data = work / "val.txt"
    data.write_text("\n\n".join(CORPUS), encoding="utf-8")
    pctce = [sys.executable, "-m", "pctce_cli"]
    subprocess.run(pctce + ["score", str(work / "run"), "--data", str(data), "--split-on", "blank-lines", "--out", str(work / "scores")], check=True)
    subprocess.run(pctce + ["summary", str(work / "scores")], check=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
