"""The demo's cross-tokenizer part: the teacher and the same recipe with another tokenizer, in words and bytes (docs/definitions.md#words-and-bytes)."""

from __future__ import annotations

import json
from pathlib import Path

from pctce_cli.analysis.report import Report
from pctce_cli.analysis.summary import summary_rows
from pctce_cli.catalog import resolve_checkpoints
from pctce_cli.demo.common import DemoPart, _rows
from pctce_cli.errors import MixedInputError
from pctce_cli.fmt import short

PERCENTILES = [50.0, 95.0]
TITLE = "Across tokenizers: words and bytes"


def crosstok_part(distill: Path, crosstok: Path, meta: Path) -> DemoPart:
    """The final teacher against the final checkpoint of each cross-tokenizer run, in words, bytes and tokens.

    Args:
        distill: The distillation study's score directory (holds the teacher).
        crosstok: The score directory of the runs with another tokenizer,
            scored on the same validation data.
        meta: ``sample_data/meta.csv``.
    """
    everything = resolve_checkpoints([distill, crosstok], meta=meta, unit="word")
    teacher = _final([c for c in everything if c.run == "teacher"])
    others = [_final([c for c in everything if c.root == Path(crosstok) and c.run == run])
              for run in sorted({c.run for c in everything if c.root == Path(crosstok)})]
    ids = [teacher.id] + [c.id for c in others]
    refusal = None
    try:
        resolve_checkpoints([distill, crosstok], patterns=ids, meta=meta)  # --unit token, the default
    except MixedInputError as e:
        refusal = str(e)
    cks = [teacher, *others]
    vocab = {c.id: _vocab(c) for c in cks}
    word = [{**r, "vocab": vocab[r["checkpoint"]]} for r in summary_rows(cks, PERCENTILES, unit="word")]
    data = teacher.manifest.fingerprints.get("data")  # every checkpoint's: resolve_checkpoints checked it
    return crosstok_part_from_rows(word, summary_rows(cks, PERCENTILES, unit="byte"), summary_rows(cks, PERCENTILES), refusal, data)


def _final(cks):
    return max(cks, key=lambda c: c.step or 0)


def _vocab(ck) -> int | None:
    """The checkpoint's vocabulary size, from the model's config.json where it was scored (None if gone)."""
    path = Path(ck.manifest.path or "") / "config.json"
    try:
        return int(json.loads(path.read_text())["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def crosstok_part_from_rows(word: list[dict], byte: list[dict], token: list[dict], refusal: str | None, data: str | None = None) -> DemoPart:
    """The part from summary rows (the first row of each is the teacher), with readings computed from them.

    Args:
        word: ``summary --unit word`` rows (``checkpoint, targets, words, mean, p50, p95``, and ``vocab``).
        byte: ``summary --unit byte`` rows (``checkpoint, targets, bytes, mean, p50, p95, bpb``).
        token: per-token rows of the same checkpoints (``checkpoint, targets, mean, p50, p95``).
        refusal: what ``--unit token`` said about the pair (None: it accepted them).
        data: The data fingerprint they share.
    """
    report = Report()
    report.add("Per word (pctce summary --unit word): the CE of each word, summed over its tokens", _rows_of(word, ["checkpoint", "vocab", "targets", "words", "mean", "p50", "p95"]))
    report.add("Per byte (pctce summary --unit byte): each token's CE spread over its bytes", _rows_of(byte, ["checkpoint", "targets", "bytes", "mean", "p50", "p95", "bpb"]))
    report.add("Per token, the unit --unit token would compare (different units of text here)", _rows_of(token, ["checkpoint", "targets", "mean", "p50", "p95"]))
    if refusal is not None:
        report.notes.append(f"pctce summary in tokens refuses the pair: {refusal}.")
    else:
        report.notes.append("pctce summary in tokens accepts these checkpoints: they share a tokenizer.")
    w0, b0, t0 = word[0], byte[0], token[0]
    for w, b, t in zip(word[1:], byte[1:], token[1:]):
        report.notes += _readings(w0, b0, t0, w, b, t, data)
    return DemoPart(TITLE, report)


def _rows_of(rows: list[dict], columns: list[str]) -> list[dict]:
    import pandas as pd

    return _rows(pd.DataFrame(rows), columns)


def _lower(a: dict, b: dict, key: str) -> tuple[dict, dict]:
    """``(lower, higher)`` of two rows by ``key``."""
    return (a, b) if a[key] <= b[key] else (b, a)


def _readings(w0: dict, b0: dict, t0: dict, w: dict, b: dict, t: dict, data: str | None) -> list[str]:
    """What the numbers say about the teacher (``*0``) against one other checkpoint."""
    a, o = w0["checkpoint"], w["checkpoint"]
    notes = []
    if w0["words"] == w["words"] and b0["bytes"] == b["bytes"]:
        per = f"{short(b0['bytes'] / t0['targets'], 2)} vs {short(b['bytes'] / t['targets'], 2)} bytes per token"
        scored = f"Both were scored on the same data (fingerprint {data[:8]}): " if data else "Both read "
        notes.append(
            f"{scored}the same {w0['words']:,} words and {b0['bytes']:,} bytes, as {t0['targets']:,} tokens ({a}) "
            f"and {t['targets']:,} ({o}): {per}. Words and bytes are the units both share."
        )
    else:
        notes.append(f"{a} and {o} hold different words or bytes ({w0['words']:,} vs {w['words']:,} words, {b0['bytes']:,} vs {b['bytes']:,} bytes): they did not read the same text.")
    lo, hi = _lower(w0, w, "p50")
    mean_lo = _lower(w0, w, "mean")[0]
    also = "and the lower mean" if mean_lo is lo else "but the higher mean"
    notes.append(
        f"Per word, {lo['checkpoint']} has the lower median ({short(lo['p50'])} vs {short(hi['p50'])} nats) "
        f"{also} ({short(lo['mean'])} vs {short(hi['mean'])})."
    )
    blo, bhi = _lower(b0, b, "bpb")
    how = "also has" if blo["checkpoint"] == lo["checkpoint"] else "has, however,"
    notes.append(f"Per byte, {blo['checkpoint']} {how} the lower bpb: {short(blo['bpb'])} vs {short(bhi['bpb'])} bits per byte.")
    tlo, thi = _lower(t0, t, "p50")
    if tlo["checkpoint"] != lo["checkpoint"]:
        why = (f"it cuts the same text into more, shorter tokens ({tlo['targets']:,} vs {thi['targets']:,}), each easier to predict"
               if tlo["targets"] > thi["targets"] else f"its tokens are different units of text ({tlo['targets']:,} vs {thi['targets']:,})")
        notes.append(
            f"Per token the order flips: {tlo['checkpoint']} has the lower median token CE ({short(tlo['p50'])} vs {short(thi['p50'])}) "
            f"although its words cost more, because {why}. This is why pctce refuses token summaries across tokenizers."
        )
    else:
        notes.append(
            f"Per token, {tlo['checkpoint']} also has the lower median ({short(tlo['p50'])} vs {short(thi['p50'])}), "
            "but only words and bytes measure the two on the same units."
        )
    return notes
