"""`pctce report` on a store with divergence: a KL section (figures, then the table on demand) and its finding; none without."""

from __future__ import annotations

import numpy as np
import pytest

from pctce_cli.catalog import resolve_checkpoints
from pctce_cli.report import Details, Image, ReportOptions, Section, build_report, walk
from pctce_cli.report.divergence import SECTION, divergence_findings, divergence_sections, measure_divergence
from pctce_cli.report.findings import kl_finding
from tests.helpers import make_store
from tests.test_kl_plots import kl_stores


def _section(doc, sec_id) -> Section | None:
    return next((s for s in doc.sections if s.id == sec_id), None)


@pytest.mark.slow
def test_a_store_with_divergence_has_a_kl_section_figures_first_and_a_finding(tmp_path):
    cks = kl_stores(tmp_path / "s", 6, 2)
    doc = build_report(cks)
    sec = _section(doc, SECTION[0])
    assert sec is not None and sec.title == SECTION[1]
    assert [s.id for s in doc.sections][:3] == ["findings", "summaries", "divergence"]
    images = [b.name for b in walk(sec.blocks) if isinstance(b, Image)]
    assert images == ["kl-trajectory", "kl-ecdf"]
    [details] = [b for b in sec.blocks if isinstance(b, Details)]
    assert sec.blocks.index(details) > max(k for k, b in enumerate(sec.blocks) if isinstance(b, Image))
    [table] = [b for b in details.blocks if hasattr(b, "rows")]
    assert [r["checkpoint"] for r in table.rows] == [c.id for c in cks]
    assert {"mean", "p50", "p90", "p95", "p99", "p99.9", "max", "same_top1"} <= set(table.rows[0])
    best = min(table.rows, key=lambda r: r["mean"])["checkpoint"]
    [finding] = [f for f in _section(doc, "findings").blocks[0].items if f.text.startswith("Closest to the reference")]
    assert finding.text.startswith(f"Closest to the reference checkpoints/reference by mean KL: {best} (") and finding.figure == "kl-ecdf"


@pytest.mark.slow
def test_a_ce_only_store_has_no_kl_section_and_no_kl_finding(tmp_path):
    rng = np.random.default_rng(1)
    doc = np.repeat(np.arange(4), 25)
    for k in range(2):
        make_store(tmp_path / "s", f"ck{k}", rng.gamma(2, 1, doc.size), doc)
    rep = build_report(resolve_checkpoints([tmp_path / "s"]))
    assert SECTION[0] not in [s.id for s in rep.sections]
    assert not any("KL" in f.text for f in rep.sections[0].blocks[0].items)


def test_without_divergence_nothing_is_measured_said_or_drawn(tmp_path):
    make_store(tmp_path / "s", "plain", np.ones(10), np.zeros(10, np.int64))
    kl = measure_divergence(resolve_checkpoints([tmp_path / "s"]))
    assert kl is None and divergence_findings(kl) == [] and divergence_sections(kl, None, {}, {}, "") == []


def test_the_kl_finding_names_the_closest_the_farthest_and_the_heaviest_tail():
    rows = [
        {"checkpoint": "full", "mean": 0.1, "p50": 0.01, "p99.9": 0.2, "same_top1": 0.99},
        {"checkpoint": "topk", "mean": 0.5, "p50": 0.2, "p99.9": 1.0, "same_top1": 0.9},
    ]
    assert kl_finding(rows, "teacher").text == (
        "Closest to the reference teacher by mean KL: full (0.100 nats; p50 0.010, p99.9 0.200 = ×20.0 its median; "
        "same top token on 99.0% of targets). Farthest: topk (mean KL 0.500 nats). Heaviest KL tail relative to its median: full (p99.9 / p50 ×20.0)."
    )
    assert kl_finding([{**rows[0], "mean": float("nan")}], "t") is None


@pytest.mark.slow
def test_checkpoints_scored_without_a_reference_are_named_and_left_out(tmp_path):
    rng = np.random.default_rng(2)
    doc = np.repeat(np.arange(4), 25)
    make_store(tmp_path / "s", "plain", rng.gamma(2, 1, doc.size), doc)
    make_store(tmp_path / "s", "student", rng.gamma(2, 1, doc.size), doc, divergence={"kl": rng.gamma(1, 0.1, doc.size), "dp": np.zeros(doc.size), "same_top1": np.ones(doc.size)})
    sec = _section(build_report(resolve_checkpoints([tmp_path / "s"]), ReportOptions(tail_top=0)), SECTION[0])
    [details] = [b for b in sec.blocks if isinstance(b, Details)]
    assert [r["checkpoint"] for r in details.blocks[0].rows] == ["student"]
    assert details.blocks[1].lines[0] == "Not scored with a reference, so not in this section: plain (pctce score CHECKPOINT --reference REF --force)."
