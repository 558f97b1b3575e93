"""`pctce score`'s stages: the batch budget against the windows the data needs (issue 23)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from pctce_cli.errors import UsageError
from pctce_cli.scoring.run import _check_batch_budget
from tests.cli import run


def _docs(*lengths):
    return [SimpleNamespace(input_ids=np.zeros(n, np.int64)) for n in lengths]


def test_the_budget_is_compared_with_the_longest_window_not_the_configured_context():
    spec = SimpleNamespace(path="ck")
    _check_batch_budget(spec, 4096, _docs(900, 1000), 32768)  # short documents on a long-context model: fine
    _check_batch_budget(spec, None, _docs(50_000), 32768)  # no budget given: the default is never refused
    with pytest.raises(UsageError) as e:
        _check_batch_budget(spec, 4096, _docs(900, 50_000), 32768)
    assert str(e.value) == "ck: --batch-tokens 4096 is smaller than the longest window of 32768 tokens; use at least 32768 (or leave it out)"
    with pytest.raises(UsageError, match="longest window of 5000 tokens; use at least 5000"):
        _check_batch_budget(spec, 4096, _docs(5000), 32768)


def test_a_32k_context_model_scores_short_documents_within_a_4096_budget(tiny_tokenizer, text_jsonl, tmp_path):
    from pctce_cli.store import read_manifest
    from pctce_cli.testing import make_gpt2

    ckpt = tmp_path / "long"
    make_gpt2(ckpt, tokenizer=tiny_tokenizer, n_positions=32768, n_embd=8, n_layer=1, n_head=1)
    r = run("score", ckpt, "--data", text_jsonl, "--out", tmp_path / "out", "--batch-tokens", "4096", "--quiet")
    assert r.exit_code == 0, r.stderr
    m = read_manifest(tmp_path / "out", "long")
    assert m.settings["batch_tokens"] == 4096 and m.settings["max_length"] == 32768 and m.targets > 0


def test_adding_a_subset_field_does_not_need_the_shard_size_repeated(tiny_ckpt, tmp_path):
    import json

    from pctce_cli.store import read_manifest

    data = tmp_path / "val.jsonl"
    texts = ["One small text about cats.", "Another text, about dogs and cats.", "A third one on birds."] * 4
    data.write_text("".join(json.dumps({"text": t, "domain": "ab"[i % 2]}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    out = tmp_path / "out"
    assert run("score", tiny_ckpt, "--data", data, "--out", out, "--shard-targets", "20", "--quiet").exit_code == 0
    shards = read_manifest(out, "tiny").shards
    r = run("score", tiny_ckpt, "--data", data, "--out", out, "--subset-field", "domain", "--quiet", "--format", "json")
    assert r.exit_code == 0, r.stderr
    [row] = json.loads(r.stdout)[f"Scored into {out}"]
    assert row["status"] == "skipped"
    m = read_manifest(out, "tiny")
    assert m.label_fields == ["domain"] and m.shards == shards  # labels added, nothing re-scored


def test_names_that_sanitize_alike_get_distinct_ids(tiny_ckpt, text_jsonl, tmp_path):
    import shutil

    from pctce_cli.store import list_checkpoints

    spaced, underscored = tmp_path / "ck" / "x y", tmp_path / "ck2" / "x_y"
    for d in (spaced, underscored):
        shutil.copytree(tiny_ckpt, d)
    out = tmp_path / "out"
    assert run("score", underscored, "--data", text_jsonl, "--out", out, "--quiet").exit_code == 0
    r = run("score", spaced, "--data", text_jsonl, "--out", out, "--quiet")
    assert r.exit_code == 0, r.stderr  # not "already holds scores of it made with different weights"
    assert sorted(m.id for m in list_checkpoints(out)) == ["x_y", "x_y-887fcea6"]
