"""The project's exception types.

Every error a user can cause is raised as a :class:`PctceError` subclass whose
message is written for that user: it names the file, line or option, says what
was expected and what was found. Only the CLI turns these into ``Error: …`` and
an exit code; library callers get the exception.
"""

from __future__ import annotations


class PctceError(Exception):
    """Base class of every error pctce reports to a user (CLI exit code 2)."""

    exit_code = 2


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
