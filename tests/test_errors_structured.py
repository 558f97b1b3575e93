"""Errors carry data, the edge words them: one error, worded as options by the CLI and as parameters by the Python API."""

from __future__ import annotations

import numpy as np
import pytest

from pctce_cli.cli.common import OPTIONS, cli_message
from pctce_cli.errors import CheckpointError, PctceError, UsageError, option_message
from tests.cli import run
from tests.helpers import make_store


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    doc = np.repeat(np.arange(4), 5)
    for ck in ("a", "b"):
        make_store(tmp_path / "s", ck, rng.gamma(2.0, 1.0, doc.size), doc)
    return tmp_path / "s"


def test_the_fields_and_the_python_words():
    e = CheckpointError("cannot decode 'x': gone", remedy="pass tokenizer DIR or decode=False", remedy_param=("tokenizer", "decode=False"))
    assert (e.message, e.remedy, e.params, e.remedy_params) == ("cannot decode 'x': gone", "pass tokenizer DIR or decode=False", (), ("tokenizer", "decode=False"))
    assert str(e) == "cannot decode 'x': gone; pass tokenizer DIR or decode=False"
    assert cli_message(e) == "cannot decode 'x': gone; pass --tokenizer DIR or --no-decode"
    assert option_message(e, OPTIONS, remedy=False) == "cannot decode 'x': gone"


def test_a_phrase_the_table_does_not_map_marks_its_place():
    e = UsageError("no baseline: pass baseline ID", param=("no baseline", "baseline"))
    assert cli_message(e) == "no baseline: pass --baseline ID"


def test_quoted_values_before_the_parameter_are_left_alone():
    e = UsageError("subset 'vs': no document", param="subset")
    assert cli_message(e) == "--subset 'vs': no document"


def test_every_option_in_the_table_is_spelled_as_an_option():
    assert all(o.startswith("--") for o in OPTIONS.values())


def test_the_same_error_through_the_cli_and_the_python_api(store):
    from pctce_cli.compare import run_compare

    r = run("compare", "a", "b", "--store", store, "--top", "-1")
    assert (r.exit_code, r.stderr.strip()) == (2, "Error: --top must be >= 0, got -1")
    with pytest.raises(UsageError) as e:
        run_compare("a", "b", store, [50.0], top=-1)
    assert str(e.value) == "top must be >= 0, got -1" and e.value.params == ("top",)


def test_a_glob_error_through_the_cli_and_the_python_api(store):
    from pctce_cli.catalog import resolve_checkpoints

    r = run("summary", store, "-c", "zz*")
    assert (r.exit_code, r.stderr.strip()) == (2, "Error: --checkpoint 'zz*' matches no checkpoint (have: a, b)")
    with pytest.raises(PctceError) as e:
        resolve_checkpoints([store], ["zz*"])
    assert str(e.value) == "patterns 'zz*' matches no checkpoint (have: a, b)"


def test_a_remedy_through_the_cli_and_the_python_api(store):
    from pctce_cli.gate.evaluate import run_gate

    r = run("gate", store, "--candidate", "b", "--rule", "p95:+3%")
    assert (r.exit_code, r.stderr.strip()) == (2, 'Error: no baseline: pass --baseline ID or set baseline = "ID" in the policy file')
    with pytest.raises(UsageError) as e:
        run_gate([store], candidates=["b"], rules=["p95:+3%"])
    assert str(e.value) == 'no baseline: pass baseline ID or set baseline = "ID" in the policy file'
