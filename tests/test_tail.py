"""`pctce tail` on a tiny real scored store: decoded context and targets, --by document, --vs, clear errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pctce_cli.store import load_scores
from pctce_cli.tail import visible
from pctce_cli.testing import reseal
from tests.conftest import TEXTS
from .cli import run


def tail_json(*args):
    r = run("tail", *args, "-f", "json")
    assert r.exit_code == 0, r.stderr
    obj = json.loads(r.stdout)
    [key] = [k for k in obj if k != "notes"]
    return obj[key], obj["notes"]


@pytest.fixture(scope="module")
def scored(tmp_path_factory, tiny_ckpt):
    """A store holding the tiny GPT-2's scores on TEXTS, and the data file."""
    root = tmp_path_factory.mktemp("tail")
    data = root / "val.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    out = root / "scores"
    r = run("score", tiny_ckpt, "--data", data, "--out", out, "--quiet", "--format", "json")
    assert r.exit_code == 0, r.stderr
    return out, data


@pytest.fixture(scope="module")
def reference(tiny_ckpt):
    """Independent tokenization: BOS prefix + the text's tokens, per document."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_ckpt)
    return tok, [[tok.bos_token_id, *tok(t, add_special_tokens=False)["input_ids"]] for t in TEXTS]


def test_tail_by_token_decodes_context_and_target(scored, reference):
    out, _ = scored
    tok, ids = reference
    rows, notes = tail_json(out, "--top", "6", "--context", "5")
    s = load_scores(out, "tiny")
    assert [r["ce"] for r in rows] == pytest.approx(np.sort(s.ce)[::-1][:6].tolist())
    for r in rows:
        doc_ids, i = ids[r["doc"]], r["pos"] + 1  # the BOS prefix precedes position 0
        assert r["token"] == doc_ids[i]
        assert r["target"] == visible(tok.decode([doc_ids[i]]))
        assert r["context"] == visible(tok.decode(doc_ids[max(0, i - 5) : i]))
        k = np.flatnonzero((s.doc == r["doc"]) & (s.pos == r["pos"]))[0]
        assert r["rank"] == s.rank[k]
    assert notes[0].startswith(f"The 6 highest-CE of {len(s.ce):,} targets carry ")


def test_first_target_context_is_the_prefix_token(scored, reference):
    out, _ = scored
    tok, ids = reference
    s = load_scores(out, "tiny")
    rows, _ = tail_json(out, "--top", str(len(s.ce)), "--context", "3")
    first = next(r for r in rows if r["doc"] == 3 and r["pos"] == 0)
    assert first["context"] == tok.bos_token and first["target"] == tok.decode([ids[3][1]])
    text = "".join(r["target"] for r in sorted((r for r in rows if r["doc"] == 3), key=lambda r: r["pos"]))
    assert text == TEXTS[3]


def test_tail_by_document(scored, reference):
    out, _ = scored
    tok, ids = reference
    s = load_scores(out, "tiny")
    rows, notes = tail_json(out, "--by", "document", "--percentile", "80", "--top", "3")
    thr = np.percentile(s.ce.astype(np.float64), 80)
    mass = np.bincount(s.doc, weights=np.where(s.ce >= thr, s.ce.astype(np.float64), 0.0))
    assert [r["doc"] for r in rows] == np.argsort(-mass, kind="stable")[:3].tolist()
    for r in rows:
        sel = s.doc == r["doc"]
        assert r["targets"] == sel.sum() and r["tail targets"] == (s.ce[sel] >= thr).sum()
        assert r["tail CE share"] == pytest.approx(mass[r["doc"]] / mass.sum())
        assert r["worst ce"] == pytest.approx(float(s.ce[sel].max()))
        i = r["worst pos"] + 1
        assert r["target"] == visible(tok.decode([ids[r["doc"]][i]]))
    assert notes[0].startswith(f"Tail: the {(s.ce >= thr).sum()} targets with CE ≥ p80 = ")


def _copy(out, dest):
    shutil.copytree(out, dest)
    return dest


def _edit_manifest(store, **changes):
    path = store / "checkpoint=tiny" / "_manifest.json"
    m = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "files":
            m["data"]["files"] = value
        else:
            m[key] = value
    path.write_text(json.dumps(m))
    reseal(path.parent)  # an edit on purpose: the manifest's checksum follows


def test_vs_adds_the_other_checkpoints_ce(scored, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out, _ = scored
    other = _copy(out, tmp_path / "other")
    for f in (other / "checkpoint=tiny").glob("part-*.parquet"):
        t = pq.read_table(f)
        doubled = pa.array(t["ce"].to_numpy() * 2, type=pa.float32())
        pq.write_table(t.set_column(t.column_names.index("ce"), "ce", doubled), f)
    reseal(other / "checkpoint=tiny")
    rows, notes = tail_json(out, "--top", "4", "--vs", f"{other}:tiny", "--no-decode")
    for r in rows:
        assert r["ce vs"] == pytest.approx(2 * r["ce"]) and r["Δ vs"] == pytest.approx(r["ce"])
        assert "context" not in r
    assert notes[-1] == "ce vs: CE of 'other/tiny' on the same target (Δ vs = ce vs − ce)."
    rows, _ = tail_json(out, "--by", "document", "--top", "2", "--vs", f"{other}:tiny", "--no-decode")
    assert rows[0]["mean ce vs"] == pytest.approx(2 * rows[0]["mean ce"])


def test_clear_errors_when_the_tokenizer_or_data_is_gone(scored, tmp_path):
    out, data = scored
    gone_tok = _copy(out, tmp_path / "a")
    _edit_manifest(gone_tok, tokenizer_path=str(tmp_path / "deleted-tokenizer"))
    r = run("tail", gone_tok)
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        f"Error: cannot decode 'tiny': its tokenizer {tmp_path / 'deleted-tokenizer'} (recorded in the manifest) "
        "is gone; pass --tokenizer DIR or --no-decode"
    )
    assert run("tail", gone_tok, "--no-decode").exit_code == 0

    gone_data = _copy(out, tmp_path / "b")
    _edit_manifest(gone_data, files=[str(tmp_path / "moved" / "val.jsonl")])
    r = run("tail", gone_data)
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        f"Error: cannot decode 'tiny': data file {tmp_path / 'moved' / 'val.jsonl'} (recorded in the manifest) "
        "is gone; pass --data FILE (a copy of the scored data) or --no-decode"
    )
    copy = tmp_path / "copy" / "val.jsonl"
    copy.parent.mkdir()
    shutil.copy(data, copy)
    assert run("tail", gone_data, "--data", copy, "--top", "2").exit_code == 0
    copy.write_text(copy.read_text() + json.dumps({"text": "one more"}) + "\n")
    r = run("tail", gone_data, "--data", copy)
    assert r.exit_code == 2 and "differ from the data it was scored on (data fingerprint changed)" in r.stderr


def test_bad_options(scored):
    out, _ = scored
    r = run("tail", out, "--top", "0")
    assert r.exit_code == 2 and r.stderr.strip() == "Error: --top must be at least 1, got 0"
    r = run("tail", f"{out}:nope")
    assert r.exit_code == 2 and r.stderr.strip() == f"Error: no checkpoint 'nope' in {out}"


@pytest.mark.slow
def test_control_characters_in_the_data_never_reach_the_terminal(tmp_path, tiny_ckpt):
    """ESC/OSC/BEL sequences in the text (colours, window title) are shown escaped in every human format."""
    hostile = "Plain words \x1b[31mred\x1b[0m then \x1b]0;owned\x07 and \x9b2J end."
    data = tmp_path / "val.jsonl"
    data.write_text(json.dumps({"text": hostile}) + "\n" + json.dumps({"text": TEXTS[0]}) + "\n", encoding="utf-8")
    out = tmp_path / "scores"
    assert run("score", tiny_ckpt, "--data", data, "--out", out, "--quiet").exit_code == 0
    for fmt in ("table", "csv", "markdown"):
        r = run("tail", out, "--top", "50", "--context", "40", "-f", fmt)
        assert r.exit_code == 0, r.stderr
        assert not any(ch in r.stdout for ch in "\x1b\x07\x9b"), fmt
        assert "\\x1b" in r.stdout, fmt  # shown, escaped
    r = run("report", out, "--tail-top", "50", "--out", tmp_path / "r.html")
    assert r.exit_code == 0, r.stderr
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert not any(ch in html for ch in "\x1b\x07\x9b") and "\\x1b" in html
