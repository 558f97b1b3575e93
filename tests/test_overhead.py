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
    plain = lambda freeze_imports=False: contextlib.nullcontext()  # noqa: E731
    monkeypatch.setattr(hf, "paused_gc", plain)
    monkeypatch.setattr(run_module, "paused_gc", plain)
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


def test_paused_gc_freezes_only_when_asked_and_only_when_the_block_imported(tmp_path, monkeypatch):
    from pctce_cli.scoring import startup

    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    monkeypatch.setattr(startup, "_FREEZING", True)  # as in pctce's own process (allow_freezing)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "pctce_fresh_module_a.py").write_text("X = 1\n")
    (tmp_path / "pctce_fresh_module_b.py").write_text("X = 2\n")
    with paused_gc(freeze_imports=True):
        pass  # nothing imported
    with paused_gc():
        import pctce_fresh_module_a  # noqa: F401  (imported, but not asked to freeze)
    assert frozen == []
    with paused_gc(freeze_imports=True):
        import pctce_fresh_module_b  # noqa: F401
    assert frozen == [True]
    assert gc.isenabled()
    monkeypatch.setattr(startup, "_FREEZING", False)  # a library caller's process: its objects are never frozen
    (tmp_path / "pctce_fresh_module_c.py").write_text("X = 3\n")
    with paused_gc(freeze_imports=True):
        import pctce_fresh_module_c  # noqa: F401
    assert frozen == [True]


def test_only_the_command_lines_process_allows_freezing(monkeypatch):
    """``main`` allows it; importing pctce, or running its commands in-process (CliRunner, the API), does not."""
    from pctce_cli import cli, threads
    from pctce_cli.scoring import startup

    monkeypatch.setattr(startup, "_FREEZING", False)
    assert run("--version").exit_code == 0 and startup._FREEZING is False
    monkeypatch.setattr(gc, "freeze", lambda: None)  # main's own freeze at exit
    monkeypatch.setattr(threads, "configure_threads", lambda: {})
    monkeypatch.setattr(sys, "argv", ["pctce", "--version"])
    with pytest.raises(SystemExit):
        cli.main()
    assert startup._FREEZING is True


def _in_fresh_process(code: str, *args) -> dict:
    root = str(Path(pctce_cli.__file__).resolve().parents[1])  # this tree's pctce_cli, not an installed one
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_loaded_model_stays_collectable_while_its_modules_are_frozen(tiny_ckpt):
    """The model type's modules are imported and frozen before the load; the model itself is not frozen
    (a frozen cycle would never be freed, and a run loads one model per checkpoint)."""
    code = (
        "import gc, json, sys\n"
        "from pathlib import Path\n"
        "import torch\n"
        "from pctce_cli.scoring import hf, startup\n"
        "startup.allow_freezing()\n"  # as pctce's main does
        "model = hf._load_causal_lm(Path(sys.argv[1]), torch.float32, torch.device('cpu'), False)\n"
        "tracked = {id(o) for o in gc.get_objects()}\n"  # the collector's generations: frozen objects are not in them
        "from transformers.models.gpt2 import modeling_gpt2\n"
        "print(json.dumps({'frozen': gc.get_freeze_count(), 'model': id(model) in tracked,\n"
        "    'weight': id(model.lm_head.weight) in tracked, 'module_class': id(modeling_gpt2.GPT2Block) in tracked}))\n"
    )
    got = _in_fresh_process(code, tiny_ckpt)
    assert got["frozen"] > 100_000  # torch, transformers and modeling_gpt2's objects
    assert got["model"] and got["weight"]  # still walked by the collector, so a cycle in it is freed
    assert not got["module_class"]


def test_import_model_modules_raises_nothing_for_a_config_it_cannot_use(tmp_path):
    from pctce_cli.scoring import hf

    (tmp_path / "config.json").write_text('{"model_type": "no-such-model-type"}')
    hf.import_model_modules(tmp_path)  # the load reports it, with its own message
    hf.import_model_modules(tmp_path / "missing")
    assert gc.isenabled()


@pytest.mark.slow
def test_a_scoring_run_imports_neither_pandas_nor_peft(tiny_ckpt, text_jsonl, tmp_path):
    """Scoring a model writes and reads back its shards without pandas, and records peft's version without importing it."""
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from pctce_cli.cli import app\n"
        "r = CliRunner().invoke(app, ['score', sys.argv[1], '--data', sys.argv[2], '--out', sys.argv[3], '-q'])\n"
        "print(json.dumps({'code': r.exit_code, 'heavy': sorted(m for m in ('pandas', 'peft') if m in sys.modules)}))\n"
    )
    got = _in_fresh_process(code, tiny_ckpt, text_jsonl, tmp_path / "out")
    assert got == {"code": 0, "heavy": []}
    from importlib import metadata

    versions = load_scores(tmp_path / "out", "tiny").manifest.versions
    try:
        assert versions["peft"] == metadata.version("peft")
    except metadata.PackageNotFoundError:
        assert "peft" not in versions
