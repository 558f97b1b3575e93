"""Where the time of one ``pctce score`` run goes: start-up, load, fingerprint, tokenization, forward, write.

The run is the whole command-line process (``pctce score CK --data D --out
FRESH -q``) on a random-init GPT-2 made here (default 12 layers, 512 dims,
vocabulary 32,000: about 58M parameters, a 230 MB safetensors file, which is
hashed in full) and about 12,000 targets of generated text (the size of the
SmolLM2-135M run in issue 23); ``--arch llama`` makes a random-init Llama of
SmolLM2-135M's shape instead (134.5M parameters with ``--vocab 49152``, a 538 MB
file). Nothing is downloaded.

How: a worker process imports pctce (timed), then the scoring stack (torch,
transformers: timed), wraps the functions of each phase with a timer (wall
time on the main thread; nothing else changes) and calls the CLI's ``main``
as ``pctce score`` would. The parent times the whole process; what the phases
do not cover is interpreter start-up and exit (parent's wall minus the worker's) and
"other" (option parsing, progress bars, the result table). Weight hashing in a
background thread is reported twice: the time the main thread waited for it
(a phase) and the hashing itself (overlapped, not added). Each round runs
every tree given (``--tree``: a ``pctce_cli`` source tree, e.g. an earlier
revision from ``git archive``) in a fresh process, in an order rotated from
round to round; the table gives the median per phase.

    python benchmarks/bench_phases.py                                   # this tree, prints Markdown
    git archive main | tar -x -C /tmp/base
    python benchmarks/bench_phases.py --tree /tmp/base --rounds 3 --out docs/benchmarks.md
    python benchmarks/bench_phases.py --arch llama --vocab 49152 --targets 11579 --tree main=/tmp/base --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from bench_score import loadavg, log  # noqa: E402  (torch-free helpers shared by the benchmarks)
SECTION = "## Phases of a `pctce score` run (bench_phases.py)"

# (label, module, attribute): the functions whose main-thread wall time is a phase, in run order
PHASES = [
    ("checkpoint discovery", "pctce_cli.scoring.run", "discover"),
    ("read data", "pctce_cli.scoring.run", "read_records"),
    ("data fingerprint", "pctce_cli.scoring.run", "data_fingerprint"),
    ("tokenizer load", "pctce_cli.scoring.hf", "load_tokenizer"),
    ("tokenizer fingerprint", "pctce_cli.scoring.hf", "tokenizer_fingerprint"),
    ("tokenization and byte spans", "pctce_cli.scoring.run", "tokenize_records"),
    ("tokenization and byte spans", "pctce_cli.scoring.run", "units_status"),
    ("tokenization and byte spans", "pctce_cli.scoring.run", "documents_fingerprint"),
    ("weights fingerprint (main thread)", "pctce_cli.scoring.run", "weights_fingerprint"),
    ("weights fingerprint (main thread)", "pctce_cli.checkpoints", "Fingerprints.get"),
    ("decide (open the partition)", "pctce_cli.scoring.run", "_decide"),
    ("model load", "pctce_cli.scoring.hf", "ModelCache.load"),
    ("output-layer check", "pctce_cli.scoring.hf", "HFAdapter._check_fast_path"),
    ("forward, CE and rank", "pctce_cli.scoring.engine", "score_documents"),
    ("write shards", "pctce_cli.scoring.loop", "StoreSink.put"),
    ("manifest, verify, labels", "pctce_cli.scoring.run", "_finish"),
    ("read back the summary", "pctce_cli.scoring.run", "_fill_numbers"),
]
NESTED = ("output-layer check", "forward, CE and rank")  # the first runs inside the second
BACKGROUND = ("pctce_cli.checkpoints", "weights_fingerprint")  # the hashing itself, on whatever thread


# ----------------------------------------------------------------------------- worker


def _wrap(owner, name: str, label: str, acc: dict, cpu: dict, main_only: bool = True) -> None:
    import threading

    fn = getattr(owner, name)

    def timed(*a, **k):
        if main_only and threading.current_thread() is not threading.main_thread():
            return fn(*a, **k)
        t, c = time.perf_counter(), time.thread_time()
        try:
            return fn(*a, **k)
        finally:
            acc[label] = acc.get(label, 0.0) + time.perf_counter() - t
            cpu[label] = cpu.get(label, 0.0) + time.thread_time() - c

    setattr(owner, name, timed)


def _resolve(module: str, attr: str):
    import importlib

    obj = importlib.import_module(module)
    *owners, name = attr.split(".")
    for o in owners:
        obj = getattr(obj, o, None)
        if obj is None:
            return None, name
    return (obj, name) if hasattr(obj, name) else (None, name)


def worker(argv: list[str], out_json: str) -> None:
    """Inside the timed process: import, wrap, run ``pctce score``, write the phases."""
    t0, c0 = time.perf_counter(), time.thread_time()
    from pctce_cli.threads import configure_threads

    configure_threads()
    import pctce_cli.cli as cli

    t1, c1 = time.perf_counter(), time.thread_time()
    try:  # torch and transformers, imported as the tree's pctce score imports them when it starts scoring
        from pctce_cli.scoring.startup import paused_gc
    except ImportError:  # a tree from before startup.py
        import contextlib

        paused_gc = contextlib.nullcontext
    with paused_gc():
        import pctce_cli.scoring.hf  # noqa: F401
    import pctce_cli.scoring.run  # noqa: F401

    t2, c2 = time.perf_counter(), time.thread_time()
    acc: dict[str, float] = {"import pctce and its CLI": t1 - t0, "import torch, transformers": t2 - t1}
    cpu: dict[str, float] = {"import pctce and its CLI": c1 - c0, "import torch, transformers": c2 - c1}
    background: dict[str, float] = {}
    for label, module, attr in PHASES:
        owner, name = _resolve(module, attr)
        if owner is not None:
            _wrap(owner, name, label, acc, cpu)
    owner, name = _resolve(*BACKGROUND)
    _wrap(owner, name, "hashing", background, {}, main_only=False)
    sys.argv = ["pctce", *argv]
    code = 0
    try:
        cli.main()
    except SystemExit as e:
        code = e.code or 0
    total = time.perf_counter() - t0
    Path(out_json).write_text(json.dumps({"phases": acc, "thread_cpu": cpu, "background": background, "worker_total": total, "code": code}))


# ----------------------------------------------------------------------------- parent


# SmolLM2-135M's and -360M's shapes (their config.json): Llamas, tied embeddings, 8,192 positions
SMOLLM2_135M = dict(
    hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, intermediate_size=1536,
    max_position_embeddings=8192, rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
)
SMOLLM2_360M = dict(SMOLLM2_135M, hidden_size=960, num_hidden_layers=32, num_attention_heads=15, num_key_value_heads=5, intermediate_size=2560)
SHAPES = {"135m": SMOLLM2_135M, "360m": SMOLLM2_360M}

# The libraries alone: what any process that scores this model with transformers must do before its
# first forward pass (import torch and transformers, load the tokenizer and the model), with the
# collector off and no interpreter teardown. pctce cannot go below it; the rest is pctce's own.
FLOOR_CODE = """import gc, os, sys
gc.disable()
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
AutoTokenizer.from_pretrained(sys.argv[1], local_files_only=True)
AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32, local_files_only=True)
os._exit(0)
"""


def floor_once(ck: Path, work: Path) -> float:
    """Wall seconds of one bare process running :data:`FLOOR_CODE` on ``ck``."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-P", "-c", FLOOR_CODE, str(ck)], cwd=work, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def make_llama(path: Path, *, vocab: int, seed: int, shape: str = "135m") -> int:
    """A random-init Llama of a SmolLM2 shape (:data:`SHAPES`) with the word-level tokenizer of ``make_checkpoint``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from bench_score import make_checkpoint

    tok_dir = path.parent / "tokenizer"
    make_checkpoint(tok_dir, vocab=vocab, n_positions=64, n_embd=8, n_layer=1, n_head=1, seed=seed)  # its tokenizer only
    tok = AutoTokenizer.from_pretrained(tok_dir)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), bos_token_id=0, eos_token_id=1, pad_token_id=2, **SHAPES[shape])
    model = LlamaForCausalLM(config).eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def make_inputs(work: Path, arch: str, layers: int, dims: int, vocab: int, targets: int, shape: str = "135m") -> tuple[Path, Path, int]:
    sys.path.insert(0, str(HERE))
    from bench_score import make_checkpoint, make_documents, write_jsonl

    ck = work / (f"{arch}-{shape}" if arch == "llama" and shape != "135m" else arch) / "checkpoint-1"
    data = work / "val.jsonl"
    meta = work / "inputs.json"
    key = {"arch": arch, "layers": layers, "dims": dims, "vocab": vocab, "targets": targets, **({"shape": shape} if shape != "135m" else {})}
    if meta.exists() and json.loads(meta.read_text()).get("key") == key:
        return ck, data, json.loads(meta.read_text())["params"]
    if arch == "llama":
        params = make_llama(ck, vocab=vocab, seed=0, shape=shape)
    else:
        params = make_checkpoint(ck, vocab=vocab, n_positions=1024, n_embd=dims, n_layer=layers, n_head=8, seed=0)
    write_jsonl(data, make_documents(targets, vocab, 50, 600, seed=1))
    meta.write_text(json.dumps({"key": key, "params": params}))
    return ck, data, params


def run_once(tree: Path, ck: Path, data: Path, work: Path, threads: int | None) -> dict:
    out = Path(tempfile.mkdtemp(dir=work, prefix="store-"))
    res = work / "phases.json"
    env = dict(os.environ, PYTHONPATH=f"{tree}{os.pathsep}{HERE}")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    args = ["score", str(ck), "--data", str(data), "--out", str(out), "-q"]
    code = f"import bench_phases, sys; bench_phases.worker({args!r}, {str(res)!r})"
    t = time.perf_counter()
    r0 = os.times()
    # -P and cwd: the working directory must not put another pctce_cli before the tree's on the path
    subprocess.run([sys.executable, "-P", "-c", code], env=env, cwd=work, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    r1 = os.times()
    got = json.loads(res.read_text())
    got.update(wall=wall, cpu=(r1.children_user - r0.children_user) + (r1.children_system - r0.children_system), load=loadavg())
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    if got["code"]:
        raise SystemExit(f"pctce score exited {got['code']} ({tree})")
    return got


def _f(x: float, nd: int = 2) -> str:
    return f"{x:,.{nd}f}"


def _medians(rows: list[dict], labels: list[str]) -> tuple[dict, dict]:
    """Median wall and main-thread CPU seconds per phase over the rounds of one tree."""
    wall = {lab: [] for lab in labels}
    cpu = {lab: [] for lab in labels}
    for r in rows:
        ph, c = dict(r["phases"]), dict(r.get("thread_cpu", {}))
        for d in (ph, c):  # the output-layer check runs inside the first batch: count it once, as itself
            if NESTED[0] in d and NESTED[1] in d:
                d[NESTED[1]] -= d[NESTED[0]]
        ph[START] = r["wall"] - r["worker_total"]
        ph[OTHER] = r["worker_total"] - sum(v for k, v in r["phases"].items() if k != NESTED[0])
        for lab in labels:
            wall[lab].append(ph.get(lab, 0.0))
            cpu[lab].append(c.get(lab, float("nan")))
    med = {lab: statistics.median(v) for lab, v in wall.items()}
    med_cpu = {lab: statistics.median(v) for lab, v in cpu.items()}
    med[WHOLE] = statistics.median(r["wall"] for r in rows)
    med_cpu[WHOLE] = statistics.median(r["cpu"] for r in rows)
    med[HASH] = statistics.median(r["background"].get("hashing", 0.0) for r in rows)
    return med, med_cpu


START, OTHER, WHOLE, HASH = "interpreter start-up and exit", "other (options, progress, table)", "whole process", "hashing (any thread; overlapped when in the background)"


def _model_words(raw: dict) -> str:
    if raw.get("arch") == "llama":
        shape = raw.get("shape", "135m")
        c = SHAPES[shape]
        return (f"a random-init Llama of SmolLM2-{shape.upper()}'s shape made locally ({c['num_hidden_layers']} layers, hidden {c['hidden_size']}, "
                f"{c['num_attention_heads']} heads, {c['num_key_value_heads']} kv heads, intermediate {c['intermediate_size']}, tied embeddings")
    return f"a random-init GPT-2 made locally ({raw['layers']} layers, {raw['dims']} dims"


def render(raw: dict) -> str:
    names = list(raw["runs"])
    labels = [START] + list(dict.fromkeys(["import pctce and its CLI", "import torch, transformers"] + [p[0] for p in PHASES])) + [OTHER]
    stats = {n: _medians(raw["runs"][n], labels) for n in names}
    lines = [SECTION, "", "```bash", raw["command"], "```", ""]
    lines.append(
        f"**Run.** `pctce score CK --data D --out FRESH -q` as a whole process: {_model_words(raw)}, "
        f"vocabulary {raw['vocab']:,}: {raw['params'] / 1e6:.1f}M parameters, "
        f"a {raw['weights_mb']:.0f} MB safetensors file, {'hashed by 64 sampled 1 MiB blocks' if raw['weights_mb'] > 268 else 'hashed in full'}), {raw['targets']:,} targets of generated text "
        f"(documents of 50–600 words). {raw['machine']}. {raw['rounds']} rounds, each tree in a fresh process, the order "
        f"rotated per round; medians. Load average (1 min) during the rounds: {raw['loads']}. *s*: wall seconds on the "
        "main thread; *%*: of the whole process's wall time; *CPU s*: the main thread's CPU time in the phase "
        "(`time.thread_time`; the whole process's row: user + system of the process and its threads)."
    )
    lines.append("")
    lines += ["| phase | " + " | ".join(f"{n} s | % | CPU s" for n in names) + " |", "|---|" + "---:|---:|---:|" * len(names)]
    for lab in labels + [WHOLE, HASH]:
        cells = []
        for n in names:
            med, cpu = stats[n]
            pct = f"{100 * med[lab] / med[WHOLE]:.1f}" if lab in labels else ""
            c = cpu.get(lab, float("nan"))
            cells.append(f"{_f(med[lab])} | {pct} | {'' if c != c else _f(c)}")
        lines.append(f"| {lab} | " + " | ".join(cells) + " |")
    lines.append("")
    for n in names:
        med, cpu = stats[n]
        fwd = med["forward, CE and rank"]
        lines.append(f"- **{n}**: outside the forward pass (everything but \"forward, CE and rank\"): "
                     f"{_f(med[WHOLE] - fwd)} s of {_f(med[WHOLE])} s wall, {100 * (1 - fwd / med[WHOLE]):.1f} % of the run; "
                     f"main-thread CPU outside it {_f(sum(v for k, v in cpu.items() if k not in (WHOLE, 'forward, CE and rank') and v == v))} s "
                     f"(the forward's {_f(cpu['forward, CE and rank'])} s on the main thread; its OpenMP threads add most of the rest of the process's {_f(cpu[WHOLE])} s).")
    if raw.get("floors"):
        lines += ["", *_floor_lines(raw["floors"], {n: stats[n][0] for n in names})]
    lines.append("")
    return "\n".join(lines) + "\n"


def _floor_lines(floors: list[float], meds: dict) -> list[str]:
    """What the libraries alone cost, against each tree's time outside the forward pass."""
    floor = statistics.median(floors)
    out = [f"- **the libraries alone** (a bare process that imports torch and transformers and loads this tokenizer "
           f"and model with `AutoTokenizer`/`AutoModelForCausalLM`, the collector off and no teardown, once per round; "
           f"`FLOOR_CODE` in the benchmark): median {_f(floor)} s (rounds: {', '.join(_f(f) for f in floors)})."]
    for n, med in meds.items():
        fwd, whole = med["forward, CE and rank"], med[WHOLE]
        out.append(f"  - **{n}**: that alone is {100 * floor / (floor + fwd):.1f} % of a run made of it and this forward pass "
                   f"({_f(floor)} of {_f(floor + fwd)} s); pctce's own time outside the forward pass is the rest, "
                   f"{_f(whole - fwd - floor)} s ({100 * (whole - fwd - floor) / whole:.1f} % of the run).")
    return out


def write_section(path: Path, section: str) -> None:
    sys.path.insert(0, str(HERE))
    import bench_score

    bench_score.SECTION = SECTION
    bench_score.write_section(path, section)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", action="append", default=[], help="another pctce source tree to time (repeatable); NAME=DIR names it")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--arch", choices=("gpt2", "llama"), default="gpt2", help="llama: a SmolLM2 shape (--shape; --layers/--dims ignored)")
    ap.add_argument("--shape", choices=tuple(SHAPES), default="135m", help="with --arch llama: SmolLM2-135M's or -360M's shape")
    ap.add_argument("--no-floor", action="store_true", help="skip the bare process that only imports the libraries and loads the model")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--dims", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--targets", type=int, default=12000)
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the runs (default: pctce's policy)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "pctce-bench-phases")
    ap.add_argument("--out", type=Path, help="write the section into this Markdown file (else print it)")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    ck, data, params = make_inputs(args.work, args.arch, args.layers, args.dims, args.vocab, args.targets, args.shape)
    trees = {"this tree": ROOT}
    for t in args.tree:
        name, _, d = t.rpartition("=")
        trees[name or Path(d).name] = Path(d).resolve()
    runs: dict[str, list] = {n: [] for n in trees}
    loads, floors = [], []
    names = list(trees)
    for r in range(args.rounds):
        for n in names[r % len(names):] + names[: r % len(names)]:
            got = run_once(trees[n], ck, data, args.work, args.threads)
            runs[n].append(got)
            loads.append(got["load"].split()[0])
            log(f"round {r + 1} {n}: {got['wall']:.2f} s (cpu {got['cpu']:.2f} s, load {got['load']})")
        if not args.no_floor:
            floors.append(floor_once(ck, args.work))
            log(f"round {r + 1} the libraries alone: {floors[-1]:.2f} s")
    sys.path.insert(0, str(HERE))
    from _machine import cpu_name

    import torch

    raw = {
        "command": "python benchmarks/bench_phases.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "arch": args.arch, "shape": args.shape, "floors": floors, "layers": args.layers, "dims": args.dims, "vocab": args.vocab, "targets": args.targets, "params": params,
        "weights_mb": (ck / "model.safetensors").stat().st_size / 1e6, "rounds": args.rounds,
        "machine": f"{cpu_name()}, {os.cpu_count()} cores visible, Python {sys.version.split()[0]}, torch {torch.__version__}, CPU, float32",
        "loads": f"{min(loads)}–{max(loads)}", "runs": runs,
    }
    text = render(raw)
    (args.work / "raw.json").write_text(json.dumps(raw, indent=1))
    if args.out:
        write_section(args.out, text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
