"""The distillation students against their teacher (pctce_cli/demo/kl.py): scored with --reference, summarized, read."""

from __future__ import annotations

from pathlib import Path

import pytest

from pctce_cli.demo.kl import COLUMNS, STUDENTS, TITLE, distill_kl, kl_part, tail_reading

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def test_tail_reading_names_the_heavier_tails():
    rows = [
        {"checkpoint": "fullkl.c", "mean": 0.1, "p50": 0.1, "p99.9": 0.4},
        {"checkpoint": "topk40.c", "mean": 0.1, "p50": 0.1, "p99.9": 0.3},
        {"checkpoint": "topk5.c", "mean": 0.2, "p50": 0.1, "p99.9": 0.9},
    ]
    assert tail_reading(rows)[-1] == "1 of 2 top-K students has a heavier KL tail (p99.9 / p50) than the full-KL student (×4.0): topk5.c (×9.0)."


@pytest.mark.slow
def test_the_students_against_the_teacher(tmp_path):
    report = distill_kl(SAMPLE, tmp_path / "kl")
    [(title, rows)] = report.sections
    assert title == "Per-token KL summaries (nats)"
    assert sorted(r["checkpoint"].split(".")[0] for r in rows) == sorted(STUDENTS)
    assert all(r["p50"] > 0 and r["p50"] <= r["p99.9"] <= r["max"] and 0 < r["same_top1"] < 1 for r in rows)
    assert any("p99.9 / p50" in n for n in report.notes)
    part = kl_part(tmp_path / "kl")  # what pctce demo shows of the same store: one row per student, K falling
    [(_, shown)] = part.report.sections
    assert part.title == TITLE and [r["student"] for r in shown] == list(STUDENTS) and list(shown[0]) == ["student", *COLUMNS]
    assert part.report.notes[1].startswith("p99.9 / p50 (how heavy the tail is relative to the median): fullkl ×")
