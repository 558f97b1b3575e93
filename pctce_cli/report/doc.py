"""The report's document model, independent of its output format, and its options."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pctce_cli.stats.defaults import CONCORDANCE_AGREE, CONCORDANCE_DISAGREE
from pctce_cli.stats.summaries import DEFAULT_CONCORDANCE_SET, DEFAULT_PERCENTILES

SECTIONS = (
    ("findings", "Findings"),
    ("summaries", "Summaries"),
    ("concordance", "Concordance"),
    ("selection", "Selection rules"),
    ("shape", "Shape"),
    ("tail", "Tail examples"),
    ("scored", "What was scored"),
)


# ---------------------------------------------------------------- document model


@dataclass
class Text:
    """A paragraph of plain text."""

    text: str


@dataclass
class Notes:
    """A bulleted list of plain-language lines (readings, crossings, caveats)."""

    lines: list[str]


@dataclass
class Table:
    """A titled table: one dict per row."""

    title: str
    rows: list[dict]


@dataclass
class Image:
    """A rendered plot: ``name`` (file-name safe), caption, PNG bytes."""

    name: str
    caption: str
    png: bytes


@dataclass
class Finding:
    """One reading of the report's numbers: a sentence with its number, and the figure that shows it (an :class:`Image` name, or None)."""

    text: str
    figure: str | None = None


@dataclass
class Findings:
    """The findings, first thing in the report."""

    items: list[Finding]


@dataclass
class Details:
    """Blocks shown on demand (HTML ``<details>``): tables behind the figure they back."""

    summary: str
    blocks: list = field(default_factory=list)


def walk(blocks):
    """Every block, those inside :class:`Details` too, in order."""
    for b in blocks:
        yield b
        if isinstance(b, Details):
            yield from walk(b.blocks)


@dataclass
class Section:
    """A report section: an anchor id, a title and its blocks in order."""

    id: str
    title: str
    blocks: list = field(default_factory=list)


@dataclass
class ReportDoc:
    """A whole report, independent of its output format."""

    title: str
    intro: list[str]
    sections: list[Section]
    warnings: list[str] = field(default_factory=list)


@dataclass
class ReportOptions:
    """Settings of a report (the analysis commands' options of the same names).

    Attributes:
        percentiles: Percentiles of the summary table and selection rules.
        set_: The summary set S of C_S.
        vs: Reference checkpoint (differences, crossings, trajectory line).
        task: Task-metric column (from ``--meta``) for regret and agreement.
        higher_is_better: Direction of the task metric.
        edges: CE band edges.
        tail_top: Highest-CE targets listed per tail checkpoint (0: none).
        tail_checkpoints: Id globs of the checkpoints whose tail is shown
            (default: the one with the lowest mean CE).
        context: Decoded tokens before each tail target.
        agree, disagree: Concordance reading thresholds.
        dpi: Resolution of the embedded PNGs.
        subsets: ``--by``/``--subset`` (:class:`pctce_cli.analysis.subsets.Subsets`):
            ``by`` picks the subset section's field (default every stored one),
            ``keep`` restricts the whole report to those documents.
        unit: ``token``, ``word`` or ``byte`` (docs/definitions.md#words-and-bytes): every table and plot is
            of that unit's distribution; the tail lists words with ``word`` and
            nothing with ``byte``.
        positions: ``--by position|ctx`` (:class:`pctce_cli.analysis.position.Positions`): the position
            section is shown whatever the documents' length, bucketed by that dimension and edges.
        words: Parameter name → how the front end spells it (the CLI passes its option table,
            ``{"by": "--by", …}``), for the messages the report shows (:func:`pctce_cli.errors.option_message`).
    """

    percentiles: Sequence[float] = DEFAULT_PERCENTILES
    set_: Sequence[str] = DEFAULT_CONCORDANCE_SET
    vs: str | None = None
    task: str | None = None
    higher_is_better: bool = True
    edges: Sequence[float] | None = None
    tail_top: int = 10
    tail_checkpoints: Sequence[str] = ()
    context: int = 20
    agree: float = CONCORDANCE_AGREE
    disagree: float = CONCORDANCE_DISAGREE
    dpi: int = 110
    subsets: object = None  # Subsets, or None: the stored subset fields, every document
    unit: str = "token"
    positions: object = None  # --by position|ctx (analysis.position.Positions): the position section always, by that dimension
    words: Mapping[str, str] = field(default_factory=dict)


