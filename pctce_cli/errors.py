"""The project's exception types.

Every error a user can cause is raised as a :class:`PctceError` subclass whose
message is written for that user: it names the file, line or option, says what
was expected and what was found. Only the CLI turns these into ``Error: …`` and
an exit code; library callers get the exception.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


class PctceError(Exception):
    """Base class of every error pctce reports to a user (CLI exit code 2)."""

    exit_code = 2


class UsageError(PctceError):
    """An option or argument has a value pctce cannot use.

    Args:
        message: The message, naming the parameter(s) as the library spells them.
        param: The parameter the message is about (a name, or a tuple of the
            names it mentions, in the order they first appear), so a front end
            can reword it for its own options (:func:`option_message`).
    """

    def __init__(self, message: str = "", param: str | tuple[str, ...] | None = None):
        super().__init__(message)
        self.param = param

    @property
    def params(self) -> tuple[str, ...]:
        """The parameters named by the message (empty when none was given)."""
        if self.param is None:
            return ()
        return (self.param,) if isinstance(self.param, str) else tuple(self.param)


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


def option_message(error: BaseException, options: Mapping[str, str]) -> str:
    """The message of ``error`` with its parameters spelled as a front end's options.

    Each parameter of a :class:`UsageError` (its ``params``) that ``options``
    maps is replaced, at its first occurrence as a whole word, by the option:
    ``batch_tokens must be positive, got 0`` with ``{"batch_tokens":
    "--batch-tokens"}`` becomes ``--batch-tokens must be positive, got 0``.
    Only the first occurrence, so values quoted later (a path) stay intact;
    a message already in the options' words is returned unchanged.

    Args:
        error: Any exception; only a :class:`UsageError` with ``param`` is reworded.
        options: Parameter name → option name (e.g. ``pctce_cli.scoring.options.SCORE_OPTIONS``).

    Returns:
        The reworded message (``str(error)`` when there is nothing to reword).

    Example:
        >>> option_message(UsageError("stride (5) cannot exceed max_length (3)", param=("stride", "max_length")),
        ...                {"stride": "--stride", "max_length": "--max-length"})
        '--stride (5) cannot exceed --max-length (3)'
    """
    message = str(error)
    start = 0
    for name in getattr(error, "params", ()):
        option = options.get(name)
        if option is None:
            continue
        m = re.compile(rf"(?<![\w/.-]){re.escape(name)}(?![\w/.-])").search(message, start)
        if m is None:
            continue
        message = message[: m.start()] + option + message[m.end() :]
        start = m.start() + len(option)
    return message
