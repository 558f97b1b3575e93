"""Hostile subset labels in every output format: Markdown, HTML, XML (JUnit, SVG), the terminal.

One store holds a subset field whose labels carry a table pipe, a line break,
HTML with a ``<script>``, a terminal escape, other control characters and XML
specials. Every writer must show them as text: tables keep their shape, the
documents parse with a real parser, no markup is injected, no raw control
character reaches a file or the terminal.
"""

from __future__ import annotations

import json
import os
import re
import warnings
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from .cli import run

HOSTILE = [
    "a|b",
    "two\nlines",
    "<script>alert(1)</script>",
    "esc\x1b[31mred",
    "ctl\x01\x07bell",
    "&amp; <b>x</b> ]]> $5 $x$",
]
TEXTS = ["The quick brown fox jumps over the lazy dog.", "Pack my box with five dozen liquor jugs, said she."]
CHECKPOINTS = 3  # tiny_run
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # no raw control character anywhere (newlines are allowed between lines)


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_run, one_thread):
    root = tmp_path_factory.mktemp("hostile")
    data = root / "val.jsonl"
    data.write_text("".join(json.dumps({"text": t, "domain": label}) + "\n" for label in HOSTILE for t in TEXTS), encoding="utf-8")
    out = root / "scores"
    r = run("score", tiny_run, "--data", data, "--out", out, "--quiet", "--max-length", 16, "--subset-field", "domain")
    assert r.exit_code == 0, r.output
    return out


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table of ``text`` as rows of cells (split on unescaped pipes), header and rule included."""
    tables, current = [], None
    for line in text.split("\n"):
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            current = current if current is not None else []
            current.append(cells)
        elif current is not None:
            tables.append(current)
            current = None
    if current is not None:
        tables.append(current)
    return tables


def subset_table(text: str) -> list[list[str]]:
    """The first Markdown table with one row per label (and checkpoint); every row as wide as its header."""
    for t in markdown_tables(text):
        assert all(len(row) == len(t[0]) for row in t), t
    hits = [t for t in markdown_tables(text) if any("a\\|b" in c for row in t for c in row)]
    assert hits, text
    return max(hits, key=len)  # the long table (one row per label), not the checkpoint × subset pivot


def assert_shown_as_text(text: str) -> None:
    assert "<script" not in text and "<b>" not in text
    assert not RAW.search(text), repr(RAW.search(text))
    assert "esc\\x1b[31mred" in text and "ctl\\x01\\x07bell" in text


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.data = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.data.append(data)


def parse_html(text: str) -> Tags:
    p = Tags()
    p.feed(text)
    p.close()
    return p


def test_summary_markdown_keeps_one_row_per_label(store):
    r = run("summary", store, "--by", "domain", "-f", "markdown")
    assert r.exit_code == 0, r.output
    table = subset_table(r.stdout)
    assert len(table) == 2 + CHECKPOINTS * len(HOSTILE)
    assert_shown_as_text(r.stdout)
    assert "two\\nlines" in r.stdout


def test_summary_terminal_has_no_raw_control_characters(store):
    r = run("summary", store, "--by", "domain")
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.stdout and "\x01" not in r.stdout


@pytest.mark.slow
def test_report_markdown_and_html(store, tmp_path):
    r = run("report", store, "--by", "domain", "--markdown", "--out", tmp_path / "r.md")
    assert r.exit_code == 0, r.output
    md = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert len(subset_table(md)) == 2 + CHECKPOINTS * len(HOSTILE)
    assert_shown_as_text(md)
    r = run("report", store, "--by", "domain", "--out", tmp_path / "r.html")
    assert r.exit_code == 0, r.output
    page = parse_html((tmp_path / "r.html").read_text(encoding="utf-8"))
    assert "script" not in page.tags and "b" not in page.tags
    assert "<script>alert(1)</script>" in "".join(page.data)  # there, as text


@pytest.mark.slow
def test_gate_markdown_junit_and_step_summary(store, tmp_path, monkeypatch):
    summary = tmp_path / "step.md"
    summary.write_text("# before\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    r = run(
        "gate", store, "--baseline", "teacher.checkpoint-250", "--rule", "p50@*:+100",
        "--markdown", tmp_path / "g.md", "--junit", tmp_path / "g.xml", "--json", tmp_path / "g.json",
    )
    assert r.exit_code == 0, r.output
    for md in ((tmp_path / "g.md").read_text(encoding="utf-8"), summary.read_text(encoding="utf-8")):
        assert len(subset_table(md)) == 2 + len(HOSTILE)
        assert_shown_as_text(md)
    suites = ET.parse(tmp_path / "g.xml").getroot()
    names = [case.get("name") for case in suites.iter("testcase")]
    assert len(names) == (CHECKPOINTS - 1) * len(HOSTILE)
    assert any("<script>alert(1)</script>" in n for n in names) and any("esc\\x1b[31mred" in n for n in names)
    labels = {s["subset"] for s in json.loads((tmp_path / "g.json").read_text())["subsets"]}
    assert labels == set(HOSTILE)  # JSON keeps the labels exactly


@pytest.mark.slow  # over half a second: kept out of the fast lane
@pytest.mark.parametrize("kind", ["ecdf", "shape", "bands"])
def test_plot_svg_is_well_formed_and_silent(store, tmp_path, kind):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = run("plot", kind, store, "--by", "domain", "--out", tmp_path / "p.svg")
    assert r.exit_code == 0, r.output
    assert not [w for w in caught if "Glyph" in str(w.message)]
    svg = (tmp_path / "p.svg").read_text(encoding="utf-8")
    ET.fromstring(svg)  # well-formed
    assert not RAW.search(svg)


@pytest.mark.slow  # over half a second: kept out of the fast lane
def test_plot_html_page_parses_without_injected_markup(store, tmp_path):
    r = run("plot", "ecdf", store, "--by", "domain", "--out", tmp_path / "p.html")
    assert r.exit_code == 0, r.output
    page = parse_html((tmp_path / "p.html").read_text(encoding="utf-8"))
    assert "script" not in page.tags


def test_output_empty_is_one_line(store):
    r = run("summary", store, "--output", "")
    assert r.exit_code == 2
    assert r.output.strip() == "Error: --output .: is a directory, expected a file path"


def test_output_through_a_symlink(store, tmp_path):
    target = tmp_path / "t.csv"
    target.write_text("")
    (tmp_path / "l.csv").symlink_to(target)
    r = run("summary", store, "-f", "csv", "--output", tmp_path / "l.csv")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "l.csv").is_symlink() and target.read_text().startswith("checkpoint,")


def test_a_lone_surrogate_escape_names_file_and_line(tmp_path, tiny_ckpt):
    data = tmp_path / "sur.jsonl"
    data.write_text('{"text": "fine"}\n{"text": "bad \\ud800 here"}\n', encoding="utf-8")
    r = run("score", tiny_ckpt, "--data", data, "--out", tmp_path / "s", "--quiet")
    assert r.exit_code == 2
    assert r.output.strip() == (
        f"Error: {data}:2: field 'text' holds a lone surrogate \\ud800 (character 5), which is not text; fix that \\u escape in the data"
    )


def deny_reading(monkeypatch, path):
    """Make every open of ``path`` by the data layer fail as a file without read permission does (root ignores chmod)."""
    import builtins

    from pctce_cli.data import fingerprint, records

    real = builtins.open

    def guarded(file, *args, **kw):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real(file, *args, **kw)

    for module in (fingerprint, records):
        monkeypatch.setattr(module, "open", guarded, raising=False)


@pytest.mark.parametrize("command", ["tail", pytest.param("report", marks=pytest.mark.slow)])
def test_an_unreadable_scored_data_file_is_one_line(store, tmp_path, monkeypatch, command):
    data = store.parent / "val.jsonl"
    deny_reading(monkeypatch, data)
    if command == "tail":
        r = run("tail", f"{store}:teacher.checkpoint-250", "--top", 3)
        assert r.exit_code == 2, r.output
        assert r.output.strip() == f"Error: {data}: cannot read (Permission denied)"
    else:
        r = run("report", store, "--out", tmp_path / "r.html")
        assert r.exit_code == 0, r.output  # the report is still written; its tail section says why it shows ids only
        page = (tmp_path / "r.html").read_text(encoding="utf-8")
        assert f"only token ids: {data}: cannot read (Permission denied)." in page


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_data_file_by_its_mode(tmp_path, tiny_ckpt):
    data = tmp_path / "val.jsonl"
    data.write_text('{"text": "hello"}\n')
    data.chmod(0)
    r = run("score", tiny_ckpt, "--data", data, "--out", tmp_path / "s", "--quiet")
    assert r.exit_code == 2
    assert r.output.strip() == f"Error: {data}: cannot read (Permission denied)"


def test_special_token_strings_are_text_unless_asked(tmp_path, tiny_ckpt, tiny_tokenizer):
    """``<|eos|>`` written in a document is scored as its characters; --special-tokens reads it as the token."""
    from pctce_cli.store import load_scores, read_manifest

    text = "The fox <|eos|> jumps."
    data = tmp_path / "st.jsonl"
    data.write_text(json.dumps({"text": text}) + "\n")
    as_text = tiny_tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    as_token = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tiny_tokenizer.eos_token_id in as_token and tiny_tokenizer.eos_token_id not in as_text
    stores = {}
    for name, extra in (("text", []), ("special", ["--special-tokens"])):
        out = tmp_path / name
        r = run("score", tiny_ckpt, "--data", data, "--out", out, "--quiet", *extra)
        assert r.exit_code == 0, r.output
        stores[name] = out
    ck = "tiny"
    text_scores, special_scores = load_scores(stores["text"], ck), load_scores(stores["special"], ck)
    assert len(text_scores.ce) == len(as_text) and len(special_scores.ce) == len(as_token)
    assert "special_tokens" not in read_manifest(stores["text"], ck)["settings"]  # old stores keep their identity
    assert read_manifest(stores["special"], ck)["settings"]["special_tokens"] is True
    # the two are different inputs: comparing them is refused, naming the setting
    r = run("compare", f"{stores['text']}:{ck}", f"{stores['special']}:{ck}")
    assert r.exit_code == 2 and "special_tokens" in r.output, r.output


def test_subset_from_file_tells_same_named_files_apart(tmp_path, tiny_ckpt, one_thread):
    from .cli import run_json

    for folder, texts in (("web", TEXTS), ("books", TEXTS[:1])):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "val.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    out = tmp_path / "s"
    r = run("score", tiny_ckpt, "--data", tmp_path / "web" / "val.jsonl", "--data", tmp_path / "books" / "val.jsonl", "--out", out, "--quiet", "--subset-from-file")
    assert r.exit_code == 0, r.output
    rows = run_json("summary", out, "--by", "file")["Per-token CE summaries by file (nats)"]
    assert [(r["subset"], r["documents"]) for r in rows] == [("books/val.jsonl", 1), ("web/val.jsonl", 2)]


def test_report_tail_top_below_zero_is_refused(store, tmp_path):
    r = run("report", store, "--tail-top", -1, "--out", tmp_path / "r.html")
    assert r.exit_code == 2
    assert r.output.strip() == "Error: --tail-top must be 0 or more (0: no tail examples), got -1"
    assert not (tmp_path / "r.html").exists()
