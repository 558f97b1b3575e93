"""Reading validation data files into :class:`Record` objects (one per document); the package docstring has the formats."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from pctce_cli.errors import DataError, UsageError

FORMATS = (".txt", ".jsonl", ".json", ".parquet", ".csv")
SPLIT_ON = ("none", "blank-lines")
PREFIXES = ("auto", "bos", "eos", "none")

_SURROGATE = re.compile("[\ud800-\udfff]")  # only a JSON escape can put one in a str
_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")  # a newline, then one or more whitespace-only lines


@dataclass
class Record:
    """One document as read from a data file, before tokenization.

    Exactly one mode is set: ``text``; or ``prompt`` and ``completion``; or
    ``messages``.
    """

    index: int
    source: str
    text: str | None = None
    prompt: str | None = None
    completion: str | None = None
    messages: list[dict] | None = None
    labels: dict[str, str] = field(default_factory=dict)  # subset field -> label (docs/definitions.md#subsets)


@dataclass
class Document:
    """A tokenized document and the mask of its scored tokens.

    ``targets[i]`` is True iff ``input_ids[i]`` is scored, predicted from
    ``input_ids[:i]``; ``targets[0]`` is always False. ``offset`` is 1 when a
    prefix token was prepended, so a target's position in the document is
    ``i - offset``. ``nbytes`` and ``word`` hold, per target in position
    order, its byte-span length and word index (docs/definitions.md#words-and-bytes; -1: no word), or
    ``None`` when the tokenizer gives no offsets (:mod:`pctce_cli.data.spans`).
    """

    index: int
    input_ids: np.ndarray  # int64 (T,)
    targets: np.ndarray  # bool (T,)
    offset: int
    n_bytes: int
    n_words: int
    source: str
    nbytes: np.ndarray | None = None  # int32 (targets.sum(),)
    word: np.ndarray | None = None  # int32 (targets.sum(),)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Fields:
    text: str
    prompt: str | None
    completion: str | None
    messages: str
    subsets: tuple[str, ...] = ()


# Per-document columns the store already has, and the token dimensions of --by (position, ctx): a subset field may
# not take one of these names.
RESERVED_LABELS = frozenset(
    {"doc", "n_targets", "n_bytes", "n_words", "n_empty", "n_input", "prefix_offset", "exact_match", "substring_match", "generation", "correct", "checkpoint", "position", "ctx"}
)
FILE_LABEL = "file"  # the subset field of --subset-from-file


def read_records(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    text_field: str = "text",
    prompt_field: str | None = None,
    completion_field: str | None = None,
    messages_field: str = "messages",
    split_on: str = "none",
    subset_fields: Sequence[str] = (),
    subset_from_file: bool = False,
) -> list[Record]:
    """Read validation-data files into records, in file then line order.

    (Long by its documented arguments; the body is about 25 lines.)

    Args:
        paths: One data file or several, read in the order given.
        text_field: Field holding plain text (jsonl/json/parquet/csv).
        prompt_field: Field holding the prompt; with ``completion_field``
            selects prompt/completion mode for every record.
        completion_field: Field holding the completion (the scored part).
        messages_field: Field holding a chat as a list of ``{role, content}``;
            a record whose field holds a list is a chat record.
        split_on: ``"none"`` (a .txt file is one document) or ``"blank-lines"``
            (a .txt file holds documents separated by blank lines). Ignored
            for other formats.
        subset_fields: Fields whose value labels each document (docs/definitions.md#subsets): any
            scalar, kept as a string in ``Record.labels``; a record without
            the field is an error naming its file and line.
        subset_from_file: Label each document by its data file's name (the
            file name without its extension; the whole name where two files
            share a stem) under the field ``file``.

    Returns:
        Records with ``index`` 0-based over all files.

    Raises:
        DataError: A file is missing, empty, not UTF-8, malformed, or a record
            lacks the field its mode needs.
        UsageError: ``split_on`` is unknown, or only one of
            ``prompt_field``/``completion_field`` is given.
    """
    if split_on not in SPLIT_ON:
        raise UsageError(f"split_on must be 'none' or 'blank-lines', got {split_on!r}", param="split_on")
    if (prompt_field is None) != (completion_field is None):
        given, missing = ("prompt_field", "completion_field")[:: 1 if prompt_field else -1]
        raise UsageError(f"{given} needs {missing} too: pass both for answer-only CE, or neither", param=(given, missing))
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise UsageError("no data file given", remedy="pass data", remedy_param="data")
    subset_fields = check_subset_fields(subset_fields, subset_from_file)
    fields = _Fields(text_field, prompt_field, completion_field, messages_field, subset_fields)
    file_labels = _file_labels([str(p) for p in paths]) if subset_from_file else {}

    records: list[Record] = []
    for path in paths:
        path = str(path)
        n_before = len(records)
        try:
            _read_file(records, path, fields, split_on)
        except OSError as e:  # permission denied, an I/O error: the file's, not a bug
            raise unreadable(path, e) from None
        for rec in records[n_before:] if subset_from_file else ():
            rec.labels[FILE_LABEL] = file_labels[path]
    return records


def unreadable(path, error: OSError) -> DataError:
    """The error for a data file that exists but cannot be read (no permission, an I/O error)."""
    return DataError(f"{path}: cannot read ({error.strerror or type(error).__name__})")


def _read_file(records: list[Record], path: str, fields: _Fields, split_on: str) -> None:
    """Append the records of one data file to ``records`` (indices continue)."""
    suffix = _check_file(path)
    n_before = len(records)
    if suffix == ".txt":
        if fields.prompt is not None:
            raise DataError(
                f"{path}: a .txt file holds plain text only; --prompt-field/--completion-field "
                "need .jsonl, .json, .parquet or .csv"
            )
        if fields.subsets:
            raise DataError(
                f"{path}: a .txt file has no fields for --subset-field {fields.subsets[0]}; "
                "use .jsonl, .json, .parquet or .csv, or label documents by file with --subset-from-file"
            )
        for source, text in _read_txt(path, split_on):
            records.append(Record(index=len(records), source=source, text=text))
    else:
        reader = {".jsonl": _read_jsonl, ".json": _read_json, ".parquet": _read_parquet, ".csv": _read_csv}
        for source, row, keys in reader[suffix](path, fields):
            rec = _make_record(len(records), source, row, keys, fields)
            rec.labels = {name: _label(row, name, source, keys) for name in fields.subsets}
            records.append(rec)
    if len(records) == n_before:
        raise DataError(f"data file is empty: {path}")


def check_subset_fields(names: Sequence[str], from_file: bool = False) -> tuple[str, ...]:
    """The subset fields, checked: distinct, non-empty, none named like a stored per-document column.

    Raises:
        UsageError: naming the option and the field.
    """
    names = tuple(names or ())
    for name in names:
        if not name or not name.strip():
            raise UsageError("subset_fields needs a field name, got an empty one", param="subset_fields")
        if name in RESERVED_LABELS or (from_file and name == FILE_LABEL):
            if name in ("position", "ctx"):  # by position|ctx buckets targets: a field so named could never be split by
                raise UsageError(f"subset_fields {name}: '{name}' is a value of by (by {name} buckets targets), so a field so named could not be chosen; rename the field in the data", param=("subset_fields", "by", "by"))
            taken = "--subset-from-file's" if name == FILE_LABEL else "a per-document column's"
            raise UsageError(f"subset_fields {name}: '{name}' is {taken} name; rename the field in the data", param="subset_fields")
    if len(set(names)) != len(names):
        raise UsageError(f"subset_fields given twice: {', '.join(names)}", param="subset_fields")
    return names


def _file_labels(paths: list[str]) -> dict[str, str]:
    """Each data file's label: its stem; its whole name where two files share a stem; where two files
    share the name too (``a/val.jsonl``, ``b/val.jsonl``), as many of its last path parts as tell them apart.

    Examples:
        >>> _file_labels(["x/code.jsonl", "x/prose.jsonl", "y/code.csv"])
        {'x/code.jsonl': 'code.jsonl', 'x/prose.jsonl': 'prose', 'y/code.csv': 'code.csv'}
        >>> _file_labels(["a/v/val.jsonl", "b/v/val.jsonl"])
        {'a/v/val.jsonl': 'a/v/val.jsonl', 'b/v/val.jsonl': 'b/v/val.jsonl'}
    """
    files = list(dict.fromkeys(str(Path(p).resolve()) for p in paths))
    stems = [Path(f).stem for f in files]
    labels = {}
    for f, stem in zip(files, stems):
        if stems.count(stem) == 1:
            labels[f] = stem
            continue
        parts = Path(f).parts
        for n in range(1, len(parts) + 1):
            tail = parts[-n:]
            if sum(Path(g).parts[-n:] == tail for g in files) == 1:
                labels[f] = "/".join(tail)
                break
    return {p: labels[str(Path(p).resolve())] for p in paths}


def _label(row: dict, name: str, source: str, keys: list[str] | None) -> str:
    """A subset label: a scalar field's value as a string (JSON's spelling for booleans)."""
    if name not in row:
        raise DataError(f"{source}: no field '{name}' for subset_fields (found: {_names(list(row) if keys is None else keys)})", param=(f"field '{name}'", "subset_fields"))
    value = row[name]
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    if isinstance(value, float) and value != value:
        value = None
    if value is None or isinstance(value, (list, tuple, dict, np.ndarray)):
        raise DataError(f"{source}: field '{name}' is {_kind(value)}, expected a scalar subset label (a string, number or boolean)")
    if not str(value).strip():
        raise DataError(f"{source}: field '{name}' is empty, expected a subset label")
    return _check_text(str(value), f"field '{name}'", source)


def _check_file(path: str) -> str:
    """Existence, format and non-emptiness checks; returns the lower-case suffix."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file not found: {path}")
    if p.is_dir():
        raise DataError(f"{path}: is a directory, expected a data file")
    suffix = p.suffix.lower()
    if suffix not in FORMATS:
        shown = p.suffix or "(none)"
        raise DataError(
            f"{path}: unsupported data format '{shown}' (expected .txt, .jsonl, .json, .parquet or .csv)"
        )
    if p.stat().st_size == 0:
        raise DataError(f"data file is empty: {path}")
    return suffix


def _decode(data: bytes, path: str, base: int = 0) -> str:
    """Strict UTF-8 decode; ``base`` is the file offset of ``data``. A leading BOM is dropped."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: not UTF-8 (invalid byte at offset {base + e.start}); re-encode it as UTF-8"
        ) from None
    return text[1:] if base == 0 and text.startswith("\ufeff") else text


def split_blank_lines(text: str) -> list[str]:
    """Split text into blocks separated by one or more blank (whitespace-only) lines.

    Surrounding newlines of each block are stripped; empty blocks are dropped.

    >>> split_blank_lines("one\\ntwo\\n\\n  \\nthree\\n\\n")
    ['one\\ntwo', 'three']
    """
    blocks = (block.strip("\r\n") for block in _BLANK_LINES.split(text))
    return [block for block in blocks if block.strip()]


def _read_txt(path: str, split_on: str) -> Iterator[tuple[str, str]]:
    text = _decode(Path(path).read_bytes(), path)
    if split_on == "blank-lines":
        for n, block in enumerate(split_blank_lines(text), start=1):
            yield f"{path}:block {n}", block
    elif text.strip():
        yield path, text


def _read_jsonl(path: str, fields: _Fields) -> Iterator[tuple[str, Any, None]]:
    offset = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            line = _decode(raw, path, offset).rstrip("\r\n")
            offset += len(raw)
            if not line.strip():
                continue
            source = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{source}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(row, dict):
                raise DataError(f"{source}: expected a JSON object, found {_kind(row)}")
            yield source, row, None


def _read_json(path: str, fields: _Fields) -> Iterator[tuple[str, Any, None]]:
    text = _decode(Path(path).read_bytes(), path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if isinstance(data, dict) and len(data) == 1:
        (key, value), = data.items()
        if isinstance(value, list) and key not in (fields.messages, fields.text):
            data = value
    if not isinstance(data, list):
        found = _kind(data) if not isinstance(data, dict) else f"an object with keys {_names(data)}"
        raise DataError(
            f"{path}: expected a JSON array of objects (or an object with one key holding that array), "
            f"found {found}"
        )
    for n, row in enumerate(data, start=1):
        source = f"{path}:item {n}"
        if not isinstance(row, dict):
            raise DataError(f"{source}: expected a JSON object, found {_kind(row)}")
        yield source, row, None


def _read_parquet(path: str, fields: _Fields) -> Iterator[tuple[str, Any, list[str]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        names = list(pf.schema_arrow.names)
        wanted = [fields.text, fields.prompt, fields.completion, fields.messages, *fields.subsets]
        columns = [name for name in dict.fromkeys(wanted) if name in names]
        n = 0
        for batch in pf.iter_batches(columns=columns or names[:1]):
            rows = batch.to_pylist() if columns else [{}] * batch.num_rows
            for row in rows:
                n += 1
                yield f"{path}:row {n}", row, names
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: not a readable Parquet file ({_first_line(e)})") from None


def _read_csv(path: str, fields: _Fields) -> Iterator[tuple[str, Any, None]]:
    import io

    import pandas as pd

    text = _decode(Path(path).read_bytes(), path)
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, na_filter=False)
    except pd.errors.EmptyDataError:
        return
    except (pd.errors.ParserError, ValueError) as e:
        raise DataError(f"{path}: not a readable CSV file ({_first_line(e)})") from None
    for n, row in enumerate(df.to_dict("records"), start=1):
        yield f"{path}:row {n}", row, None


def _make_record(index: int, source: str, row: dict, keys: list[str] | None, fields: _Fields) -> Record:
    keys = list(row) if keys is None else keys
    if fields.prompt is not None:
        prompt = _string_field(row, fields.prompt, "--prompt-field", source, keys)
        completion = _string_field(row, fields.completion, "--completion-field", source, keys)
        return Record(index=index, source=source, prompt=prompt, completion=completion)
    messages = row.get(fields.messages)
    if isinstance(messages, list):
        return Record(index=index, source=source, messages=_check_messages(messages, fields.messages, source))
    if fields.text not in row and fields.messages in row:
        raise DataError(
            f"{source}: field '{fields.messages}' is {_kind(messages)}, "
            "expected a list of {role, content} messages"
        )
    text = _string_field(row, fields.text, "--text-field or --messages-field", source, keys)
    return Record(index=index, source=source, text=text)


def _string_field(row: dict, name: str, option: str, source: str, keys: list[str]) -> str:
    if name not in row:
        raise DataError(f"{source}: no field '{name}' (found: {_names(keys)}); choose one with {option}")
    value = row[name]
    if not isinstance(value, str):
        raise DataError(f"{source}: field '{name}' is {_kind(value)}, expected a string")
    return _check_text(value, f"field '{name}'", source)


def _check_text(value: str, what: str, source: str) -> str:
    """``value``, unless it holds a lone surrogate (JSON's ``"\\ud800"`` escape), which no tokenizer or file can take."""
    bad = _SURROGATE.search(value)
    if bad:
        raise DataError(
            f"{source}: {what} holds a lone surrogate \\u{ord(bad.group()):04x} (character {bad.start() + 1}), "
            "which is not text; fix that \\u escape in the data"
        )
    return value


def _check_messages(messages: list, field: str, source: str) -> list[dict]:
    for n, message in enumerate(messages, start=1):
        where = f"{source}: message {n} of '{field}'"
        if not isinstance(message, dict):
            raise DataError(f"{where} is {_kind(message)}, expected an object with 'role' and 'content'")
        for key in ("role", "content"):
            if key not in message:
                raise DataError(f"{where} has no '{key}' (found: {_names(message)})")
            if not isinstance(message[key], str):
                raise DataError(f"{where}: '{key}' is {_kind(message[key])}, expected a string")
            _check_text(message[key], f"'{key}' of message {n} of '{field}'", source)
    return messages


def _kind(value: Any) -> str:
    """How a value's type is named in messages: JSON vocabulary with an article."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, np.number)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _names(keys: Iterable[str]) -> str:
    keys = [str(k) for k in keys]
    return ", ".join(keys) if keys else "no fields"


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
