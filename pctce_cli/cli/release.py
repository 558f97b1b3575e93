"""Release-decision commands: `compare`, `gate`, `tail`.

Each makes one core call (:mod:`pctce_cli.compare`, :mod:`pctce_cli.gate`,
:mod:`pctce_cli.tail`), renders, and exits: 0 ok, 1 the gate failed, 2 bad input.
"""

# No ``from __future__ import annotations``: Typer reads the annotations at definition time.
import os
from pathlib import Path
from typing import Annotated

import typer

from pctce_cli.cli.common import ByPositionOpt, DirsArg, Format, FormatOpt, OutputOpt, PercentilesOpt, PositionEdgesOpt, StoreOpt, SubsetOpt, Unit, Value, choices, emit_report
from pctce_cli.parse import parse_percentiles
from pctce_cli.gate import REQUIRE
from pctce_cli.tail import BY

By = choices("By", BY)
Require = choices("Require", REQUIRE)

CiOpt = Annotated[float, typer.Option(help="Confidence level of the paired bootstrap intervals.")]
BootOpt = Annotated[int, typer.Option(help="Bootstrap resamples (documents resampled with replacement).")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the bootstrap (results are reproducible).")]


def compare(
    baseline: Annotated[
        str,
        typer.Argument(help="Baseline checkpoint: DIR (holding one checkpoint), DIR:ID, or ID with --store.", show_default=False),
    ],
    candidate: Annotated[
        str,
        typer.Argument(help="Candidate checkpoint, in the same forms as BASELINE.", show_default=False),
    ],
    store: StoreOpt = None,
    percentiles: PercentilesOpt = None,
    ci: CiOpt = 0.95,
    bootstrap: BootOpt = 1000,
    seed: SeedOpt = 0,
    top: Annotated[int, typer.Option(help="Documents listed in each 'moved most' table (0: none).")] = 10,
    by: ByPositionOpt = None,
    subset: SubsetOpt = None,
    position_edges: PositionEdgesOpt = None,
    unit: Annotated[Unit, typer.Option("--unit", help="Pair tokens, or words or bytes (docs/definitions.md#words-and-bytes: two tokenizers of the same data compare word by word or byte by byte).")] = Unit.token,
    value: Annotated[Value, typer.Option("--value", help="What to compare: ce, or the divergence from the reference model of pctce score --reference (both scored against the same one): kl (KL(p_ref ‖ p_model)), dp (Δp of the target); docs/kl.md.")] = Value.ce,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
):
    """Paired comparison of two checkpoints on the same targets: Δ of every summary with intervals, and a verdict."""
    from pctce_cli.analysis.divergence import DIVERGENCE_PERCENTILES
    from pctce_cli.compare import run_compare
    from pctce_cli.stats.defaults import DEFAULT_PERCENTILES

    levels = parse_percentiles(percentiles, DEFAULT_PERCENTILES if value == Value.ce else DIVERGENCE_PERCENTILES)
    report = run_compare(
        baseline, candidate, store, levels, ci=ci, n_boot=bootstrap, seed=seed, top=top, by=by, subset=subset or (), unit=unit.value, position_edges=position_edges, value=value.value
    )
    emit_report(report, fmt, output)


# Long by its Typer option declarations (they are the --help); the body parses, makes one core call, renders.
def gate(
    dirs: DirsArg = None,
    policy: Annotated[
        Path | None,
        typer.Option(help="Policy TOML file: baseline and \\[\\[rule]] tables (see docs/gate.md).", show_default=False),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(help="Baseline checkpoint id (overrides the policy's 'baseline').", show_default=False),
    ] = None,
    candidate: Annotated[
        list[str] | None,
        typer.Option(help="Candidate checkpoint id glob (repeatable; default: every checkpoint but the baseline).", show_default=False),
    ] = None,
    rule: Annotated[
        list[str] | None,
        typer.Option(
            help="A rule SUMMARY[@SUBSET]:+LIMIT[%][:significant], e.g. p50:+0.01, p95:+3%:significant, "
            "p95@code:+3% (one subset), p95@*:+3% (each subset); or a limit on the divergence from the reference of "
            "pctce score --reference, e.g. 'p99 kl <= 0.05', 'same_top1 >= 0.98' (no baseline needed; docs/kl.md) (repeatable; added to the policy's rules).",
            show_default=False,
        ),
    ] = None,
    ci: Annotated[float | None, typer.Option(help="Confidence level of the intervals (default 0.95, or the policy's 'ci').", show_default=False)] = None,
    bootstrap: Annotated[int | None, typer.Option(help="Bootstrap resamples (default 1000, or the policy's 'bootstrap').", show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(help="Bootstrap seed (default 0, or the policy's 'seed').", show_default=False)] = None,
    require: Annotated[
        Require | None,
        typer.Option(help="Pass when all candidates pass every rule (default), or when any one does.", show_default=False),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Check every rule that names no subset on each subset of this field (see docs/gate.md).", show_default=False),
    ] = None,
    subset: Annotated[
        list[str] | None,
        typer.Option("--subset", help="Gate only the documents of this subset value (repeatable; FIELD=VALUE names the field).", show_default=False),
    ] = None,
    unit: Annotated[
        Unit | None,
        typer.Option("--unit", help="Pair tokens, or words or bytes (candidates with another tokenizer on the same data; default: the policy's unit, else token).", show_default=False),
    ] = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="Also write the full result as JSON to this file.", show_default=False)] = None,
    markdown: Annotated[
        Path | None,
        typer.Option(help="Also write a Markdown report to this file (appended to $GITHUB_STEP_SUMMARY when set).", show_default=False),
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option(help="Also write JUnit XML (one testcase per rule, subset and candidate) to this file.", show_default=False),
    ] = None,
    fmt: FormatOpt = Format.table,
):
    """Release gate: fail (exit 1) when a candidate regresses beyond the policy's limits vs the baseline."""
    from pctce_cli import gate as core
    from pctce_cli.errors import GateFailed

    core.check_outputs(json_file, markdown, junit)
    result = core.run_gate(
        dirs or [],
        policy=policy,
        baseline=baseline,
        candidates=candidate or [],
        rules=rule or [],
        ci=ci,
        n_boot=bootstrap,
        seed=seed,
        require=require.value if require else None,
        by=by,
        subset=subset or (),
        unit=unit.value if unit else None,
    )
    emit_report(core.gate_report(result), fmt, None)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY") if markdown else None
    core.write_outputs(result, json_file, markdown, junit, step_summary=step_summary)
    if not result.passed:
        raise GateFailed(core.failure_message(result))


def tail(
    checkpoint: Annotated[
        str,
        typer.Argument(help="Checkpoint: DIR (holding one checkpoint), DIR:ID, or ID with --store.", show_default=False),
    ],
    store: StoreOpt = None,
    top: Annotated[int, typer.Option(help="How many targets (or documents) to list.")] = 20,
    by: Annotated[By, typer.Option(help="List the highest-CE targets, or the documents carrying most of the tail.")] = By.token,
    context: Annotated[int, typer.Option(help="Tokens of decoded context before each target.")] = 20,
    percentile: Annotated[float, typer.Option(help="With --by document: the tail is every target with CE at or above this percentile.")] = 95.0,
    vs: Annotated[
        str | None,
        typer.Option(help="Another checkpoint (DIR, DIR:ID or an id in the same store): add its CE on the same targets.", show_default=False),
    ] = None,
    tokenizer: Annotated[
        Path | None,
        typer.Option(help="Tokenizer directory to decode with instead of the one recorded in the manifest.", show_default=False),
    ] = None,
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", "-d", help="Copies of the scored data files, if the recorded paths are gone (repeatable).", show_default=False),
    ] = None,
    no_decode: Annotated[bool, typer.Option("--no-decode", help="Show token ids only (needs neither tokenizer nor data).")] = False,
    unit: Annotated[Unit, typer.Option("--unit", help="List tokens, or words with their tokens (with --vs: under both tokenizers).")] = Unit.token,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
):
    """The highest-CE targets with their decoded context, or the documents that carry most of the tail."""
    from pctce_cli.tail import run_tail

    report = run_tail(
        checkpoint,
        store,
        top=top,
        by=by.value,
        context=context,
        percentile=percentile,
        vs=vs,
        tokenizer=tokenizer,
        data=[str(p) for p in data] if data else None,
        decode=not no_decode,
        unit=unit.value,
    )
    emit_report(report, fmt, output)
