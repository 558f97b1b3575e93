"""PercentileCECallback in a real (tiny, CPU) transformers Trainer run."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from pctce_cli.callback import PercentileCECallback
from pctce_cli.scoring.options import ScoreOptions
from pctce_cli.scoring.run import score_checkpoints
from pctce_cli.store import list_checkpoints, load_scores

from .cli import run_json
from .conftest import TEXTS

LOGGED = ["mean", "p50", "p90", "p95", "p99", "iqr", "z95", "top1"]
STEPS = [2, 4, 6]


pytestmark = pytest.mark.usefixtures("one_thread")


def make_trainer(base, tokenizer, out_dir, **kw):
    from transformers import AutoModelForCausalLM, DataCollatorForLanguageModeling, Trainer, TrainingArguments

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    train = [{"input_ids": tokenizer(t)["input_ids"]} for t in TEXTS * 3]
    settings = dict(
        max_steps=6,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        learning_rate=5e-3,
        logging_steps=2,
        report_to=[],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    args = TrainingArguments(output_dir=str(out_dir), **{**settings, **kw})
    return Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=train[:2],
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        processing_class=tokenizer,
    )


def pctce_entries(trainer):
    return {e["step"]: e for e in trainer.state.log_history if "eval_pctce/mean" in e}


class Recorder(TrainerCallback):
    """Records what on_log hands to callbacks: what TensorBoard, W&B, MLflow … receive."""

    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append((state.global_step, dict(logs)))


@pytest.fixture(scope="module")
def val(tmp_path_factory):
    p = tmp_path_factory.mktemp("val") / "val.jsonl"
    p.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def trained(tiny_ckpt, tiny_tokenizer, val, tmp_path_factory):
    """Train 6 steps (gradient accumulation 2), evaluating and saving at steps 2, 4, 6."""
    root = tmp_path_factory.mktemp("train")
    trainer = make_trainer(tiny_ckpt, tiny_tokenizer, root / "run", metric_for_best_model="pctce/p50", greater_is_better=False)
    recorder = Recorder()  # stands for a report_to integration (registered before user callbacks, like them)
    trainer.add_callback(recorder)
    cb = PercentileCECallback(str(val), trainer=trainer, store_dir=root / "store", shard_targets=40)
    trainer.add_callback(cb)
    trainer.train()
    scores = root / "scores"
    [*results] = score_checkpoints([str(root / "run")], ScoreOptions(data=[str(val)], out=scores, shard_targets=40))
    assert [r.status for r in results] == ["scored"] * 3, [r.message for r in results]
    return SimpleNamespace(
        root=root, trainer=trainer, callback=cb, recorder=recorder, store=root / "store", scores=scores
    )


@pytest.mark.slow
def test_logged_values_equal_pctce_score_on_the_checkpoints_saved_at_the_same_steps(trained):
    entries = pctce_entries(trained.trainer)
    assert sorted(entries) == STEPS
    rows = {r["step"]: r for r in run_json("summary", trained.scores)["Per-token CE summaries (nats)"]}
    assert sorted(rows) == STEPS
    for step in STEPS:
        for name in LOGGED:
            assert entries[step][f"eval_pctce/{name}"] == pytest.approx(rows[step][name], abs=1e-5), (step, name)
    # from the second evaluation on, the concordance so far is logged too
    assert "eval_pctce/concordance_mean_p50" not in entries[2]
    assert {"eval_pctce/concordance_mean_p50", "eval_pctce/concordance_mean_p50_p95"} <= set(entries[6])
    assert list(trained.callback.history["step"]) == STEPS
    # every callback's on_log (so every report_to integration) received them
    seen = {step: logs for step, logs in trained.recorder.logs if "eval_pctce/mean" in logs}
    assert sorted(seen) == STEPS
    for step in STEPS:
        for name in LOGGED:
            assert seen[step][f"eval_pctce/{name}"] == entries[step][f"eval_pctce/{name}"]


@pytest.mark.slow
def test_the_trainer_can_select_checkpoints_by_a_percentile(trained):
    entries = pctce_entries(trained.trainer)
    best = min(STEPS, key=lambda s: entries[s]["eval_pctce/p50"])
    assert trained.trainer.state.best_metric == entries[best]["eval_pctce/p50"]
    assert trained.trainer.state.best_model_checkpoint.endswith(f"checkpoint-{best}")


@pytest.mark.slow
def test_every_evaluation_is_a_store_partition_that_concord_and_select_read(trained):
    manifests = list_checkpoints(trained.store)
    assert [(m["id"], m["step"]) for m in manifests] == [(f"run.step-{s}", s) for s in STEPS]
    scored = {m["step"]: m for m in list_checkpoints(trained.scores)}
    for m in manifests:
        ref = scored[m["step"]]
        for key in ("tokenizer", "data", "documents"):
            assert m["fingerprints"][key] == ref["fingerprints"][key], key
        assert m["identity"]["settings"] == ref["identity"]["settings"]
        assert m["path"] == str((trained.root / "run" / f"checkpoint-{m['step']}").resolve())
        assert m["source"] == "pctce_cli.callback.PercentileCECallback" and m["run"] == "run"
        ours, theirs = load_scores(trained.store, m["id"]), load_scores(trained.scores, ref["id"])
        np.testing.assert_array_equal(ours.doc, theirs.doc)
        np.testing.assert_array_equal(ours.rank, theirs.rank)
        np.testing.assert_allclose(ours.ce, theirs.ce, rtol=0, atol=1e-5)

    concord = run_json("concord", trained.store)
    [row] = concord["Concordance of S = {mean, p50, p95}"]
    assert row["checkpoints"] == 3 and row["pairs"] == 3
    select = run_json("select", trained.store)
    assert select  # the selection table over the whole run, no re-scoring
    # comparable with the partitions pctce score wrote: one concord over both stores, no --allow-mixed
    both = run_json("concord", trained.store, trained.scores)
    assert both["Concordance of S = {mean, p50, p95}"][0]["checkpoints"] == 6


@pytest.mark.slow
def test_resumed_training_adds_no_duplicate_partition(trained, tiny_ckpt, tiny_tokenizer, val, tmp_path, caplog):
    root = tmp_path / "resume"
    shutil.copytree(trained.root / "run", root / "run")
    shutil.copytree(trained.store, root / "store")
    stored = root / "store" / "checkpoint=run.step-6" / "_manifest.json"
    before = stored.read_text()
    trainer = make_trainer(tiny_ckpt, tiny_tokenizer, root / "run")
    cb = PercentileCECallback(str(val), store_dir=root / "store", shard_targets=40).attach(trainer)
    with caplog.at_level(logging.WARNING, logger="pctce_cli.callback"):
        trainer.train(resume_from_checkpoint=str(root / "run" / "checkpoint-4"))
    assert [m["id"] for m in list_checkpoints(root / "store")] == [f"run.step-{s}" for s in STEPS]
    assert stored.read_text() == before  # the identical evaluation was not written again
    assert not [r for r in caplog.records if "already holds" in r.getMessage()]
    entries = pctce_entries(trainer)
    first = pctce_entries(trained.trainer)
    assert sorted(entries) == STEPS  # 2 and 4 restored from trainer_state.json, 6 evaluated again
    for name in LOGGED:
        assert entries[6][f"eval_pctce/{name}"] == pytest.approx(first[6][f"eval_pctce/{name}"], abs=1e-6)
    # the concordance at step 6 counts the evaluations before the resume
    assert list(cb.history["step"]) == STEPS
    assert entries[6]["eval_pctce/concordance_mean_p50"] == first[6]["eval_pctce/concordance_mean_p50"]


def fake_state(step, history=None):
    from transformers import TrainerState

    state = TrainerState()
    state.global_step = step
    state.log_history = history if history is not None else []
    return state


def test_warns_once_when_mean_and_median_start_to_disagree(tmp_path, caplog):
    cb = PercentileCECallback(["a text"], tokenizer=object())
    # mean keeps falling while the median rises: C(mean, p50) = 0 from the second evaluation
    designed = {
        10: {"mean": 3.0, "p50": 1.0, "p95": 5.0},
        20: {"mean": 2.5, "p50": 1.2, "p95": 4.0},
        30: {"mean": 2.0, "p50": 1.4, "p95": 3.0},
    }
    cb._score = lambda args, state, model, kwargs: {
        **designed[state.global_step],
        "p90": 0.0,
        "p99": 0.0,
        "iqr": 1.0,
        "z95": 1.0,
        "top1": 0.5,
        "_checkpoint": f"run.step-{state.global_step}",
    }
    args = SimpleNamespace(output_dir=str(tmp_path / "run"), run_name=None)
    history: list = []
    with caplog.at_level(logging.WARNING, logger="pctce_cli.callback"):
        for step in designed:
            metrics = {"eval_loss": 1.0}
            cb.on_evaluate(args, fake_state(step, history), None, model=object(), metrics=metrics)
            assert metrics["eval_pctce/mean"] == designed[step]["mean"]  # added in place: metric_for_best_model
    warnings = [r.getMessage() for r in caplog.records if r.name == "pctce_cli.callback"]
    disagree = [w for w in warnings if "disagree" in w]
    assert disagree == [
        "pctce: over 2 evaluations C(mean, p50) = 0.000 and C(mean, p50, p95) = 0.000, below 0.60: "
        "mean and median now disagree about which step is best (mean: step 20, p50: step 10); "
        "pick checkpoints by the summary your task follows (pctce concord / pctce select)"
    ]
    # no trainer to log through: said once, values kept in log_history
    assert sum("no trainer" in w for w in warnings) == 1
    assert [e["step"] for e in history] == [10, 20, 30]
    assert history[2]["eval_pctce/concordance_mean_p50"] == 0.0


def test_a_second_evaluation_at_the_same_step_reuses_the_first(tmp_path):
    cb = PercentileCECallback(["a text"], tokenizer=object())
    calls = []

    def score(args, state, model, kwargs):
        calls.append(state.global_step)
        return {name: 1.0 for name in LOGGED} | {"_checkpoint": "run.step-5"}

    cb._score = score
    args = SimpleNamespace(output_dir=str(tmp_path / "run"), run_name=None)
    state = fake_state(5)
    first, second = {}, {}
    cb.on_evaluate(args, state, None, model=object(), metrics=first)
    cb.on_evaluate(args, state, None, model=object(), metrics=second)  # e.g. a second eval dataset
    assert calls == [5] and first == second and len(state.log_history) == 1


def test_bad_settings_fail_at_construction(tmp_path):
    from pctce_cli.errors import DataError, UsageError

    with pytest.raises(DataError, match="data file not found"):
        PercentileCECallback(str(tmp_path / "missing.jsonl"))
    with pytest.raises(UsageError) as e:
        PercentileCECallback(["text"], concordance_threshold=1.5)
    assert str(e.value) == "concordance_threshold must be in [0, 1], got 1.5"
    cb = PercentileCECallback(["text"])
    with pytest.raises(UsageError) as e:
        cb.on_train_begin(SimpleNamespace(), fake_state(0), None)
    assert str(e.value) == (
        "PercentileCECallback needs the model's tokenizer: pass tokenizer=..., "
        "or give the Trainer processing_class=tokenizer"
    )


DDP_WORKER = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from transformers import AutoTokenizer
    from tests.test_callback import make_trainer
    from pctce_cli.callback import PercentileCECallback

    base, root = Path(sys.argv[1]), Path(sys.argv[2])
    tok = AutoTokenizer.from_pretrained(base)
    trainer = make_trainer(base, tok, root / "run", max_steps=4, gradient_accumulation_steps=1)
    cb = PercentileCECallback(str(root / "val.jsonl"), store_dir=root / "store", shard_targets=20).attach(trainer)
    trainer.train()
    logged = [e for e in trainer.state.log_history if "eval_pctce/mean" in e]
    (root / f"rank{os.environ['RANK']}.json").write_text(json.dumps(logged))
    # Leave without Python's shutdown. About 1 in 25 two-rank CPU runs of a plain
    # Trainer abort at exit ("terminate called without an active exception"),
    # with or without the callback and even after barrier + destroy_process_group:
    # DDP keeps the gloo group alive, and its run-loop thread frees the Trainer's
    # last all_gather tensors while Python finalizes (a PyTorch race, gdb trace
    # in docs/python-api.md). The results are on disk by now.
    import torch.distributed as dist
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
    """
)


@pytest.mark.slow
def test_two_ranks_split_the_scoring_and_rank_0_writes(tiny_ckpt, val, tmp_path):
    from pathlib import Path

    shutil.copy(val, tmp_path / "val.jsonl")
    script = tmp_path / "worker.py"
    script.write_text(DDP_WORKER)
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    r = subprocess.run(cmd + [str(script), str(tiny_ckpt), str(tmp_path), repo], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    logged = [json.loads((tmp_path / f"rank{k}.json").read_text()) for k in (0, 1)]
    assert logged[0] == logged[1]  # every rank logs the same values
    manifests = list_checkpoints(tmp_path / "store")
    assert [m["id"] for m in manifests] == ["run.step-2", "run.step-4"]
    for m in manifests:
        assert m["world_size"] == 2 and {s["rank"] for s in m["shards"]} == {0, 1}
    # equal to one process scoring the checkpoints the DDP run saved
    results = score_checkpoints(
        [str(tmp_path / "run")], ScoreOptions(data=[str(val)], out=tmp_path / "scores", shard_targets=20)
    )
    assert [r.status for r in results] == ["scored", "scored"]
    rows = {r["step"]: r for r in run_json("summary", tmp_path / "scores")["Per-token CE summaries (nats)"]}
    for entry in logged[0]:
        for name in LOGGED:
            assert entry[f"eval_pctce/{name}"] == pytest.approx(rows[entry["step"]][name], abs=1e-5)
    for m in manifests:
        ours = load_scores(tmp_path / "store", m["id"])
        theirs = load_scores(tmp_path / "scores", f"run.checkpoint-{m['step']}")
        np.testing.assert_allclose(ours.ce, theirs.ce, rtol=0, atol=1e-5)
