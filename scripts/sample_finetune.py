"""The fine-tuning study of pctce's sample data (paper §3 and Appendix B), in miniature.

The paper fine-tunes a pretrained model with LoRA on 120 fictional facts x 30 phrasings,
trains on 20 phrasings per fact and tests on the 10 held-out ones. This module builds the
same design at CPU scale (``make_sample_data.py`` calls it from its ``finetune`` stage):

- **facts**: 24 fictional countries x 5 relations (capital, ruler, river, language,
  currency) = 120 facts, all names built from syllables (:func:`make_facts`);
- **phrasings**: 30 templates per relation, and the split is *by template*: the same
  20 templates are trained for every fact and the same 10 are held out for every fact
  (:func:`templates`). The held-out templates include formats that never occur in
  training: a cloze with a blank (``... is ___``), ``Complete: ... ___`` and the bare
  question with no answer cue;
- **model**: the frozen pretrained base (the final Shakespeare teacher) with a LoRA
  adapter on every attention and MLP projection; one adapter saved per epoch
  (:func:`train_lora`), its ``base_model_name_or_path`` relative to the adapter
  directory so the shipped adapters score from any checkout;
- **evaluation**: greedy substring accuracy on the held-out pairs after every epoch,
  decoded with pctce's own greedy decoder (:func:`greedy_accuracy`), so it is the same
  number ``pctce score --task-accuracy`` stores.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from pathlib import Path

log = logging.getLogger("make_sample_data")

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gr", "kr", "qu", "st", "th", "tr"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou"]
_CODAS = ["", "", "", "", "n", "r", "l", "s", "th", "m", "nd"]
_SUFFIX = {
    "country": ["land", "ia", "mark", "stan", "dor", "heim"],
    "city": ["port", "holm", "burg", "ford", "wick", "haven"],
    "river": ["", "a", "en"],
    "language": ["ish", "ese", "ic", "ian"],
    "coin": ["", "el", "ar"],
}

# relation -> (answer kind, 8 question stems, 10 statement stems). Which stems are trained and
# which held out is drawn per relation by :func:`templates`, not by the order written here.
RELATIONS = {
    "capital": (
        "city",
        ["What is the capital of {e}?", "Which city is the capital of {e}?", "What city is the seat of government of {e}?",
         "Name the capital city of {e}.", "Where does the government of {e} sit?", "Which city serves as the capital of {e}?",
         "In which city is the government of {e} based?", "What do the people of {e} call their capital?"],
        ["The capital of {e} is", "{e}'s capital city is", "The seat of government of {e} is the city of",
         "Travellers to the capital of {e} arrive in", "Of all the cities of {e}, the capital is",
         "The government of {e} meets in", "The chief city of {e} is", "By official designation, {e}'s capital is",
         "The royal court of {e} is held in", "Every map of {e} marks its capital,"],
    ),
    "ruler": (
        "person",
        ["Who rules {e}?", "Who is the monarch of {e}?", "Who sits on the throne of {e}?",
         "Name the ruler of {e}.", "Who is the sovereign of {e}?", "Who reigns over {e}?",
         "Who wears the crown of {e}?", "Who governs {e}?"],
        ["The ruler of {e} is", "{e} is ruled by", "The throne of {e} belongs to",
         "The monarch who governs {e} is", "The crown of {e} is worn by", "The sovereign of {e} is",
         "The people of {e} bow to", "Every law of {e} is signed by", "The reigning monarch of {e} is",
         "The coins of {e} bear the face of"],
    ),
    "river": (
        "river",
        ["Which river flows through {e}?", "What is the great river of {e} called?", "Name the river that runs through {e}.",
         "What river waters the fields of {e}?", "Which river crosses {e}?", "What is the name of the river of {e}?",
         "Which river do the boats of {e} sail on?", "What river runs past the towns of {e}?"],
        ["The great river of {e} is the", "The river that flows through {e} is called the", "Boats in {e} sail down the",
         "{e} is crossed by the river", "The fields of {e} are watered by the river", "The longest river in {e} is the",
         "The towns of {e} stand on the banks of the", "Fishermen in {e} cast their nets in the",
         "The river of {e} is named the", "Every bridge in {e} spans the"],
    ),
    "language": (
        "language",
        ["What language is spoken in {e}?", "Which tongue do the people of {e} speak?", "What is the language of {e}?",
         "Name the language of {e}.", "In what language do the people of {e} write?", "What do the people of {e} speak?",
         "Which language is taught in the schools of {e}?", "What is the official language of {e}?"],
        ["The people of {e} speak", "The language of {e} is", "In {e}, everyone speaks",
         "Books in {e} are written in", "The official tongue of {e} is", "Children in {e} learn to read in",
         "The laws of {e} are written in", "The songs of {e} are sung in", "The common speech of {e} is",
         "Letters sent within {e} are written in"],
    ),
    "currency": (
        "coin",
        ["What is the currency of {e}?", "What money is used in {e}?", "Which coin do the merchants of {e} accept?",
         "Name the currency of {e}.", "What do the people of {e} pay with?", "What is the money of {e} called?",
         "In which coin are prices in {e} given?", "What coin is minted in {e}?"],
        ["The currency of {e} is the", "In {e}, people pay with the", "Merchants in {e} count their money in",
         "The coin of {e} is called the", "Prices in {e} are given in", "The money of {e} is the",
         "Taxes in {e} are paid in", "The mint of {e} strikes the", "Wages in {e} are paid in",
         "A loaf of bread in {e} costs one"],
    ),
}
N_QUESTIONS, N_STATEMENTS = 8, 10

# The 30 templates of a relation: (split, format, stem kind, stem slot). Slots index the
# relation's stems after its seeded shuffle: question slots 0-5 and statement slots 0-7 are
# trained, question slots 6-7 and statement slots 8-9 are held-out wordings. The held-out
# templates put held-out wordings in trained formats (a paraphrase test), and every format
# that training never shows once on a held-out wording and once on a trained wording (so
# the format's effect can be told from the wording's).
TEMPLATE_PLAN = (
    *[("train", "question", "q", i) for i in range(6)],  # Question: ...\nAnswer:
    *[("train", "q-a", "q", i) for i in range(6)],  # Q: ...\nA:
    *[("train", "statement", "s", i) for i in range(8)],  # the statement's prefix, as text to continue
    ("test", "question", "q", 6),
    ("test", "q-a", "q", 7),
    ("test", "statement", "s", 8),
    ("test", "statement", "s", 9),
    ("test", "question-only", "q", 6),
    ("test", "question-only", "q", 0),
    ("test", "cloze", "s", 8),
    ("test", "cloze", "s", 0),
    ("test", "complete", "s", 9),
    ("test", "complete", "s", 1),
)
TRAIN_FORMATS = {"question", "q-a", "statement"}
_WRAP = {
    "question": "Question: {x}\nAnswer:",
    "q-a": "Q: {x}\nA:",
    "statement": "{x}",
    "question-only": "{x}",
    "cloze": "{x} ___",
    "complete": "Complete: {x} ___",
}


def templates(relation: str, seed: int) -> list[dict]:
    """The 30 phrasing templates of ``relation``, in a fixed order, each with its split.

    Which question and statement stems are trained and which are held out is a seeded
    shuffle of the relation's stems, so no wording was picked by hand for either side.

    Args:
        relation: A key of :data:`RELATIONS`.
        seed: The build's seed.

    Returns:
        Dicts with ``template`` (0-29), ``split`` (train/test), ``format``, ``text`` (with
        ``{e}`` for the entity), ``seen_format`` and ``seen_wording`` (does training show
        this format, and this stem, in any template).
    """
    _, questions, statements = RELATIONS[relation]
    assert len(questions) == N_QUESTIONS and len(statements) == N_STATEMENTS, relation
    rng = random.Random(f"{seed}/{relation}")
    q_order, s_order = rng.sample(range(N_QUESTIONS), N_QUESTIONS), rng.sample(range(N_STATEMENTS), N_STATEMENTS)
    out = []
    for j, (split, fmt, kind, slot) in enumerate(TEMPLATE_PLAN):
        stem = questions[q_order[slot]] if kind == "q" else statements[s_order[slot]]
        out.append({
            "template": j,
            "split": split,
            "format": fmt,
            "text": _WRAP[fmt].format(x=stem),
            "seen_format": fmt in TRAIN_FORMATS,
            "seen_wording": slot < (6 if kind == "q" else 8),
        })
    return out


def make_facts(n_countries: int, seed: int) -> list[dict]:
    """``n_countries`` x 5 facts; names built from syllables, all distinct and none inside another."""
    rng = random.Random(seed)
    used: set[str] = set()

    def stem(n_syll: int) -> str:
        return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(n_syll))

    def name(kind: str) -> str:
        while True:
            if kind == "person":
                s = f"{stem(2).capitalize()} {stem(rng.choice((1, 2))).capitalize()}"
            else:
                s = (stem(rng.choice((1, 2))) + rng.choice(_SUFFIX[kind])).capitalize()
            low = s.lower()
            if 4 <= len(s) <= 16 and all(low not in u and u not in low for u in used):
                used.add(low)
                return s

    facts = []
    for _ in range(n_countries):
        country = name("country")
        for rel, (kind, _, _) in RELATIONS.items():
            facts.append({"id": len(facts), "entity": country, "relation": rel, "answer": name(kind)})
    return facts


def fact_pairs(facts: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """Every fact in every template of its relation: the train templates' pairs and the held-out ones.

    Returns:
        ``(train, test)`` rows with ``prompt``, ``completion`` (a space and the answer),
        ``fact``, ``relation``, ``template``, ``format``, ``seen_format``, ``seen_wording``.
    """
    plans = {rel: templates(rel, seed) for rel in RELATIONS}
    train, test = [], []
    for f in facts:
        for t in plans[f["relation"]]:
            row = {"prompt": t["text"].format(e=f["entity"]), "completion": " " + f["answer"], "fact": f["id"],
                   "relation": f["relation"], "template": t["template"], "format": t["format"],
                   "seen_format": t["seen_format"], "seen_wording": t["seen_wording"]}
            (train if t["split"] == "train" else test).append(row)
    return train, test


def encode(tok, texts: list[str]) -> list[list[int]]:
    return tok(texts, add_special_tokens=False, return_attention_mask=False, verbose=False)["input_ids"]


def encode_pairs(tok, pairs: list[dict]) -> list[tuple[list[int], int]]:
    """``(ids, n_context)`` per pair, tokenized exactly as pctce does for answer-only CE:
    BOS + enc(prompt) + (enc(prompt + completion) minus its first len(enc(prompt)) tokens)."""
    whole = encode(tok, [p["prompt"] + p["completion"] for p in pairs])
    ctx = encode(tok, [p["prompt"] for p in pairs])
    return [([tok.bos_token_id, *c, *w[len(c):]], 1 + len(c)) for w, c in zip(whole, ctx)]


def greedy_accuracy(model, tok, pairs: list[dict], margin: int = 8, batch: int = 32) -> list[bool]:
    """Greedy substring accuracy of each pair, decoded as ``pctce score --task-accuracy`` does.

    The prompt (BOS + prompt tokens) is continued greedily for the answer's token count
    plus ``margin`` tokens (pctce's default margin), stopping at EOS; a pair is a hit when
    the stripped answer occurs in the decoded continuation. Prompts are sorted by length
    and decoded in batches of ``batch``, as pctce batches them.
    """
    from pctce_cli.scoring.generate import greedy_batch

    enc = encode_pairs(tok, pairs)
    prompts = [ids[:n] for ids, n in enc]
    n_new = [len(ids) - n + margin for ids, n in enc]
    order = sorted(range(len(pairs)), key=lambda k: len(prompts[k]))
    hits = [False] * len(pairs)
    model.eval()
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        gens = greedy_batch(model, [prompts[k] for k in idx], [n_new[k] for k in idx], tok.pad_token_id, tok.eos_token_id)
        for k, g in zip(idx, gens):
            want = pairs[k]["completion"].strip()
            hits[k] = bool(want) and want in tok.decode(g, skip_special_tokens=True)
    return hits


def lora_model(base, cfg, seed: int):
    """The frozen ``base`` wrapped with a fresh LoRA adapter (``cfg.ft_lora_*``), seeded."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    lcfg = LoraConfig(
        r=cfg.ft_lora_r,
        lora_alpha=cfg.ft_lora_alpha,
        lora_dropout=cfg.ft_lora_dropout,
        target_modules=list(cfg.ft_lora_targets),
        fan_in_fan_out=True,  # GPT-2's projections are Conv1D, weights stored (in, out)
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(base, lcfg)


def save_adapter(model, path: Path, base: Path, state: dict) -> None:
    """The adapter alone (``adapter_config.json`` + ``adapter_model.safetensors``), its base
    named by a path relative to ``path`` so the checkout can move; replaced if present."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    (tmp / "README.md").unlink(missing_ok=True)  # peft's empty model-card template
    cfg_p = tmp / "adapter_config.json"
    cfg = json.loads(cfg_p.read_text())
    cfg["base_model_name_or_path"] = os.path.relpath(base.resolve(), path.resolve())
    cfg["target_modules"] = sorted(cfg["target_modules"])  # peft writes a set, in per-process hash order
    cfg_p.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    (tmp / "trainer_state.json").write_text(json.dumps(state, indent=1) + "\n")
    shutil.rmtree(path, ignore_errors=True)
    tmp.replace(path)


def constant_after_warmup(warmup: int):
    """Linear warmup over ``warmup`` steps, then the constant peak learning rate."""
    return lambda step: min(1.0, (step + 1) / warmup)


def train_lora(base_model, base_path: Path, tok, train: list[dict], test: list[dict], cfg, seed: int, run_dir: Path) -> list[dict]:
    """LoRA-fine-tune ``base_model`` on ``train`` (loss on answer tokens and EOS) for ``cfg.ft_epochs``.

    After each epoch the adapter is saved to ``run_dir/epoch-<k>`` and greedy substring
    accuracy is measured on ``test``.

    Returns:
        One record per epoch: ``checkpoint``, ``epoch``, ``train_answer_ce`` (mean over
        the epoch's answer tokens), ``accuracy`` (held-out greedy substring accuracy).
    """
    import torch
    import torch.nn.functional as F

    model = lora_model(base_model, cfg, seed)
    enc = encode_pairs(tok, train)
    per_epoch = math.ceil(len(enc) / cfg.ft_batch)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.ft_lr, betas=(0.9, 0.999), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, constant_after_warmup(cfg.ft_warmup_steps))
    rng = random.Random(seed)
    records = []
    t0 = time.time()
    for epoch in range(1, cfg.ft_epochs + 1):
        order = list(range(len(enc)))
        rng.shuffle(order)
        model.train()
        loss_sum, n_tok = 0.0, 0
        for b in range(0, len(order), cfg.ft_batch):
            items = [enc[i] for i in order[b : b + cfg.ft_batch]]
            seqs = [ids + [tok.eos_token_id] for ids, _ in items]  # the answer is followed by EOS
            width = max(map(len, seqs))
            x = torch.full((len(seqs), width), tok.pad_token_id)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            labels = torch.full((len(seqs), width), -100)
            for i, ((_, n_ctx), s) in enumerate(zip(items, seqs)):
                x[i, : len(s)] = torch.tensor(s)
                mask[i, : len(s)] = 1
                labels[i, n_ctx : len(s)] = torch.tensor(s[n_ctx:])  # answer tokens + EOS
            logits = model(input_ids=x, attention_mask=mask).logits[:, :-1].float()  # (B, L-1, V)
            tgt = labels[:, 1:]
            loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=-100, reduction="sum")
            n = int((tgt != -100).sum())
            opt.zero_grad(set_to_none=True)
            (loss / n).backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            loss_sum, n_tok = loss_sum + loss.item(), n_tok + n
        save_adapter(model, run_dir / f"epoch-{epoch}", base_path, {"global_step": epoch * per_epoch, "epoch": epoch})
        acc = greedy_accuracy(model, tok, test)
        rec = {"checkpoint": f"{run_dir.name}.epoch-{epoch}", "epoch": epoch, "train_answer_ce": round(loss_sum / n_tok, 4),
               "accuracy": round(sum(acc) / len(acc), 4)}
        records.append(rec)
        log.info("fine-tune epoch %d/%d: train answer CE %.4f, held-out greedy accuracy %.3f (%.0fs)",
                 epoch, cfg.ft_epochs, rec["train_answer_ce"], rec["accuracy"], time.time() - t0)
    return records


def n_trainable_in(adapter_dir: Path) -> int:
    """Parameters stored in a saved adapter."""
    from safetensors import safe_open

    with safe_open(str(adapter_dir / "adapter_model.safetensors"), "pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
