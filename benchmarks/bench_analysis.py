#!/usr/bin/env python
"""Benchmark of `pctce summary` (exact percentiles, bootstrap intervals) against DuckDB.

One run of this script:

0. builds (or, with ``--data-dir`` holding a store of the same parameters, reuses)
   a synthetic score directory with the store's own writer functions
   (``start_partition`` / ``write_shard`` / ``finish_partition``), so that
   ``pctce summary`` reads it as a real store: by default 30 checkpoints ×
   10M targets, 20k documents shared by every checkpoint, 10 shards of ~1M rows
   per checkpoint (zstd Parquet). CE is a per-checkpoint mixture of a lognormal
   bulk and a shifted exponential tail, scaled by a per-document difficulty;
   ranks are geometric with success probability exp(−CE). Every target also has
   the byte span and word columns real scoring writes (``nbytes``, ``word``;
   manifest ``units``, SPEC §8), the same for every checkpoint (they depend on
   the text only): about 1.3 tokens a word, 1–12 bytes a token (mostly 3–5),
   and a few empty-span targets (an end-of-turn marker closing some documents);
1. reads every file once (page cache warm for every method alike);
2. times, in alternating rounds, the whole CLI
   ``pctce summary DIR --percentiles 10,50,90,95,99 --format json`` and DuckDB's
   ``quantile_cont(ce, [0.1,0.5,0.9,0.95,0.99])`` over
   ``read_parquet('DIR/*/*.parquet', hive_partitioning=true) GROUP BY checkpoint``
   at ``threads=2`` (the default here) and ``threads=1``. Every method is a fresh
   subprocess (interpreter start-up and imports counted); peak RSS and CPU
   seconds come from ``/usr/bin/time``;
3. checks that pctce's percentiles equal DuckDB's (FLOAT result, and once more
   with ``ce::DOUBLE``), reporting the largest absolute difference;
4. times ``pctce summary … --ci 0.95 --bootstrap 1000`` over all checkpoints;
5. repeats step 2 on subsets of the checkpoints (scaling);
6. in-process, times the stages of one checkpoint's summary (load, percentiles,
   per-document sums, bootstrap) and checks the fast bootstrap's replicates
   against the exact (resampling) method under the same seed.

Run from the repository root::

    python benchmarks/bench_analysis.py --out benchmarks/results-analysis.md   # full (~10 min on 2 idle cores, ~20 when shared)
    python benchmarks/bench_analysis.py --quick                                 # smoke test (3 × 1M), prints Markdown

The store is kept in ``--data-dir`` (default ``/tmp/pctce-bench-analysis``) and
reused by the next run when its parameters match; it is deleted at the end when
larger than ``--keep-below`` GiB (default 3; the default store is ~2.5 GiB) unless
``--keep-data`` is given.
Timings are wall-clock medians over the rounds; ratios are taken per round,
then the median. The machine may be shared: the load average is reported.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

SECTION = "## Analysis (`pctce summary`)"
SUMMARY_TITLE = "Per-token CE summaries (nats)"
STAMP = "_bench_params.json"  # skipped by pctce (no checkpoint= prefix) and by DuckDB's */*.parquet glob
GENERATOR_VERSION = 4  # bump when the data changes: stores of another version are rebuilt
VOCAB = 50257
CE_CAP = 25.0  # nats; no real target is ever this surprising (p ≈ 1e-11)
PERCENTILES = (10, 50, 90, 95, 99)
FINGERPRINTS = {"data": "d" * 64, "tokenizer": "t" * 64, "documents": "x" * 64}
SETTINGS = {
    "prefix": "auto",
    "text_field": "text",
    "prompt_field": None,
    "completion_field": None,
    "messages_field": "messages",
    "split_on": "none",
    "max_length": 2048,
    "stride": 1024,
    "units": "spec8-v1",  # pctce_cli.data.spans.UNITS_RULE: real scoring records it when it stores byte spans and words
}
# Byte spans and words (SPEC §8): the share of a target that starts a new word (1.3 tokens a word), the
# bytes of a target's span (1..12, mostly 3–5), the documents that end with an empty-span target (an
# end-of-turn marker, nbytes 0, word -1) and the rate of empty spans inside documents.
NEW_WORD = 1 / 1.3
NBYTES_P = np.array([4, 8, 20, 24, 18, 10, 6, 4, 2.5, 1.5, 1, 1]) / 100
EMPTY_AT_END, EMPTY_INSIDE = 0.2, 2e-4

# A DuckDB worker: imports only duckdb and json, so its start-up is as light as it gets.
DUCK_CODE = r"""
import json, sys
import duckdb
spec = json.loads(sys.argv[1])
con = duckdb.connect()
con.execute(f"SET threads = {int(spec['threads'])}")
con.execute("SET enable_progress_bar = false")  # it would print to stdout on long queries
rows = con.execute(spec["sql"]).fetchall()
print(json.dumps({str(k): [float(x) for x in v] for k, v in rows}))
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- synthetic store


def ck_id(i: int) -> str:
    return f"ck-{i:03d}"


def make_layout(n_targets: int, n_docs: int, n_shards: int, seed: int) -> SimpleNamespace:
    """Documents shared by every checkpoint: lengths, positions, tokens, sizes, difficulty, shards."""
    rng = np.random.default_rng([seed, 10_000])
    w = rng.lognormal(0.0, 0.9, n_docs)  # document lengths: long-tailed
    counts = 1 + rng.multinomial(n_targets - n_docs, w / w.sum())
    doc = np.repeat(np.arange(n_docs, dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    pos = (np.arange(n_targets, dtype=np.int64) - np.repeat(starts, counts)).astype(np.int32)
    # token ids log-uniform over the vocabulary (Zipf-like: small ids frequent)
    token = (np.exp(rng.random(n_targets) * math.log(VOCAB))).astype(np.int32) - 1
    rng.uniform(size=(2, n_docs))  # version 3 drew its per-document sizes here: kept, so that CE is version 3's
    # from their own stream, for the same reason
    nbytes, word = make_units(np.random.default_rng([seed, 20_000]), counts, starts, pos)
    n_bytes = np.add.reduceat(nbytes.astype(np.int64), starts)  # the scored text's bytes: the spans partition them
    n_words = np.maximum.reduceat(word, starts).astype(np.int64) + 1  # words are numbered 0.. per document
    n_empty = np.add.reduceat((nbytes == 0).astype(np.int64), starts)
    difficulty = rng.lognormal(0.0, 0.2, n_docs)  # some documents are harder for every checkpoint
    cum = np.cumsum(counts)
    cuts = np.searchsorted(cum, np.arange(1, n_shards) * n_targets / n_shards) + 1
    doc_bounds = np.concatenate([[0], np.minimum(cuts, n_docs), [n_docs]])
    return SimpleNamespace(
        counts=counts, doc=doc, pos=pos, token=token, nbytes=nbytes, word=word, n_bytes=n_bytes, n_words=n_words, n_empty=n_empty,
        difficulty=difficulty, doc_bounds=doc_bounds, row_bounds=np.concatenate([[0], cum])[doc_bounds],
    )


def make_units(rng, counts: np.ndarray, starts: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-target ``nbytes`` and ``word`` (int32) as scoring writes them: empty spans have 0 bytes and word -1.

    A document's first target starts word 0 and is never empty; word indices of the other targets never
    decrease and leave no gap (every word holds a target with bytes, as the spans partition the text).
    """
    n = pos.shape[0]
    empty = rng.random(n) < EMPTY_INSIDE
    ends = starts + counts - 1
    empty[ends[rng.random(counts.shape[0]) < EMPTY_AT_END]] = True
    empty[starts] = False
    nbytes = (rng.choice(NBYTES_P.size, n, p=NBYTES_P) + 1).astype(np.int32)
    nbytes[empty] = 0
    new = (rng.random(n) < NEW_WORD) & ~empty
    new[starts] = True
    seen = np.cumsum(new, dtype=np.int64)
    word = (seen - np.repeat(seen[starts], counts)).astype(np.int32)  # 0-based within the document
    word[empty] = -1
    return nbytes, word


def ce_params(i: int, n_ck: int) -> dict:
    """Mixture parameters of checkpoint ``i``: training progress plus some wobble."""
    t = i / max(n_ck - 1, 1)
    return {
        "mu": 0.0 - 0.5 * t + 0.05 * math.sin(3 * i),  # log-median of the bulk
        "sigma": 1.1 - 0.1 * t,
        "w_tail": 0.25 - 0.1 * t + 0.02 * math.cos(2 * i),  # weight of the tail component
        "tail_scale": 2.2 - 0.5 * t + 0.15 * math.sin(5 * i),  # mean excess of the tail (nats)
    }


def make_scores(i: int, n_ck: int, lay: SimpleNamespace, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """CE (float32) and rank (int32) of checkpoint ``i``."""
    rng = np.random.default_rng([seed, i])
    p = ce_params(i, n_ck)
    n = lay.doc.shape[0]
    ce = rng.lognormal(p["mu"], p["sigma"], n)
    tail = rng.random(n) < p["w_tail"]
    ce[tail] = 1.0 + rng.exponential(p["tail_scale"], int(tail.sum()))
    ce *= lay.difficulty[lay.doc]
    ce = np.minimum(ce, CE_CAP).astype(np.float32)
    prob = np.clip(np.exp(-ce.astype(np.float64)), 1.0 / VOCAB, 1.0)
    rank = np.minimum(rng.geometric(prob) - 1, VOCAB - 1).astype(np.int32)
    return ce, rank


def write_checkpoint(root: Path, i: int, n_ck: int, lay: SimpleNamespace, seed: int) -> None:
    from pctce_cli.store import finish_partition, start_partition, write_shard

    ce, rank = make_scores(i, n_ck, lay, seed)
    fp = {**FINGERPRINTS, "weights": f"w-{seed}-{i:03d}"}
    part = start_partition(root, ck_id(i), {"weights": fp["weights"]}, fresh=True)
    n_shards = len(lay.doc_bounds) - 1
    for k in range(n_shards):
        a, b = int(lay.row_bounds[k]), int(lay.row_bounds[k + 1])
        da, db = int(lay.doc_bounds[k]), int(lay.doc_bounds[k + 1])
        scored = SimpleNamespace(
            doc=lay.doc[a:b], pos=lay.pos[a:b], token=lay.token[a:b], ce=ce[a:b], rank=rank[a:b],
            nbytes=lay.nbytes[a:b], word=lay.word[a:b],
            doc_table={
                "doc": np.arange(da, db, dtype=np.int64), "n_targets": lay.counts[da:db].astype(np.int64),
                "n_bytes": lay.n_bytes[da:db], "n_words": lay.n_words[da:db], "n_empty": lay.n_empty[da:db],
            },
            seconds=0.0,
        )
        write_shard(part, k, 0, scored)
    manifest = {
        "id": ck_id(i),
        "step": 1000 * (i + 1),
        "path": f"/checkpoints/run-a/{ck_id(i)}",
        "tokenizer_path": "/checkpoints/tokenizer",
        "fingerprints": fp,
        "settings": SETTINGS,
        "data": {"files": ["/data/val.jsonl"]},
        "units": {"available": True, "rule": SETTINGS["units"]},
    }
    finish_partition(part, manifest, n_shards)


def ensure_store(root: Path, params: dict) -> tuple[bool, float]:
    """Build the store unless ``root`` already holds one with these parameters.

    Returns ``(generated, seconds)``.
    """
    stamp = root / STAMP
    n_ck = params["checkpoints"]
    old = json.loads(stamp.read_text()) if stamp.is_file() else {}
    if old.get("params") == params and all(
        (root / f"checkpoint={ck_id(i)}" / "_manifest.json").is_file() for i in range(n_ck)
    ):
        log(f"[data] reusing {root}")
        return False, float(old.get("generation_seconds", math.nan))
    if root.exists() and any(root.iterdir()) and not stamp.is_file():
        raise SystemExit(f"{root} exists and is not a store made by this benchmark; choose another --data-dir")
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    lay = make_layout(params["targets"], params["documents"], params["shards"], params["seed"])
    for i in range(n_ck):
        write_checkpoint(root, i, n_ck, lay, params["seed"])
        log(f"[data] {ck_id(i)} written ({time.perf_counter() - t0:.0f} s)")
    seconds = time.perf_counter() - t0
    stamp.write_text(json.dumps({"params": params, "generation_seconds": seconds}, indent=1))
    return True, seconds


def add_store_options(ap: argparse.ArgumentParser) -> None:
    """``--data-dir``, ``--keep-data``, ``--keep-below``: where the store is, and whether it is deleted at the end."""
    ap.add_argument("--data-dir", default=None, help="store location, reused when its parameters match (default /tmp/pctce-bench-analysis[-quick])")
    ap.add_argument("--keep-data", action="store_true", help="never delete the store at the end")
    ap.add_argument("--keep-below", type=float, default=3.0, help="delete the store at the end when larger than this many GiB (default 3)")


def default_store(quick: bool, data_dir: str | None) -> tuple[dict, Path]:
    """The parameters and location of this script's default (or ``--quick``) store, for the scripts that reuse it."""
    params = {
        "generator": GENERATOR_VERSION, "checkpoints": 3 if quick else 30, "targets": 1_000_000 if quick else 10_000_000,
        "documents": 2000 if quick else 20_000, "shards": 2 if quick else 10, "seed": 0,
    }  # fmt: skip  (main's defaults, key for key)
    return params, Path(data_dir or ("/tmp/pctce-bench-analysis" + ("-quick" if quick else ""))).resolve()


def dir_size(root: Path, pattern: str = "**/*") -> int:
    return sum(f.stat().st_size for f in root.glob(pattern) if f.is_file())


def warm_cache(root: Path) -> float:
    t0 = time.perf_counter()
    for f in sorted(root.rglob("*")):
        if f.is_file():
            with open(f, "rb") as fh:
                while fh.read(1 << 24):
                    pass
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- timed subprocesses


TIME_BIN = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def timed(cmd: list[str]) -> dict:
    """Run ``cmd``; wall seconds (perf_counter), peak RSS and CPU seconds of the child."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        full = ([TIME_BIN, "-f", "%M %U %S", "-o", tf.name] if TIME_BIN else []) + cmd
        import resource

        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(full, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd[:6])} … failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        if TIME_BIN:
            maxrss_kib, user, sys_ = tf.read().strip().splitlines()[-1].split()
            rss, cpu = int(maxrss_kib) / 1024, float(user) + float(sys_)
        else:  # ru_maxrss of children is the largest child so far: an upper bound
            rss = after.ru_maxrss / 1024
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "rss_mib": rss, "cpu": cpu, "load1": load1(), "stdout": proc.stdout}


def pctce_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "pctce"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "pctce_cli"]


def run_pctce(root: Path, ids: list[str] | None, ci: bool, n_boot: int) -> dict:
    cmd = pctce_cmd() + ["summary", str(root), "--percentiles", ",".join(map(str, PERCENTILES)), "--format", "json"]
    for i in ids or []:
        cmd += ["--checkpoint", i]
    if ci:
        cmd += ["--ci", "0.95", "--bootstrap", str(n_boot)]
    r = timed(cmd)
    obj = json.loads(r.pop("stdout"))
    r["rows"] = obj[SUMMARY_TITLE]
    r["notes"] = obj.get("notes", [])
    return r


def duck_sql(root: Path, ids: list[str] | None, cast_double: bool = False) -> str:
    if ids is None:
        src = f"'{root}/*/*.parquet'"
    else:
        src = "[" + ", ".join(f"'{root}/checkpoint={i}/*.parquet'" for i in ids) + "]"
    col = "ce::DOUBLE" if cast_double else "ce"
    qs = ", ".join(f"{q / 100:g}" for q in PERCENTILES)
    return (
        f"SELECT checkpoint, quantile_cont({col}, [{qs}]) AS q "
        f"FROM read_parquet({src}, hive_partitioning = true) GROUP BY checkpoint ORDER BY checkpoint"
    )


def run_duck(root: Path, ids: list[str] | None, threads: int, cast_double: bool = False) -> dict:
    spec = {"threads": threads, "sql": duck_sql(root, ids, cast_double)}
    r = timed([sys.executable, "-c", DUCK_CODE, json.dumps(spec)])
    r["values"] = json.loads(r.pop("stdout").strip().splitlines()[-1])
    return r


def max_diff(pctce_rows: list[dict], duck_values: dict) -> tuple[float, float, int]:
    """Largest |pctce − DuckDB| (absolute, and relative to the value) over checkpoints × percentiles."""
    worst_abs, worst_rel, n = 0.0, 0.0, 0
    by_id = {r["checkpoint"]: r for r in pctce_rows}
    if set(by_id) != set(duck_values):
        raise RuntimeError(f"checkpoints differ: pctce {sorted(by_id)[:3]}…, duckdb {sorted(duck_values)[:3]}…")
    for k, vals in duck_values.items():
        for q, v in zip(PERCENTILES, vals):
            p = by_id[k][f"p{q}"]
            worst_abs = max(worst_abs, abs(p - v))
            worst_rel = max(worst_rel, abs(p - v) / abs(p) if p else abs(v))
            n += 1
    return worst_abs, worst_rel, n


# ----------------------------------------------------------------------------- bootstrap on synthetic data


def bootstrap_synthetic(n_targets: int = 10_000_000, n_docs: int = 20_000, n_boot: int = 1000) -> None:
    """Time the fast bootstrap (and a few exact replicates) on synthetic data, in-process.

    The measurement quoted in ``pctce_cli/stats/_resample.py``; run from the repository root with
    ``python -c "from benchmarks.bench_analysis import bootstrap_synthetic; bootstrap_synthetic()"``.
    (Moved here from ``pctce_cli.stats.bootstrap._benchmark``: statistics do not print.)
    """
    from pctce_cli.stats.bootstrap import bootstrap_ci
    from pctce_cli.stats.defaults import DEFAULT_SUMMARIES

    rng = np.random.default_rng(0)
    doc = np.sort(rng.integers(0, n_docs, size=n_targets))
    shift = rng.gamma(2.0, 0.5, size=n_docs)[doc]  # documents differ in difficulty
    ce = (rng.gamma(0.6, 2.5, size=n_targets) * shift).astype(np.float32)
    t0 = time.perf_counter()
    res = bootstrap_ci(ce, doc, DEFAULT_SUMMARIES, n_boot=n_boot, method="fast")
    t1 = time.perf_counter()
    print(f"fast: {n_targets} targets, {n_docs} docs, {n_boot} replicates: {t1 - t0:.1f} s")
    for name, (lo, hi) in res.items():
        print(f"  {name}: {res.point[name]:.4f} [{lo:.4f}, {hi:.4f}]")
    t0 = time.perf_counter()
    bootstrap_ci(ce, doc, DEFAULT_SUMMARIES, n_boot=3, method="exact")
    t1 = time.perf_counter()
    print(f"exact: {(t1 - t0) / 3:.2f} s per replicate → {(t1 - t0) / 3 * n_boot:.0f} s for {n_boot}")


# ----------------------------------------------------------------------------- in-process breakdown


def breakdown(root: Path, cid: str, n_boot: int, exact_reps: int) -> dict:
    """Seconds of each stage of ``checkpoint_summary`` for one checkpoint, plus a fast-vs-exact check."""
    import pandas as pd  # noqa: F401  (imported before timing, as the CLI has it imported by then)

    from pctce_cli.stats.summaries import percentile_name as pname
    from pctce_cli.stats.bootstrap import bootstrap_ci, bootstrap_replicates
    from pctce_cli.stats.summaries import doc_normalized, doc_sums, percentiles, summarize
    from pctce_cli.store import load_scores

    out = {"checkpoint": cid}
    t = time.perf_counter
    t0 = t()
    ids, nll, _ = doc_sums(np.zeros(3, np.float32), np.arange(3))  # imports and first-call costs, untimed
    s = load_scores(root, cid, columns=("doc", "ce", "rank"))
    out["load"] = t() - t0
    needed = sorted(set(PERCENTILES) | {25, 50, 75, 95})
    t0 = t()
    percentiles(s.ce, needed)
    out["percentiles"] = t() - t0
    t0 = t()
    summarize(s.ce, s.rank, percentiles=PERCENTILES)
    out["summarize"] = t() - t0
    t0 = t()
    ids, nll, _ = doc_sums(s.ce, s.doc)
    docs = s.docs.set_index("doc").reindex(ids)
    doc_normalized(nll, docs["n_bytes"].to_numpy(), docs["n_words"].to_numpy())
    out["doc_sums"] = t() - t0
    # the bootstrap's sort of the targets by CE, and the indirect sort it replaced
    from pctce_cli.stats.bootstrap import _sort_by_ce
    from pctce_cli.stats.summaries import doc_numbers

    _, inv = doc_numbers(s.doc)
    t0 = t()
    _sort_by_ce(s.ce, inv, int(inv.max()) + 1)
    out["sort"] = t() - t0
    t0 = t()
    order = np.argsort(s.ce)
    s.ce[order], inv[order]
    out["argsort"] = t() - t0
    names = ["mean"] + [pname(q) for q in PERCENTILES]
    t0 = t()
    res = bootstrap_ci(s.ce, s.doc, names, n_boot=n_boot, ci=0.95, seed=0, rank=s.rank)
    out["bootstrap"] = t() - t0
    out["method"] = res.method
    out["ci"] = {k: list(v) for k, v in res.items()}
    out["point"] = dict(res.point)
    # the first replicates of a seed are the same whatever n_boot and method: compare them
    if exact_reps:
        t0 = t()
        ex = bootstrap_replicates({"x": s.ce}, s.doc, names, n_boot=exact_reps, seed=0, method="exact")["x"]
        out["exact_per_replicate"] = (t() - t0) / exact_reps
        fa = bootstrap_replicates({"x": s.ce}, s.doc, names, n_boot=exact_reps, seed=0, method="fast")["x"]
        out["exact_vs_fast"] = max(float(np.max(np.abs(ex[n] - fa[n]))) for n in names)
        out["exact_vs_fast_pct"] = max(float(np.max(np.abs(ex[n] - fa[n]))) for n in names if n != "mean")
        out["exact_vs_full_run"] = max(float(np.max(np.abs(ex[n] - res.replicates[n][:exact_reps]))) for n in names)
        out["exact_reps"] = exact_reps
    return out


# ----------------------------------------------------------------------------- machine


def machine_info() -> dict:
    import duckdb
    import pyarrow

    from _machine import cpu_name  # benchmarks/ is on sys.path when a script runs

    cpu = cpu_name()
    mem = "unknown"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    repo = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=repo).stdout.strip() or "n/a"
        dirty = [line[3:] for line in subprocess.run(["git", "status", "--porcelain", "--", "pctce_cli"], capture_output=True,
                                                     text=True, cwd=repo).stdout.splitlines()]
        if dirty:
            rev += f" with uncommitted changes in {', '.join(f'`{d}`' for d in dirty[:8])}{' …' if len(dirty) > 8 else ''}"
    except OSError:
        rev = "n/a"
    return {
        "cpu": cpu, "cores": os.cpu_count(), "mem": mem, "python": platform.python_version(),
        "numpy": np.__version__, "pyarrow": pyarrow.__version__, "duckdb": duckdb.__version__,
        "os": f"{platform.system()} {platform.release()}", "git": rev,
    }


def load1() -> float:
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except (OSError, ValueError):
        return math.nan


def loadavg() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test: 3 checkpoints × 1M targets, one round")
    ap.add_argument("--checkpoints", type=int, default=None, help="checkpoints in the store (default 30; quick 3)")
    ap.add_argument("--targets", type=int, default=None, help="targets per checkpoint (default 10M; quick 1M)")
    ap.add_argument("--documents", type=int, default=None, help="documents per checkpoint (default 20000; quick 2000)")
    ap.add_argument("--shards", type=int, default=None, help="shards per checkpoint (default 10; quick 2)")
    ap.add_argument("--repeats", type=int, default=None, help="rounds of pctce / DuckDB on all checkpoints (default 5; quick 1)")
    ap.add_argument("--ci-repeats", type=int, default=1, help="runs of pctce --ci over all checkpoints (default 1)")
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    ap.add_argument("--scaling", default=None, help="subset sizes for the scaling rounds (default 1,10; quick 1)")
    ap.add_argument("--scaling-repeats", type=int, default=None, help="rounds per subset size (default 2; quick 1)")
    ap.add_argument("--breakdown", type=int, default=None, help="checkpoints timed stage by stage in-process (default 2; quick 1)")
    ap.add_argument("--exact-reps", type=int, default=None, help="replicates compared with the exact bootstrap (default 3; quick 2)")
    ap.add_argument("--no-duck1", action="store_true", help="skip DuckDB with threads=1")
    ap.add_argument("--seed", type=int, default=0)
    add_store_options(ap)
    ap.add_argument("--out", default=None, help="write the section into this Markdown file (e.g. benchmarks/results-analysis.md); default: print")
    ap.add_argument("--json", default=None, help="also dump raw results to this JSON file")
    args = ap.parse_args(argv)

    q = args.quick
    params = {
        "generator": GENERATOR_VERSION,
        "checkpoints": args.checkpoints or (3 if q else 30),
        "targets": args.targets or (1_000_000 if q else 10_000_000),
        "documents": args.documents or (2000 if q else 20_000),
        "shards": args.shards or (2 if q else 10),
        "seed": args.seed,
    }
    repeats = args.repeats or (1 if q else 5)
    ci_repeats = args.ci_repeats
    scaling = [int(x) for x in (args.scaling or ("1" if q else "1,10")).split(",") if x.strip()]
    scaling = [k for k in scaling if 0 < k < params["checkpoints"]]
    scaling_repeats = args.scaling_repeats or (1 if q else 2)
    n_breakdown = args.breakdown if args.breakdown is not None else (1 if q else 2)
    exact_reps = args.exact_reps if args.exact_reps is not None else (2 if q else 3)
    root = Path(args.data_dir or ("/tmp/pctce-bench-analysis-quick" if q else "/tmp/pctce-bench-analysis")).resolve()
    command = "python benchmarks/bench_analysis.py" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "")

    t_start = time.perf_counter()
    load_start = loadavg()
    generated, gen_seconds = ensure_store(root, params)
    size_all = dir_size(root)
    size_tokens = dir_size(root, "checkpoint=*/part-*.parquet")
    log(f"[data] {root}: {size_all / 2**30:.2f} GiB ({size_tokens / 2**30:.2f} GiB token Parquet); warming the page cache")
    warm_seconds = warm_cache(root)
    all_ids = [ck_id(i) for i in range(params["checkpoints"])]
    duck_threads = [2] + ([] if args.no_duck1 else [1])

    # --- exact percentiles: alternating rounds over all checkpoints
    main_runs: dict[str, list[dict]] = {}
    for r in range(repeats):
        order = ["pctce"] + [f"duckdb-t{t}" for t in duck_threads]
        order = order[r % len(order):] + order[: r % len(order)]
        for m in order:
            res = run_pctce(root, None, False, args.bootstrap) if m == "pctce" else run_duck(root, None, int(m[-1]))
            main_runs.setdefault(m, []).append(res)
            log(f"[summary] round {r} {m}: {res['wall']:.1f} s, cpu {res['cpu']:.1f} s, peak {res['rss_mib']:.0f} MiB")
    dbl = run_duck(root, None, duck_threads[0], cast_double=True)
    log(f"[summary] duckdb ce::DOUBLE: {dbl['wall']:.1f} s")
    pctce_rows = main_runs["pctce"][0]["rows"]
    diffs = {
        "float": max_diff(pctce_rows, main_runs["duckdb-t2"][0]["values"]),
        "double": max_diff(pctce_rows, dbl["values"]),
    }
    stable = all(
        [row[f"p{q}"] for row in run["rows"] for q in PERCENTILES] == [row[f"p{q}"] for row in pctce_rows for q in PERCENTILES]
        for run in main_runs["pctce"]
    )
    log(f"[check] max |pctce − duckdb|: FLOAT {diffs['float'][0]:.3g}, DOUBLE {diffs['double'][0]:.3g}")

    # --- bootstrap intervals over all checkpoints
    ci_runs = []
    for r in range(ci_repeats):
        res = run_pctce(root, None, True, args.bootstrap)
        ci_runs.append(res)
        log(f"[ci] run {r}: {res['wall']:.1f} s, cpu {res['cpu']:.1f} s, peak {res['rss_mib']:.0f} MiB")
    ci_ok = all(
        row[f"{n}_lo"] <= row[n] <= row[f"{n}_hi"]
        for row in ci_runs[0]["rows"] for n in ["mean"] + [f"p{q}" for q in PERCENTILES]
    ) if ci_runs else None
    ci_same_points = all(
        a[f"p{q}"] == b[f"p{q}"] for a, b in zip(ci_runs[0]["rows"], pctce_rows) for q in PERCENTILES
    ) if ci_runs else None

    # --- scaling: subsets of checkpoints
    scale_runs: dict[int, dict[str, list[dict]]] = {}
    for k in scaling:
        ids = all_ids[:k]
        for r in range(scaling_repeats):
            order = ["pctce", "duckdb-t2"] if r % 2 == 0 else ["duckdb-t2", "pctce"]
            for m in order:
                res = run_pctce(root, ids, False, args.bootstrap) if m == "pctce" else run_duck(root, ids, 2)
                scale_runs.setdefault(k, {}).setdefault(m, []).append(res)
                log(f"[scaling] {k} checkpoints, round {r} {m}: {res['wall']:.1f} s")

    # --- in-process stage timings
    stages = []
    if n_breakdown:
        from pctce_cli.store import load_scores

        load_scores(root, all_ids[-1], columns=("doc", "ce", "rank"))  # imports and thread pools, untimed
    for cid in all_ids[: n_breakdown]:
        b = breakdown(root, cid, args.bootstrap, exact_reps if not stages else 0)
        stages.append(b)
        log(f"[breakdown] {cid}: " + ", ".join(f"{k} {b[k]:.2f} s" for k in ("load", "percentiles", "summarize", "doc_sums", "sort", "argsort", "bootstrap")))

    total_seconds = time.perf_counter() - t_start
    deleted = False
    if not args.keep_data and size_all > args.keep_below * 2**30:
        shutil.rmtree(root)
        deleted = True
        log(f"[data] deleted {root} ({size_all / 2**30:.1f} GiB)")

    ctx = dict(
        command=command, params=params, root=root, generated=generated, gen_seconds=gen_seconds,
        size_all=size_all, size_tokens=size_tokens, warm_seconds=warm_seconds, repeats=repeats,
        machine=machine_info(), load_start=load_start, load_end=loadavg(), total_seconds=total_seconds,
        deleted=deleted, n_boot=args.bootstrap, diffs=diffs, stable=stable, ci_ok=ci_ok, ci_same_points=ci_same_points,
        scaling_repeats=scaling_repeats, duck_threads=duck_threads, dbl=dbl,
    )
    every = [r for rs in main_runs.values() for r in rs] + ci_runs + [dbl]
    every += [r for d in scale_runs.values() for rs in d.values() for r in rs]
    ctx["load_range"] = (min(r["load1"] for r in every), max(r["load1"] for r in every))
    md = render(ctx, main_runs, ci_runs, scale_runs, stages, pctce_rows)
    if args.json:
        strip = lambda rs: [{k: v for k, v in x.items() if k not in ("rows", "values")} for x in rs]  # noqa: E731
        Path(args.json).write_text(json.dumps({
            "params": params, "main": {m: strip(v) for m, v in main_runs.items()}, "ci": strip(ci_runs),
            "scaling": {k: {m: strip(v) for m, v in d.items()} for k, d in scale_runs.items()},
            "stages": stages, "diffs": diffs, "total_seconds": total_seconds, "pctce_rows": pctce_rows,
            "ci_rows": ci_runs[0]["rows"] if ci_runs else None,
        }, indent=1, default=str))
    if args.out:
        write_section(Path(args.out), md)
        log(f"wrote {args.out} ({total_seconds:.0f} s in all)")
    else:
        print(md)
    return 0


# ----------------------------------------------------------------------------- report


def med(runs: list[dict], key: str = "wall") -> float:
    return statistics.median(r[key] for r in runs)


def paired_ratio(a: list[dict], b: list[dict], key: str = "wall") -> float:
    return statistics.median(x[key] / y[key] for x, y in zip(a, b))


def _s(x: float, nd: int = 1) -> str:
    return f"{x:,.{nd}f}"


def render(ctx, main_runs, ci_runs, scale_runs, stages, pctce_rows) -> str:
    p = ctx["params"]
    mach = ctx["machine"]
    n_ck, n_t = p["checkpoints"], p["targets"]
    total_targets = n_ck * n_t
    pct_list = ",".join(map(str, PERCENTILES))
    L = [SECTION, ""]
    L.append("Generated by `benchmarks/bench_analysis.py`; every number below was measured by the run described here.")
    L += ["", "```bash", ctx["command"], "```", ""]
    L.append(
        f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['mem']} RAM, {mach['os']}; Python {mach['python']}, "
        f"numpy {mach['numpy']}, pyarrow {mach['pyarrow']}, DuckDB {mach['duckdb']}; pctce at git {mach['git']}. Load average (1/5/15 min) {ctx['load_start']} at the start and {ctx['load_end']} "
        f"at the end; 1-minute load after the timed runs {ctx['load_range'][0]:.2f}–{ctx['load_range'][1]:.2f} "
        f"(the benchmark itself adds ~1–2; more than {mach['cores']} means other jobs competed for the cores). "
        f"Compare ratios within this run rather than absolute seconds. "
        f"Whole run: {ctx['total_seconds'] / 60:.1f} min."
    )
    L.append("")
    L.append(
        f"Data: a synthetic store written with pctce's own writer (`start_partition`, `write_shard`, `finish_partition`), "
        f"{n_ck} checkpoints × {n_t:,} targets = {total_targets:,} rows, {p['documents']:,} documents "
        f"(lognormal lengths, the same for every checkpoint), {p['shards']} shards per checkpoint, columns "
        f"doc int64, pos int32, token int32, ce float32, rank int32 and the byte spans and words (nbytes int32, word int32; "
        f"read by the `--unit word`/`byte` benchmark, not here), zstd. "
        f"Size on disk: {ctx['size_all'] / 2**30:.2f} GiB ({ctx['size_tokens'] / 2**30:.2f} GiB of token Parquet), "
        + (f"generated in {ctx['gen_seconds']:.0f} s" if ctx["generated"]
           else f"reused from an earlier run of this script (which generated it in {ctx['gen_seconds']:.0f} s)")
        + (" and deleted afterwards." if ctx["deleted"] else ".")
        + f" Every file was read once before timing ({ctx['warm_seconds']:.0f} s), so all methods ran from the page cache."
    )
    L.append("")
    means = [r["mean"] for r in pctce_rows]
    p50 = [r["p50"] for r in pctce_rows]
    p99 = [r["p99"] for r in pctce_rows]
    top1 = [r["top1"] for r in pctce_rows]
    cp = [ce_params(i, n_ck) for i in range(n_ck)]

    def rng_of(key: str) -> str:
        vals = [c[key] for c in cp]
        return f"{min(vals):.2f}–{max(vals):.2f}"

    L.append(
        f"CE of a target: with probability w ({rng_of('w_tail')} by checkpoint) 1 + Exponential(mean {rng_of('tail_scale')}), "
        f"otherwise Lognormal(μ {rng_of('mu')}, σ {rng_of('sigma')}); times a per-document difficulty Lognormal(0, 0.2) "
        f"shared by all checkpoints; capped at {CE_CAP:g} nats; float32. Rank ~ Geometric(exp(−CE)) − 1, capped at the "
        f"vocabulary ({VOCAB:,}). Checkpoints improve with step (less tail, lower bulk) with some wobble. Across checkpoints: "
        f"mean {min(means):.2f}–{max(means):.2f}, p50 {min(p50):.2f}–{max(p50):.2f}, "
        f"p99 {min(p99):.2f}–{max(p99):.2f} nats, top-1 {min(top1):.2f}–{max(top1):.2f}."
    )
    L.append("")
    L.append("### Exact percentiles: pctce vs DuckDB `quantile_cont`")
    L.append("")
    L.append("| method | what runs | runs | median s | min–max s | CPU s (median) | peak RSS MiB | ratio to DuckDB (2 threads), wall | ratio to DuckDB (2 threads), CPU |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    ref = main_runs["duckdb-t2"]
    desc = {
        "pctce": f"`pctce summary DIR --percentiles {pct_list} --format json` (whole CLI)",
        "duckdb-t2": "`quantile_cont(ce, [0.1,0.5,0.9,0.95,0.99])` … `GROUP BY checkpoint`, `threads=2` (default)",
        "duckdb-t1": "same query, `threads=1`",
    }
    for m in ["pctce", "duckdb-t2", "duckdb-t1"]:
        if m not in main_runs:
            continue
        rs = main_runs[m]
        L.append(
            f"| {m} | {desc[m]} | {len(rs)} | {_s(med(rs))} | {_s(min(r['wall'] for r in rs))}–{_s(max(r['wall'] for r in rs))} "
            f"| {_s(med(rs, 'cpu'))} | {max(r['rss_mib'] for r in rs):,.0f} | {paired_ratio(rs, ref):.2f} | {paired_ratio(rs, ref, 'cpu'):.2f} |"
        )
    dbl = ctx["dbl"]
    L.append(
        f"| duckdb-double | `quantile_cont(ce::DOUBLE, …)`, `threads=2` (correctness check) | 1 | {_s(dbl['wall'])} | – "
        f"| {_s(dbl['cpu'])} | {dbl['rss_mib']:,.0f} | {dbl['wall'] / med(ref):.2f} (to the median) | {dbl['cpu'] / med(ref, 'cpu'):.2f} (to the median) |"
    )
    L.append("")
    L.append(
        "Ratios are taken per round (each round runs every method once, in rotating order), then the median; "
        "CPU s is user + system time of the process (from `/usr/bin/time`), which other jobs on the machine disturb less than wall time."
    )
    L.append("")
    pr = med(main_runs["pctce"])
    L.append(
        f"Throughput of pctce: {total_targets / pr / 1e6:.0f}M targets/s ({pr / n_ck:.2f} s per checkpoint, start-up included); "
        f"DuckDB (2 threads): {total_targets / med(ref) / 1e6:.0f}M targets/s. "
        "DuckDB's SQL runs from `python -c` (start-up counted too); pctce computes more than the five percentiles "
        "(mean, ppl, iqr, z95, top-1, per-document bits-per-byte and word perplexity) in the same run."
    )
    L.append("")
    fa, fr, fn = ctx["diffs"]["float"]
    da, dr, dn = ctx["diffs"]["double"]
    L.append(
        f"Agreement: over {fn} values ({n_ck} checkpoints × {len(PERCENTILES)} percentiles), max |pctce − DuckDB| = "
        f"{fa:.3g} nats (relative {fr:.2g}) against DuckDB's default query, whose result type is FLOAT[] "
        f"(float32 rounding of the interpolated value); against `ce::DOUBLE` it is {da:.3g} nats (relative {dr:.2g}). "
        f"pctce's percentiles were {'identical' if ctx['stable'] else 'NOT identical'} across its runs."
    )
    L.append("")
    L.append(f"### Bootstrap intervals (`--ci 0.95 --bootstrap {ctx['n_boot']}`)")
    L.append("")
    if ci_runs:
        cw = med(ci_runs)
        per_ck = (cw - pr) / n_ck
        L.append("| command | checkpoints | runs | median s | s per checkpoint | CPU s | peak RSS MiB |")
        L.append("|---|---|---|---|---|---|---|")
        L.append(
            f"| `pctce summary DIR --percentiles {pct_list} --format json` | {n_ck} | {len(main_runs['pctce'])} | {_s(pr)} "
            f"| {pr / n_ck:.2f} | {_s(med(main_runs['pctce'], 'cpu'))} | {max(r['rss_mib'] for r in main_runs['pctce']):,.0f} |"
        )
        L.append(
            f"| `… --ci 0.95 --bootstrap {ctx['n_boot']}` | {n_ck} | {len(ci_runs)} | {_s(cw)} | {cw / n_ck:.2f} "
            f"| {_s(med(ci_runs, 'cpu'))} | {max(r['rss_mib'] for r in ci_runs):,.0f} |"
        )
        L.append("")
        L.append(
            f"Bootstrap cost per checkpoint ({n_t:,} targets, {p['documents']:,} documents, {ctx['n_boot']} resamples of "
            f"mean + {len(PERCENTILES)} percentiles): (with CI − without CI) / {n_ck} = **{per_ck:.1f} s**. "
            f"Every interval contains its point estimate: {'yes' if ctx['ci_ok'] else 'NO'}; point percentiles equal "
            f"those of the run without `--ci`: {'yes' if ctx['ci_same_points'] else 'NO'}."
        )
        if ci_runs[0]["notes"]:
            L.append(f" pctce's note: “{ci_runs[0]['notes'][0]}”")
        L.append("")
    if stages:
        L.append("Stages of one checkpoint's summary, timed in-process (seconds; same functions `checkpoint_summary` calls):")
        L.append("")
        L.append("| checkpoint | `load_scores` (doc, ce, rank + docs) | `percentiles` (histogram selection) | `summarize` (incl. percentiles) | `doc_sums` + bpb | `bootstrap_ci` | of which: sorting by CE in `_prepare` (packed uint64 key, timed alone) | the indirect sort it replaced (`np.argsort` + 2 gathers) | bootstrap method |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for b in stages:
            L.append(
                f"| {b['checkpoint']} | {b['load']:.2f} | {b['percentiles']:.2f} | {b['summarize']:.2f} | {b['doc_sums']:.2f} "
                f"| {b['bootstrap']:.2f} | {b['sort']:.2f} | {b['argsort']:.2f} | {b['method']} |"
            )
        L.append("")
        b0 = stages[0]
        if "exact_vs_fast" in b0:
            L.append(
                f"Error of the fast bootstrap: its first {b0['exact_reps']} replicates (seed 0) against the exact method, "
                f"which materializes each resample (`np.repeat`) and recomputes the summaries: max |difference| = "
                f"{b0['exact_vs_fast_pct']:.3g} nats for the percentiles and {b0['exact_vs_fast']:.3g} overall (means differ "
                f"by summation order only); the same replicates inside the {ctx['n_boot']}-resample run: "
                f"{b0['exact_vs_full_run']:.3g}. The exact method took {b0['exact_per_replicate']:.2f} s per replicate, i.e. "
                f"~{b0['exact_per_replicate'] * ctx['n_boot'] / 60:.0f} min for {ctx['n_boot']} resamples of one checkpoint."
            )
            L.append("")
    if scale_runs:
        L.append("### Scaling with the number of checkpoints")
        L.append("")
        L.append("| checkpoints | targets | runs | pctce median s | DuckDB (2 threads) median s | ratio pctce / DuckDB, wall | ratio, CPU |")
        L.append("|---|---|---|---|---|---|---|")
        rows = [(k, d["pctce"], d["duckdb-t2"]) for k, d in sorted(scale_runs.items())]
        rows.append((n_ck, main_runs["pctce"], main_runs["duckdb-t2"]))
        for k, a, b in rows:
            L.append(f"| {k} | {k * n_t:,} | {len(a)} | {_s(med(a))} | {_s(med(b))} | {paired_ratio(a, b):.2f} | {paired_ratio(a, b, 'cpu'):.2f} |")
        L.append("")
    L.append("<!-- READING -->")
    L.append("")
    return "\n".join(L)


def write_section(path: Path, section: str) -> None:
    """Replace (or add) the section of ``path`` headed like ``section``'s first line, keeping every other section."""
    heading = section.splitlines()[0].strip()
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        new = (text.rstrip("\n") + "\n\n" if text.strip() else "") + section.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = "\n".join(lines[:start] + section.rstrip("\n").splitlines() + [""] + lines[end:]).rstrip("\n") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
