"""The `pctce` command line: each command parses options, calls one core function, renders.

No statistics and no file I/O here. The core raises :class:`PctceError`; only this
module turns it into a one-line ``Error: …`` and an exit code (0 ok, 1 gate
failed, 2 bad input). Heavy libraries are imported inside commands so that
``pctce --help`` and the analysis commands start fast.
"""

from __future__ import annotations

import functools
import os
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from pctce_cli import __version__
from pctce_cli.errors import PctceError

app = typer.Typer(
    name="pctce",
    help="Evaluate language-model checkpoints by the [bold]distribution[/] of their per-token cross-entropy: "
    "percentiles, concordance, selection rules and release gates.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class Prefix(str, Enum):
    auto = "auto"
    bos = "bos"
    eos = "eos"
    none = "none"


class SplitOn(str, Enum):
    none = "none"
    blank_lines = "blank-lines"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class DType(str, Enum):
    auto = "auto"
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


def _version(value: bool):
    if value:
        typer.echo(f"pctce {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
):
    """Evaluate language-model checkpoints by the distribution of their per-token cross-entropy."""


def handles_errors(fn):
    """Turn the core's PctceError into ``Error: <message>`` and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from pctce_cli import render

        try:
            return fn(*args, **kwargs)
        except PctceError as e:
            render.error(str(e))
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            render.error("interrupted; finished shards are kept and the same command resumes")
            raise typer.Exit(130) from None

    return wrapper


# ---------------------------------------------------------------- score


@app.command(no_args_is_help=True)
@handles_errors
def score(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Checkpoints: save_pretrained directories, run directories holding checkpoint-*/step_*/epoch-* "
            "subdirectories, or PEFT adapter directories.",
            show_default=False,
        ),
    ],
    data: Annotated[
        list[Path],
        typer.Option(
            "--data",
            "-d",
            help="Validation data: .txt, .jsonl, .json, .parquet or .csv (repeat for several files).",
            show_default=False,
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Score directory to write (hive-partitioned Parquet).", show_default=False)],
    text_field: Annotated[str, typer.Option(help="Field holding the text of each record.")] = "text",
    prompt_field: Annotated[str | None, typer.Option(help="Prompt field: with --completion-field, only completion tokens are scored.")] = None,
    completion_field: Annotated[str | None, typer.Option(help="Completion field (answer-only CE).")] = None,
    messages_field: Annotated[str, typer.Option(help="Field holding chat messages (only assistant tokens are scored).")] = "messages",
    split_on: Annotated[SplitOn, typer.Option(help="For .txt files: one document per file, or split on blank lines.")] = SplitOn.none,
    prefix: Annotated[Prefix, typer.Option(help="Token placed before the first token so it can be scored (auto: BOS, else EOS).")] = Prefix.auto,
    max_length: Annotated[int | None, typer.Option(help="Window length in tokens (default: the model's context).", show_default=False)] = None,
    stride: Annotated[int | None, typer.Option(help="Sliding-window stride (default: half the window).", show_default=False)] = None,
    batch_tokens: Annotated[int | None, typer.Option(help="Token budget per forward pass (batch × padded length); default 2048 on CPU, 16384 on GPU.", show_default=False)] = None,
    shard_targets: Annotated[int, typer.Option(help="Targets per Parquet shard (the unit of resume).")] = 1 << 20,
    device: Annotated[Device, typer.Option(help="Where to run the model.")] = Device.auto,
    dtype: Annotated[DType, typer.Option(help="Model dtype (auto: float32 on CPU, bfloat16/float16 on CUDA).")] = DType.auto,
    tokenizer: Annotated[Path | None, typer.Option(help="Tokenizer directory to use instead of each checkpoint's own.", show_default=False)] = None,
    base_model: Annotated[Path | None, typer.Option(help="Base model directory for PEFT adapters (overrides adapter_config.json).", show_default=False)] = None,
    trust_remote_code: Annotated[bool, typer.Option("--trust-remote-code", help="Allow model code from checkpoint directories (only if you trust them).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Rescore checkpoints already in the store.")] = False,
    task_accuracy: Annotated[bool, typer.Option("--task-accuracy", help="Prompt/completion data: greedy-decode each prompt and store exact and substring match per document.")] = False,
    accuracy_margin: Annotated[int, typer.Option(help="With --task-accuracy: tokens generated beyond the completion's length.")] = 8,
    fmt: Annotated[Format, typer.Option("--format", help="Format of the final per-checkpoint table.")] = Format.table,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
):
    """Score checkpoints on validation data: per-token CE and rank into a Parquet store."""
    from pctce_cli import render
    from pctce_cli.scoring.run import ScoreOptions, score_checkpoints

    options = ScoreOptions(
        data=[str(p) for p in data],
        out=out,
        text_field=text_field,
        prompt_field=prompt_field,
        completion_field=completion_field,
        messages_field=messages_field,
        split_on=split_on.value,
        prefix=prefix.value,
        max_length=max_length,
        stride=stride,
        batch_tokens=batch_tokens,
        shard_targets=shard_targets,
        device=device.value,
        dtype=dtype.value,
        tokenizer=str(tokenizer) if tokenizer else None,
        base_model=str(base_model) if base_model else None,
        trust_remote_code=trust_remote_code,
        force=force,
        task_accuracy=task_accuracy,
        accuracy_margin=accuracy_margin,
    )
    is_rank0 = int(os.environ.get("RANK", "0")) == 0
    with render.RichReporter(enabled=not quiet and is_rank0) as reporter:
        results = score_checkpoints(paths, options, reporter)
    if not is_rank0:
        return
    rows = [
        {
            "checkpoint": r.id,
            "status": r.status,
            "targets": r.targets,
            "mean": r.mean,
            "p50": r.p50,
            "p95": r.p95,
            "seconds": round(r.seconds, 2),
        }
        for r in results
    ]
    render.emit([(f"Scored into {out}", rows)], fmt.value)
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        render.error(r.message)
    if failed:
        raise typer.Exit(2)


# ---------------------------------------------------------------- analysis

DirsArg = Annotated[
    list[Path] | None,
    typer.Argument(help="Score directories written by pctce score.", show_default=False),
]
CheckpointOpt = Annotated[
    list[str] | None,
    typer.Option("--checkpoint", "-c", help="Select checkpoints by id glob (repeatable).", show_default=False),
]
GroupOpt = Annotated[
    list[str] | None,
    typer.Option("--group", "-g", help="Define a group (family): NAME=GLOB on checkpoint ids (repeatable).", show_default=False),
]
MetaOpt = Annotated[
    Path | None,
    typer.Option(help="CSV/JSON with a 'checkpoint' column plus 'group' and task-metric columns.", show_default=False),
]
PercentilesOpt = Annotated[
    str | None,
    typer.Option(help="Percentiles to report, e.g. 10,25,50,75,90,95,99 (default 50,90,95,99).", show_default=False),
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", help="Write to this file instead of the terminal.", show_default=False)]
AllowMixedOpt = Annotated[
    bool, typer.Option("--allow-mixed", help="Compare checkpoints scored on different data or tokenizers anyway.")
]


def _render(report, fmt: Format, output: Path | None) -> None:
    from pctce_cli import render

    render.emit(report.sections, fmt.value, output, report.notes)


@app.command(no_args_is_help=True)
@handles_errors
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
    allow_mixed: AllowMixedOpt = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
):
    """Per-checkpoint summaries: mean, ppl, percentiles, iqr, z95, top-1, bits-per-byte, word perplexity."""
    from pctce_cli import analysis

    cks = analysis.resolve_checkpoints(dirs or [], checkpoint or [], group or [], meta, allow_mixed)
    report = analysis.summary_report(cks, analysis.parse_percentiles(percentiles), ci=ci, n_boot=bootstrap, seed=seed, vs=vs)
    _render(report, fmt, output)


SummariesFileOpt = Annotated[
    Path | None,
    typer.Option("--summaries", help="CSV/JSON of precomputed summaries per checkpoint ('checkpoint' column plus summary and task columns) instead of score directories.", show_default=False),
]


def _table_for(dirs, summaries_file, checkpoint, group, meta, allow_mixed, needed):
    from pctce_cli import analysis

    if summaries_file is not None and dirs:
        from pctce_cli.errors import UsageError

        raise UsageError("give score directories or --summaries FILE, not both")
    cks = None if summaries_file is not None else analysis.resolve_checkpoints(dirs or [], checkpoint or [], group or [], meta, allow_mixed)
    table = analysis.summaries_table(cks, summaries_file, needed)
    if summaries_file is not None and (group or meta):
        table = analysis.group_table(table, group or [], meta)
    return table


@app.command()
@handles_errors
def concord(
    dirs: DirsArg = None,
    summaries_file: SummariesFileOpt = None,
    checkpoint: CheckpointOpt = None,
    group: GroupOpt = None,
    meta: MetaOpt = None,
    percentiles: PercentilesOpt = None,
    set_: Annotated[str | None, typer.Option("--set", help="The summary set S for C_S (default mean,p50,p95).", show_default=False)] = None,
    agree: Annotated[float, typer.Option(help="C_S at or above this reads as 'summaries agree'.")] = 0.8,
    disagree: Annotated[float, typer.Option(help="C_S at or below this reads as 'summaries disagree'.")] = 0.6,
    pairs: Annotated[bool, typer.Option("--pairs", help="List the checkpoint pairs on which mean and median disagree.")] = False,
    allow_mixed: AllowMixedOpt = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
):
    """Concordance of summaries across checkpoints: C(s, s'), Kendall τ, C_S per group, and a reading."""
    from pctce_cli import analysis

    summaries = ["mean"] + [analysis.pname(q) for q in analysis.parse_percentiles(percentiles)]
    set_names = analysis.parse_summary_list(set_, ["mean", "p50", "p95"], "--set")
    needed = list(dict.fromkeys(summaries + set_names))
    table = _table_for(dirs, summaries_file, checkpoint, group, meta, allow_mixed, needed)
    _render(analysis.concord_report(table, summaries, set_names, agree, disagree, pairs), fmt, output)


@app.command()
@handles_errors
def select(
    dirs: DirsArg = None,
    summaries_file: SummariesFileOpt = None,
    checkpoint: CheckpointOpt = None,
    group: GroupOpt = None,
    meta: MetaOpt = None,
    percentiles: PercentilesOpt = None,
    task: Annotated[str | None, typer.Option(help="Task-metric column (from --meta or --summaries, or 'accuracy' from score --task-accuracy).", show_default=False)] = None,
    higher_is_better: Annotated[bool, typer.Option("--higher-is-better/--lower-is-better", help="Direction of the task metric.")] = True,
    allow_mixed: AllowMixedOpt = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
):
    """Selection rules: the checkpoint each summary picks, its regret on a task, and summary–task agreement."""
    from pctce_cli import analysis

    summaries = ["mean"] + [analysis.pname(q) for q in analysis.parse_percentiles(percentiles)]
    agreement = ["mean"] + [analysis.pname(q) for q in analysis.AGREEMENT_PERCENTILES]
    needed = summaries if summaries_file is not None else list(dict.fromkeys(summaries + agreement))
    table = _table_for(dirs, summaries_file, checkpoint, group, meta, allow_mixed, needed)
    _render(analysis.select_report(table, summaries, task, higher_is_better, agreement), fmt, output)


@app.command(no_args_is_help=True)
@handles_errors
def shape(
    dirs: DirsArg = None,
    checkpoint: CheckpointOpt = None,
    group: GroupOpt = None,
    meta: MetaOpt = None,
    edges: Annotated[str | None, typer.Option(help="CE band edges, e.g. 0,0.1,0.5,1.5,5,10,inf.", show_default=False)] = None,
    ecdf: Annotated[bool, typer.Option("--ecdf", help="Output ECDF points (checkpoint, ce, cdf) for plotting instead.")] = False,
    allow_mixed: AllowMixedOpt = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
):
    """Shape of the CE distribution: mass in CE bands, standardized percentile profiles and their distances."""
    from pctce_cli import analysis

    cks = analysis.resolve_checkpoints(dirs or [], checkpoint or [], group or [], meta, allow_mixed)
    _render(analysis.shape_report(cks, analysis.parse_edges(edges), ecdf=ecdf), fmt, output)


@app.command(no_args_is_help=True)
@handles_errors
def decompose(
    dirs: DirsArg = None,
    checkpoint: CheckpointOpt = None,
    allow_mixed: AllowMixedOpt = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
):
    """Cross-entropy decomposition per checkpoint: error-entropy, self-alignment, confidence, residual."""
    from pctce_cli import analysis

    cks = analysis.resolve_checkpoints(dirs or [], checkpoint or [], [], None, allow_mixed)
    _render(analysis.decompose_report(cks), fmt, output)


@app.command(no_args_is_help=True)
@handles_errors
def verify(
    store: Annotated[Path, typer.Argument(help="Score directory written by pctce score.", show_default=False)],
    checkpoint: Annotated[list[str] | None, typer.Option("--checkpoint", "-c", help="Check only these checkpoint ids (repeatable).", show_default=False)] = None,
    fmt: FormatOpt = Format.table,
):
    """Check every stored file against its checksum, row count and values; exit 1 when anything is damaged."""
    from pctce_cli import render
    from pctce_cli.store import verify_store

    ok, problems, incomplete = verify_store(store, checkpoint or None)
    rows = (
        [{"checkpoint": c, "status": "ok", "problem": ""} for c in ok]
        + [{"checkpoint": p.checkpoint, "status": "damaged", "problem": p.message} for p in problems]
        + [{"checkpoint": c, "status": "incomplete", "problem": "being scored, or interrupted: rerun pctce score to finish it"} for c in incomplete]
    )
    notes = [f"{len(ok)} verified, {len(problems)} damaged, {len(incomplete)} incomplete."]
    if problems:
        notes.append("Re-score each damaged checkpoint with 'pctce score … --force' (the same command with --force).")
    render.emit([(f"Verified {store}", rows)], fmt.value, None, notes)
    if problems:
        raise typer.Exit(1)


@app.command()
@handles_errors
def demo(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Score directory (default: ~/.cache/pctce/demo, or $XDG_CACHE_HOME/pctce/demo). Re-running reuses its scores.", show_default=False)] = None,
    sample_data: Annotated[Path | None, typer.Option(help="The sample_data/ directory (default: the one next to this pctce checkout, or $PCTCE_SAMPLE_DATA).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Rescore the sample checkpoints even if scores exist.")] = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
):
    """Score the shipped sample checkpoints and show summaries, concordance and selection, with readings."""
    from pctce_cli import render
    from pctce_cli.demo import run_demo

    # reused checkpoints are counted in the header instead of listed one by one
    with render.RichReporter(enabled=not quiet, show_skips=False) as reporter:
        result = run_demo(sample_data, out, reporter, force=force)
    header = [
        f"Scored {result.scored} sample checkpoints, reused {result.reused}, into {result.out} ({result.seconds:.0f} s).",
        "Two CPU miniatures of the median-CE paper's studies (docs/sample-data.md): top-K distillation "
        "(teacher, full-KL and top-40/15/5 students, from-scratch controls) and fine-tuning on fictional facts.",
    ]
    parts = [(p.title, p.report.sections, p.report.notes) for p in result.parts]
    parts.append(("Explore further", [], result.next_commands))
    render.emit_parts(parts, fmt.value, output, header)


def main() -> None:
    """Console-script entry point."""
    from pctce_cli import render
    from pctce_cli.threads import configure_threads

    try:
        configure_threads()  # before anything imports torch (pctce_cli/threads.py says why)
    except PctceError as e:
        render.error(str(e))
        raise SystemExit(e.exit_code) from None
    app()


# Commands defined in their own modules (kept apart so each stays small).
from pctce_cli.cli_release import register as _register_release  # noqa: E402

_register_release(app)
from pctce_cli.cli_visual import register as _register_visual  # noqa: E402

_register_visual(app)
