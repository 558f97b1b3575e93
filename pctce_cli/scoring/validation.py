"""Validation data read and tokenized once: :class:`ValidationData` and the records it comes from.

``score_model`` and the training callback accept data as paths, texts or
:class:`~pctce_cli.data.Record` objects (:func:`as_records`); it is read with
the reading options of :class:`~pctce_cli.scoring.options.ReadOptions` and
tokenized as ``pctce score`` tokenizes it (:func:`tokenize_data`). Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pctce_cli.data import (
    FORMATS,
    Document,
    Record,
    data_fingerprint,
    documents_fingerprint,
    read_records,
    tokenize_records,
    units_status,
)
from pctce_cli.errors import UsageError
from pctce_cli.scoring.options import ReadOptions, ScoreOptions, takes_read_options, validate_options

# what ScoreOptions.data holds when the data was given in memory (no file to name)
IN_MEMORY = "<in-memory>"


@dataclass
class ValidationData:
    """Validation data read and tokenized once, ready to score again and again.

    Made by :func:`prepare_data`; :func:`score_model` accepts it as ``data``
    (its reading settings then win over the keyword arguments), which is what
    the training callback does at every evaluation.
    """

    records: list[Record]
    documents: list[Document]
    skipped: int
    files: list[str]  # resolved data files; empty for texts or Records given in memory
    options: ScoreOptions  # the reading and target-selection settings
    fingerprints: dict  # tokenizer, data, documents
    # whether the documents carry byte spans and words (pctce_cli.data.units_status): the manifest's "units"
    units: dict = field(default_factory=lambda: {"available": False, "reason": "not computed"})

    def __len__(self) -> int:
        return len(self.documents)

    @property
    def n_targets(self) -> int:
        """Number of scored targets over every document."""
        return int(sum(int(d.targets.sum()) for d in self.documents))


def _looks_like_file(s: str) -> bool:
    return "\n" not in s and len(s) < 4096 and Path(s).suffix.lower() in FORMATS


def as_records(data, **read_kw) -> tuple[list[Record], list[str]]:
    """Turn any accepted ``data`` into records and the data files they came from.

    Accepted: a path (``str`` or ``os.PathLike``); a list of paths; a list of
    texts (one plain-text document each); a list of :class:`Record`. A list of
    strings is read as paths when every string ends in a data-file suffix
    (``.txt``, ``.jsonl``, ``.json``, ``.parquet``, ``.csv``) and holds no
    newline, otherwise as texts.

    Returns:
        ``(records, files)``; ``files`` is empty for texts and records.

    Raises:
        UsageError: empty or mixed lists, or field options given with texts.
        DataError: from :func:`pctce_cli.data.read_records`.

    Examples:
        >>> recs, files = as_records(["first text", "second text"])
        >>> [(r.index, r.source, r.text) for r in recs], files
        ([(0, 'text 1', 'first text'), (1, 'text 2', 'second text')], [])
    """
    if isinstance(data, (str, os.PathLike)):
        return read_records(data, **read_kw), [str(data)]
    if isinstance(data, Record):
        data = [data]
    try:
        items = list(data)
    except TypeError:
        raise UsageError(
            f"data must be a path, a list of paths, a list of texts or a list of Records, got {type(data).__name__}"
        ) from None
    if not items:
        raise UsageError("data is empty: give a data file, a list of files, texts or Records")
    if all(isinstance(x, Record) for x in items):
        indices = [r.index for r in items]
        if len(set(indices)) != len(indices):
            raise UsageError("Records must have distinct index values (the document ids of the store)")
        return items, []
    if all(isinstance(x, os.PathLike) for x in items) or (
        all(isinstance(x, str) for x in items) and all(_looks_like_file(x) for x in items)
    ):
        paths = [str(x) for x in items]
        return read_records(paths, **read_kw), paths
    if all(isinstance(x, str) for x in items):
        if read_kw.get("prompt_field") or read_kw.get("completion_field"):
            raise UsageError(
                "prompt_field/completion_field name fields of data files; for prompt/completion pairs "
                "in memory pass Records with prompt and completion"
            )
        return [Record(index=i, source=f"text {i + 1}", text=t) for i, t in enumerate(items)], []
    kinds = sorted({type(x).__name__ for x in items})
    raise UsageError(f"data mixes {', '.join(kinds)}; give paths, texts or Records, one kind per list")


def records_fingerprint(records: Sequence[Record]) -> str:
    """SHA-256 over the content of in-memory records (index, mode fields), in order."""
    h = hashlib.sha256()
    for r in records:
        row = [r.index, r.text, r.prompt, r.completion, r.messages]
        h.update(json.dumps(row, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def read_data(data, read: ReadOptions, out=".", **scoring) -> tuple[list[Record], list[str], ScoreOptions]:
    """Validate the settings, then read ``data`` into records.

    Args:
        data: See :func:`as_records`.
        read: The reading settings.
        out: The store (validated: it must be a directory if it exists).
        **scoring: More :class:`ScoreOptions` fields (``max_length`` …), validated too.

    Returns:
        ``(records, files, options)``; ``options.data`` names the files (or ``<in-memory>``).

    Raises:
        UsageError: bad settings (naming the parameter) or data; DataError: unreadable files.
    """
    options = ScoreOptions(data=[IN_MEMORY], out=Path(out), **vars(read), **scoring)
    validate_options(options)
    records, files = as_records(data, **read.record_kwargs())
    options.data = files or [IN_MEMORY]
    return records, files, options


@takes_read_options
def prepare_data(tokenizer, data, *, read: ReadOptions) -> ValidationData:
    """Read and tokenize validation data as ``pctce score`` does.

    Args:
        tokenizer: A Hugging Face tokenizer (the model's).
        data: A path, a list of paths, a list of texts or a list of
            :class:`~pctce_cli.data.Record` (see :func:`as_records`).
        text_field, prompt_field, completion_field, messages_field, split_on,
            prefix: As the options of ``pctce score`` (``--text-field`` …).

    Returns:
        A :class:`ValidationData` with the documents and their fingerprints:
        the data fingerprint is the one ``pctce score`` records for files, and
        a hash of the records' content for texts and Records.

    Raises:
        UsageError: bad options (naming the parameter) or data.
        DataError: unreadable or empty data files.
    """
    records, files, options = read_data(data, read)
    return tokenize_data(tokenizer, records, files, options)


def tokenize_data(tokenizer, records: list[Record], files: list[str], options: ScoreOptions) -> ValidationData:
    """Tokenize records already read (from ``files``, or in memory) with ``options``' settings."""
    from pctce_cli.scoring.hf import tokenizer_fingerprint

    prefix = options.prefix
    name = getattr(tokenizer, "name_or_path", "") or "the tokenizer"
    documents, skipped = tokenize_records(records, tokenizer, prefix=prefix, tokenizer_name=str(name), units=options.units, special_tokens=options.special_tokens)
    fingerprints = {
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "data": data_fingerprint(files) if files else records_fingerprint(records),
        "documents": documents_fingerprint(documents),
    }
    return ValidationData(
        records, documents, skipped, [str(Path(p).resolve()) for p in files], options, fingerprints,
        units_status(documents, tokenizer, str(name), options.units),
    )


__all__ = ["IN_MEMORY", "ValidationData", "as_records", "prepare_data", "read_data", "records_fingerprint", "tokenize_data"]
