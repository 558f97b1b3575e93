#!/usr/bin/env python
"""What recording byte spans and words (SPEC §8) costs `pctce score`: offsets on vs off, side by side.

Everything is built locally: a byte-level BPE tokenizer trained on generated
text (English-like words with accented, CJK and emoji words mixed in, so that
multi-byte characters and byte-level pieces occur), a random-init GPT-2 with
its vocabulary, and JSONL documents of that text. Each round runs
``score_checkpoints`` end to end (read, tokenize, load the model, score, write
the Parquet store) into a fresh store twice, once with byte spans and words and
once without (``ScoreOptions(units=False)``, the internal switch), the order
alternating between rounds; the ratio on/off is paired within the round. The
added work is also timed alone, best of several runs (robust to other load on a
shared machine): the tokenization (``tokenize_records``, where the offsets are
computed) and the writing of the shards with and without the two columns.

Run from the repository root::

    python benchmarks/bench_offsets.py                             # prints the Markdown section
    python benchmarks/bench_offsets.py --out docs/benchmarks.md    # replaces its section there
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

SECTION = "## Scoring: byte spans and words (bench_offsets.py)"
COMMAND = "python benchmarks/bench_offsets.py --out docs/benchmarks.md"


def make_texts(n_docs: int, words_per_doc: tuple[int, int], seed: int = 0) -> list[str]:
    """Documents of generated words: mostly ASCII, some accented, CJK runs and emoji; spaces, newlines, tabs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = list("etaoinshrdlucmfwypvbgkjqxz")
    vocab = ["".join(rng.choice(letters, int(rng.integers(1, 9)))) for _ in range(3000)]
    vocab += ["café", "naïve", "façade", "wörld", "señor", "Zürich", "crème", "déjà"]
    vocab += ["東京", "今日は", "晴れです", "住んでいます", "😀", "👍🏽", "👨‍👩‍👧", "ok😀"]
    p = np.r_[np.full(3000, 0.97 / 3000), np.full(16, 0.03 / 16)]
    seps = [" "] * 30 + ["\n", "\t", ", ", ". "]
    texts = []
    for _ in range(n_docs):
        n = int(rng.integers(*words_per_doc))
        words = rng.choice(len(vocab), n, p=p)
        texts.append("".join(vocab[w] + seps[int(rng.integers(len(seps)))] for w in words).strip())
    return texts


def build(base: Path, args) -> tuple[Path, Path, list[str]]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from pctce_cli.testing import make_gpt2

    texts = make_texts(args.docs, (args.min_words, args.max_words))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=args.vocab, special_tokens=["<|bos|>", "<|eos|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|eos|>", pad_token="<|pad|>",
                                 model_max_length=1_000_000)
    ckpt = base / "ckpt"
    make_gpt2(ckpt, tokenizer=hf, n_positions=args.context, n_embd=args.n_embd, n_layer=args.n_layer, n_head=args.n_head)
    data = base / "val.jsonl"
    data.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    return ckpt, data, texts


def time_writes(base: Path, ckpt: Path, data: Path, repeats: int = 5) -> tuple[float, float]:
    """Best-of seconds to write one checkpoint's shards without and with the ``nbytes``/``word`` columns."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pctce_cli.api import score_model
    from pctce_cli.store import write_shard

    res = score_model(AutoModelForCausalLM.from_pretrained(ckpt), AutoTokenizer.from_pretrained(ckpt), str(data))
    best = {}
    for units in (False, True, False, True):
        for k in range(repeats):
            part = base / f"w-{int(units)}-{k}"
            (part / "_docs").mkdir(parents=True, exist_ok=True)
            (part / "_shards").mkdir(exist_ok=True)
            t0 = time.perf_counter()
            for p in res.parts:
                scored = p.scored if units else _without_units(p.scored)
                write_shard(part, p.shard, 0, scored)
            best[units] = min(best.get(units, float("inf")), time.perf_counter() - t0)
    return best[False], best[True]


def _without_units(scored):
    import dataclasses

    table = {k: v for k, v in scored.doc_table.items() if k != "n_empty"}
    return dataclasses.replace(scored, nbytes=None, word=None, doc_table=table)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=150)
    ap.add_argument("--min-words", type=int, default=40)
    ap.add_argument("--max-words", type=int, default=200)
    ap.add_argument("--vocab", type=int, default=4000)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", default=None, help="Markdown file whose section is replaced (else print)")
    args = ap.parse_args(argv)

    import torch

    from pctce_cli.data import Record, tokenize_records
    from pctce_cli.scoring.options import ScoreOptions
    from pctce_cli.scoring.run import score_checkpoints

    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ckpt, data, texts = build(base, args)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(ckpt)
        records = [Record(i, f"doc {i}", text=t) for i, t in enumerate(texts)]
        n_bytes = sum(len(t.encode()) for t in texts)

        def score(units: bool, k: int) -> tuple[tuple[float, float], int]:
            out = base / f"out-{k}-{int(units)}"
            t0, c0 = time.perf_counter(), time.process_time()
            [res] = score_checkpoints([str(ckpt)], ScoreOptions(data=[str(data)], out=out, units=units))
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            assert res.status == "scored", res.message
            return (dt, dc), res.targets

        def tokenize(units: bool) -> float:
            t0 = time.perf_counter()
            tokenize_records(records, tokenizer, units=units)
            return time.perf_counter() - t0

        score(True, -1)  # warm-up: imports, caches
        rows, tok_rows, targets = [], [], 0
        for r in range(args.rounds):
            order = [False, True] if r % 2 == 0 else [True, False]
            got, tok_got = {}, {}
            for units in order:
                got[units], targets = score(units, r)
                tok_got[units] = min(tokenize(units) for _ in range(3))
            rows.append((r + 1, "off, on" if order[0] is False else "on, off", got[False], got[True]))
            tok_rows.append((tok_got[False], tok_got[True]))
        write_off, write_on = time_writes(base, ckpt, data)
    load1 = os.getloadavg()

    ratios = [on[0] / off[0] for _, _, off, on in rows]
    cpu_ratios = [on[1] / off[1] for _, _, off, on in rows]
    best_off = min(off[0] for _, _, off, _ in rows)
    best_on = min(on[0] for _, _, _, on in rows)
    tok_off = min(a for a, _ in tok_rows)
    tok_on = min(b for _, b in tok_rows)
    added = (tok_on - tok_off) + (write_on - write_off)
    spread = max(off[1] for _, _, off, _ in rows) / min(off[1] for _, _, off, _ in rows)
    lines = [
        SECTION,
        "",
        "```bash",
        COMMAND if args.out else "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]]),
        "```",
        "",
        f"`score_checkpoints` end to end (read JSONL, tokenize, fingerprint, load, score, write the store) into a fresh "
        f"store, with byte spans and words (`nbytes`, `word` columns) and without (`ScoreOptions(units=False)`), "
        f"alternating which goes first; {args.rounds} rounds. Random-init GPT-2, {args.n_layer} layers × {args.n_embd} "
        f"dims, context {args.context}; byte-level BPE with a vocabulary of {args.vocab:,} trained locally on the data: "
        f"{len(texts)} generated documents of {args.min_words}–{args.max_words} words (3% accented, CJK and emoji words), "
        f"{n_bytes:,} UTF-8 bytes, {targets:,} targets. {args.threads} torch threads, {platform.machine()} "
        f"{platform.system()}, torch {torch.__version__}; load average {load0[0]:.2f} at the start, {load1[0]:.2f} at the end.",
        "",
        "| round | order | wall without (s) | wall with (s) | wall with / without | CPU without (s) | CPU with (s) | CPU with / without |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (r, order, off, on), ratio, cpu in zip(rows, ratios, cpu_ratios):
        lines.append(f"| {r} | {order} | {off[0]:.2f} | {on[0]:.2f} | {ratio:.3f} | {off[1]:.2f} | {on[1]:.2f} | {cpu:.3f} |")
    lines += [
        "",
        f"**`pctce score` wall time with / without: median of the paired ratios {statistics.median(ratios):.3f}** "
        f"(range {min(ratios):.3f}–{max(ratios):.3f}), best run with / best run without {best_on / best_off:.3f}; "
        f"CPU time (this process, every thread): median {statistics.median(cpu_ratios):.3f}. The target is at most 1.10.",
        "",
        f"The work the spans add, timed alone (best of several, so little disturbed by other load): tokenizing with "
        f"offsets and turning them into spans and words, {tok_on:.3f} s against {tok_off:.3f} s "
        f"(`tokenize_records`, ×{tok_on / tok_off:.2f}); writing the shards with the two more columns, "
        f"{write_on:.3f} s against {write_off:.3f} s. Together {added:.3f} s, "
        f"{100 * added / best_off:.1f}% of the best end-to-end run without them ({best_off:.2f} s): the number the "
        "end-to-end ratios scatter around when the machine is busy "
        f"(here identical runs without spans took {spread:.1f}× as much CPU time in the slowest as in the fastest).",
        "",
    ]
    section = "\n".join(lines)
    if args.out:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_analysis import write_section

        write_section(Path(args.out), section)
        print(f"wrote {SECTION!r} to {args.out}")
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
