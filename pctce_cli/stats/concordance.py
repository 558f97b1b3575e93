"""Concordance of summaries across checkpoints (docs/definitions.md#concordance).

All summaries are "lower is better". An unordered pair of checkpoints
{a, b} is *concordant* on a set S of summaries when ``sign(s(a) − s(b))`` is
the same non-zero value for every s in S; a pair on which any summary ties
(exact equality) is *tied* and not concordant. ``C_S = concordant / pairs``.

Tables have one row per checkpoint and one column per summary. Checkpoints
are named by a ``checkpoint`` column when the table has one, else by its
index. Every pairwise quantity is computed with numpy broadcasting over the
``M (M − 1) / 2`` pairs (a few hundred checkpoints → tens of thousands of
pairs, milliseconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from pctce_cli.errors import UsageError
from pctce_cli.stats.checks import summary_list
from pctce_cli.stats.defaults import DEFAULT_CONCORDANCE_SET

if TYPE_CHECKING:  # pandas costs ~0.5 s to import; load it when used
    import pandas as pd

__all__ = [
    "ConcordanceResult",
    "concordance",
    "concordance_matrix",
    "kendall_tau",
    "kendall_tau_matrix",
    "tied_pairs_matrix",
    "discordant_pairs",
]


@dataclass(frozen=True)
class ConcordanceResult:
    """Concordance of one set of summaries.

    Attributes:
        c: concordant pairs / all pairs (NaN with fewer than 2 checkpoints).
        n_concordant: pairs ranked the same strict way by every summary.
        n_tied: pairs on which at least one summary ties.
        n_pairs: ``M (M − 1) / 2``.
    """

    c: float
    n_concordant: int
    n_tied: int
    n_pairs: int

    @property
    def n_discordant(self) -> int:
        """Pairs with no tie on which the summaries disagree."""
        return self.n_pairs - self.n_concordant - self.n_tied


def checkpoint_names(table: pd.DataFrame) -> list:
    """Names of a table's checkpoints: its ``checkpoint`` column, else its index."""
    if "checkpoint" in table.columns:
        return table["checkpoint"].tolist()
    return table.index.tolist()


def summary_matrix(values, summaries: Sequence[str], what: str = "values") -> tuple[list, np.ndarray]:
    """Checkpoint names and the (M, S) float64 matrix of the requested summaries.

    Args:
        values: DataFrame (row per checkpoint, column per summary) or mapping
            summary → sequence of per-checkpoint values.
        summaries: the columns to take, in order.
        what: name of the argument, for error messages.

    Raises:
        UsageError: a summary missing, lengths differing, non-numeric or NaN values.
    """
    import pandas as pd

    summaries = summary_list(summaries)
    if isinstance(values, pd.DataFrame):
        table = values
    elif isinstance(values, Mapping):
        lengths = {k: len(v) for k, v in values.items()}
        if len(set(lengths.values())) > 1:
            raise UsageError(f"{what}: every summary needs one value per checkpoint, got lengths {lengths}")
        table = pd.DataFrame({k: list(v) for k, v in values.items()})
    else:
        raise UsageError(f"{what} must be a DataFrame or a mapping summary → values, got {type(values).__name__}")
    missing = [s for s in summaries if s not in table.columns]
    if missing:
        have = ", ".join(map(str, [c for c in table.columns if c != "checkpoint"]))
        raise UsageError(f"{what} has no column {', '.join(missing)} (columns: {have})")
    try:
        x = table[summaries].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{what}: summaries {', '.join(summaries)} must be numeric ({exc})") from None
    names = checkpoint_names(table)
    if np.isnan(x).any():
        row, col = np.argwhere(np.isnan(x))[0]
        raise UsageError(
            f"{what}: {summaries[col]} is NaN for checkpoint {names[row]!r}; "
            "concordance needs a value for every checkpoint"
        )
    return names, x


def _pair_signs(x: np.ndarray) -> np.ndarray:
    """sign(s(a) − s(b)) for every pair a < b (table order) and summary: (P, S) int8."""
    i, j = np.triu_indices(x.shape[0], k=1)
    return np.sign(x[i] - x[j]).astype(np.int8)


def concordance(values, summaries: Sequence[str] = DEFAULT_CONCORDANCE_SET) -> ConcordanceResult:
    """Fraction of checkpoint pairs that every summary ranks the same strict way.

    Args:
        values: DataFrame with one row per checkpoint and one column per
            summary, or a mapping summary → per-checkpoint values.
        summaries: the set S (default ``mean, p50, p95``).

    Returns:
        :class:`ConcordanceResult`; ``c`` is NaN with fewer than 2 checkpoints.

    Example:
        >>> r = concordance({"mean": [1.0, 2.0, 3.0], "p95": [5.0, 4.0, 6.0]}, ["mean", "p95"])
        >>> r.n_concordant, r.n_pairs, round(r.c, 4)
        (2, 3, 0.6667)
    """
    _, x = summary_matrix(values, summaries)
    sg = _pair_signs(x)
    n_pairs = sg.shape[0]
    tied = (sg == 0).any(axis=1)
    agree = (sg == sg[:, :1]).all(axis=1) & ~tied
    n_conc = int(agree.sum())
    c = n_conc / n_pairs if n_pairs else math.nan
    return ConcordanceResult(c, n_conc, int(tied.sum()), int(n_pairs))


def _pairwise(table, summaries, stat) -> pd.DataFrame:
    import pandas as pd

    _, x = summary_matrix(table, summaries, "table")
    names = summary_list(summaries)
    sg = _pair_signs(x)
    out = np.empty((len(names), len(names)))
    for a in range(len(names)):
        for b in range(len(names)):
            out[a, b] = stat(sg[:, a], sg[:, b], x[:, a], x[:, b])
    return pd.DataFrame(out, index=pd.Index(names, name="summary"), columns=names)


def concordance_matrix(table, summaries: Sequence[str] = DEFAULT_CONCORDANCE_SET) -> pd.DataFrame:
    """C_{s,s'} for every pair of summaries (the diagonal is 1 − ties/pairs).

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"mean": [1.0, 2.0, 3.0], "p50": [1.0, 3.0, 2.0]})
        >>> concordance_matrix(t, ["mean", "p50"]).round(3).values.tolist()
        [[1.0, 0.667], [0.667, 1.0]]
    """

    def stat(sa, sb, *_):
        if not sa.size:
            return math.nan
        return float(np.count_nonzero((sa == sb) & (sa != 0)) / sa.size)

    return _pairwise(table, summaries, stat)


def tied_pairs_matrix(table, summaries: Sequence[str] = DEFAULT_CONCORDANCE_SET) -> pd.DataFrame:
    """Number of checkpoint pairs tied on s or on s' (diagonal: tied on s).

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"mean": [1.0, 1.0, 3.0], "p50": [1.0, 3.0, 2.0]})
        >>> tied_pairs_matrix(t, ["mean", "p50"]).values.tolist()
        [[1.0, 1.0], [1.0, 0.0]]
    """
    return _pairwise(table, summaries, lambda sa, sb, *_: float(np.count_nonzero((sa == 0) | (sb == 0))))


def kendall_tau(x, y) -> float:
    """Kendall's tau-b between two sequences (scipy), NaN when undefined.

    Undefined means fewer than 2 values or a constant sequence; checked
    here so scipy never warns.

    Example:
        >>> kendall_tau([1, 2, 3, 4], [1, 3, 2, 4])
        0.6666666666666669
    """
    from scipy import stats

    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise UsageError(f"kendall_tau needs two 1-D sequences of equal length, got {a.shape} and {b.shape}")
    if a.size < 2 or np.isnan(a).any() or np.isnan(b).any() or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(stats.kendalltau(a, b).statistic)


def kendall_tau_matrix(table, summaries: Sequence[str] = DEFAULT_CONCORDANCE_SET) -> pd.DataFrame:
    """Kendall's tau-b between the checkpoint rankings by every two summaries.

    With no ties C_{s,s'} = (1 + tau)/2.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"mean": [1.0, 2.0, 3.0], "p50": [1.0, 3.0, 2.0]})
        >>> kendall_tau_matrix(t, ["mean", "p50"]).round(3).values.tolist()
        [[1.0, 0.333], [0.333, 1.0]]
    """
    return _pairwise(table, summaries, lambda sa, sb, xa, xb: kendall_tau(xa, xb))


def discordant_pairs(table: pd.DataFrame, s1: str = "mean", s2: str = "p50") -> pd.DataFrame:
    """Checkpoint pairs that ``s1`` and ``s2`` rank in strictly opposite ways.

    Pairs (a, b) are listed in table order (a before b); deltas are
    s(b) − s(a), so the two delta columns have opposite signs on every row.
    Pairs tied on either summary are not listed.

    Returns:
        DataFrame with columns ``a``, ``b``, ``delta_<s1>``, ``delta_<s2>``.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"mean": [1.0, 2.0], "p50": [0.5, 0.4]}, index=["ck1", "ck2"])
        >>> discordant_pairs(t).values.tolist()
        [['ck1', 'ck2', 1.0, -0.09999999999999998]]
    """
    import pandas as pd

    if s1 == s2:
        raise UsageError(f"discordant_pairs needs two different summaries, got {s1!r} twice")
    names, x = summary_matrix(table, [s1, s2], "table")
    i, j = np.triu_indices(x.shape[0], k=1)
    delta = x[j] - x[i]  # (P, 2): s(b) − s(a)
    keep = np.sign(delta[:, 0]) * np.sign(delta[:, 1]) < 0
    names_arr = np.asarray(names, dtype=object)
    return pd.DataFrame(
        {
            "a": names_arr[i[keep]],
            "b": names_arr[j[keep]],
            f"delta_{s1}": delta[keep, 0],
            f"delta_{s2}": delta[keep, 1],
        }
    )
