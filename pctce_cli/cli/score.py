"""Commands that write or check a store: `score`, `verify`, `demo`."""

# No ``from __future__ import annotations``: Typer reads the annotations at definition time.
import os
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from pctce_cli.cli.common import Device, DType, Format, FormatOpt, OutputOpt, Prefix, QuietOpt, SplitOn
from pctce_cli.errors import UsageError
from pctce_cli.scoring.options import DEFAULT_ACCURACY_MARGIN, DEFAULT_SHARD_TARGETS


# Long by its Typer option declarations (they are the --help); the body parses, makes one core call, renders.
def score(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Checkpoints: save_pretrained directories, run directories holding checkpoint-*/step_*/epoch-* "
            "subdirectories, PEFT adapter directories, or Hugging Face Hub ids org/name[@revision] "
            "(a revision glob org/name@step*[LO:HI:K] takes many; docs/hub.md).",
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
    special_tokens: Annotated[bool, typer.Option("--special-tokens", help="Read special-token strings in the data (e.g. <|endoftext|>) as special tokens; default: text is text (docs/scoring.md).")] = False,
    max_length: Annotated[int | None, typer.Option(help="Window length in tokens (default: the model's context).", show_default=False)] = None,
    stride: Annotated[int | None, typer.Option(help="Sliding-window stride (default: half the window).", show_default=False)] = None,
    batch_tokens: Annotated[int | None, typer.Option(help="Token budget per forward pass (batch × padded length); default 2048 on CPU, 16384 on GPU.", show_default=False)] = None,
    shard_targets: Annotated[int, typer.Option(help="Targets per Parquet shard (the unit of resume).")] = DEFAULT_SHARD_TARGETS,
    device: Annotated[Device, typer.Option(help="Where to run the model.")] = Device.auto,
    dtype: Annotated[DType, typer.Option(help="Model dtype (auto: float32 on CPU, bfloat16/float16 on CUDA).")] = DType.auto,
    tokenizer: Annotated[Path | None, typer.Option(help="Tokenizer directory to use instead of each checkpoint's own.", show_default=False)] = None,
    base_model: Annotated[Path | None, typer.Option(help="Base model directory for PEFT adapters (overrides adapter_config.json).", show_default=False)] = None,
    trust_remote_code: Annotated[bool, typer.Option("--trust-remote-code", help="Allow model code from checkpoint directories (only if you trust them).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Rescore checkpoints already in the store.")] = False,
    task_accuracy: Annotated[bool, typer.Option("--task-accuracy", help="Prompt/completion data: greedy-decode each prompt and store exact and substring match per document.")] = False,
    accuracy_margin: Annotated[int, typer.Option(help="With --task-accuracy: tokens generated beyond the completion's length.")] = DEFAULT_ACCURACY_MARGIN,
    subset_field: Annotated[list[str] | None, typer.Option("--subset-field", help="Data field whose value labels each document's subset (repeatable); adding one to a scored store writes labels without re-scoring.", show_default=False)] = None,
    subset_from_file: Annotated[bool, typer.Option("--subset-from-file", help="With several --data files: label each document's subset by its file's name (subset field 'file').")] = False,
    reference: Annotated[list[str] | None, typer.Option("--reference", metavar="<str>", help="A reference model (directory or Hub id, same tokenizer): also store each target's KL(p_ref ‖ p_model), Δp and top-1 agreement (docs/kl.md).", show_default=False)] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Format of the final per-checkpoint table.")] = Format.table,
    quiet: QuietOpt = False,
):
    """Score checkpoints on validation data: per-token CE and rank into a Parquet store."""
    from pctce_cli import render
    from pctce_cli.scoring.run import score_checkpoints

    options = score_options(locals())
    is_rank0 = int(os.environ.get("RANK", "0")) == 0
    with render.RichReporter(enabled=not quiet and is_rank0) as reporter:
        results = score_checkpoints(paths, options, reporter)
    if not is_rank0:
        return
    notes = list(dict.fromkeys(n for r in results for n in r.notes))
    render.emit([(f"Scored into {out}", result_rows(results))], fmt.value, notes=notes)
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        render.error(r.message)
    if failed:
        raise typer.Exit(2)


def score_options(params: dict):
    """The ``ScoreOptions`` of `pctce score`'s parameters: each field from the parameter of its name, choices as their values."""
    from dataclasses import fields

    from pctce_cli.scoring.options import ScoreOptions

    given = {**params, "data": [str(p) for p in params["data"]], "subset_fields": tuple(params["subset_field"] or ())}
    for name in ("tokenizer", "base_model"):
        given[name] = str(given[name]) if given[name] else None
    refs = given["reference"] or []
    if len(refs) > 1:  # Click would keep the last one given, silently
        raise UsageError(
            f"reference is given {len(refs)} times ({', '.join(map(repr, refs))}); a run scores every checkpoint against "
            "one reference model: score once per reference, into separate score directories",
            param="reference",
        )
    given["reference"] = str(refs[0]) if refs else None  # '' is refused, not dropped
    return ScoreOptions(**{f.name: _plain(given[f.name]) for f in fields(ScoreOptions) if f.name in given})


def _plain(value):
    return value.value if isinstance(value, Enum) else value


def result_rows(results) -> list[dict]:
    """One row per checkpoint of a scoring run: status, targets, mean, p50, p95, seconds."""
    return [
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


def verify(
    store: Annotated[Path, typer.Argument(help="Score directory written by pctce score.", show_default=False)],
    checkpoint: Annotated[list[str] | None, typer.Option("--checkpoint", "-c", help="Check only these checkpoint ids (repeatable).", show_default=False)] = None,
    fmt: FormatOpt = Format.table,
):
    """Check every stored file against its checksum, row count and values; exit 1 when anything is damaged."""
    from pctce_cli import render
    from pctce_cli.store import identical_in_store, verify_store

    ok, problems, incomplete = verify_store(store, checkpoint or None)
    identical = identical_in_store(store, ok)
    damaged = [p for p in problems if p.kind == "damaged"]
    foreign = [p for p in problems if p.kind == "foreign"]
    rows = (
        [{"checkpoint": c, "status": "ok", "problem": ""} for c in ok if not any(p.checkpoint == c for p in foreign)]
        + [{"checkpoint": p.checkpoint, "status": p.kind, "problem": p.message} for p in problems]
        + [{"checkpoint": c, "status": "incomplete", "problem": "being scored, or interrupted: rerun pctce score to finish it"} for c in incomplete]
    )
    notes = [f"{len(ok)} verified, {len(damaged)} damaged, {len(incomplete)} incomplete."]
    if foreign:
        notes[0] = notes[0][:-1] + f"; {len(foreign)} foreign {'file' if len(foreign) == 1 else 'files'}."
    if damaged:
        notes.append("Re-score each damaged checkpoint with 'pctce score … --force' (the same command with --force).")
    notes += identical
    if fmt == Format.table and problems:
        # a table cell cuts a long path with '…' at 80 columns (CI logs): the files are named in full below it
        rows = [{**r, "problem": "see below" if r["problem"] and r["status"] != "incomplete" else r["problem"]} for r in rows]
        notes[1:1] = [f"{p.checkpoint or store}: {p.message}" for p in problems]
    render.emit([(f"Verified {store}", rows)], fmt.value, None, notes)
    if problems:
        raise typer.Exit(1)


def demo(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Score directory (default: ~/.cache/pctce/demo, or $XDG_CACHE_HOME/pctce/demo). Re-running reuses its scores.", show_default=False)] = None,
    sample_data: Annotated[Path | None, typer.Option(help="The sample_data/ directory (default: the one next to this pctce checkout, or $PCTCE_SAMPLE_DATA).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Rescore the sample checkpoints even if scores exist.")] = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
):
    """Score the shipped sample checkpoints and show summaries, concordance and selection, with readings."""
    from pctce_cli import render
    from pctce_cli.demo import CROSSTOK_TITLE, run_demo

    # reused checkpoints are counted in the header instead of listed one by one
    with render.RichReporter(enabled=not quiet, show_skips=False) as reporter:
        result = run_demo(sample_data, out, reporter, force=force)
    crosstok = any(p.title == CROSSTOK_TITLE for p in result.parts)
    header = [
        f"Scored {result.scored} sample checkpoints, reused {result.reused}, into {result.out} ({result.seconds:.0f} s).",
        "Two CPU miniatures of the median-CE paper's studies (docs/sample-data.md): top-K distillation "
        "(teacher, full-KL and top-40/15/5 students, from-scratch controls) and fine-tuning on fictional facts"
        + ("; and the teacher's recipe with a second tokenizer, compared with it in words and bytes." if crosstok else "."),
    ]
    parts = [(p.title, p.report.sections, p.report.notes) for p in result.parts]
    parts.append(("Explore further", [], result.next_commands))
    render.emit_parts(parts, fmt.value, output, header)
