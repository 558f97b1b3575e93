#!/usr/bin/env python
"""Benchmark of `pctce summary --unit word|byte` against `--unit token` (SPEC §8; goal: at most 2×).

One run of this script:

0. builds (or reuses) the synthetic store of ``bench_analysis.py`` (by default
   30 checkpoints × 10M targets, 20k documents, 10 shards each), whose targets
   carry the byte spans and words real scoring writes (``nbytes``, ``word``,
   manifest ``units``: about 1.3 tokens a word, 1–12 bytes a token, a few
   empty-span targets);
1. reads every file once (page cache warm for every unit alike);
2. times, in rotating rounds, fresh subprocesses of the whole CLI
   ``pctce summary DIR --percentiles 10,50,90,95,99 --format json --unit U``
   for U = token, word, byte over all checkpoints (start-up and imports
   counted; peak RSS and CPU seconds from ``/usr/bin/time``, else
   ``resource``). 10M targets a checkpoint is below ``PCTCE_STREAM_ABOVE``
   (50M), so the in-memory path is measured. With ``--baseline DIR`` (a
   ``pctce_cli`` source tree, e.g. an earlier revision's) the rounds also run
   the three commands with that pctce, for before/after ratios paired per
   round, and its JSON is compared with this tree's;
3. checks the JSON: fewer words than targets, more bytes than targets, the same
   empty-span count in words and bytes as in the manifest, and
   mean × count equal in words and bytes (both the CE of the targets with a
   span) and the token CE sum minus the empty-span targets' CE;
4. in-process, recomputes one checkpoint's word and byte percentiles by brute
   force (word sums by ``np.bincount`` over (doc, word) codes; bytes by
   ``np.repeat`` expansion and ``np.percentile``) and compares them with the CLI's.

Run from the repository root::

    python benchmarks/bench_units.py --out docs/benchmarks.md   # full (30 × 10M; ~10 min on 2 cores)
    python benchmarks/bench_units.py --quick                     # smoke test (3 × 1M), prints Markdown
    git archive main pctce_cli | tar -x -C /tmp/base             # then, before/after against main:
    python benchmarks/bench_units.py --baseline /tmp/base --baseline-name main --out docs/benchmarks.md

Ratios are taken per round (the three commands back to back), then the median;
the load average is reported because the machine may be shared. The store is
kept or deleted by ``bench_analysis.py``'s policy (``--keep-data``, ``--keep-below``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_analysis as ba  # noqa: E402  (the store builder and timing helpers)

SECTION = "## Analysis in words and bytes (`pctce summary --unit`)"
UNITS = ("token", "word", "byte")
TITLES = {
    "token": "Per-token CE summaries (nats)",
    "word": "Per-word CE summaries (nats per word)",
    "byte": "Per-byte CE summaries (nats per byte)",
}
COUNT = {"token": "targets", "word": "words", "byte": "bytes"}
GOAL = 2.0
REPO = Path(__file__).resolve().parents[1]


# Runs the pctce_cli of another source tree (``--baseline``) rather than this checkout's editable install:
# python -S reads no .pth file (one installs the editable finder), site-packages go on the path as plain
# directories, the tree before them.
BASELINE_CODE = (
    "import os, sys; src, *site = sys.argv.pop(1).split(os.pathsep); sys.path[:0] = [src, *site]; "
    "import pctce_cli; assert pctce_cli.__file__.startswith(src), pctce_cli.__file__; "
    "from pctce_cli.cli import main; sys.exit(main())"
)


def pctce_of(baseline: Path | None) -> list[str]:
    """The command that runs pctce: this checkout's, or the one in the source tree ``baseline``."""
    if baseline is None:
        return ba.pctce_cmd()
    import site

    return [sys.executable, "-S", "-c", BASELINE_CODE, os.pathsep.join([str(baseline), *site.getsitepackages()])]


def run_unit(root: Path, unit: str, baseline: Path | None = None) -> dict:
    pct = ",".join(map(str, ba.PERCENTILES))
    r = ba.timed(pctce_of(baseline) + ["summary", str(root), "--percentiles", pct, "--format", "json", "--unit", unit])
    r["rows"] = json.loads(r.pop("stdout"))[TITLES[unit]]
    return r


# ----------------------------------------------------------------------------- checks


def check_rows(root: Path, rows: dict[str, list[dict]]) -> dict:
    """Consistency of the three units' rows, checkpoint by checkpoint (see the module docstring)."""
    by = {u: {r["checkpoint"]: r for r in rows[u]} for u in UNITS}
    out = {"words_lt_targets": True, "bytes_gt_targets": True, "empty_matches": True, "monotone": True}
    worst_wb = worst_tb = 0.0
    for cid, t in by["token"].items():
        w, b = by["word"][cid], by["byte"][cid]
        man = json.loads((root / f"checkpoint={cid}" / "_manifest.json").read_text())
        out["words_lt_targets"] &= 0 < w["words"] < t["targets"] == w["targets"] == b["targets"]
        out["bytes_gt_targets"] &= b["bytes"] > t["targets"]
        out["empty_matches"] &= w["empty"] == b["empty"] == man["empty_span_targets"]
        for r in (t, w, b):
            vals = [r[f"p{q}"] for q in ba.PERCENTILES]
            out["monotone"] &= vals == sorted(vals)
        s_t, s_w, s_b = t["mean"] * t["targets"], w["mean"] * w["words"], b["mean"] * b["bytes"]
        worst_wb = max(worst_wb, abs(s_w - s_b) / s_b)
        # the token CE sum also holds the empty-span targets' CE: at most CE_CAP nats each
        out["empty_ce_bounded"] = out.get("empty_ce_bounded", True) and 0 <= s_t - s_b <= w["empty"] * ba.CE_CAP * (1 + 1e-9)
        worst_tb = max(worst_tb, (s_t - s_b) / s_t)
    out["word_vs_byte_sum"] = worst_wb  # relative: rounding of float64 sums and of mean × count
    out["token_minus_byte_sum"] = worst_tb  # relative: the empty-span targets' share of the CE
    one = next(iter(by["token"]))
    out["per_target"] = {
        "tokens_per_word": by["token"][one]["targets"] / by["word"][one]["words"],
        "bytes_per_target": by["byte"][one]["bytes"] / by["token"][one]["targets"],
        "empty": by["word"][one]["empty"],
    }
    out["ok"] = all(out[k] for k in ("words_lt_targets", "bytes_gt_targets", "empty_matches", "monotone", "empty_ce_bounded")) and worst_wb < 1e-9
    return out


def brute_force(root: Path, cid: str, rows: dict[str, list[dict]]) -> dict:
    """One checkpoint's word and byte percentiles, means and counts recomputed without pctce's statistics."""
    import pyarrow.parquet as pq

    files = sorted((root / f"checkpoint={cid}").glob("part-*.parquet"))
    t = pq.read_table(files, columns=["doc", "ce", "nbytes", "word"])  # the files of one partition, in shard order
    doc, ce = t.column("doc").to_numpy(), t.column("ce").to_numpy()
    nb, word = t.column("nbytes").to_numpy(), t.column("word").to_numpy()
    qs = list(ba.PERCENTILES)
    # words: one code per (doc, word), summed by bincount in target order
    keep = word >= 0
    code = doc[keep] * (int(word.max()) + 1) + word[keep]
    _, inv = np.unique(code, return_inverse=True)
    wsum = np.bincount(inv, weights=ce[keep].astype(np.float64))
    # bytes: each target's CE / nbytes, nbytes times
    has = nb > 0
    expanded = np.repeat(ce[has] / nb[has].astype(np.float32), nb[has]).astype(np.float64)
    ref = {
        "word": {"n": wsum.size, "mean": float(wsum.mean()), "pct": np.percentile(wsum, qs)},
        "byte": {"n": expanded.size, "mean": float(ce[has].astype(np.float64).sum() / expanded.size), "pct": np.percentile(expanded, qs)},
    }
    out = {"checkpoint": cid, "targets": int(ce.size), "empty_ce": float(ce[~has].astype(np.float64).sum())}
    for u in ("word", "byte"):
        row = next(r for r in rows[u] if r["checkpoint"] == cid)
        got = np.array([row[f"p{q}"] for q in qs])
        out[u] = {
            "count_equal": row[COUNT[u]] == ref[u]["n"],
            "pct_max_abs": float(np.max(np.abs(got - ref[u]["pct"]))),
            "mean_rel": abs(row["mean"] - ref[u]["mean"]) / ref[u]["mean"],
        }
    tok = next(r for r in rows["token"] if r["checkpoint"] == cid)
    byte = next(r for r in rows["byte"] if r["checkpoint"] == cid)
    out["token_sum_rel"] = abs(tok["mean"] * tok["targets"] - (byte["mean"] * byte["bytes"] + out["empty_ce"])) / (tok["mean"] * tok["targets"])
    return out


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test: 3 checkpoints × 1M targets, one round")
    ap.add_argument("--repeats", type=int, default=None, help="rounds of the three units (default 5; quick 1)")
    ap.add_argument("--verify", type=int, default=1, help="checkpoints recomputed by brute force in-process (default 1)")
    ap.add_argument("--baseline", default=None, help="also time, in the same rounds, the pctce_cli package in this directory "
                    "(e.g. from 'git archive main pctce_cli | tar -x -C DIR'): before/after paired per round")
    ap.add_argument("--baseline-name", default=None, help="what to call the baseline in the report (e.g. a git revision)")
    ba.add_store_options(ap)
    ap.add_argument("--out", default=None, help="write the section into this Markdown file; default: print")
    ap.add_argument("--json", default=None, help="also dump raw results to this JSON file")
    args = ap.parse_args(argv)
    params, root = ba.default_store(args.quick, args.data_dir)  # bench_analysis.py's store, reused
    repeats = args.repeats or (1 if args.quick else 5)
    given = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(["python", "benchmarks/bench_units.py", *given])

    t_start = time.perf_counter()
    load_start = ba.loadavg()
    generated, gen_seconds = ba.ensure_store(root, params)
    size_all = ba.dir_size(root)
    ba.log(f"[data] {root}: {size_all / 2**30:.2f} GiB; warming the page cache")
    warm = ba.warm_cache(root)
    baseline = Path(args.baseline).resolve() if args.baseline else None
    keys = list(UNITS) + ([f"base-{u}" for u in UNITS] if baseline else [])
    runs: dict[str, list[dict]] = {k: [] for k in keys}
    orders = []
    for r in range(repeats):
        order = keys[r % len(keys):] + keys[: r % len(keys)]  # rotate who goes first
        orders.append(order)
        for k in order:
            # with a baseline, this tree is started the same way (python -S), so that start-up is alike
            res = run_unit(root, k.removeprefix("base-"), (baseline if k.startswith("base-") else REPO) if baseline else None)
            runs[k].append(res)
            ba.log(f"[round {r}] {k}: {res['wall']:.1f} s, cpu {res['cpu']:.1f} s, peak {res['rss_mib']:.0f} MiB, load {res['load1']:.2f}")
    load_end = ba.loadavg()
    last = {u: runs[u][-1]["rows"] for u in UNITS}
    stable = all(run["rows"] == runs[k][0]["rows"] for k in keys for run in runs[k])
    same_as_baseline = all(runs[f"base-{u}"][0]["rows"] == last[u] for u in UNITS) if baseline else None
    checks = check_rows(root, last)
    verified = [brute_force(root, ba.ck_id(i), last) for i in range(min(args.verify, params["checkpoints"]))]
    for v in verified:
        ba.log(f"[verify] {v['checkpoint']}: word {v['word']}, byte {v['byte']}")
    total = time.perf_counter() - t_start
    deleted = not args.keep_data and size_all > args.keep_below * 2**30
    if deleted:
        shutil.rmtree(root)
        ba.log(f"[data] deleted {root} ({size_all / 2**30:.1f} GiB)")
    ctx = dict(
        command=command, params=params, generated=generated, gen_seconds=gen_seconds, size_all=size_all, warm=warm,
        load_start=load_start, load_end=load_end, total=total, deleted=deleted, orders=orders, stable=stable,
        checks=checks, verified=verified, machine=ba.machine_info(), same_as_baseline=same_as_baseline,
        baseline_name=args.baseline_name or (baseline.name if baseline else None),
    )
    md = render(ctx, runs)
    if args.json:
        strip = {u: [{k: v for k, v in x.items() if k != "rows"} for x in rs] for u, rs in runs.items()}
        Path(args.json).write_text(json.dumps({"params": params, "runs": strip, "rows": last, "checks": checks, "verified": verified}, indent=1, default=str))
    if args.out:
        ba.write_section(Path(args.out), md)
        ba.log(f"wrote {args.out} ({total:.0f} s in all)")
    else:
        print(md)
    ok = checks["ok"] and stable and same_as_baseline is not False and all(v[u]["count_equal"] and v[u]["pct_max_abs"] < 1e-9 for v in verified for u in ("word", "byte"))
    return 0 if ok else 1


# ----------------------------------------------------------------------------- report


def ratios(runs: dict[str, list[dict]], a: str, b: str, key: str = "wall") -> list[float]:
    """``a``'s time over ``b``'s, round by round."""
    return [x[key] / y[key] for x, y in zip(runs[a], runs[b])]


def render(ctx: dict, runs: dict[str, list[dict]]) -> str:
    p, m, c = ctx["params"], ctx["machine"], ctx["checks"]
    med = statistics.median
    env = ", ".join(f"{k}={os.environ[k]}" for k in ("PCTCE_STREAM_ABOVE", "PCTCE_WORKERS") if os.environ.get(k)) or "neither PCTCE_STREAM_ABOVE nor PCTCE_WORKERS set"
    loads = [r["load1"] for rs in runs.values() for r in rs]
    pt = c["per_target"]
    L = [SECTION, "", "Generated by `benchmarks/bench_units.py`; every number below was measured by the run described here.", ""]
    L += ["```bash", ctx["command"], "```", ""]
    L.append(
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['mem']} RAM, {m['os']}; Python {m['python']}, numpy {m['numpy']}, "
        f"pyarrow {m['pyarrow']}; pctce at git {m['git']}; {env}. Load average (1/5/15 min) {ctx['load_start']} at the start "
        f"and {ctx['load_end']} at the end; 1-minute load at the end of each timed run {min(loads):.2f}–{max(loads):.2f} "
        f"(the benchmark itself adds ~1–2; more than {m['cores']} means other jobs competed for the cores). Whole run: {ctx['total'] / 60:.1f} min."
    )
    L.append("")
    L.append(
        f"Data: `bench_analysis.py`'s synthetic store (generator version {p['generator']}), {p['checkpoints']} checkpoints × "
        f"{p['targets']:,} targets, {p['documents']:,} documents, {p['shards']} shards each, with the byte span and word "
        f"columns (`nbytes`, `word`, int32) and manifest `units` that scoring writes: {pt['tokens_per_word']:.2f} targets a word, "
        f"{pt['bytes_per_target']:.2f} bytes a target (1–12, mostly 3–5), {pt['empty']:,} empty-span targets a checkpoint "
        f"(nbytes 0, word -1). {ctx['size_all'] / 2**30:.2f} GiB on disk, "
        + (f"generated in {ctx['gen_seconds']:.0f} s" if ctx["generated"] else f"reused (generated earlier in {ctx['gen_seconds']:.0f} s)")
        + (", deleted afterwards" if ctx["deleted"] else "")
        + f"; every file read once before timing ({ctx['warm']:.0f} s). "
        f"{p['targets']:,} targets a checkpoint is below `PCTCE_STREAM_ABOVE` (50M): the in-memory path is measured."
    )
    base = ctx["baseline_name"]
    keys = [k for k in runs if runs[k]]
    L += ["", f"Each round runs `pctce summary DIR --percentiles {','.join(map(str, ba.PERCENTILES))} --format json --unit U` "
          "for the three units back to back in a fresh process each (the first rotates from round to round)"
          + (f", and the same three with the pctce of {base} (`base-…`), so that before and after are paired too (both "
             "trees started by `python -S` with site-packages on the path, not through the editable install)" if base else "")
          + "; ratios are taken per round, then the median. CPU s is user + system time of the process.", ""]
    L.append("| run | runs | median s | min–max s | CPU s (median) | peak RSS MiB | ratio to token, wall (median of rounds) | ratio to token, CPU |"
             + (f" this tree / {base}, wall | CPU |" if base else ""))
    L.append("|---|---|---|---|---|---|---|---|" + ("---|---|" if base else ""))
    for k in keys:
        rs, ref = runs[k], ("base-token" if k.startswith("base-") else "token")
        line = (
            f"| {k} | {len(rs)} | {med(r['wall'] for r in rs):.2f} | {min(r['wall'] for r in rs):.2f}–{max(r['wall'] for r in rs):.2f} "
            f"| {med(r['cpu'] for r in rs):.2f} | {max(r['rss_mib'] for r in rs):,.0f} | {med(ratios(runs, k, ref)):.2f} | {med(ratios(runs, k, ref, 'cpu')):.2f} |"
        )
        if base:
            line += f" {med(ratios(runs, k, 'base-' + k)):.2f} | {med(ratios(runs, k, 'base-' + k, 'cpu')):.2f} |" if k in UNITS else " | |"
        L.append(line)
    pairs = [("word", "token"), ("byte", "token")] + ([("base-word", "base-token"), ("base-byte", "base-token")] if base else [])
    L += ["", "| round | order | " + " | ".join(f"{k} s" for k in keys) + " | " + " | ".join(f"{a} / {b}" for a, b in pairs) + " | load (1 min) |",
          "|---|---|" + "---|" * (len(keys) + len(pairs) + 1)]
    for i, order in enumerate(ctx["orders"]):
        L.append(
            f"| {i + 1} | {', '.join(order)} | " + " | ".join(f"{runs[k][i]['wall']:.2f}" for k in keys) + " | "
            + " | ".join(f"{runs[a][i]['wall'] / runs[b][i]['wall']:.2f}" for a, b in pairs)
            + f" | {max(runs[k][i]['load1'] for k in keys):.2f} |"
        )
    rw, rb = med(ratios(runs, "word", "token")), med(ratios(runs, "byte", "token"))
    L += ["", f"**Median per-round ratio to `--unit token`: word {rw:.2f}, byte {rb:.2f}** (goal ≤ {GOAL:g}; "
          f"{'met' if max(rw, rb) <= GOAL else '**not met**'})"
          + (f"; with the pctce of {base}: word {med(ratios(runs, 'base-word', 'base-token')):.2f}, byte "
             f"{med(ratios(runs, 'base-byte', 'base-token')):.2f}. Its JSON equals this tree's: "
             f"{'yes' if ctx['same_as_baseline'] else '**no**'}" if base else "") + ".", ""]
    yes = lambda b: "yes" if b else "**no**"  # noqa: E731
    L.append(
        f"Checks over every checkpoint: fewer words than targets {yes(c['words_lt_targets'])}; more bytes than targets "
        f"{yes(c['bytes_gt_targets'])}; `empty` of the word and byte rows equal to the manifest's `empty_span_targets` "
        f"{yes(c['empty_matches'])}; percentiles non-decreasing {yes(c['monotone'])}; word mean × words = byte mean × bytes "
        f"(both the CE of the targets with a span) to {c['word_vs_byte_sum']:.1e} relative; the token CE sum (mean × targets) "
        f"exceeds it by the empty-span targets' CE ({c['token_minus_byte_sum']:.1e} of the sum at most, within their count × "
        f"{ba.CE_CAP:g} nats: {yes(c['empty_ce_bounded'])}). The JSON was identical across runs: {yes(ctx['stable'])}."
    )
    for v in ctx["verified"]:
        L.append(
            f"Brute force on {v['checkpoint']} ({v['targets']:,} targets, in-process): word CEs by `np.bincount` over (doc, word) "
            f"codes, bytes by `np.repeat` expansion, then `np.percentile`: counts equal (words {yes(v['word']['count_equal'])}, "
            f"bytes {yes(v['byte']['count_equal'])}), max |percentile difference| {v['word']['pct_max_abs']:.1e} (words) and "
            f"{v['byte']['pct_max_abs']:.1e} (bytes), means to {max(v['word']['mean_rel'], v['byte']['mean_rel']):.1e} relative; "
            f"token CE sum = byte CE sum + the empty-span targets' CE ({v['empty_ce']:.1f} nats) to {v['token_sum_rel']:.1e} relative."
        )
    L += ["", "<!-- READING -->", ""]
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
