"""Validation data → documents with target masks.

Two steps, both callable without the CLI:

1. :func:`read_records` reads ``--data`` files (``.txt``, ``.jsonl``, ``.json``,
   ``.parquet``, ``.csv``) into :class:`Record` objects, one per document, each
   in one of three modes: plain text, prompt/completion, or chat.
2. :func:`tokenize_records` turns records into :class:`Document` objects:
   token ids plus a boolean mask of the tokens that are scored (SPEC §1):
   every token of a plain text, only the completion tokens of a
   prompt/completion pair (answer-only CE, tokenized like
   lm-evaluation-harness ``_encode_pair``), only the assistant turns of a chat
   (content plus the end-of-turn tokens the template appends).

The first token is scored from a prefix token (BOS, else EOS, as
lm-evaluation-harness does for rolling log-likelihood); with no prefix it is
not a target.

Formats (by extension, case-insensitive; UTF-8, a leading BOM is ignored):

- ``.txt``: the whole file is one plain-text document, kept byte for byte
  (``split_on="blank-lines"``: blocks separated by whitespace-only lines,
  surrounding newlines stripped, empty blocks dropped). A whitespace-only file
  counts as empty. Not allowed in prompt/completion mode.
- ``.jsonl``: one object per line, blank lines skipped. ``.json``: an array of
  objects, or an object with exactly one key holding that array (``{"data": [...]}``).
- ``.parquet``: rows, only the needed columns are read, in batches. ``.csv``:
  rows, a header line, every cell read as a string (empty cell → ``""``).

Mode per record: prompt/completion when both fields are given (every record);
otherwise chat when ``messages_field`` holds a list; otherwise plain text.

Numbering: ``Record.index`` is 0-based over all files in the order given; the
numbers in ``source`` (``path:LINE`` for .jsonl, ``path:item N`` for .json,
``path:block N``, ``path:row N`` for .parquet/.csv) are 1-based, as an editor
shows them.

Heavy libraries (pandas, pyarrow, transformers) are imported inside the
functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from pctce_cli.errors import DataError, UsageError

FORMATS = (".txt", ".jsonl", ".json", ".parquet", ".csv")
SPLIT_ON = ("none", "blank-lines")
PREFIXES = ("auto", "bos", "eos", "none")

_WORDS = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")  # a newline, then one or more whitespace-only lines
_SOURCE_SUFFIX = re.compile(r":(?:(?:block|row|item) )?\d+$")
_ENCODE_CHUNK = 4096  # texts per tokenizer call


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


@dataclass
class Document:
    """A tokenized document and the mask of its scored tokens.

    ``targets[i]`` is True iff ``input_ids[i]`` is scored, predicted from
    ``input_ids[:i]``; ``targets[0]`` is always False. ``offset`` is 1 when a
    prefix token was prepended, so a target's position in the document is
    ``i - offset``.
    """

    index: int
    input_ids: np.ndarray  # int64 (T,)
    targets: np.ndarray  # bool (T,)
    offset: int
    n_bytes: int
    n_words: int
    source: str


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Fields:
    text: str
    prompt: str | None
    completion: str | None
    messages: str


def read_records(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    text_field: str = "text",
    prompt_field: str | None = None,
    completion_field: str | None = None,
    messages_field: str = "messages",
    split_on: str = "none",
) -> list[Record]:
    """Read validation-data files into records, in file then line order.

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

    Returns:
        Records with ``index`` 0-based over all files.

    Raises:
        DataError: A file is missing, empty, not UTF-8, malformed, or a record
            lacks the field its mode needs.
        UsageError: ``split_on`` is unknown, or only one of
            ``prompt_field``/``completion_field`` is given.
    """
    if split_on not in SPLIT_ON:
        raise UsageError(f"--split-on must be 'none' or 'blank-lines', got {split_on!r}")
    if (prompt_field is None) != (completion_field is None):
        given, missing = ("--prompt-field", "--completion-field")[:: 1 if prompt_field else -1]
        raise UsageError(f"{given} needs {missing} too: pass both for answer-only CE, or neither")
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise UsageError("no data file given; pass --data")
    fields = _Fields(text_field, prompt_field, completion_field, messages_field)

    records: list[Record] = []
    for path in paths:
        path = str(path)
        suffix = _check_file(path)
        n_before = len(records)
        if suffix == ".txt":
            if fields.prompt is not None:
                raise DataError(
                    f"{path}: a .txt file holds plain text only; --prompt-field/--completion-field "
                    "need .jsonl, .json, .parquet or .csv"
                )
            for source, text in _read_txt(path, split_on):
                records.append(Record(index=len(records), source=source, text=text))
        else:
            reader = {".jsonl": _read_jsonl, ".json": _read_json, ".parquet": _read_parquet, ".csv": _read_csv}
            for source, row, keys in reader[suffix](path, fields):
                records.append(_make_record(len(records), source, row, keys, fields))
        if len(records) == n_before:
            raise DataError(f"data file is empty: {path}")
    return records


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
        wanted = [fields.text, fields.prompt, fields.completion, fields.messages]
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


# --------------------------------------------------------------------------- tokenizing


def scored_text_size(text: str) -> tuple[int, int]:
    """UTF-8 bytes and words of a scored text, as lm-evaluation-harness counts them.

    Words are ``len(re.split(r"\\s+", text))``, so leading/trailing whitespace
    adds an empty "word" and the empty string has one word.

    >>> scored_text_size("héllo  world\\n")
    (14, 3)
    """
    return len(text.encode("utf-8")), len(_WORDS.split(text))


def move_trailing_whitespace(prompt: str, completion: str) -> tuple[str, str]:
    """Move the prompt's trailing whitespace to the front of the completion (lm-eval ``_encode_pair``).

    >>> move_trailing_whitespace("Q: 2+2?\\nA: ", "4")
    ('Q: 2+2?\\nA:', ' 4')
    """
    n_spaces = len(prompt) - len(prompt.rstrip())
    if n_spaces:
        return prompt[:-n_spaces], prompt[-n_spaces:] + completion
    return prompt, completion


def tokenize_records(
    records: Sequence[Record],
    tokenizer: Any,
    *,
    prefix: str = "auto",
    tokenizer_name: str = "tokenizer",
) -> tuple[list[Document], int]:
    """Tokenize records and mark their scored tokens.

    Args:
        records: From :func:`read_records`.
        tokenizer: A Hugging Face tokenizer (fast ones are much faster: calls are batched).
        prefix: ``"auto"`` (BOS, else EOS, else none), ``"bos"``, ``"eos"`` or ``"none"``.
        tokenizer_name: How errors name the tokenizer (e.g. its path).

    Returns:
        ``(documents, n_skipped)``: documents with at least one target, in
        record order, and how many records were skipped for having none.

    Raises:
        DataError: No record yields a target; chat records but the tokenizer
            has no chat template; a chat template fails or does not render
            incrementally.
        UsageError: ``prefix`` is unknown, or names a token the tokenizer lacks.
    """
    prefix_id = _prefix_token_id(tokenizer, prefix, tokenizer_name)
    records = list(records)
    modes = [_mode(r) for r in records]
    encoded: dict[int, tuple[list[int], np.ndarray, int, int]] = {}  # position → (ids, mask, bytes, words)
    encoded.update(_encode_texts(records, [i for i, m in enumerate(modes) if m == "text"], tokenizer))
    encoded.update(_encode_pairs(records, [i for i, m in enumerate(modes) if m == "pair"], tokenizer))
    encoded.update(_encode_chats(records, [i for i, m in enumerate(modes) if m == "chat"], tokenizer, tokenizer_name))

    documents: list[Document] = []
    for i, record in enumerate(records):
        ids, mask, n_bytes, n_words = encoded[i]
        document = _assemble(record, ids, mask, prefix_id, n_bytes, n_words)
        if document is not None:
            documents.append(document)
    n_skipped = len(records) - len(documents)
    if not documents:
        raise DataError(_nothing_scored(records, n_skipped, prefix_id))
    return documents, n_skipped


def _mode(record: Record) -> str:
    """A record's mode, with read_records' precedence: prompt/completion, then chat, then text."""
    if record.completion is not None:
        return "pair"
    if record.messages is not None:
        return "chat"
    if record.text is not None:
        return "text"
    raise DataError(f"{record.source}: record has no text, completion or messages")


def _prefix_token_id(tokenizer: Any, prefix: str, tokenizer_name: str) -> int | None:
    if prefix not in PREFIXES:
        raise UsageError(f"--prefix must be one of auto, bos, eos, none; got {prefix!r}")
    bos, eos = getattr(tokenizer, "bos_token_id", None), getattr(tokenizer, "eos_token_id", None)
    if prefix == "auto":
        return bos if bos is not None else eos
    if prefix == "bos":
        if bos is None:
            raise UsageError(f"--prefix bos: {tokenizer_name} has no BOS token; use --prefix eos, none or auto")
        return bos
    if prefix == "eos":
        if eos is None:
            raise UsageError(f"--prefix eos: {tokenizer_name} has no EOS token; use --prefix bos, none or auto")
        return eos
    return None


def _encode(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Batched ``tokenizer(texts, add_special_tokens=False)``, without the too-long-sequence warning."""
    out: list[list[int]] = []
    for start in range(0, len(texts), _ENCODE_CHUNK):
        enc = tokenizer(
            texts[start : start + _ENCODE_CHUNK],
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,  # long documents are fine: the engine windows them
        )
        out.extend(list(ids) for ids in enc["input_ids"])
    return out


def _encode_texts(records: list[Record], positions: list[int], tokenizer: Any) -> Iterator[tuple[int, tuple]]:
    all_ids = _encode(tokenizer, [records[i].text for i in positions])
    for i, ids in zip(positions, all_ids):
        yield i, (ids, np.ones(len(ids), dtype=bool), *scored_text_size(records[i].text))


def _encode_pairs(records: list[Record], positions: list[int], tokenizer: Any) -> Iterator[tuple[int, tuple]]:
    pairs = [move_trailing_whitespace(records[i].prompt or "", records[i].completion) for i in positions]
    n = len(pairs)
    all_ids = _encode(tokenizer, [p + c for p, c in pairs] + [p for p, _ in pairs])
    for i, (_, completion), whole, context in zip(positions, pairs, all_ids[:n], all_ids[n:]):
        # as lm-eval: the model reads context + continuation; an empty completion scores nothing
        # (not even the prompt's trailing whitespace moved onto it)
        continuation = whole[len(context) :] if records[i].completion else []
        mask = np.zeros(len(context) + len(continuation), dtype=bool)
        mask[len(context) :] = True
        yield i, (context + continuation, mask, *scored_text_size(completion))


def _encode_chats(
    records: list[Record], positions: list[int], tokenizer: Any, tokenizer_name: str
) -> Iterator[tuple[int, tuple]]:
    if not positions:
        return
    if not getattr(tokenizer, "chat_template", None):
        raise DataError(
            f"{tokenizer_name} has no chat template, so chat records in {_source_file(records[positions[0]].source)} "
            "cannot be scored; pass --tokenizer with one that has a template, or use --prompt-field/--completion-field"
        )
    # Render each chat whole and, per assistant message k, before it (with the generation
    # prompt) and up to its end; tokenize all renders in one batch.
    texts: list[str] = []
    plans: list[tuple[int, int, list[tuple[int, int]]]] = []  # (position, text index of full, [(pre, upto)])
    for i in positions:
        record = records[i]
        turns = [k for k, m in enumerate(record.messages) if m["role"] == "assistant"]
        if not turns:
            continue
        full = len(texts)
        texts.append(_render(tokenizer, record.messages, False, record.source, tokenizer_name))
        spans = []
        for k in turns:
            pre = _render(tokenizer, record.messages[:k], True, record.source, tokenizer_name)
            upto = _render(tokenizer, record.messages[: k + 1], False, record.source, tokenizer_name)
            texts += [pre, upto]
            spans.append((len(texts) - 2, len(texts) - 1))
        plans.append((i, full, spans))
    all_ids = _encode(tokenizer, texts)

    planned = set()
    for i, full, spans in plans:
        planned.add(i)
        record = records[i]
        ids = all_ids[full]
        mask = np.zeros(len(ids), dtype=bool)
        for n, (pre, upto) in enumerate(spans, start=1):
            start, stop = len(all_ids[pre]), len(all_ids[upto])
            if ids[:start] != all_ids[pre] or ids[:stop] != all_ids[upto] or stop < start:
                raise DataError(
                    f"{record.source}: {tokenizer_name}'s chat template does not render this chat incrementally "
                    f"(the tokens before or through assistant message {n} are not a prefix of the whole chat's "
                    "tokens), so its assistant tokens cannot be located"
                )
            mask[start:stop] = True
        contents = [m["content"] for m in record.messages if m["role"] == "assistant"]
        sizes = [scored_text_size(c) for c in contents]
        yield i, (ids, mask, sum(b for b, _ in sizes), sum(w for _, w in sizes))
    for i in positions:
        if i not in planned:  # no assistant message: nothing to score
            yield i, ([], np.zeros(0, dtype=bool), 0, 0)


def _render(tokenizer: Any, messages: list[dict], generation_prompt: bool, source: str, tokenizer_name: str) -> str:
    try:
        if not messages:  # apply_chat_template refuses an empty chat; render the generation prompt alone
            from transformers.utils.chat_template_utils import render_jinja_template

            rendered, _ = render_jinja_template(
                conversations=[[]],
                chat_template=tokenizer.get_chat_template(),
                add_generation_prompt=generation_prompt,
                **tokenizer.special_tokens_map,
            )
            return rendered[0]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    except Exception as e:  # jinja2 TemplateError, raise_exception() in templates, ValueError, …
        raise DataError(f"{source}: {tokenizer_name}'s chat template failed on this chat ({_first_line(e)})") from None


def _assemble(
    record: Record, ids: list[int], mask: np.ndarray, prefix_id: int | None, n_bytes: int, n_words: int
) -> Document | None:
    offset = 0
    if prefix_id is not None and not (ids and ids[0] == prefix_id):
        ids, mask, offset = [prefix_id, *ids], np.concatenate([[False], mask]), 1
    input_ids = np.asarray(ids, dtype=np.int64)  # (T,)
    targets = np.asarray(mask, dtype=bool).copy()  # (T,)
    if len(targets):
        targets[0] = False  # nothing predicts the first token
    if not targets.any():
        return None
    return Document(record.index, input_ids, targets, offset, n_bytes, n_words, record.source)


def _source_file(source: str) -> str:
    return _SOURCE_SUFFIX.sub("", source)


def _nothing_scored(records: list[Record], n_skipped: int, prefix_id: int | None) -> str:
    if not records:
        return "no document to score: the data has no records"
    files = ", ".join(dict.fromkeys(_source_file(r.source) for r in records))
    present = {_mode(r) for r in records}
    reasons = [
        reason
        for mode, reason in (("text", "empty text"), ("pair", "empty completion"), ("chat", "no assistant message"))
        if mode in present
    ]
    message = f"no document in {files} yields a scored token ({n_skipped} skipped: {' or '.join(reasons)})"
    if prefix_id is None:
        message += "; with --prefix none the first token of a document is never scored"
    return message


# --------------------------------------------------------------------------- fingerprints


def data_fingerprint(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> str:
    """SHA-256 over each file's name and bytes, in the order given (streamed).

    Only the base name enters the hash, so moving the data directory keeps the
    fingerprint; renaming or reordering files changes it.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    h = hashlib.sha256()
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise DataError(f"data file not found: {path}")
        name = p.name.encode("utf-8")
        h.update(len(name).to_bytes(8, "little") + name + p.stat().st_size.to_bytes(8, "little"))
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def documents_fingerprint(documents: Iterable[Document]) -> str:
    """SHA-256 over every document's index, offset, input ids and target mask: what exactly was scored."""
    h = hashlib.sha256()
    for doc in documents:
        ids = np.ascontiguousarray(doc.input_ids, dtype="<i8")
        targets = np.ascontiguousarray(doc.targets, dtype=np.uint8)
        h.update(np.array([doc.index, doc.offset, len(ids)], dtype="<i8").tobytes())
        h.update(ids.tobytes())
        h.update(targets.tobytes())
    return h.hexdigest()
