"""Input checks shared by the whole ``stats`` package.

Each check returns the validated numpy array or raises
:class:`pctce_cli.errors.UsageError` with a message naming the argument.
"""

from __future__ import annotations

import numpy as np

from pctce_cli.errors import UsageError

__all__ = ["as_ce", "as_int_array", "check_qs", "format_level", "summary_list"]


def as_ce(ce, name: str = "ce") -> np.ndarray:
    """Validate a 1-D array of finite CE values; no copy for float32/float64."""
    arr = np.asarray(ce)
    if arr.ndim != 1:
        raise UsageError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        if arr.size == 0:
            return np.zeros(0, dtype=np.float64)
        raise UsageError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if arr.size and not np.isfinite(arr).all():
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise UsageError(f"{name} must be finite, got {bad} NaN or infinite value(s)")
    return arr


def as_int_array(values, name: str, n: int | None = None, nonnegative: bool = False) -> np.ndarray:
    """Validate a 1-D integer array (rank, doc), optionally of length ``n``."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise UsageError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all():
            arr = arr.astype(np.int64)
        else:
            raise UsageError(f"{name} must hold integers, got dtype {arr.dtype}")
    if n is not None and arr.shape[0] != n:
        raise UsageError(f"{name} must have one entry per target ({n}), got {arr.shape[0]}")
    if nonnegative and arr.size and arr.min() < 0:
        raise UsageError(f"{name} must be >= 0, got {arr.min()}")
    return arr


def check_qs(qs) -> np.ndarray:
    """Validate percentile levels: finite numbers in [0, 100]."""
    try:
        arr = None if isinstance(qs, (str, bytes)) else np.atleast_1d(np.asarray(qs, dtype=np.float64))
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 1:
        raise UsageError(f"percentiles must be a number or a 1-D list of numbers, got {qs!r}")
    for q in arr:
        if not (0.0 <= q <= 100.0):  # also rejects NaN
            raise UsageError(f"percentiles must be in [0, 100], got {format_level(q)}")
    return arr


def format_level(q: float) -> str:
    """A percentile level as the shortest decimal: 50.0 → ``50``, 99.9 → ``99.9``."""
    return np.format_float_positional(float(q), trim="-")


def summary_list(summaries) -> list[str]:
    """Summary (column) names as a non-empty list; a bare string is one name."""
    if isinstance(summaries, str):
        summaries = [summaries]
    summaries = list(summaries)
    if not summaries:
        raise UsageError("summaries must name at least one summary")
    return summaries
