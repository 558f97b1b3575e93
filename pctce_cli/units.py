"""What a unit is (``--unit token|word|byte``, docs/definitions.md#words-and-bytes), asked by every command instead of comparing strings.

A :class:`Unit` knows how one checkpoint's values load in it (:meth:`Unit.load`,
with weights where values are weighted: bytes), how two checkpoints' values
pair in it (:meth:`Unit.pair`: tokens row by row, words word by word, bytes
by the runs covered by one token of each tokenization), its nouns and labels,
and which summaries it refuses. :class:`Values` is what loading and pairing
return: one value per row, its document, its index and its weight.

:data:`CE` (the stored per-target CE), :data:`KL` and :data:`DP` (the divergence
from a reference model) are the value kinds, declared in :mod:`pctce_cli.values`; a new value
kind is a new :class:`ValueKind` — its column, its names, how it sums into a word — and a new
unit (a position bucket, say) a new :class:`Unit` subclass registered in
:data:`UNIT_TYPES`.

The math stays in :mod:`pctce_cli.stats.units` and :mod:`pctce_cli.stats.byte_pairs`. No torch import here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from pctce_cli.errors import MixedInputError, UsageError
from pctce_cli.stats.units import UNITS
from pctce_cli.values import CE, DP, KL, VALUE_KINDS, ValueKind, value_named  # noqa: F401  (the value kinds, re-exported)

__all__ = ["BYTE", "CE", "DP", "KL", "TOKEN", "VALUE_KINDS", "value_named", "UNIT_TYPES", "WORD", "Unit", "ValueKind", "Values", "as_values", "check_aligned", "unit_named"]


@dataclass
class Values:
    """One checkpoint's values in a unit, one row per value, sorted by (document, index).

    ``index`` is the row's place in its document (a target's position, a word's
    index, a paired byte run's number); ``value`` its value (nats per target,
    word or byte); ``weight`` how many times it counts (bytes: the bytes it
    covers; None: once); ``token`` and ``rank`` are the targets' (tokens only).
    """

    unit: "Unit"
    checkpoint: str
    doc: np.ndarray
    index: np.ndarray
    value: np.ndarray
    docs: object
    manifest: dict
    weight: np.ndarray | None = None
    token: np.ndarray | None = None
    rank: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.value)

    def take(self, part) -> "Values":
        """The rows and documents of one subset (a :class:`pctce_cli.analysis.subsets.Part`)."""
        n = len(self.value)
        cut = lambda x: part.take(x) if x is not None and len(x) == n else x  # noqa: E731
        return replace(
            self, doc=cut(self.doc), index=cut(self.index), value=cut(self.value), docs=part.docs,
            weight=cut(self.weight), token=cut(self.token), rank=cut(self.rank),
        )

    def keep_docs(self, doc_ids) -> "Values":
        """The rows of these documents only."""
        keep = np.isin(self.doc, np.asarray(doc_ids))
        cut = lambda x: x[keep] if x is not None else None  # noqa: E731
        return replace(self, doc=self.doc[keep], index=self.index[keep], value=self.value[keep], weight=cut(self.weight), token=cut(self.token), rank=cut(self.rank))


def as_values(s) -> Values:
    """``s`` if it is :class:`Values`, else the token values of a :class:`pctce_cli.store.Scores` (or any object with ``ce`` and ``doc``)."""
    if isinstance(s, Values):
        return s
    get = lambda name: getattr(s, name, None)  # noqa: E731
    return Values(TOKEN, get("checkpoint"), s.doc, get("pos"), s.ce, get("docs"), get("manifest"), get("weight"), get("token"), get("rank"))


class Unit:
    """What one row of a distribution is, and everything that depends on it.

    Attributes:
        name: The ``--unit`` choice.
        noun: What a row is called in counts and notes (``target``, ``word``, ``byte``).
        spans: The values are made from the stored byte spans and words
            (the partition must hold them).
        weighted: The values carry weights (:attr:`Values.weight`).
        across_tokenizers: Two checkpoints with different tokenizers pair
            (only the text they read must agree).
        refuses: Summaries it has no form for (top-1 needs a target's rank).
        titled: Titles and headings name the unit (tokens keep their historical, unqualified titles).
        sums_tokens: A value is the sum of several tokens' values (its range reaches further: plots widen their bins).
    """

    name = ""
    noun = ""
    spans = True
    titled = True
    sums_tokens = False
    weighted = False
    across_tokenizers = True
    refuses: tuple[str, ...] = ("top1",)

    # how the unit is named in titles and on axes: ce (CE, per-word CE), CE (capitalized), per (per-token CE,
    # CE per word), axis (a CE axis, {} for more inside the parentheses), noun, nats (nats per byte)
    labels: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<unit {self.name}>"

    # ------------------------------------------------------------ nouns and labels

    @property
    def plural(self) -> str:
        """``targets``, ``words`` or ``bytes``: the count column and what counts count."""
        return f"{self.noun}s"

    @property
    def per(self) -> str:
        """What follows a heading: ``" (per word)"``, nothing for tokens (:attr:`titled`)."""
        return f" (per {self.name})" if self.titled else ""

    @property
    def per_comma(self) -> str:
        """What follows a document's or figure's title: ``", per word"``, nothing for tokens (:attr:`titled`)."""
        return f", per {self.name}" if self.titled else ""

    def title(self, by: str | None = None, kind: ValueKind = CE) -> str:
        """``Per-word CE summaries by domain (nats per word)`` and so on.

        Example:
            >>> TOKEN.title(), BYTE.title("genre")
            ('Per-token CE summaries (nats)', 'Per-byte CE summaries by genre (nats per byte)')
        """
        split = f" by {by}" if by else ""
        return f"Per-{self.name} {kind.label} summaries{split} ({kind.measure} per {self.name})"

    def check_summaries(self, names: Sequence[str], option: str) -> None:
        """Refuse the summaries this unit has no form for (:attr:`refuses`), naming the parameters ``option`` and ``unit``.

        Example:
            >>> WORD.check_summaries(["mean", "top1"], "summaries")
            Traceback (most recent call last):
            ...
            pctce_cli.errors.UsageError: summaries top1 with unit word: top-1 accuracy is a token summary (a word or byte has no rank); drop it or use unit token
        """
        bad = [n for n in names if n in self.refuses]
        if bad:
            raise UsageError(f"{option} {bad[0]} with unit {self.name}: top-1 accuracy is a token summary (a word or byte has no rank); drop it or use unit token", param=(option, "unit", "unit"))

    def empty_note(self, rows: list[dict]) -> list[str]:
        """A note when targets with an empty span (special tokens) were left out of the words or bytes."""
        worst = max(rows, key=lambda r: r.get("empty", 0), default=None)
        if not worst or not worst.get("empty"):
            return []
        return [f"Targets with an empty span (special tokens such as end-of-turn markers) belong to no {self.name}: column 'empty' counts them (up to {worst['empty']:,} per row); their CE is not in the {self.name} distribution."]

    # ------------------------------------------------------------ values from arrays

    def empty(self, word: np.ndarray, nbytes: np.ndarray) -> np.ndarray:
        """Which targets belong to no row of this unit (an empty span)."""
        raise NotImplementedError

    def distribution(self, ce, doc, word, nbytes) -> tuple[np.ndarray, np.ndarray | None]:
        """The values of this unit's distribution and their weights, from per-target arrays sorted by (doc, pos)."""
        raise NotImplementedError

    def bootstrap_inputs(self, ce, doc, word, nbytes) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """``(values, weights, document of each value)`` for a document bootstrap of this unit's distribution."""
        raise NotImplementedError

    # ------------------------------------------------------------ loading and pairing

    def load_arrays(self, ck, columns: Sequence[str] | None = ("ce",)):
        """The stored arrays this unit is computed from: the tokens' ``columns`` (None: all), or the targets with their spans and words.

        Raises:
            UsageError: words or bytes of a checkpoint without byte spans (why, and what to do).
        """
        from pctce_cli.store import load_units

        return load_units(ck.root, ck.partition, self.name)

    def load(self, ck, columns: Sequence[str] = ("doc", "pos", "token", "ce")) -> Values:
        """One checkpoint's :class:`Values` in this unit (``columns``: the token columns read, tokens only)."""
        raise NotImplementedError

    def pair(self, a, b, a_name: str, b_name: str, base: Values | None = None, columns: Sequence[str] = ("doc", "pos", "token", "ce")) -> tuple[Values, Values]:
        """Two checkpoints' values, row ``i`` of one paired with row ``i`` of the other.

        The manifests are not looked at here (:func:`pctce_cli.catalog.check_pairable` does that).

        Args:
            base: ``a``'s :meth:`load` when already read (the gate pairs one baseline with many candidates).

        Raises:
            UsageError: a checkpoint without the arrays this unit needs.
            MixedInputError: the two do not hold the same rows (the first that differs is named).
        """
        va = base if base is not None else self.load(a, columns)
        return self.align(va, self.load(b, columns), a_name, b_name)

    def align(self, va: Values, vb: Values, a_name: str, b_name: str) -> tuple[Values, Values]:
        """Check (and for bytes, cut) two checkpoints' values so that they pair row by row."""
        raise NotImplementedError

    # ------------------------------------------------------------ streaming

    def stream_columns(self, first_pass: bool) -> tuple[str, ...]:
        """The columns a streamed summary reads (the first pass also counts targets and empty spans)."""
        raise NotImplementedError

    def stream_values(self, batches) -> Iterator[tuple[np.ndarray, np.ndarray | None, float | None]]:
        """``(values, weights, mean numerator or None)`` of this unit's distribution, a batch at a time."""
        raise NotImplementedError


class TokenUnit(Unit):
    """A target: the stored values themselves."""

    name = "token"
    noun = "target"
    spans = False
    titled = False
    across_tokenizers = False
    refuses = ()
    labels = {"ce": "CE", "CE": "CE", "per": "per-token CE", "axis": "per-token CE (nats{})", "noun": "target", "nats": "nats"}

    def title(self, by: str | None = None, kind: ValueKind = CE) -> str:
        split = f" by {by}" if by else ""
        return f"Per-token {kind.label} summaries{split} ({kind.measure})"

    def empty_note(self, rows: list[dict]) -> list[str]:
        return []

    def empty(self, word, nbytes):
        return np.zeros(len(word), bool)

    def distribution(self, ce, doc, word, nbytes):
        return np.asarray(ce), None

    def load_arrays(self, ck, columns: Sequence[str] | None = ("ce",)):
        from pctce_cli.store import load_scores

        return load_scores(ck.root, ck.partition, columns=tuple(columns)) if columns is not None else load_scores(ck.root, ck.partition)

    def load(self, ck, columns: Sequence[str] = ("doc", "pos", "token", "ce")) -> Values:
        from pctce_cli.store import load_scores

        return as_values(load_scores(ck.root, ck.partition, columns=tuple(columns)))

    def align(self, va, vb, a_name, b_name):
        check_aligned(va, vb, a_name, b_name)
        return va, vb


class WordUnit(Unit):
    """A word: its value is the sum of its tokens' (docs/definitions.md#words-and-bytes); the same words under every tokenizer of the same text."""

    name = "word"
    noun = "word"
    sums_tokens = True
    labels = {"ce": "per-word CE", "CE": "Per-word CE", "per": "CE per word", "axis": "CE per word (nats{})", "noun": "word", "nats": "nats per word"}

    def empty(self, word, nbytes):
        return np.asarray(word) < 0

    def distribution(self, ce, doc, word, nbytes):
        from pctce_cli.stats.units import word_sums

        return word_sums(ce, doc, word), None

    def bootstrap_inputs(self, ce, doc, word, nbytes):
        from pctce_cli.stats.units import word_ce

        values, value_doc = word_ce(ce, doc, word)[:2]
        return values, None, value_doc

    def load(self, ck, columns=()) -> Values:
        """One checkpoint's word values: ``index`` is the word's index in its document.

        Raises:
            UsageError: the checkpoint holds no byte spans and words.
        """
        from pctce_cli.stats.units import word_ce

        u = self.load_arrays(ck)
        value, doc, idx = word_ce(u.ce, u.doc, u.word)[:3]
        return Values(self, ck.id, doc, idx.astype(np.int32), value, u.docs, u.manifest)

    def align(self, va, vb, a_name, b_name):
        """Raise unless both hold the same words in the same order.

        Raises:
            MixedInputError: naming the first word that differs.
        """
        if len(va) != len(vb) or not (np.array_equal(va.doc, vb.doc) and np.array_equal(va.index, vb.index)):
            n = min(len(va), len(vb))
            diff = np.flatnonzero((va.doc[:n] != vb.doc[:n]) | (va.index[:n] != vb.index[:n]))
            i = int(diff[0]) if diff.size else n
            raise MixedInputError(
                f"cannot pair the words of '{a_name}' and '{b_name}': they hold {len(va)} and {len(vb)} words"
                + (f", and word {i} is document {va.doc[i]} word {va.index[i]} in one, document {vb.doc[i]} word {vb.index[i]} in the other" if i < n else "")
                + "; score both on the same data with the same reading settings"
            )
        return va, vb

    def stream_columns(self, first_pass):
        return ("doc", "ce", "word")

    def stream_values(self, batches):
        from pctce_cli.stats.streaming import stream_word_ce

        for words in stream_word_ce((b["ce"], b["doc"], b["word"]) for b in batches):
            yield words, None, None


class ByteUnit(Unit):
    """A byte: each token's CE spread evenly over its bytes (docs/definitions.md#words-and-bytes), weighted, never one row per byte."""

    name = "byte"
    noun = "byte"
    weighted = True
    labels = {"ce": "per-byte CE", "CE": "Per-byte CE", "per": "CE per byte", "axis": "CE per byte (nats per byte{})", "noun": "byte", "nats": "nats per byte"}

    def empty(self, word, nbytes):
        return np.asarray(nbytes) == 0

    def distribution(self, ce, doc, word, nbytes):
        from pctce_cli.stats.units import byte_values

        return byte_values(ce, nbytes)

    def bootstrap_inputs(self, ce, doc, word, nbytes):
        values, weights = self.distribution(ce, doc, word, nbytes)
        return values, weights, np.asarray(doc)[np.asarray(nbytes) > 0]

    def load(self, ck, columns=()) -> Values:
        """One checkpoint's byte values: ``ce / nbytes`` per token, weighted by its bytes (empty spans left out).

        Raises:
            UsageError: the checkpoint holds no byte spans.
        """
        from pctce_cli.stats.units import byte_values

        u = self.load_arrays(ck)
        value, nb = byte_values(u.ce, u.nbytes)  # the summary's own (value, weight) pairs
        keep = np.flatnonzero(u.nbytes > 0)
        return Values(self, ck.id, u.doc[keep], keep.astype(np.int32), value, u.docs, u.manifest, nb.astype(np.int64))

    def align(self, va, vb, a_name, b_name):
        """Cut the text at the token boundaries of both tokenizations: each piece one row of both, weighted by its bytes.

        (:func:`pctce_cli.stats.byte_pairs.byte_segments`; the same tokenizer: the pieces are the tokens.)

        Raises:
            MixedInputError: a document holds different bytes in the two (named).
        """
        from pctce_cli.stats.byte_pairs import byte_segments, first_byte_mismatch

        bad = first_byte_mismatch(va.doc, va.weight, vb.doc, vb.weight)
        if bad is not None:
            raise MixedInputError(
                f"cannot pair the bytes of '{a_name}' and '{b_name}': document {bad[0]} holds {bad[1]} scored bytes in "
                f"'{a_name}' and {bad[2]} in '{b_name}'; score both on the same data with the same reading settings"
            )
        ra, rb, length = byte_segments(va.doc, va.weight, vb.doc, vb.weight)
        index = np.arange(length.shape[0], dtype=np.int32)

        def piece(v, rows):
            return replace(v, doc=v.doc[rows], index=index, value=v.value[rows], weight=length)

        return piece(va, ra), piece(vb, rb)

    def stream_columns(self, first_pass):
        return ("doc", "ce", "nbytes") if first_pass else ("ce", "nbytes")

    def stream_values(self, batches):
        from pctce_cli.stats.units import byte_values

        for b in batches:
            values, weights = byte_values(b["ce"], b["nbytes"])
            yield values, weights, float(np.sum(b["ce"][b["nbytes"] > 0], dtype=np.float64))  # mean: Σ CE / Σ bytes


TOKEN, WORD, BYTE = TokenUnit(), WordUnit(), ByteUnit()
UNIT_TYPES: dict[str, Unit] = {u.name: u for u in (TOKEN, WORD, BYTE)}
assert tuple(UNIT_TYPES) == UNITS, "stats.units.UNITS names the units; each has one class here"


def unit_named(name: "str | Unit", allowed: Sequence[str] = UNITS) -> Unit:
    """The :class:`Unit` called ``name`` (a unit passes through), else a usage error naming ``--unit``.

    Example:
        >>> unit_named("word").plural
        'words'
        >>> unit_named("line")
        Traceback (most recent call last):
        ...
        pctce_cli.errors.UsageError: unit must be one of token, word, byte, got 'line'
    """
    if isinstance(name, Unit):
        name = name.name
    if name not in allowed:
        raise UsageError(f"unit must be one of {', '.join(allowed)}, got '{name}'", param="unit")
    return UNIT_TYPES[name]


def check_aligned(sa: Values, sb: Values, a_name: str, b_name: str) -> None:
    """Check that two checkpoints hold the same targets row by row (doc, position, token).

    Raises:
        MixedInputError: the lengths differ or naming the first differing target.
    """
    if len(sa.value) != len(sb.value):
        raise MixedInputError(
            f"cannot pair '{a_name}' with '{b_name}': they hold {len(sa.value)} and {len(sb.value)} targets; "
            "rescore one of them with pctce score --force"
        )
    for col in ("doc", "index", "token"):
        x, y = getattr(sa, col), getattr(sb, col)
        if x is not None and y is not None and x.size and y.size and not np.array_equal(x, y):
            i = int(np.flatnonzero(x != y)[0])
            raise MixedInputError(
                f"cannot pair '{a_name}' with '{b_name}': target {i} is document {sa.doc[i]} position {sa.index[i]} "
                f"token {sa.token[i]} in '{a_name}' but document {sb.doc[i]} position {sb.index[i]} token {sb.token[i]} "
                f"in '{b_name}'; rescore one of them with pctce score --force"
            )
