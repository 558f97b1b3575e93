"""The catalog of stored checkpoints: what every analysis command selects and compares.

One home for: the :class:`Checkpoint` record, selection by id glob over score
directories, groups (``--group NAME=GLOB``) and metadata tables (``--meta``,
``--summaries``), resolving a ``DIR``/``DIR:ID``/``ID`` argument, and the one
comparability rule (:func:`input_differences`) that summary, concord, select,
shape, compare, gate, tail, plot and report all apply. Reads manifests only
(the arrays are read by :mod:`pctce_cli.store`); no torch import.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pctce_cli.errors import MixedInputError, StoreError, UsageError
from pctce_cli.scoring.options import READ_FIELDS
from pctce_cli.store import Manifest, identical_weights, incomplete_match, list_checkpoints, read_manifest
from pctce_cli.store.layout import MANIFEST
from pctce_cli.units import unit_named

# Manifest settings that choose which tokens are targets (the reading options): they
# change the ``documents`` fingerprint, and name the cause when that fingerprint differs.
INPUT_SETTINGS = READ_FIELDS
# Scoring settings that keep the targets but can move the numbers.
SCORING_SETTINGS = ("max_length", "stride", "dtype")


@dataclass
class Checkpoint:
    """A selected checkpoint: where its scores are, its manifest, group and metadata."""

    id: str
    root: Path | None
    manifest: Manifest
    step: int | None = None
    partition: str = ""  # the store's checkpoint id; ``id`` is qualified when two stores share it
    group: str | None = None
    run: str | None = None
    meta: dict = field(default_factory=dict)


def _run_name(manifest: Manifest) -> str | None:
    if manifest.step is None or not manifest.path:
        return None
    return Path(manifest.path).parent.name or None


def from_manifest(root: Path, manifest: Manifest, with_run: bool = True) -> Checkpoint:
    """The :class:`Checkpoint` of one stored partition.

    ``with_run=False`` for a checkpoint named on its own on the command line
    (``DIR:ID``): it belongs to no training run, so it draws no trajectory.
    """
    run = _run_name(manifest) if with_run else None
    return Checkpoint(manifest.id, Path(root), manifest, manifest.step, manifest.id, None, run)


# ---------------------------------------------------------------- selection


def listing(cks: Sequence[Checkpoint], most: int = 8) -> str:
    """The first few checkpoint ids, for an error message."""
    return ", ".join(c.id for c in cks[:most]) + (" …" if len(cks) > most else "")


def select_by_globs(cks: list[Checkpoint], patterns: Sequence[str], miss, partition: bool = False) -> list[Checkpoint]:
    """Keep the checkpoints whose id matches one of the globs, in glob order, each once.

    The one glob selection of the package (``--checkpoint``, gate's
    ``--candidate``, report's ``--tail-checkpoint``).

    Args:
        cks: Checkpoints to choose from.
        patterns: Case-sensitive globs on checkpoint ids.
        miss: Called with a glob that matches nothing; returns the error to raise.
        partition: Also match the store's own id (``partition``) of each checkpoint.
    """
    keep: list[Checkpoint] = []
    for p in patterns:
        hit = [c for c in cks if fnmatch.fnmatchcase(c.id, p) or (partition and fnmatch.fnmatchcase(c.partition, p))]
        if not hit:
            raise miss(p)
        keep += [c for c in hit if c not in keep]
    return keep


def resolve_checkpoints(
    dirs: Sequence[str | Path],
    patterns: Sequence[str] = (),
    groups: Sequence[str] = (),
    meta: str | Path | None = None,
    allow_mixed: bool = False,
    unit: str = "token",
) -> list[Checkpoint]:
    """Select checkpoints from score directories, ordered by step then name.

    Args:
        dirs: Score directories written by ``pctce score``.
        patterns: ``--checkpoint`` globs; every one must match something.
        groups: ``--group NAME=GLOB`` specs (first match wins).
        meta: ``--meta`` CSV/JSON: ``checkpoint`` plus ``group`` and task columns.
        allow_mixed: Accept checkpoints scored on different data or tokenizers.
        unit: The unit they will be compared in: with ``word`` or ``byte``,
            different tokenizers on the same data are comparable (docs/definitions.md#words-and-bytes).

    Raises:
        StoreError: a directory is not a store or a glob matches nothing.
        MixedInputError: checkpoints disagree on data or tokenizer.
    """
    if not dirs:
        raise UsageError("give at least one score directory")
    # the same directory named twice (or by two spellings) is read once
    dirs = list({Path(d).resolve(): d for d in reversed(list(dirs))}.values())[::-1]
    cks: list[Checkpoint] = []
    for d in dirs:
        ms = list_checkpoints(d)
        if not ms:
            raise StoreError(f"{d} holds no complete checkpoint (run pctce score to finish it)")
        cks += [from_manifest(Path(d), m) for m in ms]
    # the same checkpoint id in two stores (a baseline store and a candidate store,
    # say) is told apart by its directory: "<dir name>/<id>"
    counts: dict[str, int] = {}
    for c in cks:
        counts[c.id] = counts.get(c.id, 0) + 1
    for c in cks:
        if counts[c.id] > 1:
            c.id = f"{c.root.name}/{c.partition}"
    if len({c.id for c in cks}) < len(cks):
        raise StoreError("two score directories with the same name hold the same checkpoint id; rename one directory")
    everything = list(cks)
    if patterns:
        cks = select_by_globs(
            cks, patterns, lambda p: StoreError(incomplete_match(p, dirs) or f"patterns '{p}' matches no checkpoint (have: {listing(everything)})", param="patterns")
        )
    cks.sort(key=lambda c: (c.step is None, c.step or 0, c.id))
    apply_groups(cks, groups, meta, everything=[c.id for c in everything] if patterns else None)
    if not allow_mixed:
        check_same_inputs(cks, unit)
    return cks


def resolve_ref(arg: str, store: str | Path | None = None, what: str = "CHECKPOINT") -> Checkpoint:
    """Resolve a checkpoint argument to a :class:`Checkpoint`.

    Accepted forms, tried in this order:

    * ``DIR`` — a score directory holding exactly one complete checkpoint
      (a partition directory ``DIR/checkpoint=ID`` also works);
    * ``DIR:ID`` — checkpoint ``ID`` in score directory ``DIR``;
    * ``ID`` — a checkpoint id in ``store`` (``--store DIR``).

    Raises:
        StoreError: the directory or the checkpoint does not exist.
        UsageError: ``DIR`` holds several checkpoints, so which one is ambiguous.
    """
    path = Path(arg)
    if path.is_dir():
        if path.name.startswith("checkpoint=") and (path / MANIFEST).exists():
            return from_manifest(path.parent, read_manifest(path.parent, path.name.split("=", 1)[1]), with_run=False)
        ms = list_checkpoints(path)
        if not ms:
            raise StoreError(f"{what}: {arg} holds no complete checkpoint (run pctce score to finish it)")
        if len(ms) > 1:
            names = ", ".join(m["id"] for m in ms[:6]) + (" …" if len(ms) > 6 else "")
            raise UsageError(f"{what}: {arg} holds {len(ms)} checkpoints ({names}); name one as {arg}:ID")
        return from_manifest(path, ms[0], with_run=False)
    root, sep, ck_id = arg.rpartition(":")
    if sep and root and ck_id and Path(root).is_dir():
        return from_manifest(Path(root), read_manifest(root, ck_id), with_run=False)
    if store is not None and not sep:
        return from_manifest(Path(store), read_manifest(store, arg), with_run=False)
    if sep and root and ck_id:
        raise StoreError(f"{what}: score directory not found: {root}")
    raise StoreError(
        f"{what}: score directory not found: {arg} (expected DIR, DIR:CHECKPOINT_ID, or a checkpoint id with --store DIR)"
    )


def label_pair(a: Checkpoint, b: Checkpoint) -> tuple[str, str]:
    """Display names of two checkpoints; the same id in two stores becomes ``<dir name>/<id>``."""
    if a.id == b.id and a.root != b.root:
        return f"{a.root.name}/{a.id}", f"{b.root.name}/{b.id}"
    return a.id, b.id


# ---------------------------------------------------------------- groups and tables


def parse_groups(specs: Sequence[str]) -> list[tuple[str, str]]:
    """Parse repeated ``--group NAME=GLOB`` options.

    Examples:
        >>> parse_groups(["distill=*top*"])
        [('distill', '*top*')]
    """
    out = []
    for spec in specs or ():
        name, sep, pattern = spec.partition("=")
        if not sep or not name.strip() or not pattern.strip():
            raise UsageError(f"group '{spec}': expected NAME=GLOB, e.g. distill='*top*'", param="group")
        out.append((name.strip(), pattern.strip()))
    return out


def _group_of(name: str, specs: list[tuple[str, str]]) -> str | None:
    return next((g for g, p in specs if fnmatch.fnmatchcase(name, p)), None)


def assign_groups(names: Sequence[str], specs: list[tuple[str, str]], everything: Sequence[str] | None = None) -> list[str | None]:
    """The group of each name (the first ``NAME=GLOB`` whose glob matches it), refusing a group left empty.

    A glob that matches no checkpoint at all is an error, as ``-c`` is; so is a group
    whose every match was already taken by an earlier group (overlapping globs would
    otherwise leave it silently empty). A glob that matches only checkpoints
    deselected by ``-c`` (``everything`` holds them) is fine.

    Raises:
        UsageError: naming the group, its glob and what it matched.

    Examples:
        >>> assign_groups(["top5", "top15", "scratch"], [("distilled", "top*"), ("controls", "scratch*")])
        ['distilled', 'distilled', 'controls']
        >>> assign_groups(["a1", "a2"], [("all", "a*"), ("ones", "a1")])
        Traceback (most recent call last):
        ...
        pctce_cli.errors.UsageError: group 'ones=a1' is empty: every checkpoint it matches (a1) is in group 'all', whose glob comes first; make the globs disjoint or give 'ones' first
    """
    groups = [_group_of(n, specs) for n in names]
    for name, pattern in specs:
        matched = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not matched:
            if everything is None or not any(fnmatch.fnmatchcase(n, pattern) for n in everything):
                raise UsageError(f"group '{name}={pattern}' matches no checkpoint (have: {', '.join(list(names)[:8])})", param="group")
            continue
        if name not in groups:
            first = groups[list(names).index(matched[0])]
            raise UsageError(
                f"group '{name}={pattern}' is empty: every checkpoint it matches ({', '.join(matched[:4])}) is in group '{first}', "
                f"whose glob comes first; make the globs disjoint or give '{name}' first",
                param="group",
            )
    return groups


def read_table(path: str | Path, option: str):
    """Read a CSV or JSON table (``meta``, ``summaries_file``; ``option`` names the parameter in errors) with a ``checkpoint`` column."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{option} file not found: {path}", param=option)
    try:
        if p.suffix.lower() == ".json":
            obj = json.loads(p.read_text(encoding="utf-8"))
            if isinstance(obj, dict):
                lists = [v for v in obj.values() if isinstance(v, list)]
                obj = lists[0] if len(lists) == 1 else [dict(checkpoint=k, **v) for k, v in obj.items() if isinstance(v, dict)]
            df = pd.DataFrame(obj)
        elif p.suffix.lower() in (".csv", ".tsv"):
            df = pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",", dtype={"checkpoint": str})
        else:
            raise UsageError(f"{path}: {option} must be .csv or .json, got '{p.suffix}'", param=(f"{path}:", option))
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read {option} table ({str(e).splitlines()[0]})", param=(f"{path}:", option)) from None
    if "checkpoint" not in df.columns:
        raise UsageError(f"{path}: {option} table has no 'checkpoint' column (columns: {', '.join(map(str, df.columns))})", param=(f"{path}:", option))
    if df.empty:
        raise UsageError(f"{path}: {option} table has no rows", param=(f"{path}:", option))
    dup = df["checkpoint"][df["checkpoint"].duplicated()].tolist()
    if dup:
        raise UsageError(f"{path}: checkpoint '{dup[0]}' appears twice in the {option} table")
    df["checkpoint"] = df["checkpoint"].astype(str)
    return df


def group_table(table, groups: Sequence[str], meta):
    """Assign groups (``--group``/``--meta``) and meta columns to a table of summaries."""
    specs = parse_groups(groups)
    if specs:
        table["group"] = assign_groups(list(table["checkpoint"]), specs)
    if meta is not None:
        df = read_table(meta, "meta")
        table = table.merge(df, on="checkpoint", how="left", suffixes=("", "_meta"))
        if "group_meta" in table.columns:
            table["group"] = table["group"].where(table["group"].notna(), table["group_meta"])
            table = table.drop(columns=["group_meta"])
    return table


def apply_groups(cks: list[Checkpoint], groups: Sequence[str], meta, everything: Sequence[str] | None = None) -> None:
    """Set each checkpoint's group (``--group`` first, then the ``--meta`` table) and meta columns (:func:`assign_groups`)."""
    specs = parse_groups(groups)
    for c, g in zip(cks, assign_groups([c.id for c in cks], specs, everything)):
        c.group = g
    if meta is None:
        return
    df = read_table(meta, "meta")
    rows = {r["checkpoint"]: r for r in df.to_dict(orient="records")}
    for c in cks:
        r = rows.get(c.id)
        if r is None:
            continue
        c.meta = {k: v for k, v in r.items() if k != "checkpoint"}
        g = r.get("group")
        if c.group is None and g is not None and not (isinstance(g, float) and math.isnan(g)):
            c.group = str(g)


# ---------------------------------------------------------------- comparability


def _short(fp) -> str:
    return str(fp)[:8] if fp else "none"


def input_differences(a: Checkpoint, b: Checkpoint, unit: str = "token") -> list[str]:
    """Why two checkpoints' CE values are not comparable (empty: they are).

    The one rule every command applies. The ``data`` fingerprint covers the
    validation files, ``tokenizer`` the tokenizer's content and ``documents``
    the exact token ids and target masks that were scored: all three must
    agree. Reading settings (:data:`INPUT_SETTINGS`) matter only through the
    targets they select: ``prefix auto`` that resolved to BOS selects the same
    targets as ``prefix bos``, so the two compare; when the ``documents``
    fingerprints differ, the settings that differ are named as the cause.

    In words and bytes (``unit`` ``word``/``byte``, docs/definitions.md#words-and-bytes) the tokenizers may
    differ: the same data read the same way has the same words and bytes. The
    reading settings must then agree, except a prefix token (BOS or EOS, as
    each tokenizer has it), which only decides that the first token is scored.
    """
    fa, fb = a.manifest.fingerprints, b.manifest.fingerprints
    reasons = []
    if fa.get("data") != fb.get("data"):
        reasons.append(f"different validation data (data fingerprints {_short(fa.get('data'))} vs {_short(fb.get('data'))})")
    if unit_named(unit).across_tokenizers:
        sa, sb = a.manifest.settings, b.manifest.settings
        scored_first = {k: (s.get("prefix") != "none") for k, s in (("a", sa), ("b", sb))}
        diff = [f"{k} {sa.get(k)!r} vs {sb.get(k)!r}" for k in INPUT_SETTINGS if k != "prefix" and sa.get(k) != sb.get(k)]
        if scored_first["a"] != scored_first["b"]:
            diff.append(f"prefix {sa.get('prefix')!r} vs {sb.get('prefix')!r}")
        if not reasons and diff:
            reasons.append("different text read from the data (" + ", ".join(diff) + ")")
        return reasons
    if fa.get("tokenizer") != fb.get("tokenizer"):
        reasons.append(
            f"different tokenizers (tokenizer fingerprints {_short(fa.get('tokenizer'))} vs {_short(fb.get('tokenizer'))})"
        )
    if not reasons and fa.get("documents") != fb.get("documents"):
        sa, sb = a.manifest.settings, b.manifest.settings
        diff = [f"{k} {sa.get(k)!r} vs {sb.get(k)!r}" for k in INPUT_SETTINGS if sa.get(k) != sb.get(k)]
        reasons.append("different targets (" + (", ".join(diff) if diff else "documents fingerprints differ") + ")")
    return reasons


def check_same_inputs(cks: Sequence[Checkpoint], unit: str = "token") -> None:
    """Refuse to summarize checkpoints side by side that were scored on different targets (or text, in words and bytes).

    Raises:
        MixedInputError: naming the first checkpoint that differs from the first one, and why.
    """
    for c in cks[1:]:
        reasons = input_differences(cks[0], c, unit)
        if reasons:
            tokenizers = any(r.startswith("different tokenizers") for r in reasons)  # only tokens ask for the same tokenizer
            hint = " or, across tokenizers, --unit word or --unit byte" if tokenizers and len(reasons) == 1 else ""
            raise MixedInputError(
                f"'{cks[0].id}' and '{c.id}' were scored on {' and '.join(reasons)}; "
                f"their CE distributions are not comparable (pass --allow-mixed to compare anyway{hint})"
            )


def check_pairable(a: Checkpoint, b: Checkpoint, a_name: str | None = None, b_name: str | None = None, unit: str = "token") -> None:
    """Refuse to pair two checkpoints whose manifests show different targets (or text, pairing words).

    Raises:
        MixedInputError: naming what differs.
    """
    reasons = input_differences(a, b, unit)
    if reasons:
        need = "the same reading settings" if unit_named(unit).across_tokenizers else "the same tokenizer and settings"
        tokenizers = any(r.startswith("different tokenizers") for r in reasons)  # only tokens ask for the same tokenizer
        hint = "; across tokenizers, pair words or bytes with --unit word or --unit byte" if tokenizers and len(reasons) == 1 else ""
        raise MixedInputError(
            f"cannot pair '{a_name or a.id}' with '{b_name or b.id}': they were scored on {' and '.join(reasons)}; "
            f"a paired comparison needs both scored on the same data with {need}{hint}"
        )


def settings_notes(a: Checkpoint, b: Checkpoint, a_name: str | None = None, b_name: str | None = None) -> list[str]:
    """Notes on scoring settings that differ without changing the targets (window, stride, dtype).

    Such checkpoints still pair, but part of Δ may come from the settings
    rather than the weights, so reports say so.
    """
    sa, sb = a.manifest.settings, b.manifest.settings
    diff = [f"{k} {sa.get(k)!r} vs {sb.get(k)!r}" for k in SCORING_SETTINGS if sa.get(k) != sb.get(k)]
    if not diff:
        return []
    return [
        f"Note: '{a_name or a.id}' and '{b_name or b.id}' were scored with different settings ({', '.join(diff)}); "
        "part of Δ may come from the settings, not the weights."
    ]


def identical_notes(cks: Sequence[Checkpoint]) -> list[str]:
    """Sentences naming the selected checkpoints that share one weights fingerprint (for summary, report, gate).

    Two revisions serving the same weights are one model measured twice, not two
    points of a trajectory; the note says so by name (with commits for Hub revisions).
    """
    return identical_weights([(c.id, c.manifest.weights_fingerprint, (c.manifest.hub or {}).get("commit")) for c in cks])
