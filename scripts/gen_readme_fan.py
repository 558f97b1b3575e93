"""Draw the README's one picture: the percentile fan of the demo's distillation runs (docs/images/demo-fan.png).

Usage: python scripts/gen_readme_fan.py [DEMO_DIR]   (default ~/.cache/pctce/demo, as `pctce demo` writes it)

It draws `pctce plot fan DEMO_DIR/distill --meta sample_data/meta.csv` for four
runs (the teacher, two top-K students and a from-scratch control) at a low DPI
so the committed PNG stays small (under 150 KB).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = ("teacher", "topk5", "topk40", "scratch-large-lr2")
OUT = ROOT / "docs" / "images" / "demo-fan.png"


def main(argv: list[str]) -> int:
    from pctce_cli import plot
    from pctce_cli.catalog import resolve_checkpoints

    demo = Path(argv[0]).expanduser() if argv else Path("~/.cache/pctce/demo").expanduser()
    cks = resolve_checkpoints([demo / "distill"], [f"{r}.*" for r in RUNS], meta=ROOT / "sample_data" / "meta.csv")
    fig = plot.plot_figure("fan", cks)
    fig.suptitle("Percentiles of per-token CE over training: the bulk saturates while the tail of top-K students extends")
    plot.save_figure(fig, OUT, dpi=80)
    print(f"Wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
