"""The Python API: score_model on an in-memory model equals pctce score on the saved checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import pctce_cli
from pctce_cli import api, stats
from pctce_cli.data import Record
from pctce_cli.errors import StoreError, UsageError
from pctce_cli.scoring.options import ScoreOptions
from pctce_cli.scoring.run import score_checkpoints
from pctce_cli.store import list_checkpoints, load_scores

from .cli import run_json
from .conftest import TEXTS


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def long_data(tmp_path_factory):
    p = tmp_path_factory.mktemp("data") / "val.txt"
    p.write_text("\n\n".join(TEXTS + [" ".join(TEXTS * 2)]), encoding="utf-8")
    return p


# long documents (windows), several shards: every part of the engine is exercised
OPTS = dict(split_on="blank-lines", max_length=16, stride=5, batch_tokens=40, shard_targets=30)


@pytest.fixture(scope="module")
def scored_store(tiny_ckpt, long_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("store")
    [res] = score_checkpoints([str(tiny_ckpt)], ScoreOptions(data=[str(long_data)], out=out, **OPTS))
    assert res.status == "scored", res.message
    return out


def test_score_model_equals_pctce_score_on_the_saved_checkpoint(model, tiny_tokenizer, long_data, scored_store):
    res = api.score_model(model, tiny_tokenizer, str(long_data), **OPTS)
    s = load_scores(scored_store, "tiny")
    for name in ("doc", "pos", "token", "rank"):
        np.testing.assert_array_equal(getattr(res, name), getattr(s, name))
    np.testing.assert_allclose(res.ce, s.ce, rtol=0, atol=1e-5)
    assert res.ce.dtype == np.float32 and res.rank.dtype == np.int32
    assert res.docs.to_dict("list") == s.docs.to_dict("list")
    # same fingerprints and settings; only the weights are identified differently (bytes in memory vs files)
    same = {k: v for k, v in res.identity.items() if k != "weights"}
    assert same == {k: v for k, v in s.manifest["identity"].items() if k != "weights"}
    assert len(res.parts) == len(s.manifest["shards"]) > 1

    [row] = run_json("summary", scored_store)["Per-token CE summaries (nats)"]
    ours = res.summary()
    assert set(ours) == set(row) - {"checkpoint", "step", "group"}
    for k, v in ours.items():
        assert v == pytest.approx(row[k], abs=1e-5), k


def test_model_stays_in_training_mode_and_its_numbers_do_not_depend_on_it(model, tiny_tokenizer):
    model.train()
    try:
        a = api.score_model(model, tiny_tokenizer, TEXTS[:2])
        assert model.training
    finally:
        model.eval()
    b = api.score_model(model, tiny_tokenizer, TEXTS[:2])
    np.testing.assert_array_equal(a.ce, b.ce)  # scored in eval mode either way (no dropout)


def test_every_data_form_gives_the_same_documents(model, tiny_tokenizer, text_jsonl, tmp_path):
    second = tmp_path / "more.jsonl"
    second.write_text(json.dumps({"text": TEXTS[0]}) + "\n", encoding="utf-8")
    from_file = api.score_model(model, tiny_tokenizer, str(text_jsonl))
    from_paths = api.score_model(model, tiny_tokenizer, [text_jsonl, second])
    from_strs = api.score_model(model, tiny_tokenizer, [str(text_jsonl), str(second)])
    from_texts = api.score_model(model, tiny_tokenizer, TEXTS)
    records = [Record(index=i, source=f"r{i}", text=t) for i, t in enumerate(TEXTS)]
    from_records = api.score_model(model, tiny_tokenizer, records)
    for r in (from_texts, from_records):
        np.testing.assert_array_equal(r.doc, from_file.doc)
        np.testing.assert_array_equal(r.ce, from_file.ce)
        assert r.identity["documents"] == from_file.identity["documents"]
    # files are fingerprinted as pctce score does; texts by their content
    from pctce_cli.data import data_fingerprint

    assert from_file.identity["data"] == data_fingerprint([str(text_jsonl)])
    assert from_texts.identity["data"] == from_records.identity["data"] != from_file.identity["data"]
    assert from_paths.identity == from_strs.identity
    assert len(from_paths.docs) == len(TEXTS) + 1
    assert from_file.info["data"]["files"] == [str(text_jsonl.resolve())]
    assert from_texts.info["data"] == {
        "files": [],
        "in_memory": True,
        "records": len(TEXTS),
        "documents": len(TEXTS),
        "skipped_documents": 0,
    }


def test_prompt_completion_records_score_only_the_completion(model, tiny_tokenizer):
    recs = [Record(0, "q1", prompt="Question: What is the capital? Answer:", completion=" Quexville.")]
    res = api.score_model(model, tiny_tokenizer, recs)
    n_completion = len(tiny_tokenizer(" Quexville.", add_special_tokens=False)["input_ids"])
    assert len(res) == n_completion


@pytest.mark.parametrize(
    ("data", "kw", "message"),
    [
        ([], {}, "data is empty: give a data file, a list of files, texts or Records"),
        (["a text", 3], {}, "data mixes int, str; give paths, texts or Records, one kind per list"),
        (42, {}, "data must be a path, a list of paths, a list of texts or a list of Records, got int"),
        (
            ["a text"],
            {"prompt_field": "q", "completion_field": "a"},
            "prompt_field/completion_field name fields of data files; for prompt/completion pairs "
            "in memory pass Records with prompt and completion",
        ),
        (TEXTS, {"max_length": 65}, "max_length 65 exceeds the model's context (64 tokens)"),
        (TEXTS, {"stride": 40, "max_length": 20}, "stride (40) cannot exceed max_length (20)"),
        (TEXTS, {"prefix": "start"}, "prefix must be auto, bos, eos or none, got 'start'"),
        (TEXTS, {"batch_tokens": 0}, "batch_tokens must be positive, got 0"),
        (TEXTS, {"stride": 65}, "stride (65) cannot exceed max_length (64)"),  # max_length: the model's context
    ],
)
def test_bad_arguments_are_refused_with_a_message(model, tiny_tokenizer, data, kw, message):
    with pytest.raises(UsageError) as e:
        api.score_model(model, tiny_tokenizer, data, **kw)
    assert str(e.value) == message


def test_missing_file_is_a_data_error(model, tiny_tokenizer, tmp_path):
    from pctce_cli.errors import DataError

    with pytest.raises(DataError, match="data file not found: .*nope.jsonl"):
        api.score_model(model, tiny_tokenizer, str(tmp_path / "nope.jsonl"))


def test_to_store_writes_a_partition_the_analysis_commands_read(model, tiny_tokenizer, long_data, scored_store, tmp_path):
    import shutil

    store = tmp_path / "store"
    shutil.copytree(scored_store, store)
    res = api.score_model(model, tiny_tokenizer, str(long_data), **OPTS)
    assert res.to_store(store, "in memory/ckpt", step=7) == "written"
    assert res.to_store(store, "in_memory_ckpt", step=7) == "skipped"  # same identity: nothing rewritten
    ids = [m["id"] for m in list_checkpoints(store)]
    assert ids == ["in_memory_ckpt", "tiny"]  # by step, then name (tiny has none)
    m = load_scores(store, "in_memory_ckpt").manifest
    assert m["step"] == 7 and m["source"] == "pctce_cli.api.score_model"
    assert m["targets"] == len(res) and len(m["shards"]) == len(res.parts)
    # comparable with the pctce score partition: concord accepts them without --allow-mixed
    rows = run_json("summary", store)["Per-token CE summaries (nats)"]
    assert [r["mean"] for r in rows][0] == pytest.approx(rows[1]["mean"], abs=1e-6)
    run_json("concord", store)

    other = api.score_model(model, tiny_tokenizer, str(long_data), **{**OPTS, "stride": 4})
    with pytest.raises(StoreError) as e:
        other.to_store(store, "in_memory_ckpt")
    assert str(e.value) == (
        f"in_memory_ckpt: {store} already holds scores of it made with different stride 5 → 4; "
        "pass force=True to overwrite or choose another store"
    )
    assert other.to_store(store, "in_memory_ckpt", force=True) == "written"
    assert load_scores(store, "in_memory_ckpt").manifest["settings"]["stride"] == 4


def test_model_fingerprint_follows_the_weights(model, tiny_ckpt):
    from transformers import AutoModelForCausalLM

    copy = AutoModelForCausalLM.from_pretrained(tiny_ckpt, dtype=torch.float32)
    assert api.model_fingerprint(copy) == api.model_fingerprint(model)
    with torch.no_grad():
        copy.lm_head.weight[0, 0] += 1e-3
    assert api.model_fingerprint(copy) != api.model_fingerprint(model)


def test_statistics_are_exported_as_plain_functions():
    assert api.summarize is stats.summarize and api.concordance is stats.concordance
    assert pctce_cli.summarize is stats.summarize and pctce_cli.bootstrap_ci is stats.bootstrap_ci
    assert pctce_cli.score_model is api.score_model
    from pctce_cli.accumulator import PercentileCE
    from pctce_cli.callback import PercentileCECallback

    assert pctce_cli.PercentileCE is PercentileCE and api.PercentileCECallback is PercentileCECallback
    s = pctce_cli.summarize(np.array([1.0, 2.0, 3.0, 4.0], np.float32))
    assert s["p50"] == 2.5
    import pandas as pd

    table = pd.DataFrame({"checkpoint": ["a", "b", "c"], "mean": [1.0, 2.0, 3.0], "p50": [3.0, 2.0, 1.0]})
    assert pctce_cli.concordance(table, summaries=["mean", "p50"]).c == 0.0


def test_importing_the_api_does_not_import_torch():
    code = (
        "import sys; import pctce_cli, pctce_cli.api; from pctce_cli import summarize, score_model, concordance; "
        "from pctce_cli.api import *; "
        "from pctce_cli import *; print('torch' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_task_accuracy_equals_pctce_score_task_accuracy(model, tiny_ckpt, tiny_tokenizer, tmp_path):
    qa = tmp_path / "qa.jsonl"
    pairs = [("Q: What is the capital of Zorblandia? A:", " Quexville."), ("To be, or not to be, that is", " the question.")]
    qa.write_text("".join(json.dumps({"q": q, "a": a}) + "\n" for q, a in pairs), encoding="utf-8")
    fields = dict(prompt_field="q", completion_field="a", task_accuracy=True, accuracy_margin=2)
    [res] = score_checkpoints([str(tiny_ckpt)], ScoreOptions(data=[str(qa)], out=tmp_path / "out", **fields))
    assert res.status == "scored", res.message
    stored = load_scores(tmp_path / "out", "tiny")
    ours = api.score_model(model, tiny_tokenizer, str(qa), **fields)
    assert ours.docs.to_dict("list") == stored.docs.to_dict("list")
    assert {"exact_match", "substring_match"} <= set(ours.docs.columns)
    assert ours.summary()["acc_exact_match"] == float(stored.docs["exact_match"].mean())
    assert ours.identity["settings"] == stored.manifest["identity"]["settings"]


def test_to_store_writes_the_shard_bytes_pctce_score_writes(model, tiny_tokenizer, long_data, scored_store, tmp_path):
    # one loop, one sink: the in-memory path writes byte-identical shards (rows and document tables)
    res = api.score_model(model, tiny_tokenizer, str(long_data), **OPTS)
    assert res.to_store(tmp_path / "mem", "tiny") == "written"
    ours = load_scores(tmp_path / "mem", "tiny").manifest
    theirs = load_scores(scored_store, "tiny").manifest
    keys = ("shard", "tokens_file", "docs_file", "tokens_sha256", "docs_sha256", "rows", "documents", "ce_sum")
    assert [{k: r[k] for k in keys} for r in ours["shards"]] == [{k: r[k] for k in keys} for r in theirs["shards"]]
    assert ours["settings"] == theirs["settings"]
    assert set(ours) == set(theirs) | {"source"}


def test_summaries_from_memory_and_store_are_the_pctce_summary_row(model, tiny_tokenizer, long_data, scored_store, tmp_path):
    from pathlib import Path

    from pctce_cli.analysis.summary import checkpoint_summary
    from pctce_cli.catalog import Checkpoint

    manifest = load_scores(scored_store, "tiny").manifest
    row = checkpoint_summary(Checkpoint("tiny", Path(scored_store), manifest, None, "tiny"), [50, 90, 95, 99])
    for key in ("checkpoint", "step", "group"):
        row.pop(key)
    stored = api.summary_from_store(scored_store, "tiny")
    assert list(stored) == list(row)
    assert stored == row  # the same numbers, exactly
    res = api.score_model(model, tiny_tokenizer, str(long_data), **OPTS)
    res.to_store(tmp_path / "mem", "mem")
    assert res.summary() == api.summary_from_store(tmp_path / "mem", "mem")
    with_ci = res.summary(ci=0.9, n_boot=50)
    assert {"mean_lo", "p50_hi"} <= set(with_ci) and not {"_ci_method", "_ci_error"} & set(with_ci)


def test_library_errors_name_the_parameter_and_the_cli_wording_is_one_mapping_away(tmp_path):
    from pctce_cli.errors import option_message
    from pctce_cli.scoring.options import SCORE_OPTIONS, validate_options

    opts = ScoreOptions(data=["x.txt"], out=tmp_path, batch_tokens=0)
    with pytest.raises(UsageError) as e:
        validate_options(opts)
    assert str(e.value) == "batch_tokens must be positive, got 0" and e.value.param == "batch_tokens"
    assert option_message(e.value, SCORE_OPTIONS) == "--batch-tokens must be positive, got 0"
    assert option_message(UsageError(option_message(e.value, SCORE_OPTIONS), param="batch_tokens"), SCORE_OPTIONS) == (
        "--batch-tokens must be positive, got 0"  # already in the CLI's words: unchanged
    )
    with pytest.raises(UsageError, match="^--batch-tokens must be positive, got 0$"):
        score_checkpoints(["nowhere"], opts)  # pctce score as a library call speaks its options' language
    out = tmp_path / "out"
    out.write_text("")
    with pytest.raises(UsageError) as e:
        validate_options(ScoreOptions(data=["x.txt"], out=out))
    assert option_message(e.value, SCORE_OPTIONS) == f"--out {out} exists and is not a directory"


@pytest.mark.slow
def test_the_callback_does_not_import_the_api_module():
    # callback -> scoring/ + distributed + stats; api -> callback only lazily (no import cycle)
    code = "import sys, pctce_cli.callback; assert 'pctce_cli.api' not in sys.modules, 'api imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
