"""The fixed cost of a run: what scoring does to start and end faster changes nothing it computes,
and the commands that only read a store never import torch or transformers."""

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pctce_cli

from pctce_cli.scoring.startup import paused_gc
from pctce_cli.store import load_scores
from tests.cli import run
from tests.helpers import make_store


def test_paused_gc_holds_the_collector_off_and_restores_it():
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():  # nested: the inner block leaves it off for the outer one
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_paused_gc_restores_the_collector_when_the_block_raises():
    with pytest.raises(KeyError), paused_gc():
        raise KeyError("x")
    assert gc.isenabled()


def test_paused_gc_leaves_a_collector_that_was_off_off():
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.slow
def test_score_leaves_the_collector_on_after_a_run_and_after_a_failed_load(tiny_ckpt, text_jsonl, tmp_path):
    r = run("score", tiny_ckpt, "--data", text_jsonl, "--out", tmp_path / "out", "-q")
    assert r.exit_code == 0, r.output
    assert gc.isenabled()
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_ckpt.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    r = run("score", broken, "--data", text_jsonl, "--out", tmp_path / "out2", "-q")
    assert r.exit_code == 2 and "cannot load the model weights" in r.output
    assert gc.isenabled()


def test_scores_are_the_same_with_the_collector_paused_or_not(tiny_ckpt, text_jsonl, tmp_path, monkeypatch):
    """The collector frees nothing the scores depend on: a run with the pause made a no-op writes the same CE and ranks."""
    import contextlib

    from pctce_cli.scoring import hf, run as run_module

    assert run("score", tiny_ckpt, "--data", text_jsonl, "--out", tmp_path / "paused", "-q").exit_code == 0
    monkeypatch.setattr(hf, "paused_gc", contextlib.nullcontext)
    monkeypatch.setattr(run_module, "paused_gc", contextlib.nullcontext)
    assert run("score", tiny_ckpt, "--data", text_jsonl, "--out", tmp_path / "plain", "-q").exit_code == 0
    a, b = load_scores(tmp_path / "paused", "tiny"), load_scores(tmp_path / "plain", "tiny")
    assert np.array_equal(a.ce, b.ce) and np.array_equal(a.rank, b.rank) and np.array_equal(a.doc, b.doc)
    assert gc.isenabled()


def test_the_cli_process_freezes_its_objects_before_it_exits(monkeypatch):
    """``main`` ends with ``gc.freeze()`` (the interpreter's teardown then skips torch's objects), also on an error exit."""
    from pctce_cli import cli

    from pctce_cli import threads

    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    monkeypatch.setattr(threads, "configure_threads", lambda: {})  # main's OpenMP settings would outlive this test
    monkeypatch.setattr(sys, "argv", ["pctce", "--version"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code in (0, None) and frozen == [True]
    monkeypatch.setattr(sys, "argv", ["pctce", "summary", "/nonexistent/store"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 2 and frozen == [True, True]


# every command that only reads a store, and the help of the one that scores
READERS = [
    ["--help"],
    ["score", "--help"],
    ["summary", "{s}"],
    ["summary", "{s}", "--by", "position"],
    ["verify", "{s}"],
    ["concord", "{s}"],
    ["select", "{s}"],
    ["shape", "{s}"],
    ["decompose", "{s}"],
    ["compare", "{s}:a", "{s}:b"],
]


@pytest.mark.slow
def test_help_and_the_commands_that_read_a_store_never_import_torch(tmp_path):
    rng = np.random.default_rng(0)
    doc = np.repeat(np.arange(20), 30)
    for ck in ("a", "b"):
        make_store(tmp_path / "s", ck, rng.gamma(2.0, 1.5, len(doc)), doc, step={"a": 1, "b": 2}[ck])
    argvs = [[a.format(s=tmp_path / "s") for a in argv] for argv in READERS]
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from pctce_cli.cli import app\n"
        "codes = [CliRunner().invoke(app, argv).exit_code for argv in json.loads(sys.argv[1])]\n"
        "print(json.dumps({'codes': codes, 'heavy': sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules)}))\n"
    )
    root = str(Path(pctce_cli.__file__).resolve().parents[1])  # this tree's pctce_cli, not an installed one
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(argvs)], capture_output=True, text=True, check=True, env=env)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["codes"] == [0] * len(READERS), list(zip(READERS, got["codes"]))
    assert got["heavy"] == []
