"""Validation data → documents with target masks.

Two steps, both callable without the CLI:

1. :func:`read_records` reads ``--data`` files (``.txt``, ``.jsonl``, ``.json``,
   ``.parquet``, ``.csv``) into :class:`Record` objects, one per document, each
   in one of three modes: plain text, prompt/completion, or chat.
2. :func:`tokenize_records` turns records into :class:`Document` objects:
   token ids plus a boolean mask of the tokens that are scored (docs/definitions.md#per-token-cross-entropy-and-rank):
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

from pctce_cli.data.fingerprint import data_fingerprint, documents_fingerprint
from pctce_cli.data.records import FORMATS, PREFIXES, SPLIT_ON, Document, Record, read_records, split_blank_lines
from pctce_cli.data.spans import UNITS_RULE
from pctce_cli.data.tokenize import (
    move_trailing_whitespace,
    scored_text_size,
    tokenize_records,
    units_status,
    units_unavailable,
)

__all__ = [
    "FORMATS",
    "PREFIXES",
    "SPLIT_ON",
    "UNITS_RULE",
    "Document",
    "Record",
    "data_fingerprint",
    "documents_fingerprint",
    "move_trailing_whitespace",
    "read_records",
    "scored_text_size",
    "split_blank_lines",
    "tokenize_records",
    "units_status",
    "units_unavailable",
]
