"""Tokenizer-independent units in analysis commands (SPEC §8): ``--unit token|word|byte``.

Token percentiles are not comparable across tokenizers; word and byte
distributions are, because words and bytes depend only on the text. A word's
CE is the sum of its tokens' CE; the byte distribution gives each token's CE,
spread evenly, to each of its bytes (weighted percentiles, never one row per
byte). Targets whose span is empty (special tokens) belong to no word or byte:
they are counted in an ``empty`` column, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from pctce_cli.analysis.subsets import NO_SUBSETS, Subsets, split_scores, stored_values
from pctce_cli.errors import UsageError
from pctce_cli.stats.row import assemble_row
from pctce_cli.stats.summaries import doc_sums, summarize
from pctce_cli.stats.units import UNITS

NOUNS = {"token": "token", "word": "word", "byte": "byte"}


def check_unit(unit: str) -> str:
    """``unit`` if it is one of :data:`~pctce_cli.stats.units.UNITS`, else a usage error naming ``--unit``."""
    if unit not in UNITS:
        raise UsageError(f"--unit must be one of {', '.join(UNITS)}, got '{unit}'")
    return unit


# summaries that only tokens have: top-1 accuracy needs each target's rank
TOKEN_ONLY_SUMMARIES = ("top1",)


def check_unit_summaries(names: Sequence[str], unit: str, option: str) -> None:
    """Refuse token-only summaries (:data:`TOKEN_ONLY_SUMMARIES`) in words and bytes, naming ``option`` and ``--unit``.

    Example:
        >>> check_unit_summaries(["mean", "top1"], "word", "--summaries")
        Traceback (most recent call last):
        ...
        pctce_cli.errors.UsageError: --summaries top1 with --unit word: top-1 accuracy is a token summary (a word or byte has no rank); drop it or use --unit token
    """
    bad = [n for n in names if n in TOKEN_ONLY_SUMMARIES]
    if unit != "token" and bad:
        raise UsageError(f"{option} {bad[0]} with --unit {unit}: top-1 accuracy is a token summary (a word or byte has no rank); drop it or use --unit token")


def unit_title(unit: str, by: str | None = None) -> str:
    """``Per-word CE summaries by domain (nats per word)`` and so on (tokens keep their historical titles).

    Example:
        >>> unit_title("token"), unit_title("byte", "genre")
        ('Per-token CE summaries (nats)', 'Per-byte CE summaries by genre (nats per byte)')
    """
    split = f" by {by}" if by else ""
    return f"Per-token CE summaries{split} (nats)" if unit == "token" else f"Per-{unit} CE summaries{split} (nats per {unit})"


def empty_note(rows: list[dict], unit: str) -> list[str]:
    """A note when targets with an empty span (special tokens) were left out of the words or bytes."""
    if unit == "token":
        return []
    worst = max(rows, key=lambda r: r.get("empty", 0), default=None)
    if not worst or not worst.get("empty"):
        return []
    return [f"Targets with an empty span (special tokens such as end-of-turn markers) belong to no {unit}: column 'empty' counts them (up to {worst['empty']:,} per row); their CE is not in the {unit} distribution."]


def unit_values(ce, doc, word, nbytes, unit: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The values of a unit's distribution and their weights (bytes: ``ce / nbytes`` weighted by ``nbytes``).

    Example:
        >>> v, w = unit_values(np.array([1.0, 2.0, 0.5]), np.array([0, 0, 0]), np.array([0, 0, 1]), np.array([1, 2, 0]), "word")
        >>> v.tolist(), w
        ([3.0, 0.5], None)
    """
    from pctce_cli.stats.units import byte_values, word_sums

    if unit == "word":
        return word_sums(ce, doc, word), None
    if unit == "byte":
        return byte_values(ce, nbytes)
    return np.asarray(ce), None


def unit_rows(
    ck, percentiles: Sequence[float], unit: str, subsets: Subsets = NO_SUBSETS, ci: float | None = None, scores=None, **kw
) -> tuple[list[dict], list[str]]:
    """One checkpoint's summary rows in words or bytes (one per subset with ``subsets.split``).

    Each row has ``targets`` (scored tokens), ``words`` or ``bytes`` (the
    values summarized), ``empty`` (targets with an empty span, in no word or
    byte), the SPEC §2 summaries of the unit's distribution and the
    document-level ``bpb``/``byte_ppl``/``word_ppl``.

    With ``ci`` the intervals come from a document bootstrap of the unit's
    distribution: documents resampled with their words, or with their bytes
    (each token's per-byte value weighted by its bytes, never expanded).

    ``scores``: the checkpoint's :class:`pctce_cli.store.UnitScores` when the
    caller has loaded them (``pctce report`` reads each partition once).

    Raises:
        UsageError: the partition holds no byte spans (the message names its
            tokenizer or says to re-score).
    """
    from pctce_cli.store import load_units

    u = scores if scores is not None else load_units(ck.root, ck.partition, unit)
    parts, notes = split_scores(ck.id, u.doc, u.docs, subsets, stored_values(ck, subsets.field) if subsets.active else ())
    pooled = doc_sums(u.ce, u.doc)[:2] if u.docs is not None and len(u.ce) else None
    rows = []
    for part in parts:
        ce, doc, word, nb = part.take(u.ce), part.take(u.doc), part.take(u.word), part.take(u.nbytes)
        summ = summarize(ce, None, percentiles=percentiles, unit=unit, doc=doc, word=word, nbytes=nb)
        sums = None
        if pooled is not None:
            keep = np.isin(pooled[0], np.asarray(part.docs["doc"]))
            sums = (pooled[0][keep], pooled[1][keep])
        empty = int(np.count_nonzero((word < 0) if unit == "word" else (nb == 0)))
        row = unit_row(ck, unit, summ, int(ce.size), empty, part.docs, sums, {"subset": part.label} if subsets.split else {})
        if ci is not None:
            row.update(_unit_intervals(ce, doc, word, nb, unit, percentiles, ci, **kw))
        rows.append(row)
    return rows, [f"{ck.id}: {n}" for n in notes]


def unit_row(ck, unit: str, summ: dict, targets: int, empty: int, docs, sums, extra: dict | None = None) -> dict:
    """One summary row in words or bytes from the unit's :func:`~pctce_cli.stats.summaries.summarize` dict.

    Args:
        ck: the checkpoint (its id, step and group lead the row).
        unit: ``word`` or ``byte`` (the count column is ``words`` or ``bytes``).
        summ: the unit's summaries (``n`` = words or bytes); ``top1`` is dropped (rank belongs to tokens).
        targets: scored tokens.
        empty: targets with an empty span (in no word or byte).
        docs: the per-document table.
        sums: ``(document ids, summed token CE)`` for bpb, byte_ppl and word_ppl, or None.
        extra: columns after the checkpoint's (``subset``).
    """
    summ = {k: v for k, v in summ.items() if k != "top1"}
    count = int(summ.pop("n"))
    body = assemble_row({"n": targets, **summ}, docs, sums)
    row = {"checkpoint": ck.id, "step": ck.step, "group": ck.group, **(extra or {})}
    row.update({"targets": body.pop("targets"), f"{unit}s": count, "empty": empty})
    row.update(body)
    return row


def _unit_intervals(ce, doc, word, nbytes, unit: str, percentiles, ci: float, n_boot: int = 1000, seed: int = 0, **_) -> dict:
    """Document-level bootstrap intervals of the word or byte distribution (documents resampled, their words or bytes with them)."""
    from pctce_cli.stats.bootstrap import bootstrap_ci
    from pctce_cli.stats.summaries import percentile_name
    from pctce_cli.stats.units import byte_values, word_ce

    if unit == "word":
        (values, value_doc), weights = word_ce(ce, doc, word)[:2], None
    else:
        values, weights = byte_values(ce, nbytes)
        value_doc = np.asarray(doc)[np.asarray(nbytes) > 0]
    names = ["mean"] + [percentile_name(q) for q in percentiles]
    res = bootstrap_ci(values, value_doc, names, n_boot=n_boot, ci=ci, seed=seed, weights=weights)
    out = {}
    for name in names:
        out[f"{name}_lo"], out[f"{name}_hi"] = res[name]
    out["_ci_method"] = res.method
    out["_ci_error"] = max(res.max_abs_error.values()) if res.max_abs_error else 0.0
    return out


def word_scores(ck):
    """One checkpoint's word CEs as :class:`pctce_cli.store.Scores` (``ce`` per word, ``doc`` its document, ``pos`` its index).

    Raises:
        UsageError: the checkpoint holds no byte spans and words.
    """
    from pctce_cli.stats.units import word_ce
    from pctce_cli.store import Scores, load_units

    u = load_units(ck.root, ck.partition, "word")
    ce, doc, idx = word_ce(u.ce, u.doc, u.word)[:3]
    return Scores(ck.id, doc, idx.astype(np.int32), np.zeros(0, np.int32), ce, np.zeros(0, np.int32), u.docs, u.manifest)


def check_words_aligned(sa, sb, a_name: str, b_name: str) -> None:
    """Raise unless two checkpoints' :func:`word_scores` hold the same words in the same order.

    Raises:
        MixedInputError: naming the first word that differs.
    """
    from pctce_cli.errors import MixedInputError

    if len(sa.ce) != len(sb.ce) or not (np.array_equal(sa.doc, sb.doc) and np.array_equal(sa.pos, sb.pos)):
        n = min(len(sa.ce), len(sb.ce))
        diff = np.flatnonzero((sa.doc[:n] != sb.doc[:n]) | (sa.pos[:n] != sb.pos[:n]))
        i = int(diff[0]) if diff.size else n
        raise MixedInputError(
            f"cannot pair the words of '{a_name}' and '{b_name}': they hold {len(sa.ce)} and {len(sb.ce)} words"
            + (f", and word {i} is document {sa.doc[i]} word {sa.pos[i]} in one, document {sb.doc[i]} word {sb.pos[i]} in the other" if i < n else "")
            + "; score both on the same data with the same reading settings"
        )


def word_pair(a, b, a_name: str, b_name: str):
    """Two checkpoints' word CEs, aligned word by word (:func:`word_scores` of each, checked).

    Words depend only on the text, so two tokenizers of the same data have the
    same words in the same order; each word's CE is the sum of its tokens' CE
    under that checkpoint's tokenizer (SPEC §8). A paired comparison of these
    arrays pairs words, not tokens.

    Raises:
        UsageError: a checkpoint without byte spans and words.
        MixedInputError: the two do not have the same words (naming the first that differs).
    """
    sa, sb = word_scores(a), word_scores(b)
    check_words_aligned(sa, sb, a_name, b_name)
    return sa, sb


def byte_scores(ck):
    """One checkpoint's byte distribution as :class:`pctce_cli.store.Scores`: ``ce / nbytes`` per token, ``weight`` its bytes.

    Tokens with an empty span cover no byte and are left out.

    Raises:
        UsageError: the checkpoint holds no byte spans.
    """
    from pctce_cli.stats.units import byte_values
    from pctce_cli.store import Scores, load_units

    u = load_units(ck.root, ck.partition, "byte")
    values, nb = byte_values(u.ce, u.nbytes)  # the summary's own (value, weight) pairs
    keep = np.flatnonzero(u.nbytes > 0)
    return Scores(ck.id, u.doc[keep], keep.astype(np.int32), np.zeros(0, np.int32), values, np.zeros(0, np.int32), u.docs, u.manifest, nb.astype(np.int64))


def byte_pair(a, b, a_name: str, b_name: str, sa=None):
    """Two checkpoints' byte distributions, paired byte by byte without one row per byte.

    Each checkpoint gives every byte of a token ``ce / nbytes`` (SPEC §8). The
    text is cut at the token boundaries of both tokenizations
    (:func:`pctce_cli.stats.byte_pairs.byte_segments`): each piece is one row
    of both results, with the two checkpoints' per-byte values and ``weight``
    = its length in bytes. Same tokenizer: the pieces are the tokens.

    Args:
        sa: ``a``'s :func:`byte_scores` when already loaded (the gate pairs one
            baseline with many candidates and reads it once).

    Raises:
        UsageError: a checkpoint without byte spans.
        MixedInputError: a document holds different bytes in the two (named).
    """
    from pctce_cli.errors import MixedInputError
    from pctce_cli.stats.byte_pairs import byte_segments, first_byte_mismatch

    sa, sb = sa if sa is not None else byte_scores(a), byte_scores(b)
    bad = first_byte_mismatch(sa.doc, sa.weight, sb.doc, sb.weight)
    if bad is not None:
        raise MixedInputError(
            f"cannot pair the bytes of '{a_name}' and '{b_name}': document {bad[0]} holds {bad[1]} scored bytes in "
            f"'{a_name}' and {bad[2]} in '{b_name}'; score both on the same data with the same reading settings"
        )
    ra, rb, length = byte_segments(sa.doc, sa.weight, sb.doc, sb.weight)
    pos = np.arange(length.shape[0], dtype=np.int32)

    def piece(s, rows):
        return replace(s, doc=s.doc[rows], pos=pos, ce=s.ce[rows], weight=length)

    return piece(sa, ra), piece(sb, rb)
