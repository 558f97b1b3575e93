"""Pairing two tokenizations of the same bytes (docs/definitions.md#words-and-bytes): runs of bytes on which both per-byte values are constant.

Under the byte distribution a token gives each of its ``n_bytes`` bytes the
value ``ce / n_bytes``. Two checkpoints scored on the same text cover the same
bytes, each with its own tokens, so byte ``j`` has a value under each. Pairing
byte by byte never needs one row per byte: cut the text at every token
boundary of either tokenization; inside each piece both values are constant,
so a piece is one paired row whose weight is its length in bytes. With one
tokenizer the pieces are the tokens; with two there are at most
``n_a + n_b`` pieces.
"""

from __future__ import annotations

import numpy as np

from pctce_cli.errors import UsageError
from pctce_cli.stats.checks import as_int_array


def byte_totals(doc, n_bytes) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique documents with bytes and each one's byte count (rows with 0 bytes ignored).

    Example:
        >>> ids, n = byte_totals([0, 0, 2, 3], [3, 1, 0, 5])
        >>> ids.tolist(), n.tolist()
        ([0, 3], [4, 5])
    """
    d = as_int_array(doc, "doc")
    nb = as_int_array(n_bytes, "n_bytes", n=d.shape[0], nonnegative=True).astype(np.int64, copy=False)
    ids, inv = np.unique(d, return_inverse=True)
    total = np.bincount(inv, weights=nb, minlength=ids.shape[0]).astype(np.int64) if d.size else np.zeros(0, np.int64)
    keep = total > 0
    return ids[keep], total[keep]


def first_byte_mismatch(doc_a, n_bytes_a, doc_b, n_bytes_b) -> tuple[int, int, int] | None:
    """The first document whose byte count differs between two tokenizations, ``(doc, bytes_a, bytes_b)``, or None.

    A document with bytes under one and none under the other counts as a
    difference (its byte count 0 on the side that lacks it).

    Example:
        >>> first_byte_mismatch([0, 1], [3, 4], [0, 1, 1], [3, 2, 2]) is None
        True
        >>> first_byte_mismatch([0, 1], [3, 4], [0, 1], [3, 5])
        (1, 4, 5)
    """
    ia, na = byte_totals(doc_a, n_bytes_a)
    ib, nb = byte_totals(doc_b, n_bytes_b)
    if np.array_equal(ia, ib) and np.array_equal(na, nb):
        return None
    ids = np.union1d(ia, ib)
    ta = np.zeros(ids.shape[0], np.int64)
    tb = np.zeros(ids.shape[0], np.int64)
    ta[np.searchsorted(ids, ia)] = na
    tb[np.searchsorted(ids, ib)] = nb
    i = int(np.flatnonzero(ta != tb)[0])
    return int(ids[i]), int(ta[i]), int(tb[i])


def byte_segments(doc_a, n_bytes_a, doc_b, n_bytes_b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut two tokenizations of the same bytes into pieces covered by one token of each.

    Args:
        doc_a, n_bytes_a: per-token document and byte count of tokenization
            ``a``, sorted by (document, position); tokens with 0 bytes (empty
            spans) are skipped: they cover no byte.
        doc_b, n_bytes_b: the same for ``b``.

    Returns:
        ``(row_a, row_b, length)``: for each piece in text order, the index of
        the token of ``a`` and of ``b`` that covers it, and its length in
        bytes (≥ 1). ``length`` sums to the total bytes; pieces never cross a
        document.

    Raises:
        UsageError: a document holds a different number of bytes in the two
            (:func:`first_byte_mismatch` finds it), or the rows are not sorted
            by document.

    Example:
        >>> ra, rb, n = byte_segments([0, 0], [2, 3], [0, 0, 0], [1, 3, 1])
        >>> ra.tolist(), rb.tolist(), n.tolist()
        ([0, 0, 1, 1], [0, 1, 1, 2], [1, 1, 2, 1])
    """
    da, na = as_int_array(doc_a, "doc"), as_int_array(n_bytes_a, "n_bytes", nonnegative=True)
    db, nb = as_int_array(doc_b, "doc"), as_int_array(n_bytes_b, "n_bytes", nonnegative=True)
    for d in (da, db):
        if d.size > 1 and (d[1:] < d[:-1]).any():
            raise UsageError("byte_segments needs tokens sorted by document (as the store holds them)")
    bad = first_byte_mismatch(da, na, db, nb)
    if bad is not None:
        raise UsageError(f"document {bad[0]} holds {bad[1]} bytes in one tokenization and {bad[2]} in the other")
    # Both tokenizations cover the same bytes document by document, in the same
    # document order, so their end offsets in the concatenated text meet at every
    # document boundary: the pieces between consecutive ends never cross one.
    ends_a = np.cumsum(na, dtype=np.int64)
    ends_b = np.cumsum(nb, dtype=np.int64)
    cuts = np.union1d(ends_a[na > 0], ends_b[nb > 0])
    length = np.diff(cuts, prepend=0)
    # the token covering the piece that ends at `cut` is the first one ending at or after it
    row_a = np.searchsorted(ends_a, cuts, side="left")
    row_b = np.searchsorted(ends_b, cuts, side="left")
    return row_a, row_b, length


__all__ = ["byte_segments", "byte_totals", "first_byte_mismatch"]
