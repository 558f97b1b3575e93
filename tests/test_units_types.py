"""The unit types (pctce_cli/units.py): names, nouns, refused summaries, values from arrays, pairing, against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from pctce_cli.errors import MixedInputError, UsageError
from pctce_cli.stats.units import UNITS
from pctce_cli.store import Scores
from pctce_cli.units import BYTE, TOKEN, UNIT_TYPES, WORD, Values, as_values, check_aligned, unit_named


def _values(unit, doc, index, value, weight=None, token=None):
    arr = lambda x: None if x is None else np.asarray(x)  # noqa: E731
    return Values(unit, "c", arr(doc), arr(index), np.asarray(value, np.float64), None, {}, arr(weight), arr(token))


def test_one_class_per_unit_in_stats_order():
    assert tuple(UNIT_TYPES) == UNITS
    assert all(unit_named(name) is u for name, u in UNIT_TYPES.items())
    assert unit_named(WORD) is WORD
    with pytest.raises(UsageError, match=r"^unit must be one of token, word, byte, got 'line'$"):
        unit_named("line")


def test_nouns_and_titles():
    assert [u.plural for u in (TOKEN, WORD, BYTE)] == ["targets", "words", "bytes"]
    assert [u.per for u in (TOKEN, WORD, BYTE)] == ["", " (per word)", " (per byte)"]
    assert [u.per_comma for u in (TOKEN, WORD, BYTE)] == ["", ", per word", ", per byte"]
    assert TOKEN.title("domain") == "Per-token CE summaries by domain (nats)"
    assert WORD.title() == "Per-word CE summaries (nats per word)"
    assert (TOKEN.across_tokenizers, WORD.across_tokenizers, BYTE.across_tokenizers) == (False, True, True)
    assert (TOKEN.weighted, WORD.weighted, BYTE.weighted) == (False, False, True)


def test_only_tokens_have_top1():
    TOKEN.check_summaries(["mean", "top1"], "--summaries")
    for u in (WORD, BYTE):
        with pytest.raises(UsageError, match=rf"^set_ top1 with unit {u.name}: top-1 accuracy is a token summary"):
            u.check_summaries(["p50", "top1"], "set_")


def test_distributions_against_brute_force():
    ce = np.array([1.0, 2.0, 0.5, 4.0, 3.0])
    doc = np.array([0, 0, 0, 1, 1])
    word = np.array([0, 0, -1, 0, 1])
    nbytes = np.array([2, 1, 0, 4, 3])
    values, weights = WORD.distribution(ce, doc, word, nbytes)
    want = [ce[(doc == d) & (word == w)].sum() for d, w in sorted({(d, w) for d, w in zip(doc, word) if w >= 0})]
    assert values.tolist() == want and weights is None
    values, weights = BYTE.distribution(ce, doc, word, nbytes)
    expanded = np.concatenate([np.full(n, c / n) for c, n in zip(ce, nbytes) if n])
    assert np.allclose(np.repeat(values, weights), expanded)
    assert TOKEN.distribution(ce, doc, word, nbytes)[0] is not None
    assert WORD.empty(word, nbytes).tolist() == (word < 0).tolist()
    assert BYTE.empty(word, nbytes).tolist() == (nbytes == 0).tolist()


def test_empty_note_only_in_words_and_bytes():
    rows = [{"empty": 3}, {"empty": 7}]
    assert TOKEN.empty_note(rows) == []
    assert "up to 7 per row" in WORD.empty_note(rows)[0]
    assert WORD.empty_note([{"empty": 0}]) == []


def test_values_take_and_keep_docs():
    v = _values(WORD, [0, 0, 1, 2], [0, 1, 0, 0], [1.0, 2.0, 3.0, 4.0])
    kept = v.keep_docs([0, 2])
    assert kept.doc.tolist() == [0, 0, 2] and kept.value.tolist() == [1.0, 2.0, 4.0] and len(kept) == 3


def test_token_alignment_names_the_first_differing_target():
    a = _values(TOKEN, [0, 0, 1], [0, 1, 0], [1.0, 1.0, 1.0], token=[5, 6, 7])
    b = _values(TOKEN, [0, 0, 1], [0, 1, 0], [2.0, 2.0, 2.0], token=[5, 9, 7])
    with pytest.raises(MixedInputError, match=r"target 1 is document 0 position 1 token 6 in 'a' but document 0 position 1 token 9 in 'b'"):
        check_aligned(a, b, "a", "b")
    assert TOKEN.align(a, a, "a", "a") == (a, a)


def test_words_pair_only_when_the_same():
    a = _values(WORD, [0, 0, 1], [0, 1, 0], [1.0, 2.0, 3.0])
    b = _values(WORD, [0, 1, 1], [0, 0, 1], [1.0, 2.0, 3.0])
    with pytest.raises(MixedInputError, match=r"word 1 is document 0 word 1 in one, document 1 word 0 in the other"):
        WORD.align(a, b, "a", "b")


def test_bytes_pair_by_runs_of_both_tokenizations():
    # one document of 6 bytes: a splits it 2+4, b 3+3; the runs are 2, 1, 3 bytes
    a = _values(BYTE, [0, 0], [0, 1], [0.5, 0.25], weight=[2, 4])
    b = _values(BYTE, [0, 0], [0, 1], [1.0, 2.0], weight=[3, 3])
    pa, pb = BYTE.align(a, b, "a", "b")
    assert pa.weight.tolist() == [2, 1, 3] and pa.value.tolist() == [0.5, 0.25, 0.25] and pb.value.tolist() == [1.0, 1.0, 2.0]
    assert int(pa.weight.sum()) == 6 and pa.index.tolist() == [0, 1, 2]
    with pytest.raises(MixedInputError, match=r"document 0 holds 6 scored bytes in 'a' and 5 in 'b'"):
        BYTE.align(a, _values(BYTE, [0], [0], [1.0], weight=[5]), "a", "b")


def test_scores_read_as_token_values():
    s = Scores("c", np.array([0, 0]), np.array([1, 2]), np.array([7, 8]), np.array([0.5, 1.5], np.float32), np.array([0, 3]), None, {})
    v = as_values(s)
    assert v.unit is TOKEN and v.index.tolist() == [1, 2] and v.value.tolist() == [0.5, 1.5] and v.rank.tolist() == [0, 3] and v.weight is None
    assert as_values(v) is v
