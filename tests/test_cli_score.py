"""`pctce score` through the CLI: store layout, skip/resume/force, lock, and bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pctce_cli import __version__
from pctce_cli.store import StoreLock, list_checkpoints, load_scores

from .cli import run


def score_json(*args):
    r = run("score", *args, "--format", "json", "--quiet")
    return r, (json.loads(r.stdout) if r.stdout.strip().startswith("{") else None)


def test_version_and_help():
    assert run("--version").stdout.strip() == f"pctce {__version__}"
    r = run("--help")
    assert r.exit_code == 0 and "score" in r.stdout


def test_score_writes_a_hive_partitioned_store_readable_by_pyarrow(tiny_ckpt, text_jsonl, tmp_path):
    import pyarrow.dataset as ds

    out = tmp_path / "out"
    r, res = score_json(tiny_ckpt, "--data", text_jsonl, "--out", out)
    assert r.exit_code == 0, r.stderr
    [row] = res[f"Scored into {out}"]
    assert row["checkpoint"] == "tiny" and row["status"] == "scored" and row["targets"] > 0
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    # nbytes, word: the byte span and word of each target (SPEC §8; the tiny tokenizer is a fast one)
    assert set(table.column_names) == {"doc", "pos", "token", "ce", "rank", "nbytes", "word", "checkpoint"}
    assert table.num_rows == row["targets"]
    assert str(table.schema.field("ce").type) == "float"
    assert not list(out.rglob("*.tmp"))
    man = list_checkpoints(out)[0]
    assert man["targets"] == row["targets"] and man["versions"]["pctce"] == __version__
    assert set(man["fingerprints"]) >= {"weights", "tokenizer", "data", "documents"}
    assert abs(np.mean(load_scores(out, "tiny").ce) - row["mean"]) < 1e-6


def test_rerun_skips_and_force_rescores(tiny_ckpt, text_jsonl, tmp_path):
    out = tmp_path / "out"
    score_json(tiny_ckpt, "--data", text_jsonl, "--out", out)
    before = (out / "checkpoint=tiny" / "_manifest.json").stat().st_mtime_ns
    r, res = score_json(tiny_ckpt, "--data", text_jsonl, "--out", out)
    assert r.exit_code == 0 and res[f"Scored into {out}"][0]["status"] == "skipped"
    assert (out / "checkpoint=tiny" / "_manifest.json").stat().st_mtime_ns == before
    r, res = score_json(tiny_ckpt, "--data", text_jsonl, "--out", out, "--force")
    assert res[f"Scored into {out}"][0]["status"] == "scored"


def test_different_settings_are_refused_without_force(tiny_ckpt, text_jsonl, tmp_path):
    out = tmp_path / "out"
    score_json(tiny_ckpt, "--data", text_jsonl, "--out", out)
    r = run("score", tiny_ckpt, "--data", text_jsonl, "--out", out, "--max-length", "32", "--quiet")
    assert r.exit_code == 2
    assert (
        f"Error: tiny: {out} already holds scores of it made with different max_length 64 → 32, "
        "stride 32 → 16; use --force to overwrite or choose another --out"
    ) in r.stderr


def test_interrupted_run_resumes_where_it_stopped(tiny_ckpt, text_jsonl, tmp_path, monkeypatch):
    import pctce_cli.scoring.loop as run_mod  # the one loop writes the shards

    out = tmp_path / "out"
    real_write, calls = run_mod.write_shard, []

    def dying_write(part, shard, rank, scored, *a, **kw):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(shard)
        return real_write(part, shard, rank, scored, *a, **kw)

    monkeypatch.setattr(run_mod, "write_shard", dying_write)
    r = run("score", tiny_ckpt, "--data", text_jsonl, "--out", out, "--shard-targets", "20", "--quiet")
    assert r.exit_code == 130 and "interrupted" in r.stderr
    assert not (out / "checkpoint=tiny" / "_manifest.json").exists()  # nothing looks complete
    assert list_checkpoints(out) == []

    calls.clear()
    monkeypatch.setattr(run_mod, "write_shard", lambda *a, **kw: (calls.append(a[1]), real_write(*a, **kw))[1])
    r, res = score_json(tiny_ckpt, "--data", text_jsonl, "--out", out, "--shard-targets", "20")
    assert r.exit_code == 0
    assert 0 not in calls and 1 not in calls and calls  # finished shards were not redone

    fresh = tmp_path / "fresh"
    score_json(tiny_ckpt, "--data", text_jsonl, "--out", fresh, "--shard-targets", "20")
    a, b = load_scores(out, "tiny"), load_scores(fresh, "tiny")
    np.testing.assert_array_equal(a.ce, b.ce)
    np.testing.assert_array_equal(a.doc, b.doc)
    assert len(a.manifest["shards"]) == len(b.manifest["shards"]) > 2


def test_a_locked_store_is_refused(tiny_ckpt, text_jsonl, tmp_path):
    out = tmp_path / "out"
    with StoreLock(out):
        r = run("score", tiny_ckpt, "--data", text_jsonl, "--out", out, "--quiet")
    assert r.exit_code == 2
    assert f"Error: {out} is being written by another pctce run (pid " in r.stderr
    assert "wait for it to finish or choose another --out" in r.stderr
    assert not list(out.glob("checkpoint=*"))


def test_one_bad_checkpoint_is_reported_and_the_others_finish(tiny_ckpt, text_jsonl, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_ckpt, bad)
    w = bad / "model.safetensors"
    w.write_bytes(w.read_bytes()[:1000])  # truncated download
    out = tmp_path / "out"
    r, res = score_json(bad, tiny_ckpt, "--data", text_jsonl, "--out", out)
    assert r.exit_code == 2
    assert [x["status"] for x in res[f"Scored into {out}"]] == ["failed", "scored"]
    assert f"Error: {bad}: cannot load the model weights (" in r.stderr
    assert "the file may be truncated or corrupt" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda t, c: t / "nope", "Error: checkpoint path not found: {p}"),
        (lambda t, c: (t / "empty").mkdir() or t / "empty", "Error: no checkpoint under {p} (expected config.json with model weights, or adapter_config.json, in it or in its subdirectories)"),
        (lambda t, c: (t / "cfg").mkdir() or shutil.copy(c / "config.json", t / "cfg") and t / "cfg", "Error: {p}: config.json but no model weights (model.safetensors or pytorch_model.bin)"),
    ],
)
def test_bad_checkpoint_paths(tiny_ckpt, text_jsonl, tmp_path, make, message):
    p = make(tmp_path, tiny_ckpt)
    r = run("score", p, "--data", text_jsonl, "--out", tmp_path / "out", "--quiet")
    assert r.exit_code == 2
    assert r.stderr.strip() == message.format(p=p)


def test_missing_tokenizer(tiny_ckpt, text_jsonl, tmp_path):
    p = tmp_path / "notok"
    p.mkdir()
    for f in ("config.json", "model.safetensors"):
        shutil.copy(tiny_ckpt / f, p)
    r = run("score", p, "--data", text_jsonl, "--out", tmp_path / "out", "--quiet")
    assert r.exit_code == 2
    assert f"Error: {p}: no tokenizer files (tokenizer.json or tokenizer_config.json); pass --tokenizer DIR" in r.stderr
    r = run("score", p, "--data", text_jsonl, "--out", tmp_path / "out", "--tokenizer", tiny_ckpt, "--quiet")
    assert r.exit_code == 0, r.stderr


def test_adapter_with_missing_base(tmp_path, text_jsonl, monkeypatch):
    p = tmp_path / "adapter"
    p.mkdir()
    (p / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "some-org/some-model"}))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    r = run("score", p, "--data", text_jsonl, "--out", tmp_path / "out", "--quiet")
    assert r.exit_code == 2
    # a base named like a Hub id is looked up as one (docs/hub.md); offline and not cached, that is said
    assert r.stderr.strip() == (
        f"Error: {p}: its base model 'some-org/some-model' is no local directory, and as a Hub id: some-org/some-model@main: "
        f"not in the Hub cache {tmp_path / 'hub'} and HF_HUB_OFFLINE is set; unset HF_HUB_OFFLINE to download it, "
        "or point HF_HUB_CACHE at a cache that holds it"
    )
    (p / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "../no/such/base"}))
    r = run("score", p, "--data", text_jsonl, "--out", tmp_path / "out", "--quiet")
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        f"Error: {p}: base model '../no/such/base' is neither a local model directory nor a Hub id (org/name[@revision]); "
        "pass --base-model PATH"
    )


def test_adapter_base_relative_to_the_adapter_directory(tmp_path, tiny_ckpt, monkeypatch):
    """A relative base that is no model from the working directory is read from the adapter's directory."""
    from pctce_cli.checkpoints import discover

    shutil.copytree(tiny_ckpt, tmp_path / "ship" / "base")
    p = tmp_path / "ship" / "runs" / "epoch-1"
    p.mkdir(parents=True)
    (p / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "../../base"}))
    (p / "adapter_model.safetensors").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    [spec] = discover([p])
    assert spec.kind == "adapter" and spec.base_model.resolve() == (tmp_path / "ship" / "base").resolve()
    # a base that is a model from the working directory keeps that meaning
    (tmp_path / "w" / "x").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "w" / "x")
    shutil.copytree(tiny_ckpt, tmp_path / "base")
    [spec] = discover([p])
    assert spec.base_model.resolve() == (tmp_path / "base").resolve()


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "Error: data file not found: {p}"),
        (b"", "Error: data file is empty: {p}"),
        (b'{"text": "ok"}\n{"text": broken}\n', "Error: {p}:2: not valid JSON"),
        (b'{"body": "ok"}\n', "Error: {p}:1: no field 'text' (found: body); choose one with --text-field"),
        (b'{"text": "\xff\xfe bad"}\n', "Error: {p}: not UTF-8"),
    ],
)
def test_bad_data(tiny_ckpt, tmp_path, content, message):
    p = tmp_path / "val.jsonl"
    if content is not None:
        p.write_bytes(content)
    r = run("score", tiny_ckpt, "--data", p, "--out", tmp_path / "out", "--quiet")
    assert r.exit_code == 2
    assert r.stderr.startswith(message.format(p=p)), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("checkpoint=*/_manifest.json"))


def test_bad_options(tiny_ckpt, text_jsonl, tmp_path):
    r = run("score", tiny_ckpt, "--data", text_jsonl, "--out", tmp_path / "o", "--stride", "40", "--max-length", "20")
    assert r.exit_code == 2 and r.stderr.strip() == "Error: --stride (40) cannot exceed --max-length (20)"
    r = run("score", tiny_ckpt, "--data", text_jsonl, "--out", tmp_path / "o", "--prompt-field", "q")
    assert r.stderr.strip() == "Error: --prompt-field and --completion-field go together: give both or neither"
    r = run("score", tiny_ckpt, "--data", text_jsonl, "--out", tmp_path / "o", "--max-length", "100", "--quiet")
    assert r.exit_code == 2 and "Error: --max-length 100 exceeds the context of tiny (64 tokens)" in r.stderr
    r = run("score", tiny_ckpt, "--data", text_jsonl, "--out", tmp_path / "o", "--device", "cuda")
    if not __import__("torch").cuda.is_available():
        assert r.stderr.strip() == "Error: --device cuda: no CUDA device is available (use --device cpu or auto)"


def test_documents_without_targets_are_skipped_and_counted(tiny_ckpt, tmp_path):
    p = tmp_path / "qa.jsonl"
    p.write_text('{"q": "a question", "a": ""}\n{"q": "Question:", "a": " Answer."}\n')
    out = tmp_path / "out"
    r = run("score", tiny_ckpt, "--data", p, "--out", out, "--prompt-field", "q", "--completion-field", "a", "--quiet")
    assert r.exit_code == 0, r.stderr
    m = list_checkpoints(out)[0]
    assert m["data"]["skipped_documents"] == 1 and m["documents"] == 1


def _custom_code_checkpoint(tiny_ckpt, path):
    shutil.copytree(tiny_ckpt, path)
    cfg = json.loads((path / "config.json").read_text())
    cfg["model_type"] = "foo_custom"
    cfg["auto_map"] = {"AutoConfig": "modeling_foo.FooConfig", "AutoModelForCausalLM": "modeling_foo.FooForCausalLM"}
    (path / "config.json").write_text(json.dumps(cfg))
    marker = path / "EXECUTED"
    (path / "modeling_foo.py").write_text(
        "from transformers import GPT2Config, GPT2LMHeadModel\n"
        f"open({str(marker)!r}, 'w').write('yes')\n"
        "class FooConfig(GPT2Config):\n    model_type = 'foo_custom'\n"
        "class FooForCausalLM(GPT2LMHeadModel):\n    config_class = FooConfig\n"
    )
    return marker


def test_model_code_runs_only_with_trust_remote_code(tiny_ckpt, text_jsonl, tmp_path):
    ckpt = tmp_path / "custom"
    marker = _custom_code_checkpoint(tiny_ckpt, ckpt)
    r = run("score", ckpt, "--data", text_jsonl, "--out", tmp_path / "out", "--quiet")
    assert r.exit_code == 2
    assert f"Error: {ckpt}: this model needs custom code from its directory; rerun with --trust-remote-code if you trust it" in r.stderr
    assert not marker.exists()
    r = run("score", ckpt, "--data", text_jsonl, "--out", tmp_path / "out", "--quiet", "--trust-remote-code")
    assert r.exit_code == 0, r.stderr
    assert marker.exists()


def test_a_batch_budget_below_one_window_is_refused(tiny_ckpt, text_jsonl, tmp_path):
    r = run("score", tiny_ckpt, "--data", text_jsonl, "--out", tmp_path / "out", "--max-length", "16", "--batch-tokens", "1", "--quiet")
    assert r.exit_code == 2
    assert r.stderr.strip().endswith(
        f"Error: {tiny_ckpt}: --batch-tokens 1 is smaller than the longest window of 16 tokens; use at least 16 (or leave it out)"
    )


@pytest.mark.slow
def test_unwritable_outputs_are_one_line_errors(tiny_ckpt, text_jsonl, tmp_path):
    """--out/--output under a regular file: exit 2 naming the path, no traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run("score", tiny_ckpt, "--data", text_jsonl, "--out", blocker / "store", "--quiet")
    assert r.exit_code == 2 and "Traceback" not in r.output and str(blocker) in r.stderr
    store = tmp_path / "out"
    assert run("score", tiny_ckpt, "--data", text_jsonl, "--out", store, "--quiet").exit_code == 0
    for fmt in ("json", "table"):
        r = run("summary", store, "--format", fmt, "--output", blocker / "s.json")
        assert r.exit_code == 2
        assert r.stderr.strip() == f"Error: --output {blocker}/s.json: cannot write ({blocker} is a file, not a directory)"
    r = run("report", store, "--out", blocker / "r.html")
    assert r.exit_code == 2 and r.stderr.strip() == f"Error: --out {blocker}/r.html: cannot write ({blocker} is a file, not a directory)"


class _NotATensor:
    """A pickled object a weights file must not carry (unpickling it could run code)."""


def test_damaged_config_and_pickled_objects_name_their_real_fault(tiny_ckpt, text_jsonl, tmp_path):
    import torch
    from safetensors.torch import load_file

    cfg = tmp_path / "cfg"
    shutil.copytree(tiny_ckpt, cfg)
    (cfg / "config.json").write_text('{"model_type": "gpt2",', encoding="utf-8")
    r = run("score", cfg, "--data", text_jsonl, "--out", tmp_path / "out", "--quiet")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert f"Error: {cfg}/config.json: not valid JSON (" in r.stderr and "configuration is damaged" in r.stderr
    assert "tokenizer" not in r.stderr

    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_ckpt, pickled)
    state = load_file(pickled / "model.safetensors")
    (pickled / "model.safetensors").unlink()
    torch.save({**state, "extra": _NotATensor()}, pickled / "pytorch_model.bin")
    r = run("score", pickled, "--data", text_jsonl, "--out", tmp_path / "out2", "--quiet")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.stderr.strip().endswith(
        "the .bin weights hold pickled objects other than tensors, which pctce refuses to load "
        "(they could run code); save the model as safetensors from a Python session you trust"
    )
    assert "weights_only=False" not in r.stderr


def test_long_and_non_ascii_checkpoint_names_get_distinct_safe_ids(tiny_ckpt, text_jsonl, tmp_path):
    dirs = [tmp_path / "模型", tmp_path / "数据", tmp_path / ("m" * 250)]
    for d in dirs:
        shutil.copytree(tiny_ckpt, d)
    out = tmp_path / "out"
    r = run("score", *dirs, "--data", text_jsonl, "--out", out, "--quiet")
    assert r.exit_code == 0, r.stderr
    ids = sorted(m["id"] for m in list_checkpoints(out))
    assert len(set(ids)) == 3 and all(len(i) <= 120 for i in ids)
    assert ids[:2] == sorted(["checkpoint-c98e118e", "checkpoint-5440f742"])
    assert ids[2].startswith("m" * 100) and len(ids[2]) == 120
