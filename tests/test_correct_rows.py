"""The paper's Table 6 (mean CE of correctly and incorrectly answered documents) from ``--by correct`` rows, against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pctce_cli.analysis.summary import correct_rows
from pctce_cli.stats.subsets import correct_ratio


def _rows(ce, doc, correct, checkpoint="e1", step=1):
    """``--by correct`` rows as summary rows hold them: each subset's documents and mean CE over its targets."""
    ce, doc, ok = np.asarray(ce, np.float64), np.asarray(doc), np.asarray(correct, bool)
    rows = []
    for label, docs in (("correct", np.flatnonzero(ok)), ("incorrect", np.flatnonzero(~ok))):
        if docs.size:
            rows.append({"checkpoint": checkpoint, "step": step, "subset": label, "documents": int(docs.size), "mean": float(ce[np.isin(doc, docs)].mean())})
    return rows


def test_correct_rows_by_hand():
    ce, doc = [0.1, 0.2, 0.3, 4.0, 6.0, 0.5], [0, 0, 1, 2, 2, 3]
    (row,) = correct_rows(_rows(ce, doc, [True, True, False, True]))
    assert row["mean_correct"] == pytest.approx((0.1 + 0.2 + 0.3 + 0.5) / 4)
    assert row["mean_incorrect"] == pytest.approx(5.0)
    assert row["ratio"] == pytest.approx(5.0 / 0.275)
    assert row["accuracy"] == pytest.approx(3 / 4)


def test_no_incorrect_document_gives_nan():
    (row,) = correct_rows(_rows([0.1, 0.2, 0.3], [0, 1, 2], [True] * 3))
    assert math.isnan(row["mean_incorrect"]) and math.isnan(row["ratio"]) and row["accuracy"] == 1.0


@pytest.mark.parametrize(("mc", "mi", "want"), [(0.5, 2.0, 4.0), (0.0, 2.0, math.nan), (math.nan, 1.0, math.nan), (1.0, math.nan, math.nan)])
def test_correct_ratio(mc, mi, want):
    got = correct_ratio(mc, mi)
    assert got == want or (math.isnan(got) and math.isnan(want))
