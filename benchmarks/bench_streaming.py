#!/usr/bin/env python
"""Benchmark of `pctce summary --by domain` and `--ci` above PCTCE_STREAM_ABOVE (streamed, bounded memory).

One run of this script, for each size given (targets in one checkpoint):

0. builds (or reuses) a synthetic store, one shard at a time so that building
   never holds the checkpoint in memory: documents of ~1,000 targets (lengths
   long-tailed), CE lognormal times a per-document difficulty, a ``domain``
   label per document (20 values, skewed sizes);
1. times the core of ``pctce summary DIR --by domain`` and of
   ``pctce summary DIR --ci 0.95 --bootstrap N`` streamed
   (``analysis.summary_stream.streamed_subset_rows``, a fresh process each,
   imports counted), with peak RSS from ``/usr/bin/time`` (its ``%M``, the
   "Maximum resident set size" of ``time -v``) and the targets the bootstrap's
   windows keep (the bound's, and after the probe pass);
2. with ``--check``, on the smallest size, runs ``--by``, ``--by --ci`` and
   ``--ci`` in memory (``analysis.summary.checkpoint_rows``) and streamed, and
   reports the largest difference of every number.

Run from the repository root::

    python benchmarks/bench_streaming.py --sizes 1e8,1e9 --out docs/benchmarks.md
    python benchmarks/bench_streaming.py --sizes 2e6 --check          # smoke test
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_analysis as ba  # noqa: E402  (timing helpers)
from _machine import cpu_name  # noqa: E402

SECTION = "## Streamed subsets and intervals (`summary --by`, `--ci` above PCTCE_STREAM_ABOVE)"
SHARD_TARGETS = 1 << 22  # 4× the scoring default (1 << 20): the reader holds ~3 shards, so RSS scales with this
DOC_TARGETS = 1000
N_SUBSETS = 20
STAMP = "_bench_streaming.json"


def token_fields(rng, n: int, n_docs: int, counts, local, starts, ce) -> tuple[dict, dict]:
    """The per-target columns of a token-only shard beyond doc/ce (ranks), and its per-document columns."""
    rank = np.minimum(rng.geometric(np.clip(np.exp(-ce.astype(np.float64)), 1e-4, 1.0)) - 1, 50_000).astype(np.int32)
    c = counts.astype(np.int64)
    return {"pos": np.zeros(n, np.int32), "rank": rank}, {"n_bytes": 4 * c, "n_words": c, "n_empty": np.zeros(n_docs, np.int64)}


def build(root: Path, n_targets: int, seed: int = 0, stamp_name: str = STAMP, fields=token_fields, manifest_extra: dict | None = None) -> float:
    """Write one checkpoint ``ck-000`` of ``n_targets`` targets shard by shard, and its ``domain`` labels.

    ``fields(rng, n, n_docs, counts, local, starts, ce)`` gives a shard's columns beyond ``doc``/``ce``
    and its per-document columns beyond ``doc``/``n_targets`` (bench_stream_units.py adds words, bytes
    and divergence); ``manifest_extra`` goes into the manifest.
    """
    from pctce_cli.store import finish_partition, start_partition, write_labels, write_shard

    params = {"targets": n_targets, "seed": seed, "shard": SHARD_TARGETS, "doc": DOC_TARGETS, "v": 1}
    stamp = root / stamp_name
    if stamp.is_file() and json.loads(stamp.read_text()).get("params") == params:
        return json.loads(stamp.read_text())["seconds"]
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    part = start_partition(root, "ck-000", {"weights": f"w-{seed}"}, fresh=True)
    n_shards = -(-n_targets // SHARD_TARGETS)
    first_doc = 0
    for k in range(n_shards):
        rng = np.random.default_rng([seed, k])
        n = min(SHARD_TARGETS, n_targets - k * SHARD_TARGETS)
        n_docs = max(1, n // DOC_TARGETS)
        w = rng.lognormal(0.0, 0.9, n_docs)
        counts = 1 + rng.multinomial(n - n_docs, w / w.sum())
        local = np.repeat(np.arange(n_docs, dtype=np.int64), counts)
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        ce = (rng.lognormal(0.0, 1.0, n) * rng.lognormal(0.0, 0.3, n_docs)[local]).astype(np.float32)
        cols, doc_cols = fields(rng, n, n_docs, counts, local, starts, ce)
        ids = np.arange(first_doc, first_doc + n_docs, dtype=np.int64)
        scored = SimpleNamespace(doc=local + first_doc, token=np.zeros(n, np.int32), ce=ce, **cols, doc_table={"doc": ids, "n_targets": counts.astype(np.int64), **doc_cols}, seconds=0.0)
        write_shard(part, k, 0, scored)
        first_doc += n_docs
        ba.log(f"[data] shard {k + 1}/{n_shards} ({time.perf_counter() - t0:.0f} s)")
    manifest = {"id": "ck-000", "step": 1000, "path": "/ck/ck-000", "tokenizer_path": "/tok", "fingerprints": {**ba.FINGERPRINTS, "weights": f"w-{seed}"},
                "settings": ba.SETTINGS, "data": {"files": ["/data/val.jsonl"]}, "units": {"available": False, "reason": "synthetic"}, **(manifest_extra or {})}  # fmt: skip
    finish_partition(part, manifest, n_shards)
    rng = np.random.default_rng([seed, 77])
    domain = [f"d{k:02d}" for k in rng.choice(N_SUBSETS, first_doc, p=rng.dirichlet(np.full(N_SUBSETS, 2.0)))]
    write_labels(root, "ck-000", {"domain": domain}, range(first_doc))
    seconds = time.perf_counter() - t0
    stamp.write_text(json.dumps({"params": params, "seconds": seconds}))
    return seconds


CORE = """
import json, sys
import pctce_cli.stats.streaming_bootstrap as sb
kept = {}
for name in ("plan", "refine"):
    def wrap(self, *a, _f=getattr(sb.StreamingBootstrap, name), _n=name, **k):
        r = _f(self, *a, **k)
        kept.setdefault(_n, r)  # the first (widen 1) of each
        return r
    setattr(sb.StreamingBootstrap, name, wrap)
from pctce_cli.analysis.subsets import resolve_subsets
from pctce_cli.analysis.summary import checkpoint_rows, columns_for
from pctce_cli.analysis.summary_stream import streamed_subset_rows
from pctce_cli.catalog import resolve_checkpoints
spec = json.loads(sys.argv[1])
cks = resolve_checkpoints([spec["root"]])
sub = resolve_subsets(cks, spec["by"])
kw = dict(n_boot=spec["n_boot"], seed=0)
if spec["streamed"]:
    rows, notes = streamed_subset_rows(cks[0], [50, 90, 95, 99], sub, columns_for(None, spec["ci"]), ci=spec["ci"], **kw)
else:
    rows, notes = checkpoint_rows(cks[0], [50, 90, 95, 99], subsets=sub, ci=spec["ci"], **kw)
print(json.dumps({"rows": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows], "kept": kept}))
"""


def run(root: Path, by: bool, ci: float | None, n_boot: int, streamed: bool = True) -> dict:
    """The core of ``pctce summary ROOT [--by domain] [--ci CI]`` in a fresh process, timed (streamed or in memory).

    The core is called directly (``summary_stream.streamed_subset_rows``, or
    ``summary.checkpoint_rows`` in memory), as ``pctce summary`` calls it above
    PCTCE_STREAM_ABOVE, without the CLI's rendering.
    """
    spec = {"root": str(root), "by": "domain" if by else None, "ci": ci, "n_boot": n_boot, "streamed": streamed}
    r = ba.timed([sys.executable, "-c", CORE, json.dumps(spec)])
    r["out"] = json.loads(r.pop("stdout"))
    return r


def largest_difference(a: dict, b: dict) -> tuple[float, float]:
    """Largest |a − b| of the percentile and count columns, and largest relative one of the rest (means)."""
    exact, rel = 0.0, 0.0
    assert len(a["rows"]) == len(b["rows"]), "streamed and in-memory rows differ in number"
    for rows in (a["rows"],):
        for ra, rb in zip(rows, b["rows"]):
            for k, va in ra.items():
                vb = rb.get(k)
                if not isinstance(va, (int, float)) or isinstance(va, bool) or vb is None or (isinstance(va, float) and math.isnan(va)):
                    continue
                if k.startswith("p") or k in ("targets", "documents") or k.split("_")[0].startswith("p"):
                    exact = max(exact, abs(va - vb))
                else:
                    rel = max(rel, abs(va - vb) / max(abs(va), 1e-300))
    return exact, rel


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e8", help="targets per checkpoint, comma-separated (e.g. 1e8,1e9)")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--data-dir", default="/tmp/pctce-bench-streaming")
    ap.add_argument("--check", action="store_true", help="also compare streamed with in-memory on the smallest size")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    lines = []
    check = None
    for n in sizes:
        root = Path(args.data_dir) / f"n{n}"
        gen = build(root, n)
        by = run(root, True, None, args.bootstrap)
        ci = run(root, False, 0.95, args.bootstrap)
        size_gib = ba.dir_size(root) / 2**30
        k = ci["out"].get("kept", {})
        lines.append(f"| {n:,} | {size_gib:.1f} | {gen:.0f} | {by['wall']:.0f} | {by['rss_mib']:,.0f} | {ci['wall']:.0f} | {ci['rss_mib']:,.0f} "
                     f"| {k.get('plan', 0):,} | {k.get('refine', 0):,} | {by['load1']:.1f}, {ci['load1']:.1f} |")
        ba.log(lines[-1])
        if args.check and check is None:
            diffs = []
            for b, c, opts in ((True, None, "--by domain"), (True, 0.95, "--by domain --ci 0.95"), (False, 0.95, "--ci 0.95")):
                mem, st = run(root, b, c, args.bootstrap, streamed=False), run(root, b, c, args.bootstrap)
                diffs.append((opts, *largest_difference(mem["out"], st["out"]), mem["rss_mib"], st["rss_mib"]))
            check = (n, diffs)
    cmd = f"python benchmarks/bench_streaming.py --sizes {args.sizes} --bootstrap {args.bootstrap}" + (" --check" if args.check else "")
    L = [
        SECTION, "",
        f"`{cmd}` on {time.strftime('%Y-%m-%d')}, {cpu_name()}, {os.cpu_count()} cores (shared with other jobs; load {ba.loadavg()} at the end).",
        f"One checkpoint, documents of ~{DOC_TARGETS:,} targets, {N_SUBSETS} `domain` subsets, shards of {SHARD_TARGETS:,} targets; "
        f"`--ci` with {args.bootstrap} resamples (mean, p50, p90, p95, p99). Wall seconds and peak RSS (MiB) of the whole process "
        "(Python, imports, the core's call; no rendering).", "",
        "| targets | store (GiB) | build (s) | `--by domain` (s) | RSS (MiB) | `--ci` (s) | RSS (MiB) | bound's window (targets) | kept after the probe | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *lines, "",
    ]  # fmt: skip
    if check is not None:
        n, diffs = check
        L += check_table(f"Streamed against in memory at {n:,} targets (the core in memory, `summary.checkpoint_rows`, against streamed):", "percentiles, counts", diffs)
    emit(L, args.out)
    return 0


def check_table(title: str, what: str, diffs) -> list[str]:
    """The Markdown lines of a streamed-against-in-memory table: ``diffs`` rows of (options, |Δ|, relative Δ, RSS in memory, RSS streamed)."""
    return [title, "",
            f"| options | largest \\|Δ\\| {what}, interval bounds of percentiles | largest relative Δ (means, ppl, bpb) | RSS in memory (MiB) | RSS streamed (MiB) |",
            "|---|---|---|---|---|", *[f"| `{o}` | {e:.3g} | {r:.2g} | {a:,.0f} | {b:,.0f} |" for o, e, r, a, b in diffs], ""]  # fmt: skip


def emit(lines: list[str], out: str | None) -> None:
    """The section into ``out`` (a Markdown file, replacing the section of the same heading), else to stdout."""
    text = "\n".join(lines)
    if out:
        ba.write_section(Path(out), text)
    else:
        print(text)


if __name__ == "__main__":
    sys.exit(main())
