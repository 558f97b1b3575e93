"""Analysis commands: `summary`, `concord`, `select`, `shape`, `decompose`."""

# No ``from __future__ import annotations``: Typer reads the annotations at definition time.
from pathlib import Path
from typing import Annotated

import typer

from pctce_cli.cli.common import (
    Value,
    AllowMixedOpt,
    ByOpt,
    ByPositionOpt,
    CheckpointOpt,
    DirsArg,
    Format,
    FormatOpt,
    GroupOpt,
    MetaOpt,
    OutputOpt,
    PercentilesOpt,
    PositionEdgesOpt,
    SetOpt,
    SubsetOpt,
    Unit,
    UnitOpt,
    emit_report,
    select_checkpoints,
    subsets_of,
)
from pctce_cli.parse import parse_edges, parse_percentiles, parse_summary_list
from pctce_cli.stats.defaults import CONCORDANCE_AGREE, CONCORDANCE_DISAGREE
from pctce_cli.units import unit_named

from pctce_cli.stats.summaries import DEFAULT_CONCORDANCE_SET, summary_columns

SummariesFileOpt = Annotated[
    Path | None,
    typer.Option("--summaries", help="CSV/JSON of precomputed summaries per checkpoint ('checkpoint' column plus summary and task columns) instead of score directories.", show_default=False),
]


def summary(
    dirs: DirsArg = None,
    checkpoint: CheckpointOpt = None,
    group: GroupOpt = None,
    meta: MetaOpt = None,
    percentiles: PercentilesOpt = None,
    ci: Annotated[float | None, typer.Option(help="Add document-level bootstrap intervals at this level, e.g. 0.95.", show_default=False)] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples (with --ci).")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap (results are reproducible).")] = 0,
    vs: Annotated[str | None, typer.Option(help="Reference checkpoint: add differences and the step at which each run crosses below it.", show_default=False)] = None,
    by: ByPositionOpt = None,
    subset: SubsetOpt = None,
    position_edges: PositionEdgesOpt = None,
    unit: UnitOpt = Unit.token,
    value: Annotated[Value, typer.Option("--value", help="What to summarize: ce, or the divergence from the reference model of pctce score --reference: kl (KL(p_ref ‖ p_model)), dp (Δp of the target); docs/kl.md.")] = Value.ce,
    allow_mixed: AllowMixedOpt = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
):
    """Per-checkpoint summaries: mean, ppl, percentiles, iqr, z95, top-1, bits-per-byte, word perplexity."""
    from pctce_cli.analysis.divergence import DIVERGENCE_PERCENTILES
    from pctce_cli.analysis.summary import summary_report
    from pctce_cli.stats.defaults import DEFAULT_PERCENTILES

    from pctce_cli.analysis.position import position_summary_report, resolve_positions

    positions = resolve_positions(by, position_edges, unit.value)
    cks = select_checkpoints(dirs, checkpoint, group, meta, allow_mixed, unit)
    if positions is not None:
        report = position_summary_report(cks, parse_percentiles(percentiles), positions, subsets_of(cks, None, subset), ci=ci, n_boot=bootstrap, seed=seed, vs=vs, value=value.value)
        return emit_report(report, fmt, output)
    subsets = subsets_of(cks, by, subset)
    levels = parse_percentiles(percentiles, DEFAULT_PERCENTILES if value == Value.ce else DIVERGENCE_PERCENTILES)
    report = summary_report(cks, levels, ci=ci, n_boot=bootstrap, seed=seed, vs=vs, subsets=subsets, unit=unit.value, value=value.value)
    emit_report(report, fmt, output)


RankValueOpt = Annotated[Value, typer.Option("--value", help="What to rank by: ce, or kl, the divergence from the reference model of pctce score --reference (KL(p_ref ‖ p_model), lower = closer; dp is signed and refused); docs/kl.md.")]


def _table_for(dirs, summaries_file, checkpoint, group, meta, allow_mixed, needed, by=None, subset=None, unit=Unit.token, value=Value.ce, command="concord"):
    """The summaries table concord and select read, its subsets, and the notes of reading it."""
    from pctce_cli.analysis.divergence_pairs import divergence_table, table_note
    from pctce_cli.analysis.summary import summaries_table
    from pctce_cli.catalog import group_table
    from pctce_cli.errors import UsageError

    if summaries_file is not None and dirs:
        raise UsageError("give score directories or --summaries FILE, not both")
    if summaries_file is not None and (by or subset or unit_named(unit.value).spans):
        raise UsageError("--by, --subset and --unit need score directories: --summaries holds one row per checkpoint")
    if summaries_file is not None and value != Value.ce:
        raise UsageError(f"--value {value.value} needs score directories: --summaries holds precomputed CE summaries")
    cks = None if summaries_file is not None else select_checkpoints(dirs, checkpoint, group, meta, allow_mixed, unit)
    subsets, notes = subsets_of(cks, by, subset), []
    if value != Value.ce:  # the divergence from a reference model (docs/kl.md)
        table = divergence_table(cks, value.value, needed, command, "set_" if command == "concord" else "percentiles", subsets=subsets, notes=notes, unit=unit.value)
        return table, subsets, [*notes, table_note(cks)]
    table = summaries_table(cks, summaries_file, needed, subsets=subsets, notes=notes, unit=unit.value)
    if summaries_file is not None and (group or meta):
        table = group_table(table, group or [], meta)
    return table, subsets, notes


def concord(
    dirs: DirsArg = None,
    summaries_file: SummariesFileOpt = None,
    checkpoint: CheckpointOpt = None,
    group: GroupOpt = None,
    meta: MetaOpt = None,
    percentiles: PercentilesOpt = None,
    set_: SetOpt = None,
    agree: Annotated[float, typer.Option(help="C_S at or above this reads as 'summaries agree'.")] = CONCORDANCE_AGREE,
    disagree: Annotated[float, typer.Option(help="C_S at or below this reads as 'summaries disagree'.")] = CONCORDANCE_DISAGREE,
    pairs: Annotated[bool, typer.Option("--pairs", help="List the checkpoint pairs on which mean and median disagree.")] = False,
    by: ByOpt = None,
    subset: SubsetOpt = None,
    unit: UnitOpt = Unit.token,
    value: RankValueOpt = Value.ce,
    allow_mixed: AllowMixedOpt = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
):
    """Concordance of summaries across checkpoints: C(s, s'), Kendall τ, C_S per group, and a reading."""
    from pctce_cli.analysis.concord import concord_report
    from pctce_cli.analysis.divergence import DIVERGENCE_PERCENTILES
    from pctce_cli.stats.defaults import DEFAULT_PERCENTILES

    summaries = summary_columns(parse_percentiles(percentiles, DEFAULT_PERCENTILES if value == Value.ce else DIVERGENCE_PERCENTILES))
    set_names = parse_summary_list(set_, DEFAULT_CONCORDANCE_SET, "--set")
    needed = list(dict.fromkeys(summaries + set_names))
    table, subsets, notes = _table_for(dirs, summaries_file, checkpoint, group, meta, allow_mixed, needed, by, subset, unit, value, "concord")
    emit_report(concord_report(table, summaries, set_names, agree, disagree, pairs, subsets=subsets, notes=notes, value=value.value), fmt, output)


def select(
    dirs: DirsArg = None,
    summaries_file: SummariesFileOpt = None,
    checkpoint: CheckpointOpt = None,
    group: GroupOpt = None,
    meta: MetaOpt = None,
    percentiles: PercentilesOpt = None,
    task: Annotated[str | None, typer.Option(help="Task-metric column (from --meta or --summaries, or 'accuracy' from score --task-accuracy).", show_default=False)] = None,
    higher_is_better: Annotated[bool, typer.Option("--higher-is-better/--lower-is-better", help="Direction of the task metric.")] = True,
    by: ByOpt = None,
    subset: SubsetOpt = None,
    unit: UnitOpt = Unit.token,
    value: RankValueOpt = Value.ce,
    allow_mixed: AllowMixedOpt = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
):
    """Selection rules: the checkpoint each summary picks, its regret on a task, and summary–task agreement."""
    from pctce_cli.analysis.divergence import DIVERGENCE_PERCENTILES
    from pctce_cli.analysis.select import select_report
    from pctce_cli.stats.defaults import DEFAULT_PERCENTILES
    from pctce_cli.stats.selection import AGREEMENT_PERCENTILES

    summaries = summary_columns(parse_percentiles(percentiles, DEFAULT_PERCENTILES if value == Value.ce else DIVERGENCE_PERCENTILES))
    agreement = summary_columns(AGREEMENT_PERCENTILES)
    needed = summaries if summaries_file is not None else list(dict.fromkeys(summaries + agreement))
    table, subsets, notes = _table_for(dirs, summaries_file, checkpoint, group, meta, allow_mixed, needed, by, subset, unit, value, "select")
    emit_report(select_report(table, summaries, task, higher_is_better, agreement, subsets=subsets, notes=notes), fmt, output)


def shape(
    dirs: DirsArg = None,
    checkpoint: CheckpointOpt = None,
    group: GroupOpt = None,
    meta: MetaOpt = None,
    edges: Annotated[str | None, typer.Option(help="CE band edges, e.g. 0,0.1,0.5,1.5,5,10,inf.", show_default=False)] = None,
    ecdf: Annotated[bool, typer.Option("--ecdf", help="Output ECDF points (checkpoint, ce, cdf) for plotting instead.")] = False,
    by: ByOpt = None,
    subset: SubsetOpt = None,
    unit: UnitOpt = Unit.token,
    allow_mixed: AllowMixedOpt = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
):
    """Shape of the CE distribution: mass in CE bands, standardized percentile profiles and their distances."""
    from pctce_cli.analysis.shape import shape_report

    cks = select_checkpoints(dirs, checkpoint, group, meta, allow_mixed, unit)
    emit_report(shape_report(cks, parse_edges(edges), ecdf=ecdf, subsets=subsets_of(cks, by, subset), unit=unit.value), fmt, output)


def decompose(
    dirs: DirsArg = None,
    checkpoint: CheckpointOpt = None,
    allow_mixed: AllowMixedOpt = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
):
    """Cross-entropy decomposition per checkpoint: error-entropy, self-alignment, confidence, residual."""
    from pctce_cli.analysis.shape import decompose_report

    cks = select_checkpoints(dirs, checkpoint, allow_mixed=allow_mixed)
    emit_report(decompose_report(cks), fmt, output)
