"""The settings of a scoring, declared once: reading, windows, batches, shards, identity.

``pctce score`` (its CLI options), :func:`pctce_cli.api.score_model`, the
training callback and :func:`pctce_cli.api.prepare_data` all take the same
settings; they are declared here and every one of them derives its own from
these. Errors name the *parameter* (``batch_tokens must be positive``) and carry
it as :attr:`pctce_cli.errors.UsageError.param`; :func:`pctce_cli.errors.option_message`
with :data:`SCORE_OPTIONS` turns them into the wording of the CLI
(``--batch-tokens must be positive``). Torch-free.
"""

from __future__ import annotations

import functools
import inspect
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path


from pctce_cli.data import PREFIXES, SPLIT_ON  # noqa: F401  (the allowed values, declared where data is read)
from pctce_cli.errors import UsageError, option_message

# The allowed values of ``device`` and ``dtype`` (the CLI builds its choices from these, and from PREFIXES, SPLIT_ON).
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16")

DEFAULT_BATCH_TOKENS = None  # auto: see resolve_batch_tokens
# Token budgets per forward pass when none is given. On CPU smaller batches keep
# activations in cache: 2048 ran 1.46x and 1.21x as fast as 16384 on GPT-2s of 13M
# and 39M parameters, the fastest budget on both (docs/benchmarks.md); accelerators
# want large batches.
CPU_BATCH_TOKENS = 2048
ACCELERATOR_BATCH_TOKENS = 16384
DEFAULT_SHARD_TARGETS = 1 << 20
DEFAULT_ACCURACY_MARGIN = 8


@dataclass
class ReadOptions:
    """How validation data is read into records and tokenized into documents.

    The one declaration of these settings: :class:`ScoreOptions` extends it,
    and the keyword arguments of ``score_model``, ``prepare_data`` and the
    callback take their defaults from it.
    """

    text_field: str = "text"
    prompt_field: str | None = None
    completion_field: str | None = None
    messages_field: str = "messages"
    split_on: str = "none"
    prefix: str = "auto"
    special_tokens: bool = False  # special-token strings in the text are special tokens (data/tokenize.py)

    def record_kwargs(self) -> dict:
        """The keyword arguments of :func:`pctce_cli.data.read_records` (every field but ``prefix``)."""
        return {name: getattr(self, name) for name in RECORD_FIELDS}

    @classmethod
    def from_settings(cls, settings: dict) -> "ReadOptions":
        """The reading options a partition was scored with, from its manifest's ``settings``.

        A setting that is missing or empty (an older manifest) takes the field's default.

        Example:
            >>> ReadOptions.from_settings({"split_on": "blank-lines", "text_field": None})
            ReadOptions(text_field='text', prompt_field=None, completion_field=None, messages_field='messages', split_on='blank-lines', prefix='auto', special_tokens=False)
        """
        values = {f.name: settings.get(f.name) for f in fields(cls)}
        return cls(**{f.name: values[f.name] if values[f.name] or f.default is None else f.default for f in fields(cls)})


READ_FIELDS = tuple(f.name for f in fields(ReadOptions))
RECORD_FIELDS = tuple(name for name in READ_FIELDS if name not in ("prefix", "special_tokens"))


def takes_read_options(fn):
    """Give ``fn`` the reading settings as keyword arguments, declared by :class:`ReadOptions` only.

    ``fn`` declares a keyword-only parameter ``read``; the decorated function
    instead takes ``text_field=``, ``prompt_field=`` … (the fields of
    :class:`ReadOptions`, with their defaults) in its place, shown by
    ``help()``/``inspect.signature``, and calls ``fn`` with them gathered into
    ``read=ReadOptions(...)``. Unknown keywords are a ``TypeError`` as for any function.

    Example:
        >>> @takes_read_options
        ... def f(data, *, read, max_length=None):
        ...     return read.split_on, max_length
        >>> f("x", split_on="blank-lines", max_length=8)
        ('blank-lines', 8)
        >>> list(inspect.signature(f).parameters)[:3]
        ['data', 'text_field', 'prompt_field']
    """
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    at = [p.name for p in params].index("read")
    read_params = [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
        for f in fields(ReadOptions)
    ]
    signature = sig.replace(parameters=params[:at] + read_params + params[at + 1 :])

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        read = ReadOptions(**{name: bound.arguments.pop(name) for name in READ_FIELDS if name in bound.arguments})
        return fn(*bound.args, **bound.kwargs, read=read)

    wrapper.__signature__ = signature
    return wrapper


@dataclass(kw_only=True)
class ScoreOptions(ReadOptions):
    """Every setting of a scoring run (the CLI options of ``pctce score``)."""

    data: list
    out: Path
    max_length: int | None = None
    stride: int | None = None
    batch_tokens: int | None = DEFAULT_BATCH_TOKENS  # None: resolve_batch_tokens
    shard_targets: int = DEFAULT_SHARD_TARGETS
    device: str = "auto"
    dtype: str = "auto"
    tokenizer: str | None = None
    base_model: str | None = None
    trust_remote_code: bool = False
    force: bool = False
    task_accuracy: bool = False
    accuracy_margin: int = DEFAULT_ACCURACY_MARGIN
    # Subset labels (docs/definitions.md#subsets) describe the data, not the scores: they are not
    # reading settings, not part of a partition's identity, and adding one to a
    # scored store writes labels without re-scoring.
    subset_fields: tuple[str, ...] = ()
    subset_from_file: bool = False
    # Record byte spans and words (docs/definitions.md#words-and-bytes) when the tokenizer gives offsets. Not a CLI option: an internal
    # switch, so benchmarks/bench_offsets.py can measure what they cost.
    units: bool = True
    # A reference model (docs/definitions.md#divergence-from-a-reference-model from a reference model): each target's kl, dp and
    # same_top1 against it are stored beside ce; its weights fingerprint is part of each partition's identity.
    reference: str | None = None

    @property
    def read(self) -> ReadOptions:
        """The reading settings alone."""
        return ReadOptions(**{name: getattr(self, name) for name in READ_FIELDS})

    def replace(self, **changes) -> ScoreOptions:
        """A copy with ``changes`` applied (every other setting kept)."""
        return ScoreOptions(**{**asdict(self), **changes})


# parameter -> option of ``pctce score``: what option_message rewrites in an error
SCORE_OPTIONS = {
    "data": "--data",
    "out": "--out",
    "text_field": "--text-field",
    "prompt_field": "--prompt-field",
    "completion_field": "--completion-field",
    "messages_field": "--messages-field",
    "split_on": "--split-on",
    "prefix": "--prefix",
    "special_tokens": "--special-tokens",
    "max_length": "--max-length",
    "stride": "--stride",
    "batch_tokens": "--batch-tokens",
    "shard_targets": "--shard-targets",
    "task_accuracy": "--task-accuracy",
    "accuracy_margin": "--accuracy-margin",
    "subset_fields": "--subset-field",
    "subset_from_file": "--subset-from-file",
    "tokenizer": "--tokenizer",
    "device": "--device",
    "dtype": "--dtype",
    "reference": "--reference",
}


def _choices(values) -> str:
    return ", ".join(values[:-1]) + " or " + values[-1]


def validate_options(options: ScoreOptions) -> None:
    """Refuse option values that cannot work, before anything is loaded.

    Raises:
        UsageError: naming the parameters (``param`` is set; see
            :func:`pctce_cli.errors.option_message` for the CLI's wording).
    """
    o = options
    if not o.data:
        raise UsageError("data is required: give at least one validation file", param="data")
    if o.max_length is not None and o.max_length < 2:
        raise UsageError(f"max_length must be at least 2, got {o.max_length}", param="max_length")
    if o.stride is not None and o.stride < 1:
        raise UsageError(f"stride must be at least 1, got {o.stride}", param="stride")
    if o.stride is not None and o.max_length is not None and o.stride > o.max_length:
        raise UsageError(
            f"stride ({o.stride}) cannot exceed max_length ({o.max_length})", param=("stride", "max_length")
        )
    if o.batch_tokens is not None and o.batch_tokens < 1:
        raise UsageError(f"batch_tokens must be positive, got {o.batch_tokens}", param="batch_tokens")
    _check_shard_targets(o.shard_targets)
    if o.prefix not in PREFIXES:
        raise UsageError(f"prefix must be {_choices(PREFIXES)}, got '{o.prefix}'", param="prefix")
    if o.split_on not in SPLIT_ON:
        raise UsageError(f"split_on must be {_choices(SPLIT_ON)}, got '{o.split_on}'", param="split_on")
    if bool(o.prompt_field) != bool(o.completion_field):
        raise UsageError(
            "prompt_field and completion_field go together: give both or neither",
            param=("prompt_field", "completion_field"),
        )
    if o.task_accuracy and not o.completion_field:
        raise UsageError(
            "task_accuracy needs prompt/completion data: give prompt_field and completion_field",
            param=("task_accuracy", "prompt_field", "completion_field"),
        )
    if o.subset_from_file and len(o.data) < 2:
        raise UsageError(
            "subset_from_file labels documents by their data file: give two or more data files", param="subset_from_file"
        )
    if o.reference is not None and not str(o.reference).strip():  # '' would be the current directory, or no reference at all
        raise UsageError("reference must name one checkpoint (a directory, PEFT adapter or Hub id), got ''", param="reference")
    if o.accuracy_margin < 0:
        raise UsageError(f"accuracy_margin must be >= 0, got {o.accuracy_margin}", param="accuracy_margin")
    out = Path(o.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"out {out} exists and is not a directory", param="out")


def validate_cli_options(options: ScoreOptions) -> None:
    """:func:`validate_options` with the messages in the words of ``pctce score`` (``--batch-tokens …``)."""
    try:
        validate_options(options)
    except UsageError as e:
        raise UsageError(option_message(e, SCORE_OPTIONS), param=e.param) from None


def _check_shard_targets(shard_targets: int) -> None:
    if shard_targets < 1:
        raise UsageError(f"shard_targets must be positive, got {shard_targets}", param="shard_targets")


def plan_shards(documents, shard_targets: int) -> list[list[int]]:
    """Split documents (in order) into shards of about ``shard_targets`` targets.

    The plan depends only on the data and the setting, never on the number of
    processes, so a run resumed with another ``--nproc-per-node`` still knows which
    shards are done.

    Examples:
        >>> import numpy as np
        >>> from types import SimpleNamespace as D
        >>> docs = [D(targets=np.ones(n, bool)) for n in (3, 3, 5, 1)]
        >>> plan_shards(docs, 6)
        [[0, 1], [2, 3]]
    """
    _check_shard_targets(shard_targets)
    shards, current, count = [], [], 0
    for k, d in enumerate(documents):
        current.append(k)
        count += int(d.targets.sum())
        if count >= shard_targets:
            shards.append(current)
            current, count = [], 0
    if current:
        shards.append(current)
    return shards


def resolve_batch_tokens(batch_tokens: int | None, device) -> int:
    """The token budget per forward pass: ``batch_tokens``, else ``$PCTCE_BATCH_TOKENS``, else the default for ``device``'s type.

    The environment variable sets a machine's default (a CI runner, a shared
    box) without changing every command.

    Raises:
        UsageError: ``PCTCE_BATCH_TOKENS`` is not a positive whole number.
    """
    if batch_tokens is not None:
        return batch_tokens
    env = os.environ.get("PCTCE_BATCH_TOKENS")
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value < 1:
            raise UsageError(f"PCTCE_BATCH_TOKENS must be a positive whole number, got '{env}'", param="batch_tokens")
        return value
    return CPU_BATCH_TOKENS if str(getattr(device, "type", device)) == "cpu" else ACCELERATOR_BATCH_TOKENS


def identity_settings(
    options: ScoreOptions, max_length: int, stride: int, dtype_name: str, units: str | None = None
) -> dict:
    """The settings that determine a partition's numbers (its identity, beside the fingerprints).

    One function for ``pctce score`` and the in-memory paths, so partitions
    written from an in-memory model carry exactly the settings ``pctce score``
    records (key order included: it is the manifest's).

    ``units`` is the rule of the byte spans and words stored with the rows
    (:data:`pctce_cli.data.UNITS_RULE`), recorded as the last setting only when
    they are stored: shards with and without them never mix in one partition,
    and a run without them (a slow tokenizer) keeps the identity it always had.
    """
    settings = {
        "max_length": max_length,
        "stride": stride,
        "prefix": options.prefix,
        "text_field": options.text_field,
        "prompt_field": options.prompt_field,
        "completion_field": options.completion_field,
        "messages_field": options.messages_field,
        "split_on": options.split_on,
        "dtype": dtype_name,
        "shard_targets": options.shard_targets,
        "task_accuracy": options.task_accuracy,
        "accuracy_margin": options.accuracy_margin if options.task_accuracy else None,
    }
    if options.special_tokens:  # recorded only when on: every store scored without it keeps its identity
        settings["special_tokens"] = True
    if units is not None:
        settings["units"] = units
    return settings


__all__ = [
    "ACCELERATOR_BATCH_TOKENS",
    "CPU_BATCH_TOKENS",
    "DEFAULT_ACCURACY_MARGIN",
    "DEFAULT_BATCH_TOKENS",
    "DEFAULT_SHARD_TARGETS",
    "PREFIXES",
    "READ_FIELDS",
    "RECORD_FIELDS",
    "SCORE_OPTIONS",
    "SPLIT_ON",
    "ReadOptions",
    "ScoreOptions",
    "identity_settings",
    "plan_shards",
    "resolve_batch_tokens",
    "takes_read_options",
    "validate_cli_options",
    "validate_options",
]
