"""Checkpoints named by Hub id and revision, resolved offline against a hand-built Hub cache.

The cache is laid out as huggingface_hub lays it out (``models--org--name/refs/<revision>`` holding a
commit hash, ``snapshots/<commit>/`` holding the files), with ``HF_HUB_OFFLINE=1`` and ``HF_HUB_CACHE``
pointing at it. No test here may open a network connection: ``no_network`` makes any attempt fail.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket

import pytest

from pctce_cli import hub
from pctce_cli.checkpoints import discover
from pctce_cli.errors import CheckpointError


def commit_of(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def add_revision(cache, repo_id: str, revision: str, src, commit: str | None = None) -> str:
    """Put a copy of the checkpoint directory ``src`` into the cache as ``repo_id@revision``; returns its commit."""
    commit = commit or commit_of(f"{repo_id}@{revision}")
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    snap = repo / "snapshots" / commit
    if not snap.exists():
        shutil.copytree(src, snap)
    return commit


@pytest.fixture()
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test."""
    calls = []

    def refuse(self, *args, **kwargs):
        calls.append(args)
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return calls


@pytest.fixture()
def hub_cache(tmp_path, monkeypatch, tiny_ckpt, tiny_run, no_network):
    """A Hub cache with org/tiny at step1000 and step2000 (different weights) and main (= step2000's weights)."""
    cache = tmp_path / "hub-cache"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    add_revision(cache, "org/tiny", "step1000", tiny_ckpt)
    add_revision(cache, "org/tiny", "step2000", tiny_run / "checkpoint-500")
    return cache


def test_parse_ref_forms_and_bad_ranges():
    assert hub.parse_ref("org/m") == hub.HubRef("org/m")
    assert hub.parse_ref("org/m@v1.0") == hub.HubRef("org/m", "v1.0")
    assert hub.parse_ref("org/m@step*[:3000]") == hub.HubRef("org/m", "step*", None, 3000, None)
    for not_hub in ("m", "a/b/c", "./org/m", "/abs/path", "org/m@"):
        assert hub.parse_ref(not_hub) is None, not_hub
    with pytest.raises(CheckpointError) as e:
        hub.parse_ref("org/m@step1000[1:2]")
    assert str(e.value) == "org/m@step1000[1:2]: a step range [LO:HI:K] follows a revision pattern such as @step*, not a single revision"
    with pytest.raises(CheckpointError) as e:
        hub.parse_ref("org/m@step*[a:b]")
    assert str(e.value) == "org/m@step*[a:b]: expected a step range [LO:HI] or [LO:HI:K] of whole numbers, got [a:b]"
    with pytest.raises(CheckpointError) as e:
        hub.parse_ref("org/m@step*[1:9:0]")
    assert str(e.value) == "org/m@step*[1:9:0]: the stride K in [LO:HI:K] must be at least 1, got 0"


def test_select_revisions_orders_by_step_and_applies_range_and_stride():
    names = ["main", "step10", "step2", "step100", "step1000", "v1"]
    assert hub.select_revisions(names, hub.parse_ref("o/m@step*")) == ["step2", "step10", "step100", "step1000"]
    assert hub.select_revisions(names, hub.parse_ref("o/m@step*[10:]")) == ["step10", "step100", "step1000"]
    assert hub.select_revisions(names, hub.parse_ref("o/m@step*[::2]")) == ["step2", "step100"]
    assert hub.select_revisions(names, hub.parse_ref("o/m@*[:10]")) == ["step2", "step10"]


def test_revisions_discover_offline_with_readable_ids_steps_and_commits(hub_cache, no_network):
    specs = discover(["org/tiny@step1000", "org/tiny@step2000"])
    assert [s.id for s in specs] == ["tiny.step1000", "tiny.step2000"]
    assert [s.step for s in specs] == [1000, 2000]
    assert [s.extra["hub"] for s in specs] == [
        {"repo_id": "org/tiny", "revision": "step1000", "commit": commit_of("org/tiny@step1000")},
        {"repo_id": "org/tiny", "revision": "step2000", "commit": commit_of("org/tiny@step2000")},
    ]
    assert specs[0].path == hub_cache / "models--org--tiny" / "snapshots" / commit_of("org/tiny@step1000")
    assert no_network == []


def test_a_pattern_offline_matches_the_cached_revisions_with_a_note(hub_cache):
    specs = discover(["org/tiny@step*"])
    assert [s.id for s in specs] == ["tiny.step1000", "tiny.step2000"]
    assert specs[0].extra["notes"] == [f"org/tiny: HF_HUB_OFFLINE is set, so its revisions were matched among the 2 in the Hub cache {hub_cache}"]
    assert [s.id for s in discover(["org/tiny@step*[1500:]"])] == ["tiny.step2000"]


def test_unknown_revision_repository_and_pattern_offline_are_one_line(hub_cache):
    for arg, msg in [
        ("org/tiny@step3000", f"org/tiny@step3000: not in the Hub cache {hub_cache} and HF_HUB_OFFLINE is set; "
         "unset HF_HUB_OFFLINE to download it, or point HF_HUB_CACHE at a cache that holds it"),
        ("org/other@main", f"org/other@main: not in the Hub cache {hub_cache} and HF_HUB_OFFLINE is set; "
         "unset HF_HUB_OFFLINE to download it, or point HF_HUB_CACHE at a cache that holds it"),
        ("org/other@step*", f"org/other: listing its revisions needs the Hub, and HF_HUB_OFFLINE is set with none of them "
         f"in the Hub cache {hub_cache}; unset HF_HUB_OFFLINE or name the revisions one by one"),
        ("org/tiny@ckpt*", "org/tiny@ckpt*: matches none of the repository's 2 revisions (step1000, step2000)"),
        ("no/such/dir", "checkpoint path not found: no/such/dir"),
    ]:
        with pytest.raises(CheckpointError) as e:
            discover([arg])
        assert str(e.value) == msg


def test_a_local_directory_wins_over_a_hub_id_of_the_same_spelling(hub_cache, tiny_ckpt, tmp_path, monkeypatch):
    local = tmp_path / "org" / "tiny"
    shutil.copytree(tiny_ckpt, local)
    monkeypatch.chdir(tmp_path)
    [spec] = discover(["org/tiny"])
    assert spec.path == local.relative_to(tmp_path) and "hub" not in spec.extra and spec.id == "tiny"


def test_a_revision_without_safetensors_is_refused_by_name(hub_cache, tiny_ckpt, tmp_path):
    src = tmp_path / "pickled"
    shutil.copytree(tiny_ckpt, src)
    (src / "model.safetensors").unlink()
    add_revision(hub_cache, "org/pickled", "main", src)
    with pytest.raises(CheckpointError) as e:
        discover(["org/pickled"])
    assert str(e.value) == (
        "org/pickled@main: the repository has no safetensors weights at this revision "
        "(pctce does not download pickled .bin weights)"
    )


def test_an_adapter_whose_base_is_a_hub_id_resolves_the_base_from_the_cache(hub_cache, tiny_ckpt, tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/tiny@step1000", "peft_type": "LORA"}))
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    [spec] = discover([adapter])
    assert spec.kind == "adapter"
    assert spec.base_model == hub_cache / "models--org--tiny" / "snapshots" / commit_of("org/tiny@step1000")
    assert spec.extra["base_hub"]["commit"] == commit_of("org/tiny@step1000")


class _Resp:
    status_code = 404
    headers: dict = {}
    url = "https://huggingface.co/api/models/org/x"
    request = None

    def json(self):
        return {}


@pytest.mark.parametrize(
    "error, msg",
    [
        ("RevisionNotFoundError", "org/x@step9: no such revision in the repository (check the branch or tag name)"),
        ("RepositoryNotFoundError", "org/x@step9: repository not found, or private and no token given (log in with `hf auth login` or set HF_TOKEN)"),
        ("GatedRepoError", "org/x@step9: the repository is gated; accept its terms on the Hub and log in (`hf auth login`) or set HF_TOKEN"),
    ],
)
def test_online_failures_are_one_line_each(monkeypatch, error, msg, tmp_path):
    """The Hub's own error types (raised by a stand-in for the download) become one line each."""
    import huggingface_hub
    from huggingface_hub import errors

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))

    def fake(*a, **k):
        raise getattr(errors, error)("404 Client Error", response=_Resp())

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    with pytest.raises(CheckpointError) as e:
        hub.fetch("org/x", "step9")
    assert str(e.value) == msg


def test_a_network_failure_names_hf_hub_offline_and_the_cache(monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))

    def fake(*a, **k):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    with pytest.raises(CheckpointError) as e:
        hub.fetch("org/x", "step9")
    assert str(e.value) == (
        "org/x@step9: cannot fetch from the Hugging Face Hub (ConnectionError: Name or service not known); "
        "check the network, or set HF_HUB_OFFLINE=1 with HF_HUB_CACHE pointing at a cache that holds it"
    )


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub.cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "c"))
    assert hub.cache_dir() == tmp_path / "c"


# --- scoring Hub revisions end to end (offline) -------------------------------------------------


def _score(*args):
    from tests.cli import run

    r = run("score", *args, "--format", "json", "--quiet")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    notes = out.pop("notes", [])
    [rows] = out.values()
    return {row["checkpoint"]: row for row in rows}, notes


def test_two_revisions_score_offline_with_their_commits_in_the_manifests(hub_cache, text_jsonl, tmp_path, no_network):
    from pctce_cli.store import read_manifest

    out = tmp_path / "out"
    rows, notes = _score("org/tiny@step1000", "org/tiny@step2000", "--data", text_jsonl, "--out", out)
    assert notes == []
    assert {k: r["status"] for k, r in rows.items()} == {"tiny.step1000": "scored", "tiny.step2000": "scored"}
    for rev in ("step1000", "step2000"):
        m = read_manifest(out, f"tiny.{rev}")
        assert m.step == int(rev[4:])
        assert m.hub == {"repo_id": "org/tiny", "revision": rev, "commit": commit_of(f"org/tiny@{rev}")}
    # again: the same commits are kept, not re-scored
    rows, _ = _score("org/tiny@step1000", "org/tiny@step2000", "--data", text_jsonl, "--out", out)
    assert {r["status"] for r in rows.values()} == {"skipped"}
    assert no_network == []


def test_a_branch_that_moved_is_rescored_with_a_note(hub_cache, text_jsonl, tmp_path, tiny_run):
    from pctce_cli.store import read_manifest

    out = tmp_path / "out"
    _score("org/tiny@step1000", "--data", text_jsonl, "--out", out)
    old = commit_of("org/tiny@step1000")
    new = add_revision(hub_cache, "org/tiny", "step1000", tiny_run / "checkpoint-1000", commit=commit_of("moved"))
    rows, notes = _score("org/tiny@step1000", "--data", text_jsonl, "--out", out)
    assert rows["tiny.step1000"]["status"] == "scored"
    assert notes == [f"tiny.step1000: re-scored: step1000 moved from commit {old[:7]} to {new[:7]}"]
    assert read_manifest(out, "tiny.step1000").hub["commit"] == new


def test_identical_weights_are_named_by_score_summary_gate_and_verify(hub_cache, text_jsonl, tmp_path, tiny_run):
    from tests.cli import run, run_json

    # step3000 serves step2000's weights under another commit (as pythia-2.8b's step branches do)
    add_revision(hub_cache, "org/tiny", "step3000", tiny_run / "checkpoint-500")
    out = tmp_path / "out"
    rows, notes = _score("org/tiny@step*", "--data", text_jsonl, "--out", out)
    c2, c3 = commit_of("org/tiny@step2000")[:7], commit_of("org/tiny@step3000")[:7]
    from pctce_cli.store import read_manifest

    fp = read_manifest(out, "tiny.step2000").weights_fingerprint[:8]
    note = f"tiny.step2000 and tiny.step3000 have identical weights (fingerprint {fp}; commits {c2} and {c3})"
    assert notes == [
        f"org/tiny: HF_HUB_OFFLINE is set, so its revisions were matched among the 3 in the Hub cache {hub_cache}", note
    ]
    assert note in run_json("summary", out)["notes"]
    r = run("verify", out, "--format", "json")
    assert r.exit_code == 0 and note in json.loads(r.stdout)["notes"]
    r = run("gate", out, "--baseline", "tiny.step2000", "--candidate", "tiny.step3000", "--rule", "mean:+5%", "--bootstrap", "50", "--format", "json")
    assert r.exit_code == 0, r.output
    assert note in json.loads(r.stdout)["notes"]
    # local directories alike: two copies of one checkpoint
    a, b = tmp_path / "local" / "a", tmp_path / "local" / "b"
    shutil.copytree(tiny_run / "checkpoint-500", a)
    shutil.copytree(tiny_run / "checkpoint-500", b)
    _, notes = _score(a, b, "--data", text_jsonl, "--out", tmp_path / "out2")
    assert len(notes) == 1 and notes[0].startswith("a and b have identical weights (fingerprint ")
