"""Building test inputs without a model, the one home for it: synthetic stores, read-counting spies, close-number comparators."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pctce_cli.store import finish_partition, start_partition, write_shard

SETTINGS = {
    "prefix": "auto",
    "text_field": "text",
    "prompt_field": None,
    "completion_field": None,
    "messages_field": "messages",
    "split_on": "none",
    "max_length": 64,
    "stride": 32,
}


def make_store(root, ck_id, ce, doc, *, token=None, rank=None, n_bytes=None, step=None, fingerprints=None, settings=None, shards=1, divergence=None, reference=None, pos=None, doc_columns=None):
    """Write a synthetic but complete pctce store partition from numpy arrays.

    ``divergence``: ``{"kl": …, "dp": …, "same_top1": …}`` per target, as ``pctce score --reference`` stores them.
    ``reference``: the manifest's ``reference`` of those (default: one reference every such store shares).

    ``doc`` must be sorted (the store's order); ``pos`` counts targets within each document unless given.
    ``doc_columns``: more per-document columns (name → one value per document, in id order), e.g. ``n_input``.
    Returns the score directory.
    """
    root = Path(root)
    ce = np.asarray(ce, dtype=np.float32)
    doc = np.asarray(doc, dtype=np.int64)
    ids, starts, counts = np.unique(doc, return_index=True, return_counts=True)
    pos = np.asarray(pos if pos is not None else np.arange(len(doc)) - np.repeat(starts, counts), dtype=np.int32)
    token = np.asarray(token if token is not None else (doc * 7 + pos) % 300, dtype=np.int32)
    rank = np.asarray(rank if rank is not None else np.zeros(len(ce)), dtype=np.int32)
    n_bytes = np.asarray(n_bytes if n_bytes is not None else 4 * counts, dtype=np.int64)
    fp = {"data": "d" * 64, "tokenizer": "t" * 64, "documents": "x" * 64, "weights": f"w-{ck_id}"}
    fp.update(fingerprints or {})
    part = start_partition(root, ck_id, {"weights": fp["weights"]}, fresh=True)
    doc_groups = np.array_split(np.arange(len(ids)), shards)
    for k, g in enumerate(doc_groups):
        sel = np.isin(doc, ids[g])
        scored = SimpleNamespace(
            doc=doc[sel], pos=pos[sel], token=token[sel], ce=ce[sel], rank=rank[sel],
            doc_table={"doc": ids[g], "n_targets": counts[g], "n_bytes": n_bytes[g], "n_words": counts[g], **{k: np.asarray(v, dtype=np.int64)[g] for k, v in (doc_columns or {}).items()}},
            seconds=0.0,
            **{name: np.asarray(v, dtype=np.int8 if name == "same_top1" else np.float32)[sel] for name, v in (divergence or {}).items()},
        )
        write_shard(part, k, 0, scored)
    manifest = {
        "id": ck_id,
        "step": step,
        "path": f"/checkpoints/{ck_id}",
        "tokenizer_path": "/checkpoints/tokenizer",
        "fingerprints": fp,
        "settings": {**SETTINGS, **(settings or {})},
        "data": {"files": ["/data/val.jsonl"]},
        **({"reference": reference or {"path": "/checkpoints/reference", "fingerprint": "r" * 64}} if divergence else {}),
    }
    finish_partition(part, manifest, shards)
    return root


def docs_of(n_docs, per_doc):
    """Sorted document ids: ``n_docs`` documents of ``per_doc`` targets each."""
    return np.repeat(np.arange(n_docs), per_doc)


def count_shard_reads(monkeypatch, *modules) -> dict[str, int]:
    """Count ``read_shard`` calls by path, in each module given (default ``pctce_cli.store.read``).

    Returns the dict the spies fill: path → number of reads. A module that
    imported ``read_shard`` by name (``store.units``) needs its own spy.
    """
    from pctce_cli.store import read

    reads: dict[str, int] = {}

    def counting(real):
        def f(path, *args, **kw):
            reads[str(path)] = reads.get(str(path), 0) + 1
            return real(path, *args, **kw)

        return f

    for module in modules or (read,):
        monkeypatch.setattr(module, "read_shard", counting(module.read_shard))
    return reads


def assert_close_tree(a, b, rel: float, path: str = "") -> None:
    """Equal JSON trees: same keys, lengths, strings and integers; floats within ``rel`` (NaN/null equal)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), path
        for k in a:
            assert_close_tree(a[k], b[k], rel, f"{path}/{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close_tree(x, y, rel, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert b == pytest.approx(a, rel=rel, abs=1e-12), path
    else:
        assert a == b, path


# A printed number: digits with optional thousands separators, decimals and exponent.
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?(?:e[-+]\d+)?")


def _last_digit_unit(token: str) -> float:
    """The value of one unit in the last printed digit of ``token`` (``20.3954`` → 1e-4, ``3.967e-04`` → 1e-7)."""
    mantissa, _, exponent = token.replace(",", "").partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (-decimals + (int(exponent) if exponent else 0))


def assert_same_text_close_numbers(expected: list[str], actual: list[str]) -> None:
    """Same lines, words and integers; each printed decimal within 2 units of its last printed digit.

    The demo's numbers come from model forward passes, whose float32 round-off
    differs between CPUs, thread counts and library builds (one float32 step
    turned topk5's p99 20.3953 into 20.3954 on another machine). A rounding flip
    can move the last printed digit by one, and a column can change width, so
    numbers are parsed and compared within 2 units of their last digit and the
    text around them is compared with runs of spaces and box rules collapsed.
    """
    assert len(expected) == len(actual), "\n".join(difflib.unified_diff(expected, actual, lineterm=""))
    for e_line, a_line in zip(expected, actual):
        e_nums, a_nums = _NUMBER.findall(e_line), _NUMBER.findall(a_line)

        def skeleton(line: str) -> str:
            return re.sub(r"[\s─━]+", " ", _NUMBER.sub("#", line)).strip()

        assert skeleton(e_line) == skeleton(a_line) and len(e_nums) == len(a_nums), f"README: {e_line}\nrun:    {a_line}"
        for e, a in zip(e_nums, a_nums):
            if not any(c in e + a for c in ".e"):  # counts, steps and names are exact
                assert e == a, f"{e} vs {a} in\nREADME: {e_line}\nrun:    {a_line}"
                continue
            tol = 2 * max(_last_digit_unit(e), _last_digit_unit(a))
            assert abs(float(e.replace(",", "")) - float(a.replace(",", ""))) <= tol * (1 + 1e-9), (
                f"{e} vs {a} (tolerance {tol:g}) in\nREADME: {e_line}\nrun:    {a_line}"
            )


def assert_same_summaries(loaded: dict, streamed: dict) -> None:
    """Two ``summary --format json`` outputs with the same tables, rows and columns: counts, order statistics and
    interval bounds of percentiles equal exactly, sums taken in another order (means, ppl, bpb) to 1e-12 relative."""
    assert list(streamed) == list(loaded)
    for title in loaded:
        if title == "notes":
            continue
        assert [list(r) for r in streamed[title]] == [list(r) for r in loaded[title]], title
        for a, b in zip(loaded[title], streamed[title]):
            for k, v in a.items():
                if isinstance(v, float) and k.split("_")[0] in ("mean", "ppl", "bpb", "byte", "word"):
                    assert b[k] == pytest.approx(v, rel=1e-12), (title, k)
                else:
                    assert b[k] == v, (title, k)
