"""Core of `pctce tail`: the highest-CE targets, and the documents that carry most of the tail.

The store keeps only each target's token id, so the context before a target is
recovered by re-reading the data files named in the manifest and re-tokenizing
them with the tokenizer it recorded and the same settings (prefix, fields,
split). Every decoded target is checked against the stored token id, so a
changed tokenizer or data file is reported instead of decoded wrongly.
Transformers is imported only when decoding; no torch import here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pctce_cli.analysis.report import Report
from pctce_cli.fmt import printable
from pctce_cli.errors import CheckpointError, DataError, UsageError
from pctce_cli.store import Manifest, Scores

BY = ("token", "document")


def visible(text: str) -> str:
    r"""Escape line breaks, tabs and control characters so a decoded string fits one table cell.

    Examples:
        >>> visible("a\nb\tc\x1b]0;title\x07")
        'a\\nb\\tc\\x1b]0;title\\x07'
    """
    return printable(text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))


def _load_tokenizer(path: Path, name: str):
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as e:  # transformers raises many types for broken files
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"cannot decode '{name}': the tokenizer in {path} does not load ({first})", remedy="pass tokenizer DIR or decode=False", remedy_param=("tokenizer", "decode=False")) from None
    finally:
        hf_logging.set_verbosity(verbosity)


def decode_targets(
    manifest: dict,
    name: str,
    targets: Sequence[tuple[int, int, int]],
    context: int = 20,
    tokenizer: str | Path | None = None,
    data: Sequence[str | Path] | None = None,
) -> list[tuple[str, str]]:
    """Decode the ``context`` tokens before each target and the target itself.

    Args:
        manifest: The checkpoint's manifest (``tokenizer_path``, ``data.files``,
            ``settings``, ``fingerprints.data``).
        name: Checkpoint name for messages.
        targets: ``(doc, pos, token)`` triples as stored.
        context: Tokens of context before the target (the prefix token included).
        tokenizer: Tokenizer directory to use instead of the recorded one.
        data: Data files to use instead of the recorded ones (must have the same
            data fingerprint: a copy of the scored files).

    Returns:
        ``(context, target)`` decoded strings, one pair per target.

    Raises:
        CheckpointError: the tokenizer is gone or does not load.
        DataError: a data file is gone or changed, or re-tokenizing does not
            reproduce the stored target tokens.
    """
    from pctce_cli.data import read_records, tokenize_records
    from pctce_cli.scoring.options import ReadOptions

    tok_path = _tokenizer_path(manifest, name, tokenizer)
    files = _data_files(manifest, name, data)
    tok = _load_tokenizer(tok_path, name)
    read = ReadOptions.from_settings(manifest.settings)
    records = read_records(files, **read.record_kwargs())
    by_index = {r.index: r for r in records}
    need = sorted({int(d) for d, _, _ in targets})
    lost = [d for d in need if d not in by_index]
    if lost:
        raise DataError(f"cannot decode '{name}': the data has no document {lost[0]}; it changed since scoring")
    documents, _ = tokenize_records([by_index[d] for d in need], tok, prefix=read.prefix, tokenizer_name=str(tok_path), special_tokens=read.special_tokens)
    docs = {d.index: d for d in documents}
    out = []
    for doc, pos, token in targets:
        d = docs.get(int(doc))
        i = int(pos) + (d.offset if d is not None else 0)
        found = int(d.input_ids[i]) if d is not None and i < len(d.input_ids) else None
        if found != int(token):
            raise DataError(
                f"cannot decode '{name}': re-tokenizing document {doc} gives token {found} at position {pos}, "
                f"but the store holds {token}; the tokenizer or its settings changed since scoring "
                "(pass the original --tokenizer, or --no-decode)"
            )
        ctx = d.input_ids[max(0, i - context) : i].tolist()
        out.append((visible(tok.decode(ctx)), visible(tok.decode([int(token)]))))
    return out


def _tokenizer_path(manifest: Manifest, name: str, tokenizer: str | Path | None) -> Path:
    """The tokenizer directory to decode with: ``tokenizer``, else the one the manifest records (it must exist)."""
    recorded_tok = manifest.tokenizer_path
    if tokenizer is None and not recorded_tok:
        raise CheckpointError(f"cannot decode '{name}': its manifest records no tokenizer path", remedy="pass tokenizer DIR or decode=False", remedy_param=("tokenizer", "decode=False"))
    tok_path = Path(tokenizer) if tokenizer is not None else Path(recorded_tok)
    if not tok_path.exists():
        if tokenizer is not None:
            raise CheckpointError(f"tokenizer: directory not found: {tok_path}", param="tokenizer")
        raise CheckpointError(f"cannot decode '{name}': its tokenizer {tok_path} (recorded in the manifest) is gone", remedy="pass tokenizer DIR or decode=False", remedy_param=("tokenizer", "decode=False"))
    return tok_path


def _data_files(manifest: Manifest, name: str, data: Sequence[str | Path] | None) -> list[str]:
    """The data files to re-read: ``data``, else the manifest's; each must exist and match the scored data's fingerprint."""
    from pctce_cli.data import data_fingerprint

    files = [str(f) for f in (data or manifest.data_files)]
    if not files:
        raise DataError(f"cannot decode '{name}': its manifest names no data files", remedy="pass data FILE or decode=False", remedy_param=("data", "decode=False"))
    for f in files:
        if not Path(f).is_file():
            if data:
                raise DataError(f"data: file not found: {f}", param="data")
            raise DataError(
                f"cannot decode '{name}': data file {f} (recorded in the manifest) is gone",
                remedy="pass data FILE (a copy of the scored data) or decode=False",
                remedy_param=("data", "decode=False"),
            )
    recorded_fp = manifest.fingerprints.get("data")
    if recorded_fp and data_fingerprint(files) != recorded_fp:
        raise DataError(
            f"cannot decode '{name}': {', '.join(files)} differ from the data it was scored on (data fingerprint changed)",
            remedy="pass the original files with data, or decode=False",
            remedy_param=("data", "decode=False"),
        )
    return files


def top_targets(ce: np.ndarray, top: int) -> np.ndarray:
    """Indices of the ``top`` largest CE values, largest first; ties keep store order (doc, pos).

    Examples:
        >>> top_targets(np.array([0.5, 2.0, 1.0, 2.0]), 3).tolist()
        [1, 3, 2]
    """
    n = len(ce)
    if top >= n:
        cand = np.arange(n)
    else:
        cand = np.argpartition(-ce, top - 1)[:top]
        thr = ce[cand].min()
        cand = np.flatnonzero(ce >= thr)  # every tie at the threshold, so store order decides
    order = np.lexsort((cand, -ce[cand].astype(np.float64)))
    return cand[order][:top]


def tail_documents(doc: np.ndarray, ce: np.ndarray, q: float) -> tuple[dict, float]:
    """Per-document share of the tail (targets with CE ≥ the q-th percentile).

    Returns:
        ``({"ids", "starts", "counts", "n_tail", "tail_mass", "mass"}, threshold)``
        with one entry per document in sorted id order; ``starts`` indexes the
        first target of each document (the store is sorted by doc, pos).
    """
    from pctce_cli.stats.summaries import percentiles

    thr = float(percentiles(ce, [q])[0])
    ids, starts, inv, counts = np.unique(doc, return_index=True, return_inverse=True, return_counts=True)
    ce64 = ce.astype(np.float64)
    tail = ce >= thr
    per = {
        "ids": ids,
        "starts": starts,
        "counts": counts,
        "n_tail": np.bincount(inv, weights=tail, minlength=len(ids)),
        "tail_mass": np.bincount(inv, weights=ce64 * tail, minlength=len(ids)),
        "mass": np.bincount(inv, weights=ce64, minlength=len(ids)),
    }
    return per, thr


def run_tail(
    checkpoint: str,
    store: str | Path | None = None,
    top: int = 20,
    by: str = "token",
    context: int = 20,
    percentile: float = 95.0,
    vs: str | None = None,
    tokenizer: str | Path | None = None,
    data: Sequence[str | Path] | None = None,
    decode: bool = True,
    scores: Scores | None = None,
    unit: str = "token",
) -> Report:
    """`pctce tail`: the highest-CE targets (``by="token"``) or the documents carrying most of the tail.

    Args:
        checkpoint: ``DIR``, ``DIR:ID`` or an id in ``store``.
        store: Score directory for bare ids.
        top: How many targets or documents.
        by: ``"token"`` or ``"document"``.
        context: Decoded tokens before each target.
        percentile: For ``by="document"``: the tail is every target with CE ≥ this percentile.
        vs: Another checkpoint (same forms; a bare id is looked up in the same store):
            its CE on the same targets is added.
        tokenizer, data: Replace the tokenizer / data files recorded in the manifest.
        decode: Decode context and target (needs tokenizer and data); off: token ids only.
        scores: The checkpoint's arrays when the caller has loaded them (all columns;
            ``pctce report`` reads each partition once).
        unit: ``word``: the highest-CE words (docs/definitions.md#words-and-bytes), each with its tokens under
            this checkpoint's tokenizer and, with ``vs``, under the other's
            (:func:`word_tail`).
    """
    if by not in BY:
        raise UsageError(f"by must be 'token' or 'document', got {by!r}", param="by")
    if top < 1:
        raise UsageError(f"top must be at least 1, got {top}", param="top")
    if context < 0:
        raise UsageError(f"context must be >= 0, got {context}", param="context")
    lister = TAIL_UNITS.get(unit)
    if lister is None:
        raise UsageError(f"unit {unit}: tail lists tokens or words", param="unit")
    return lister(checkpoint, store, top, by, context, percentile, vs, tokenizer, data, decode, scores)


def _token_tail(checkpoint, store, top, by, context, percentile, vs, tokenizer, data, decode, scores) -> Report:
    """:func:`run_tail` in tokens: the highest-CE targets, or the documents carrying most of the tail."""
    if not 0 <= percentile <= 100:
        raise UsageError(f"percentile must be in [0, 100], got {percentile}", param="percentile")
    ck, s, other, name, o_name = _tail_values(checkpoint, store, vs, scores)
    if len(s.value) == 0:
        raise DataError(f"'{name}' holds no targets")

    def texts_of(idx):
        picks = [(int(s.doc[i]), int(s.index[i]), int(s.token[i])) for i in idx]
        return decode_targets(ck.manifest, name, picks, context, tokenizer, data) if decode else None

    total_mass = float(s.value.astype(np.float64).sum())
    if by == "token":
        report = _target_rows(s, other, name, top, context, texts_of, total_mass)
    else:
        report = _document_rows(s, other, name, top, percentile, texts_of, total_mass)
    report.notes += [f"ce vs: CE of '{o_name}' on the same target (Δ vs = ce vs − ce)."] if other is not None else []
    return report


def _tail_values(checkpoint, store, vs, scores) -> tuple:
    """``(checkpoint, its token values, the other's or None, name, other's name or None)``; with ``vs`` the two are paired."""
    from pctce_cli.catalog import label_pair, resolve_ref
    from pctce_cli.compare import load_pair
    from pctce_cli.units import TOKEN, as_values

    ck = resolve_ref(checkpoint, store, "CHECKPOINT")
    if vs is None:
        return ck, as_values(scores) if scores is not None else TOKEN.load(ck, ("doc", "pos", "token", "ce", "rank")), None, ck.id, None
    o = resolve_ref(vs, store if store is not None else ck.root, "--vs")
    name, o_name = label_pair(ck, o)
    if o.root == ck.root and o.partition == ck.partition:
        raise UsageError(f"vs names the checkpoint itself ('{name}')", param="vs")
    s, other = load_pair(ck, o, name, o_name)
    return ck, s, other, name, o_name


def _target_rows(s, other, name: str, top: int, context: int, texts_of, total_mass: float) -> Report:
    """The table of the ``top`` highest-CE targets, decoded by ``texts_of``."""
    idx = top_targets(s.value, top)
    texts = texts_of(idx)
    rows = []
    for k, i in enumerate(idx):
        row = {"#": k + 1, "doc": int(s.doc[i]), "pos": int(s.index[i]), "ce": float(s.value[i]), "rank": int(s.rank[i])}
        if other is not None:
            row["ce vs"] = float(other.value[i])
            row["Δ vs"] = float(other.value[i]) - float(s.value[i])
        row["token"] = int(s.token[i])
        if texts is not None:
            row["context"], row["target"] = texts[k]
        rows.append(row)
    report = Report()
    report.add(f"Highest-CE targets of {name}", rows)
    share = float(s.value[idx].astype(np.float64).sum()) / total_mass if total_mass else float("nan")
    report.notes.append(
        f"The {len(idx)} highest-CE of {len(s.value):,} targets carry {share:.1%} of the total CE"
        + (f"; context: up to {context} tokens before the target." if texts is not None else ".")
    )
    return report


def _document_rows(s, other, name: str, top: int, percentile: float, texts_of, total_mass: float) -> Report:
    """The table of the ``top`` documents carrying most of the tail's CE, each with its highest-CE target."""
    per, thr = tail_documents(s.doc, s.value, percentile)
    n_tail_all = float(per["n_tail"].sum())
    tail_mass_all = float(per["tail_mass"].sum())
    order = np.lexsort((per["ids"], -per["tail_mass"]))[:top]
    worst = []
    for j in order:
        start, count = int(per["starts"][j]), int(per["counts"][j])
        worst.append(start + int(np.argmax(s.value[start : start + count])))
    texts = texts_of(worst)
    rows = []
    for k, (j, i) in enumerate(zip(order, worst)):
        start, count = int(per["starts"][j]), int(per["counts"][j])
        row = {
            "#": k + 1,
            "doc": int(per["ids"][j]),
            "targets": count,
            "tail targets": int(per["n_tail"][j]),
            "tail share": float(per["n_tail"][j]) / n_tail_all if n_tail_all else float("nan"),
            "tail CE share": float(per["tail_mass"][j]) / tail_mass_all if tail_mass_all else float("nan"),
            "mean ce": float(per["mass"][j]) / count,
        }
        if other is not None:
            row["mean ce vs"] = float(other.value[start : start + count].astype(np.float64).mean())
        row.update({"worst pos": int(s.index[i]), "worst ce": float(s.value[i]), "rank": int(s.rank[i])})
        if other is not None:
            row["worst ce vs"] = float(other.value[i])
        row["token"] = int(s.token[i])
        if texts is not None:
            row["context"], row["target"] = texts[k]
        rows.append(row)
    report = Report()
    report.add(f"Documents carrying most of the tail of {name} (CE ≥ p{percentile:g})", rows)
    report.notes.append(
        f"Tail: the {int(n_tail_all):,} targets with CE ≥ p{percentile:g} = {thr:.4f} nats "
        f"({tail_mass_all / total_mass:.1%} of the total CE); documents ranked by their share of the tail's CE; "
        "target/context: each document's highest-CE target."
    )
    return report


def _word_tail(checkpoint, store, top, by, context, percentile, vs, tokenizer, data, decode, scores) -> Report:
    """:func:`run_tail` in words (:func:`word_tail`)."""
    if by != "token":
        raise UsageError("unit word lists the highest-CE words: use it without by document", param=("unit", "by"))
    return word_tail(checkpoint, store, top, vs, tokenizer, decode)


def word_tail(checkpoint: str, store, top: int, vs: str | None, tokenizer=None, decode: bool = True, only_docs=None) -> Report:
    """The highest-CE words of a checkpoint, each with its tokens (and, with ``vs``, the other checkpoint's).

    Words are the same under every tokenizer of the same data (docs/definitions.md#words-and-bytes), so
    ``vs`` may be a checkpoint with another tokenizer: each row shows how both
    split the word and what it cost each. ``only_docs``: the words of these
    documents only (``pctce report --subset``).

    Raises:
        UsageError: a checkpoint without byte spans and words.
        MixedInputError: the two checkpoints' words differ.
    """
    from pctce_cli.catalog import label_pair, resolve_ref
    from pctce_cli.compare import load_pair
    from pctce_cli.units import WORD

    ck = resolve_ref(checkpoint, store, "CHECKPOINT")
    name, sides = ck.id, [ck]
    if vs is not None:
        o = resolve_ref(vs, store if store is not None else ck.root, "--vs")
        name, o_name = label_pair(ck, o)
        if o.root == ck.root and o.partition == ck.partition:
            raise UsageError(f"vs names the checkpoint itself ('{name}')", param="vs")
        sides.append(o)
        words = list(load_pair(ck, o, name, o_name, WORD))
    else:
        words = [WORD.load(ck)]
    if only_docs is not None:
        words = [x.keep_docs(only_docs) for x in words]
    w = words[0]
    if len(w.value) == 0:
        raise DataError(f"'{name}' holds no words")
    idx = top_targets(w.value, top)
    pieces = [_word_pieces(c, w.doc[idx], w.index[idx], tokenizer if k == 0 else None, decode) for k, c in enumerate(sides)]
    rows = []
    for k, i in enumerate(idx):
        row = {"#": k + 1, "doc": int(w.doc[i]), "word": int(w.index[i]), "text": pieces[0][k][0], "ce": float(w.value[i]), "tokens": pieces[0][k][1]}
        if vs is not None:
            row.update({"ce vs": float(words[1].value[i]), "Δ vs": float(words[1].value[i] - w.value[i]), "tokens vs": pieces[1][k][1]})
        rows.append(row)
    report = Report()
    report.add(f"Highest-CE words of {name} (nats per word: the sum of the word's tokens' CE)", rows)
    total = float(w.value.sum())
    share = float(w.value[idx].sum()) / total if total else float("nan")
    report.notes.append(f"The {len(idx)} highest-CE of {len(w.value):,} words carry {share:.1%} of the words' CE; tokens: how each tokenizer split the word (| between tokens).")
    return report


def _word_pieces(ck, docs: np.ndarray, words: np.ndarray, tokenizer, decode: bool) -> list[tuple[str, str]]:
    """Each listed word's text and tokens under ``ck``'s tokenizer: ``(word, "tok|tok")`` decoded (token ids without ``decode``).

    A byte-level piece of a multi-byte character decodes alone to ``�``; the
    word's text is decoded from all its tokens together.
    """
    from pctce_cli.store import load_scores, load_units

    s = load_scores(ck.root, ck.partition, columns=("doc", "token"))
    u = load_units(ck.root, ck.partition, "word")
    tok = None
    if decode:
        path = Path(tokenizer) if tokenizer is not None else Path(ck.manifest.tokenizer_path or "")
        if not path.exists():
            raise CheckpointError(f"cannot decode '{ck.id}': its tokenizer {path} is gone", remedy="pass tokenizer DIR or decode=False", remedy_param=("tokenizer", "decode=False"))
        tok = _load_tokenizer(path, ck.id)
    out = []
    for d, wi in zip(docs.tolist(), words.tolist()):
        ids = s.token[(u.doc == d) & (u.word == wi)].tolist()
        if tok is None:
            out.append(("", " ".join(map(str, ids))))
        else:
            out.append((visible(tok.decode(ids).strip()), "|".join(visible(tok.decode([t])) for t in ids)))
    return out


# what `pctce tail --unit` lists: targets (or documents), or words; a byte has no example of its own
TAIL_UNITS = {"token": _token_tail, "word": _word_tail}
