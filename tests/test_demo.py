"""`pctce demo`: scores the shipped sample checkpoints, reuses them, and reads them correctly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from pctce_cli.demo import (
    CROSSTOK_TITLE,
    correct_part_from_rows,
    crosstok_part_from_rows,
    distillation_parts_from_table,
    finetune_parts_from_table,
    run_demo,
    subset_part_from_table,
)

from .cli import run
from .helpers import assert_same_text_close_numbers

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One full demo run: every shipped checkpoint scored from scratch."""
    out = tmp_path_factory.mktemp("demo")
    return run_demo(SAMPLE, out)


def _part(demo, title):
    return next(p for p in demo.parts if p.title == title)


def _section(part, k=0) -> pd.DataFrame:
    return pd.DataFrame(part.report.sections[k][1])


@pytest.mark.slow
def test_demo_scores_every_shipped_checkpoint(demo):
    meta = pd.read_csv(SAMPLE / "meta.csv")
    assert (demo.scored, demo.reused) == (len(meta) + 4, 0)  # the four distillation students again, against the teacher (demo/kl.py)
    assert [p.title for p in demo.parts] == [
        "Distillation miniature: summaries",
        "Distillation miniature: concordance",
        "Distillation miniature: selection",
        "Distillation miniature: by genre",
        "Across tokenizers: words and bytes",
        "Distillation: the students' KL from the teacher",
        "Fine-tuning miniature: summaries and accuracy",
        "Fine-tuning miniature: concordance",
        "Fine-tuning miniature: selection by task accuracy",
        "Fine-tuning miniature: correct vs incorrect answers",
    ]
    assert all(p.report.notes for p in demo.parts)


@pytest.mark.slow
def test_distillation_readings_follow_the_numbers(demo):
    final = _section(demo.parts[0])
    assert len(final) == 9 and final["mean"].is_monotonic_increasing  # one final checkpoint per run
    family = final[(final["group"] == "distilled") | final["checkpoint"].str.startswith("teacher.")]
    by_mean = family.loc[family["mean"].idxmin(), "checkpoint"]
    by_p50 = family.loc[family["p50"].idxmin(), "checkpoint"]
    first = demo.parts[0].report.notes[0]
    assert by_mean in first and by_p50 in first
    assert ("pick different checkpoints" in first) == (by_mean != by_p50)

    conc = _section(demo.parts[1]).set_index("checkpoints")
    assert conc["n"].tolist() == [15, 15, 27]
    assert conc[["C(mean,p50)", "C(mean,p95)", "C_S"]].apply(lambda c: c.between(0, 1)).all().all()
    for note, (name, row) in zip(demo.parts[1].report.notes, conc.iterrows()):
        assert note.startswith(f"{name}: C(mean, p50) = {row['C(mean,p50)']:.3f}, C_S = {row['C_S']:.3f}")

    picks = _section(demo.parts[2]).set_index("rule")
    assert picks.loc["best by mean", "checkpoint"] == by_mean
    assert picks.loc["best by p50", "checkpoint"] == by_p50


@pytest.mark.slow
def test_crosstok_readings_follow_the_numbers(demo):
    """Teacher vs the Unigram run: one refusal in tokens, equal words and bytes, readings that match the tables."""
    part = _part(demo, CROSSTOK_TITLE)
    word, byte, token = (_section(part, k).set_index("checkpoint") for k in range(3))
    teacher, other = word.index.tolist()
    assert teacher == "teacher.checkpoint-1200" and other.startswith("unigram") and other.endswith(".checkpoint-1200")
    assert word["vocab"].tolist() == [1024, 512]
    # words and bytes depend only on the text; tokens on the tokenizer
    assert word["words"].nunique() == 1 and byte["bytes"].nunique() == 1
    assert word["targets"].tolist() == byte["targets"].tolist() == token["targets"].tolist()
    assert token.loc[teacher, "targets"] != token.loc[other, "targets"]
    # the teacher's token row is the distillation part's (the same store, the same checkpoint)
    final = _section(demo.parts[0]).set_index("checkpoint")
    assert token.loc[teacher, ["mean", "p50", "p95"]].tolist() == final.loc[teacher, ["mean", "p50", "p95"]].tolist()
    notes = part.report.notes
    assert notes[0].startswith(f"pctce summary in tokens refuses the pair: '{teacher}' and '{other}' were scored on different tokenizers")
    assert notes[0].endswith("across tokenizers, --unit word or --unit byte).")
    assert f"the same {word.loc[teacher, 'words']:,} words and {byte.loc[teacher, 'bytes']:,} bytes" in notes[1]
    lo = word["p50"].idxmin()
    assert notes[2].startswith(f"Per word, {lo} has the lower median ({word['p50'].min():.3f} vs {word['p50'].max():.3f} nats)")
    assert (" and the lower mean" in notes[2]) == (word["mean"].idxmin() == lo)
    assert notes[3].startswith(f"Per byte, {byte['bpb'].idxmin()} ") and f"{byte['bpb'].min():.3f} vs {byte['bpb'].max():.3f}" in notes[3]
    assert notes[4].startswith("Per token the order flips" if token["p50"].idxmin() != lo else f"Per token, {lo} also")
    assert len(notes) == 5


def _unit_rows(words=(100, 100), nbytes=(500, 500), targets=(200, 250), word_p50=(5.0, 6.0), word_mean=(6.0, 7.0), bpb=(2.0, 2.2), token_p50=(3.0, 2.5)):
    ids = ["teacher.s2", "uni.s2"]
    word = [{"checkpoint": c, "vocab": v, "targets": t, "words": w, "mean": m, "p50": q, "p95": 2 * m} for c, v, t, w, m, q in zip(ids, (1024, 512), targets, words, word_mean, word_p50)]
    byte = [{"checkpoint": c, "targets": t, "bytes": b, "mean": x, "p50": x, "p95": 2 * x, "bpb": x} for c, t, b, x in zip(ids, targets, nbytes, bpb)]
    token = [{"checkpoint": c, "targets": t, "mean": q, "p50": q, "p95": 2 * q} for c, t, q in zip(ids, targets, token_p50)]
    return word, byte, token


def test_crosstok_reading_when_tokens_mislead():
    part = crosstok_part_from_rows(*_unit_rows(), "no", "55483ff9fbd9")
    assert part.report.notes == [
        "pctce summary in tokens refuses the pair: no.",
        "Both were scored on the same data (fingerprint 55483ff9): the same 100 words and 500 bytes, as 200 tokens (teacher.s2) "
        "and 250 (uni.s2): 2.50 vs 2.00 bytes per token. Words and bytes are the units both share.",
        "Per word, teacher.s2 has the lower median (5.000 vs 6.000 nats) and the lower mean (6.000 vs 7.000).",
        "Per byte, teacher.s2 also has the lower bpb: 2.000 vs 2.200 bits per byte.",
        "Per token the order flips: uni.s2 has the lower median token CE (2.500 vs 3.000) although its words cost more, because it "
        "cuts the same text into more, shorter tokens (250 vs 200), each easier to predict. This is why pctce refuses token "
        "summaries across tokenizers.",
    ]
    assert [t for t, _ in part.report.sections][0].startswith("Per word (pctce summary --unit word)")


def test_crosstok_readings_change_with_the_numbers():
    notes = crosstok_part_from_rows(*_unit_rows(word_mean=(7.5, 7.0), bpb=(2.3, 2.2), token_p50=(3.0, 3.5)), None).report.notes
    assert notes[0] == "pctce summary in tokens accepts these checkpoints: they share a tokenizer."
    assert notes[1].startswith("Both read the same 100 words")
    assert notes[2] == "Per word, teacher.s2 has the lower median (5.000 vs 6.000 nats) but the higher mean (7.500 vs 7.000)."
    assert notes[3] == "Per byte, uni.s2 has, however, the lower bpb: 2.200 vs 2.300 bits per byte."
    assert notes[4].startswith("Per token, teacher.s2 also has the lower median (3.000 vs 3.500)")
    notes = crosstok_part_from_rows(*_unit_rows(words=(100, 99)), None).report.notes
    assert notes[1] == "teacher.s2 and uni.s2 hold different words or bytes (100 vs 99 words, 500 vs 500 bytes): they did not read the same text."
    notes = crosstok_part_from_rows(*_unit_rows(token_p50=(2.5, 3.0), word_p50=(6.0, 5.0)), None).report.notes
    assert notes[4].startswith("Per token the order flips: teacher.s2 has the lower median token CE (2.500 vs 3.000)")
    assert "because its tokens are different units of text (200 vs 250)." in notes[4]  # fewer, longer tokens, yet cheaper


@pytest.mark.slow
def test_finetune_part_uses_the_stored_task_accuracy(demo):
    epochs = _section(_part(demo, "Fine-tuning miniature: summaries and accuracy"))
    assert epochs["epoch"].tolist() == list(range(1, 13))
    # the build script measured the same greedy substring accuracy per epoch
    built = pd.read_csv(SAMPLE / "finetune" / "accuracy.csv")
    assert epochs["accuracy"].round(4).tolist() == built["accuracy"].round(4).tolist()
    sel = _section(_part(demo, "Fine-tuning miniature: selection by task accuracy")).set_index("rule")
    best_task = sel.loc["best by task", "task"]
    for rule, row in sel.iterrows():
        assert row["regret"] == pytest.approx(best_task - row["task"])


@pytest.mark.slow
def test_rerun_reuses_the_scores(demo):
    again = run_demo(SAMPLE, demo.out)
    assert (again.scored, again.reused) == (0, demo.scored)
    for a, b in zip(demo.parts, again.parts):
        assert a.report.sections == b.report.sections and a.report.notes == b.report.notes


@pytest.mark.slow
def test_cli_demo_formats(demo):
    res = run("demo", "--out", str(demo.out), "--format", "json", "-q")
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert obj["header"][0].startswith(f"Scored 0 sample checkpoints, reused {demo.scored}, into {demo.out}")
    assert list(obj["parts"])[: len(demo.parts)] == [p.title for p in demo.parts]
    assert obj["parts"]["Distillation miniature: summaries"]["notes"] == demo.parts[0].report.notes
    res = run("demo", "--out", str(demo.out), "--format", "markdown", "-q")
    assert "## Fine-tuning miniature: concordance" in res.stdout and "| checkpoint | epoch |" in res.stdout
    res = run("demo", "--out", str(demo.out), "--format", "csv", "-q")
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(res.stdout)))  # one CSV table: the first column names each row's table
    assert rows[0]["table"].startswith("Distillation miniature: summaries — Final checkpoints")


@pytest.mark.slow
def test_readme_shows_the_real_demo_output(demo):
    """The README's demo block is this command's output (apart from the timing and paths)."""
    res = run("demo", "--out", str(demo.out), "-q", env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    block = re.search(r"<!-- demo-output -->\n```text\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    assert block, "README.md has no demo-output block"

    def body(text):  # from the first part to the list of next commands
        start = text.index("Distillation miniature: summaries")
        return [line.rstrip() for line in text[start : text.index("Explore further")].splitlines()]

    assert_same_text_close_numbers(body(block.group(1)), body(res.stdout))


def test_missing_sample_data_is_a_clear_error(tmp_path):
    res = run("demo", "--sample-data", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert res.exit_code == 2
    assert res.output.strip() == f"Error: --sample-data {tmp_path / 'nope'}: no such directory"
    (tmp_path / "sd").mkdir()
    (tmp_path / "sd" / "meta.csv").write_text("checkpoint\n")
    res = run("demo", "--sample-data", str(tmp_path / "sd"), "--out", str(tmp_path / "o"))
    assert res.exit_code == 2
    assert " ".join(res.output.split()) == (
        f"Error: --sample-data {tmp_path / 'sd'}: missing distill/val.jsonl, finetune/test.jsonl, finetune/facts "
        "(expected the output of scripts/make_sample_data.py)"
    )


# ---------------------------------------------------------------- readings on synthetic tables


def _summaries(rows):
    t = pd.DataFrame(rows, columns=["checkpoint", "run", "group", "step", "mean", "p50", "p90", "p95", "p99"])
    return t


def test_distillation_reading_when_mean_and_median_agree():
    t = _summaries(
        [
            ("teacher.s1", "teacher", "controls", 1, 3.0, 2.9, 5.0, 6.0, 7.0),
            ("teacher.s2", "teacher", "controls", 2, 2.5, 2.4, 4.5, 5.5, 6.5),
            ("kl.s1", "kl", "distilled", 1, 3.2, 3.1, 5.2, 6.2, 7.2),
            ("kl.s2", "kl", "distilled", 2, 2.8, 2.7, 4.8, 5.8, 6.8),
        ]
    )
    parts = distillation_parts_from_table(t)
    assert parts[0].report.notes[0] == "Mean and median both pick teacher.s2 in the distillation family."
    assert not any("Training longer" in n for n in parts[0].report.notes)
    assert parts[2].report.notes[0] == "Every rule picks teacher.s2."
    assert _section(parts[1])["C_S"].tolist()[0] == 1.0


def test_distillation_reading_when_a_run_splits_mean_and_median():
    t = _summaries(
        [
            ("teacher.s2", "teacher", "controls", 2, 3.0, 3.0, 5.0, 6.0, 7.0),
            ("topk.s1", "topk", "distilled", 1, 4.0, 3.5, 9.0, 10.0, 12.0),
            ("topk.s2", "topk", "distilled", 2, 4.5, 2.5, 11.0, 13.0, 15.0),
        ]
    )
    notes = distillation_parts_from_table(t)[0].report.notes
    assert notes[0].endswith("mean and median pick different checkpoints.")
    assert "lowest mean CE is teacher.s2 (3.000), but the lowest median is topk.s2 (p50 2.500 vs 3.000)" in notes[0]
    assert notes[2] == "Training longer makes mean CE worse and median CE better in topk (mean 4.000 → 4.500, p50 3.500 → 2.500)."


def _by_genre(values):
    """A pooled table of teacher/student/control final checkpoints and a per-genre one from (genre, ck, mean, p50) rows."""
    t = _summaries(
        [
            ("teacher.s2", "teacher", "controls", 2, 3.0, 3.0, 5.0, 6.0, 7.0),
            ("topk.s2", "topk", "distilled", 2, 4.0, 2.5, 9.0, 10.0, 12.0),
            ("small.s2", "small", "controls", 2, 3.5, 3.4, 5.0, 6.0, 7.0),
        ]
    )
    by = pd.DataFrame(values, columns=["subset", "checkpoint", "mean", "p50"])
    by["documents"] = 10
    return t, by


def test_genre_reading_follows_the_numbers():
    rows = [
        ("comedy", "teacher.s2", 3.0, 3.0), ("comedy", "topk.s2", 4.0, 2.5), ("comedy", "small.s2", 3.5, 3.4),
        ("poem", "teacher.s2", 4.0, 3.8), ("poem", "topk.s2", 5.0, 3.2), ("poem", "small.s2", 4.5, 4.4),
    ]  # fmt: skip
    part = subset_part_from_table(*_by_genre(rows))
    assert part.report.notes[0] == "In every genre (comedy, poem) topk.s2 has the lower median and teacher.s2 the lower mean: the split is not one genre's doing."
    assert part.report.notes[-1] == "poem is the genre with the highest mean CE for every one of the 3 checkpoints."
    rows[4] = ("poem", "topk.s2", 5.0, 3.9)  # on poems the student's median is no longer below the teacher's
    rows[2] = ("comedy", "small.s2", 3.5, 2.0)  # and in comedy the control's median ranks against its mean
    part = subset_part_from_table(*_by_genre(rows))
    assert part.report.notes[0] == "topk.s2 has the lower median and teacher.s2 the lower mean in comedy, but not in poem."
    assert part.report.notes[1] == "controls: C(mean, p50) ranges from 0.000 (comedy, 10 documents) to 1.000 (poem)."


def _epochs(means, p50s, accs, p95s=None):
    """A fine-tuning table: one row per epoch, p90 = p99 = mean, p95 = mean unless given."""
    p95s = p95s or means
    rows = [(f"ft.epoch-{e}", "ft", "finetune", e, m, q, m, r, m) for e, (m, q, r) in enumerate(zip(means, p50s, p95s), 1)]
    t = _summaries(rows)
    t["accuracy"] = accs
    return t


def test_finetune_reading_when_mean_rises_while_accuracy_holds():
    t = _epochs([2.0, 1.0, 1.5], [1.0, 0.5, 0.75], [0.2, 0.8, 0.9])
    parts = finetune_parts_from_table(t)
    notes = parts[0].report.notes
    assert notes[0] == (
        "From ft.epoch-1 to ft.epoch-3: mean CE falls 25% (2.000 → 1.500), p50 falls 25% (1.000 → 0.750), "
        "p95 falls 25% (2.000 → 1.500); accuracy goes 0.200 → 0.900."
    )
    assert notes[1] == (
        "Lowest mean CE: ft.epoch-2; lowest p50: ft.epoch-2; highest accuracy: ft.epoch-3 (0.900) — "
        "mean CE's best epoch is not the most accurate one (accuracy 0.800 there)."
    )
    assert notes[2] == (
        "Mean CE is lowest at ft.epoch-2 and then rises 50% (1.000 → 1.500) by ft.epoch-3, while accuracy goes "
        "0.800 → 0.900 (range 0.800–0.900) and p50 rises 50% (0.500 → 0.750)."
    )
    assert notes[3].startswith("Accuracy is highest at the last epoch: training never passes an accuracy peak")
    assert parts[2].report.notes == ["Every CE rule picks ft.epoch-2, losing 0.100 accuracy against the best epoch."]


def test_finetune_reading_when_every_summary_improves_to_the_end():
    t = _epochs([4.0, 2.3, 1.9], [3.6, 1.3, 0.57], [0.0, 0.09, 0.28], p95s=[8.2, 7.9, 7.4])
    parts = finetune_parts_from_table(t)
    notes = parts[0].report.notes
    assert "p50 falls 84% (3.600 → 0.570), p95 falls 10% (8.200 → 7.400)" in notes[0]
    assert notes[1].endswith("— mean CE and accuracy pick the same epoch.")
    assert notes[2] == "Mean CE is lowest at the last epoch: this run shows no late rise of mean CE."
    assert notes[3].startswith("Accuracy is highest at the last epoch")
    assert parts[2].report.notes == ["Every CE rule picks an epoch with the best accuracy (regret 0)."]


def test_finetune_reading_of_the_papers_pattern():
    """Mean CE and accuracy best at epoch 2; the median keeps falling to epoch 4 while accuracy slips."""
    t = _epochs([1.0, 0.2, 0.3, 0.35], [0.5, 0.01, 0.005, 0.001], [0.7, 0.88, 0.87, 0.86])
    parts = finetune_parts_from_table(t)
    notes = parts[0].report.notes
    assert notes[1].startswith("Lowest mean CE: ft.epoch-2; lowest p50: ft.epoch-4; highest accuracy: ft.epoch-2 (0.880)")
    assert notes[2] == (
        "Mean CE is lowest at ft.epoch-2 and then rises 75% (0.200 → 0.350) by ft.epoch-4, while accuracy goes "
        "0.880 → 0.860 (range 0.860–0.880) and p50 falls 90% (0.010 → 0.001)."
    )
    assert notes[3] == "Accuracy peaks at ft.epoch-2 (0.880) and is 0.860 at ft.epoch-4."
    sel = parts[2].report.notes
    assert sel[0] == "Rules disagree: best by mean, best by p90, best by p95, best by p99 → ft.epoch-2 (regret 0.000); best by p50 → ft.epoch-4 (regret 0.020)."
    assert sel[1] == (
        "The worst CE rule here is best by p50: it picks ft.epoch-4, losing 0.020 accuracy against the best epoch; "
        "best by mean, best by p90, best by p95, best by p99 pick a most accurate epoch (regret 0)."
    )
    t.loc[1, "accuracy"] = 0.85  # now epoch 3 is the most accurate, and no CE rule picks it
    sel = finetune_parts_from_table(t)[2].report.notes
    assert sel[1] == (
        "The worst CE rule here is best by mean: it picks ft.epoch-2, losing 0.020 accuracy against the best epoch; "
        "the best is best by p50 (regret 0.010)."
    )


def test_finetune_readings_change_with_the_numbers():
    """Moving one number moves the readings that depend on it, and only those."""
    base = _epochs([2.0, 1.0, 1.5], [1.0, 0.5, 0.75], [0.2, 0.9, 0.8])
    notes = finetune_parts_from_table(base)[0].report.notes
    assert notes[3] == "Accuracy peaks at ft.epoch-2 (0.900) and is 0.800 at ft.epoch-3."
    lower = base.copy()
    lower.loc[2, "mean"] = 0.9  # the last epoch now has the lowest mean
    changed = finetune_parts_from_table(lower)[0].report.notes
    assert changed[2] == "Mean CE is lowest at the last epoch: this run shows no late rise of mean CE."
    assert changed[1].startswith("Lowest mean CE: ft.epoch-3;") and changed[1].endswith("(accuracy 0.800 there).")
    assert changed[3] == notes[3]
    better = base.copy()
    better.loc[2, "accuracy"] = 0.95
    assert finetune_parts_from_table(better)[0].report.notes[3].startswith("Accuracy is highest at the last epoch")


@pytest.mark.slow
def test_suggested_commands_run_as_printed_and_write_beside_the_scores(demo):
    """The 'Explore further' commands, in the shell the demo ran in: the right program, exit 0, nothing written here."""
    import shlex
    from pathlib import Path

    from pctce_cli.demo import program

    before = set(Path.cwd().iterdir())
    for line in demo.next_commands:
        words = shlex.split(line)
        assert words[0] == program() or line.startswith(program() + " ")
        args = shlex.split(line[len(program()) :])
        res = run(*args)
        assert res.exit_code == 0, (line, res.output)
    assert set(Path.cwd().iterdir()) == before
    assert (demo.out / "demo-distill.html").is_file()


def test_correct_split_reading_follows_the_numbers():
    rows = [
        {"checkpoint": f"ft.epoch-{e}", "step": e, "accuracy": a, "mean_correct": c, "mean_incorrect": i, "ratio": i / c}
        for e, a, c, i in [(1, 0.5, 1.0, 2.0), (2, 0.8, 0.5, 2.5), (3, 0.8, 0.6, 3.6)]
    ]
    notes = correct_part_from_rows(rows).report.notes
    assert notes[0] == "Incorrectly answered pairs carry 2.000–6.000× the mean answer CE of correctly answered ones, over the 3 epochs with both."
    assert notes[1] == "Mean CE of the correct answers is lowest at epoch 2 (0.500) and rises 20% (0.500 → 0.600) by epoch 3."
    assert notes[2] == "Mean CE of the incorrect answers is lowest at epoch 1 (2.000) and rises 80% (2.000 → 3.600) by epoch 3."
    rows[2]["mean_correct"], rows[2]["ratio"] = 0.4, 9.0
    notes = correct_part_from_rows(rows).report.notes
    assert notes[1] == "Mean CE of the correct answers is lowest at the last epoch (0.400): no late rise there."
    assert notes[0].startswith("Incorrectly answered pairs carry 2.000–9.000×")
