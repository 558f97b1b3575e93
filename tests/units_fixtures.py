"""Building blocks of the word and byte test stores: two tokenizers of one corpus, and JSONL data files."""

from __future__ import annotations

import json
from pathlib import Path


def two_tokenizers(root: Path) -> tuple[Path, Path]:
    """Random-init GPT-2 checkpoints ``root/small`` and ``root/large``: byte-level BPE tokenizers of 320 and 500 tokens."""
    from pctce_cli.testing import make_gpt2, make_tokenizer

    make_gpt2(root / "small", tokenizer=make_tokenizer(320), seed=0)
    make_gpt2(root / "large", tokenizer=make_tokenizer(500), seed=1)
    return root / "small", root / "large"


def write_jsonl(path: Path, records) -> Path:
    """One JSON object a line (UTF-8)."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path
