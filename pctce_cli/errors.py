"""The project's exception types.

Every error a user can cause is raised as a :class:`PctceError` subclass whose
message is written for that user: it names the file, line or parameter, says what
was expected and what was found. Only the CLI turns these into ``Error: …`` and
an exit code; library callers get the exception.

Errors carry data, the edge words them: the core writes a message with the
*parameter's* name (``tail_checkpoint 'x' matches no selected checkpoint``),
lists the parameters it names as ``param`` and a remedy, if there is one, as
``remedy``. The Python API shows that text as it is; the CLI rewords the
parameters as its options (:func:`option_message` with the CLI's table,
``--tail-checkpoint 'x' matches …``). No code reads an error's text to take it
apart: it reads ``message``, ``remedy`` and ``params``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


class PctceError(Exception):
    """Base class of every error pctce reports to a user (CLI exit code 2).

    Args:
        message: What is wrong, naming the parameter(s) as the library spells them.
        param: The parameters ``message`` names (a name, or a tuple of names in
            the order they appear; a name mentioned twice is listed twice), so
            a front end can reword them as its options (:func:`option_message`).
        remedy: What to do about it, if there is something to say (``pass
            tokenizer DIR or decode=False``); ``str(error)`` is ``"message; remedy"``.
        remedy_param: The parameters ``remedy`` names, as ``param`` for ``message``.
    """

    exit_code = 2

    def __init__(
        self,
        message: str = "",
        param: str | tuple[str, ...] | None = None,
        remedy: str | None = None,
        remedy_param: str | tuple[str, ...] | None = None,
    ):
        super().__init__(f"{message}; {remedy}" if remedy else message)
        self.message = message
        self.param = param
        self.remedy = remedy
        self.remedy_param = remedy_param

    @property
    def params(self) -> tuple[str, ...]:
        """The parameters named by the message (empty when none was given)."""
        return _names(self.param)

    @property
    def remedy_params(self) -> tuple[str, ...]:
        """The parameters named by the remedy (empty when none was given)."""
        return _names(self.remedy_param)


def _names(param) -> tuple[str, ...]:
    if param is None:
        return ()
    return (param,) if isinstance(param, str) else tuple(param)


class UsageError(PctceError):
    """An option or argument has a value pctce cannot use."""


class DataError(PctceError):
    """A validation-data file is missing, empty, malformed or yields no targets."""


class CheckpointError(PctceError):
    """A checkpoint path is missing, empty, corrupt, or its tokenizer is missing."""


class ScoringError(PctceError):
    """Scoring a checkpoint failed (out of memory, non-finite CE, …)."""


class StoreError(PctceError):
    """A score directory is missing, is not a pctce store, or is locked."""


class MixedInputError(PctceError):
    """Checkpoints scored on different data or tokenizers were mixed in one comparison."""


class PolicyError(PctceError):
    """A release-gate policy is malformed (names the key and the line)."""


class GateFailed(PctceError):
    """A release gate rule failed (CLI exit code 1)."""

    exit_code = 1


class DamagedStoreError(StoreError):
    """A stored file is missing, garbled or fails its checksum; ``what`` names the file and the fault."""

    def __init__(self, message: str, what: str):
        super().__init__(message)
        self.what = what


def option_message(error: BaseException, options: Mapping[str, str], remedy: bool = True) -> str:
    """The text of ``error`` with its parameters spelled as a front end's options.

    Each parameter of a :class:`PctceError` (its ``params``) that ``options``
    maps is replaced, at its next occurrence as a whole word, by the option:
    ``batch_tokens must be positive, got 0`` with ``{"batch_tokens":
    "--batch-tokens"}`` becomes ``--batch-tokens must be positive, got 0``.
    The parameters are looked for in the order ``params`` lists them, each
    after the one before, so values quoted later (a path) stay intact; a
    message already in the options' words is returned unchanged. An entry the
    table does not map is passed over where it occurs: it lets a message use a
    parameter's name as a plain word first (``param=("no baseline",
    "baseline")`` in ``no baseline: pass baseline ID``).

    Args:
        error: Any exception; only a :class:`PctceError` with ``param`` or ``remedy_param`` is reworded.
        options: Parameter name → option name (the CLI's table,
            ``pctce_cli.cli.common.OPTIONS``).
        remedy: Include the error's remedy (``"message; remedy"``); False: the message alone.

    Returns:
        The reworded text (``str(error)`` when there is nothing to reword).

    Example:
        >>> option_message(UsageError("stride (5) cannot exceed max_length (3)", param=("stride", "max_length")),
        ...                {"stride": "--stride", "max_length": "--max-length"})
        '--stride (5) cannot exceed --max-length (3)'
        >>> e = UsageError("cannot decode 'a'", remedy="pass tokenizer DIR or decode=False", remedy_param=("tokenizer", "decode=False"))
        >>> option_message(e, {"tokenizer": "--tokenizer", "decode=False": "--no-decode"})
        "cannot decode 'a'; pass --tokenizer DIR or --no-decode"
        >>> option_message(e, {}, remedy=False)
        "cannot decode 'a'"
    """
    message = getattr(error, "message", None)
    if message is None:
        return str(error)
    text = _reworded(message, getattr(error, "params", ()), options)
    if remedy and getattr(error, "remedy", None):
        text += "; " + _reworded(error.remedy, error.remedy_params, options)
    return text


def _reworded(text: str, names, options: Mapping[str, str]) -> str:
    start = 0
    for name in names:
        m = re.compile(rf"(?<![\w/.-]){re.escape(name)}(?![\w/.-])").search(text, start)
        if m is None:
            continue
        option = options.get(name, name)  # a phrase the table does not map only marks its place
        text = text[: m.start()] + option + text[m.end() :]
        start = m.start() + len(option)
    return text
