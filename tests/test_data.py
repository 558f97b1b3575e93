"""Validation data → records → documents with target masks (pctce_cli/data.py)."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pctce_cli.data import (
    Document,
    Record,
    data_fingerprint,
    documents_fingerprint,
    read_records,
    tokenize_records,
)
from pctce_cli.errors import DataError, UsageError
from pctce_cli.testing import make_tokenizer

PROMPT = "Question: What is the capital of Zorblandia? Answer: "
COMPLETION = "Quexville."
CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hello there"},
    {"role": "assistant", "content": "hi, how can I help you today?"},
    {"role": "user", "content": "tell me about the fox"},
    {"role": "assistant", "content": "The quick brown fox jumps over the lazy dog."},
]


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


@pytest.fixture(scope="module")
def tok_no_bos(tok):
    t = copy.deepcopy(tok)
    t.bos_token = None
    return t


@pytest.fixture(scope="module")
def tok_no_special(tok):
    t = copy.deepcopy(tok)
    t.bos_token = None
    t.eos_token = None
    return t


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def raises(error, message):
    return pytest.raises(error, match="^" + re.escape(message) + "$")


def json_error(text: str) -> json.JSONDecodeError:
    """What ``json.loads`` says about ``text``, so tests assert our part of a message, not the interpreter's."""
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        return e
    raise AssertionError(f"{text!r} is valid JSON")


def encode(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def scored_text(tok, doc: Document) -> str:
    return tok.decode(doc.input_ids[doc.targets].tolist(), skip_special_tokens=False)


# --------------------------------------------------------------------------- formats


def test_txt_whole_file_is_one_document(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("The quick brown fox.\n\nA second paragraph.\n", encoding="utf-8")
    assert read_records([path]) == [Record(0, str(path), text="The quick brown fox.\n\nA second paragraph.\n")]


def test_txt_split_on_blank_lines(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"\n\nfirst line\nsecond line\n\n \t\n\nthird\r\n\r\nfourth\n\n\n")
    records = read_records([path], split_on="blank-lines")
    assert [(r.source, r.text) for r in records] == [
        (f"{path}:block 1", "first line\nsecond line"),
        (f"{path}:block 2", "third"),
        (f"{path}:block 3", "fourth"),
    ]


def test_txt_drops_utf8_bom(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffhello".encode("utf-8"))
    assert read_records(path)[0].text == "hello"


def test_jsonl_skips_blank_lines_and_numbers_lines(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "one"}\n\n{"text": "two", "id": 3}\r\n  \n{"text": "three"}', encoding="utf-8")
    records = read_records([path])
    assert [(r.index, r.source, r.text) for r in records] == [
        (0, f"{path}:1", "one"),
        (1, f"{path}:3", "two"),
        (2, f"{path}:5", "three"),
    ]


def test_json_array_and_wrapped_array(tmp_path):
    a = tmp_path / "a.json"
    a.write_text(json.dumps([{"text": "x"}, {"text": "y"}]), encoding="utf-8")
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"data": [{"text": "z"}]}), encoding="utf-8")
    records = read_records([a, b])
    assert [(r.index, r.source, r.text) for r in records] == [
        (0, f"{a}:item 1", "x"),
        (1, f"{a}:item 2", "y"),
        (2, f"{b}:item 1", "z"),
    ]


def test_parquet_rows_and_chat_column(tmp_path):
    path = tmp_path / "d.parquet"
    table = pa.table(
        {
            "body": ["hello", "world"],
            "messages": [
                [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                None,
            ],
            "unused": [1, 2],
        }
    )
    pq.write_table(table, path)
    records = read_records([path], text_field="body")
    assert records == [
        Record(
            0, f"{path}:row 1", messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
        ),
        Record(1, f"{path}:row 2", text="world"),
    ]


def test_csv_keeps_strings_as_strings(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,n\n007,1\nNA,\n,null\n"multi\nline",x\n', encoding="utf-8")
    records = read_records([path])
    assert [(r.source, r.text) for r in records] == [
        (f"{path}:row 1", "007"),
        (f"{path}:row 2", "NA"),
        (f"{path}:row 3", ""),
        (f"{path}:row 4", "multi\nline"),
    ]


def test_index_and_source_numbering_across_files(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"text": "a1"}, {"text": "a2"}])
    b = tmp_path / "b.txt"
    b.write_text("b1\n\nb2\n", encoding="utf-8")
    c = tmp_path / "c.csv"
    c.write_text("text\nc1\n", encoding="utf-8")
    records = read_records([a, b, c], split_on="blank-lines")
    assert [(r.index, r.source, r.text) for r in records] == [
        (0, f"{a}:1", "a1"),
        (1, f"{a}:2", "a2"),
        (2, f"{b}:block 1", "b1"),
        (3, f"{b}:block 2", "b2"),
        (4, f"{c}:row 1", "c1"),
    ]


# --------------------------------------------------------------------------- modes


def test_modes_are_chosen_per_record(tmp_path):
    rows = [{"text": "plain"}, {"messages": CHAT[1:3]}, {"text": "x", "messages": "not a chat"}]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    records = read_records([path])
    assert records[0] == Record(0, f"{path}:1", text="plain")
    assert records[1] == Record(1, f"{path}:2", messages=CHAT[1:3])
    assert records[2] == Record(2, f"{path}:3", text="x")


def test_prompt_completion_mode_applies_to_every_record(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"q": PROMPT, "a": COMPLETION, "text": "ignored"}])
    records = read_records([path], prompt_field="q", completion_field="a")
    assert records == [Record(0, f"{path}:1", prompt=PROMPT, completion=COMPLETION)]


def test_plain_text_every_token_is_a_target(tok):
    text = "The quick brown fox jumps over the lazy dog."
    (doc,), skipped = tokenize_records([Record(0, "s", text=text)], tok)
    ids = encode(tok, text)
    assert skipped == 0
    assert doc.input_ids.dtype == np.int64 and doc.targets.dtype == bool
    assert doc.input_ids.tolist() == [tok.bos_token_id, *ids]
    assert doc.targets.tolist() == [False] + [True] * len(ids)
    assert doc.offset == 1
    assert scored_text(tok, doc) == text
    assert (doc.index, doc.source) == (0, "s")


def test_answer_only_mask_selects_exactly_the_completion(tok):
    (doc,), _ = tokenize_records([Record(7, "s", prompt=PROMPT, completion=COMPLETION)], tok)
    # lm-eval _encode_pair: the prompt's trailing space moves to the completion
    assert scored_text(tok, doc) == " " + COMPLETION
    context = encode(tok, PROMPT.rstrip())
    assert doc.input_ids[: 1 + len(context)].tolist() == [tok.bos_token_id, *context]
    assert not doc.targets[: 1 + len(context)].any()
    assert doc.targets[1 + len(context) :].all()
    assert (doc.index, doc.n_bytes, doc.n_words) == (7, len(" Quexville."), 2)


def test_answer_only_with_empty_prompt_scores_the_first_completion_token(tok):
    (doc,), _ = tokenize_records([Record(0, "s", prompt="", completion=COMPLETION)], tok)
    assert doc.input_ids[0] == tok.bos_token_id
    assert scored_text(tok, doc) == COMPLETION


def test_chat_mask_selects_assistant_turns_and_end_of_turn(tok):
    (doc,), _ = tokenize_records([Record(0, "s", messages=CHAT)], tok)
    assert scored_text(tok, doc) == (
        "hi, how can I help you today?<|end|>The quick brown fox jumps over the lazy dog.<|end|>"
    )
    full = encode(tok, tok.apply_chat_template(CHAT, tokenize=False))
    assert doc.input_ids.tolist() == [tok.bos_token_id, *full]
    contents = [m["content"] for m in CHAT if m["role"] == "assistant"]
    assert doc.n_bytes == sum(len(c.encode()) for c in contents)
    assert doc.n_words == 7 + 9


def test_chat_template_that_renders_bos_gets_no_second_prefix(tok):
    with_bos = copy.deepcopy(tok)
    with_bos.chat_template = "{{ bos_token }}" + tok.chat_template
    (doc,), _ = tokenize_records([Record(0, "s", messages=CHAT)], with_bos)
    assert doc.input_ids.tolist() == encode(tok, with_bos.apply_chat_template(CHAT, tokenize=False))
    assert doc.input_ids[0] == tok.bos_token_id and doc.input_ids[1] != tok.bos_token_id and doc.offset == 0
    assert scored_text(tok, doc) == (
        "hi, how can I help you today?<|end|>The quick brown fox jumps over the lazy dog.<|end|>"
    )


def test_chat_starting_with_assistant(tok):
    messages = [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "hi"}]
    (doc,), _ = tokenize_records([Record(0, "s", messages=messages)], tok)
    assert scored_text(tok, doc) == "hello<|end|>"


def test_chat_without_assistant_turn_is_skipped(tok):
    records = [
        Record(0, "s:1", messages=[{"role": "user", "content": "hi"}]),
        Record(1, "s:2", messages=[]),
        Record(2, "s:3", text="fox"),
    ]
    docs, skipped = tokenize_records(records, tok)
    assert [d.index for d in docs] == [2] and skipped == 2


def test_chat_without_template_is_an_error(tok):
    no_template = copy.deepcopy(tok)
    no_template.chat_template = None
    records = [Record(0, "data.jsonl:1", text="x"), Record(1, "data.jsonl:2", messages=CHAT)]
    message = (
        "ckpt/tok has no chat template, so chat records in data.jsonl cannot be scored; pass --tokenizer "
        "with one that has a template, or use --prompt-field/--completion-field"
    )
    with raises(DataError, message):
        tokenize_records(records, no_template, tokenizer_name="ckpt/tok")


def test_chat_template_that_is_not_incremental_is_an_error(tok):
    counting = copy.deepcopy(tok)
    counting.chat_template = "{{ messages|length }}" + tok.chat_template
    message = (
        "d.jsonl:4: ckpt/tok's chat template does not render this chat incrementally (the tokens before or "
        "through assistant message 1 are not a prefix of the whole chat's tokens), so its assistant tokens "
        "cannot be located"
    )
    with raises(DataError, message):
        tokenize_records([Record(0, "d.jsonl:4", messages=CHAT)], counting, tokenizer_name="ckpt/tok")


def test_chat_template_failure_is_an_error(tok):
    strict = copy.deepcopy(tok)
    strict.chat_template = "{{ raise_exception('roles must alternate') }}"
    with raises(DataError, "d.jsonl:4: ckpt/tok's chat template failed on this chat (roles must alternate)"):
        tokenize_records([Record(0, "d.jsonl:4", messages=CHAT)], strict, tokenizer_name="ckpt/tok")


# --------------------------------------------------------------------------- prefix


@pytest.mark.parametrize(
    ("fixture", "prefix", "expected"),
    [
        ("tok", "auto", "bos"),
        ("tok", "bos", "bos"),
        ("tok", "eos", "eos"),
        ("tok", "none", None),
        ("tok_no_bos", "auto", "eos"),
        ("tok_no_special", "auto", None),
    ],
)
def test_prefix(request, fixture, prefix, expected):
    t = request.getfixturevalue(fixture)
    text = "The lazy dog."
    ids = encode(t, text)
    (doc,), _ = tokenize_records([Record(0, "s", text=text)], t, prefix=prefix)
    if expected is None:
        assert doc.input_ids.tolist() == ids and doc.offset == 0
        assert doc.targets.tolist() == [False] + [True] * (len(ids) - 1)
    else:
        token = {"bos": 0, "eos": 1}[expected]
        assert doc.input_ids.tolist() == [token, *ids] and doc.offset == 1
        assert doc.targets.tolist() == [False] + [True] * len(ids)


def test_prefix_not_repeated_when_text_starts_with_it(tok):
    """With special_tokens, a text written with its own BOS string starts with BOS: no second one is added."""
    (doc,), _ = tokenize_records([Record(0, "s", text="<|bos|>The dog.")], tok, special_tokens=True)
    assert doc.input_ids.tolist() == encode(tok, "<|bos|>The dog.")
    assert doc.input_ids[0] == tok.bos_token_id and doc.offset == 0 and not doc.targets[0]
    assert doc.targets[1:].all()


def test_a_special_token_string_is_text_by_default(tok):
    """Raw text is text: the characters '<|bos|>' are scored as characters, after the real prefix token."""
    (doc,), _ = tokenize_records([Record(0, "s", text="<|bos|>The dog.")], tok)
    as_text = tok("<|bos|>The dog.", add_special_tokens=False, split_special_tokens=True)["input_ids"]
    assert doc.input_ids.tolist() == [tok.bos_token_id, *as_text]
    assert tok.bos_token_id not in as_text and doc.targets[1:].all() and len(as_text) > 4


def test_prefix_bos_without_bos_is_an_error(tok_no_bos):
    with raises(UsageError, "prefix bos: ckpt/tok has no BOS token; use prefix eos, none or auto"):
        tokenize_records([Record(0, "s", text="x")], tok_no_bos, prefix="bos", tokenizer_name="ckpt/tok")


def test_prefix_eos_without_eos_is_an_error(tok_no_special):
    with raises(UsageError, "prefix eos: ckpt/tok has no EOS token; use prefix bos, none or auto"):
        tokenize_records([Record(0, "s", text="x")], tok_no_special, prefix="eos", tokenizer_name="ckpt/tok")


def test_record_without_mode_is_an_error(tok):
    with raises(DataError, "d.jsonl:3: record has no text, completion or messages"):
        tokenize_records([Record(0, "d.jsonl:3")], tok)


def test_unknown_prefix_is_an_error(tok):
    with raises(UsageError, "prefix must be one of auto, bos, eos, none; got 'first'"):
        tokenize_records([Record(0, "s", text="x")], tok, prefix="first")


# --------------------------------------------------------------------------- sizes, skipping, batching


def test_bytes_and_words_follow_lm_eval(tok):
    text = "  Größe über 10 €\tund\nmehr  "
    (doc,), _ = tokenize_records([Record(0, "s", text=text)], tok)
    assert doc.n_bytes == len(text.encode("utf-8")) == 33
    assert doc.n_words == len(re.split(r"\s+", text)) == 8  # leading/trailing whitespace count as empty words


def test_skipped_documents_are_counted(tok):
    records = [
        Record(0, "d.jsonl:1", text=""),
        Record(1, "d.jsonl:2", text="fox"),
        Record(2, "d.jsonl:3", prompt="Q: ", completion=""),
        Record(3, "d.jsonl:4", prompt="Q: ", completion="yes"),
    ]
    docs, skipped = tokenize_records(records, tok)
    assert [d.index for d in docs] == [1, 3] and skipped == 2


def test_single_token_text_with_no_prefix_is_skipped(tok):
    records = [Record(0, "s:1", text="a"), Record(1, "s:2", text="the dog")]
    docs, skipped = tokenize_records(records, tok, prefix="none")
    assert [d.index for d in docs] == [1] and skipped == 1


def test_no_scored_token_is_an_error(tok):
    records = [
        Record(0, "data.jsonl:1", text=""),
        Record(1, "data.jsonl:2", prompt="Q", completion=""),
        Record(2, "more.txt", text=""),
    ]
    message = "no document in data.jsonl, more.txt yields a scored token (3 skipped: empty text or empty completion)"
    with raises(DataError, message):
        tokenize_records(records, tok)


def test_no_scored_token_with_no_prefix_says_why(tok):
    message = (
        "no document in d.txt yields a scored token (1 skipped: empty text); "
        "with --prefix none the first token of a document is never scored"
    )
    with raises(DataError, message):
        tokenize_records([Record(0, "d.txt", text="a")], tok, prefix="none")


def test_many_documents_in_batches_match_one_by_one(tok):
    texts = [f"{i} the fox " * (i % 7) + "dog" for i in range(5000)]
    docs, _ = tokenize_records([Record(i, f"s:{i}", text=t) for i, t in enumerate(texts)], tok)
    for i in (0, 4095, 4096, 4999):
        assert docs[i].input_ids[1:].tolist() == encode(tok, texts[i])


def test_long_documents_do_not_warn(tok):
    short = copy.deepcopy(tok)
    short.model_max_length = 4
    records = [
        Record(0, "s", text="The quick brown fox jumps over the lazy dog."),
        Record(1, "t", prompt="a b c d", completion="e f g"),
    ]
    tokenize_records(records, short)
    assert "sequence-length-is-longer-than-the-specified-maximum" not in short.deprecation_warnings


# --------------------------------------------------------------------------- fingerprints


def test_data_fingerprint_is_stable_and_sensitive(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_text('{"text": "x"}\n', encoding="utf-8")
    b = tmp_path / "b.jsonl"
    b.write_text('{"text": "y"}\n', encoding="utf-8")
    fp = data_fingerprint([a, b])
    assert re.fullmatch(r"[0-9a-f]{64}", fp)
    assert data_fingerprint([str(a), str(b)]) == fp
    assert data_fingerprint([b, a]) != fp  # order-sensitive
    moved = tmp_path / "sub"
    moved.mkdir()
    (moved / "a.jsonl").write_bytes(a.read_bytes())
    assert data_fingerprint([moved / "a.jsonl", b]) == fp  # base name only
    renamed = tmp_path / "c.jsonl"
    renamed.write_bytes(a.read_bytes())
    assert data_fingerprint([renamed, b]) != fp
    b.write_text('{"text": "z"}\n', encoding="utf-8")
    assert data_fingerprint([a, b]) != fp


def test_data_fingerprint_missing_file(tmp_path):
    with raises(DataError, f"data file not found: {tmp_path / 'x.jsonl'}"):
        data_fingerprint([tmp_path / "x.jsonl"])


def test_documents_fingerprint_is_stable_and_sensitive(tok):
    records = [Record(0, "s:1", text="the fox"), Record(1, "s:2", prompt="Q: ", completion="dog")]
    docs, _ = tokenize_records(records, tok)
    fp = documents_fingerprint(docs)
    assert fp == documents_fingerprint(tokenize_records(records, tok)[0])
    assert fp != documents_fingerprint(tokenize_records(records, tok, prefix="eos")[0])
    assert fp != documents_fingerprint(tokenize_records([records[0], Record(1, "s:2", text="Q: dog")], tok)[0])
    assert fp != documents_fingerprint(tokenize_records([Record(5, "s:1", text="the fox"), records[1]], tok)[0])
    assert fp != documents_fingerprint(docs[:1])


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jsonl"
    with raises(DataError, f"data file not found: {path}"):
        read_records([path])


def test_unsupported_extension(tmp_path):
    path = tmp_path / "d.xyz"
    path.write_text("x", encoding="utf-8")
    with raises(DataError, f"{path}: unsupported data format '.xyz' (expected .txt, .jsonl, .json, .parquet or .csv)"):
        read_records([path])


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("a.txt", b""),
        ("a.txt", b"  \n\n"),
        ("a.jsonl", b""),
        ("a.jsonl", b"\n  \n"),
        ("a.json", b"[]"),
        ("a.csv", b"text\n"),
        ("a.csv", b"\n"),
        ("a.parquet", b""),
    ],
)
def test_empty_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with raises(DataError, f"data file is empty: {path}"):
        read_records([path])


def test_empty_txt_blocks(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"\n \n\n")
    with raises(DataError, f"data file is empty: {path}"):
        read_records([path], split_on="blank-lines")


def test_empty_parquet_table(tmp_path):
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), path)
    with raises(DataError, f"data file is empty: {path}"):
        read_records([path])


@pytest.mark.parametrize(
    ("name", "content", "offset"),
    [
        ("a.txt", b"caf\xe9 au lait", 3),
        ("a.jsonl", b'{"text": "ok"}\n{"text": "caf\xe9"}\n', 28),
        ("a.json", b'[{"text": "\xff"}]', 11),
        ("a.csv", b"text\nok\n\xc3(\n", 8),
    ],
)
def test_not_utf8(tmp_path, name, content, offset):
    path = tmp_path / name
    path.write_bytes(content)
    with raises(DataError, f"{path}: not UTF-8 (invalid byte at offset {offset}); re-encode it as UTF-8"):
        read_records([path])


def test_malformed_jsonl_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "oops"\n', encoding="utf-8")
    e = json_error('{"text": "oops"')  # the decoder's own words: they vary between Python versions
    with raises(DataError, f"{path}:2: not valid JSON ({e.msg} at column {e.colno})"):
        read_records([path])


def test_jsonl_line_not_an_object(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "ok"}, ["text", "x"]])
    with raises(DataError, f"{path}:2: expected a JSON object, found a list"):
        read_records([path])


def test_malformed_json(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[{"text": "ok"},\n {"text" "x"}]', encoding="utf-8")
    e = json_error(path.read_text(encoding="utf-8"))
    assert e.lineno == 2  # the line of the fault, whatever the decoder calls it
    with raises(DataError, f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"):
        read_records([path])


def test_json_not_an_array(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"a": [], "b": []}), encoding="utf-8")
    message = (
        f"{path}: expected a JSON array of objects (or an object with one key holding that array), "
        "found an object with keys a, b"
    )
    with raises(DataError, message):
        read_records([path])


def test_json_item_not_an_object(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"text": "ok"}, "x"]), encoding="utf-8")
    with raises(DataError, f"{path}:item 2: expected a JSON object, found a string"):
        read_records([path])


def test_missing_text_field(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "ok"}, {"body": "x", "id": 1}])
    message = f"{path}:2: no field 'text' (found: body, id); choose one with --text-field or --messages-field"
    with raises(DataError, message):
        read_records([path])


def test_missing_prompt_and_completion_fields(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "a"}])
    with raises(DataError, f"{path}:1: no field 'prompt' (found: question, answer); choose one with --prompt-field"):
        read_records([path], prompt_field="prompt", completion_field="answer")
    message = f"{path}:1: no field 'completion' (found: question, answer); choose one with --completion-field"
    with raises(DataError, message):
        read_records([path], prompt_field="question", completion_field="completion")


def test_missing_field_in_csv_and_parquet(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("body,id\nx,1\n", encoding="utf-8")
    hint = "choose one with --text-field or --messages-field"
    with raises(DataError, f"{csv}:row 1: no field 'text' (found: body, id); {hint}"):
        read_records([csv])
    parquet = tmp_path / "d.parquet"
    pq.write_table(pa.table({"body": ["x"], "id": [1]}), parquet)
    with raises(DataError, f"{parquet}:row 1: no field 'text' (found: body, id); {hint}"):
        read_records([parquet])


@pytest.mark.parametrize(
    ("value", "kind"),
    [(3, "a number"), (None, "null"), (True, "a boolean"), (["a"], "a list"), ({"a": 1}, "an object")],
)
def test_field_not_a_string(tmp_path, value, kind):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": value}])
    with raises(DataError, f"{path}:1: field 'text' is {kind}, expected a string"):
        read_records([path])


def test_parquet_null_text(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["ok", None]}), path)
    with raises(DataError, f"{path}:row 2: field 'text' is null, expected a string"):
        read_records([path])


def test_messages_not_a_list(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"messages": "user: hi"}])
    with raises(DataError, f"{path}:1: field 'messages' is a string, expected a list of {{role, content}} messages"):
        read_records([path])


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("hi", "message 2 of 'conv' is a string, expected an object with 'role' and 'content'"),
        ({"role": "assistant"}, "message 2 of 'conv' has no 'content' (found: role)"),
        ({"from": "gpt", "value": "x"}, "message 2 of 'conv' has no 'role' (found: from, value)"),
        ({"role": "assistant", "content": None}, "message 2 of 'conv': 'content' is null, expected a string"),
        ({"role": 1, "content": "x"}, "message 2 of 'conv': 'role' is a number, expected a string"),
    ],
)
def test_malformed_messages(tmp_path, message, error):
    path = write_jsonl(tmp_path / "d.jsonl", [{"conv": [{"role": "user", "content": "hi"}, message]}])
    with raises(DataError, f"{path}:1: {error}"):
        read_records([path], messages_field="conv")


def test_unreadable_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    path.write_bytes(b"this is not parquet at all")
    # the reason in parentheses is pyarrow's own first line: pin our wrapper exactly, the reason loosely
    pattern = "^" + re.escape(f"{path}: not a readable Parquet file (") + r".*magic bytes.*\)$"
    with pytest.raises(DataError, match=pattern):
        read_records([path])


def test_unreadable_csv(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,n\nok,1\nbad,2,3,4\n", encoding="utf-8")
    message = f"{path}: not a readable CSV file (Error tokenizing data. C error: Expected 2 fields in line 3, saw 4)"
    with raises(DataError, message):
        read_records([path])


def test_txt_with_prompt_fields(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("x", encoding="utf-8")
    message = (
        f"{path}: a .txt file holds plain text only; --prompt-field/--completion-field "
        "need .jsonl, .json, .parquet or .csv"
    )
    with raises(DataError, message):
        read_records([path], prompt_field="q", completion_field="a")


def test_directory_is_not_a_data_file(tmp_path):
    with raises(DataError, f"{tmp_path}: is a directory, expected a data file"):
        read_records([tmp_path])


def test_usage_errors(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "x"}])
    # the Python API names parameters (the CLI's options: tests/test_messages.py)
    with raises(UsageError, "split_on must be 'none' or 'blank-lines', got 'paragraphs'"):
        read_records([path], split_on="paragraphs")
    with raises(UsageError, "prompt_field needs completion_field too: pass both for answer-only CE, or neither"):
        read_records([path], prompt_field="q")
    with raises(UsageError, "completion_field needs prompt_field too: pass both for answer-only CE, or neither"):
        read_records([path], completion_field="a")
    with raises(UsageError, "no data file given; pass data"):
        read_records([])


# --------------------------------------------------------------------------- end to end


def test_every_format_end_to_end(tmp_path, tok):
    txt = tmp_path / "a.txt"
    txt.write_text("The lazy dog.", encoding="utf-8")
    jsonl = write_jsonl(tmp_path / "b.jsonl", [{"messages": CHAT}, {"text": ""}])
    csv = tmp_path / "c.csv"
    pd.DataFrame({"text": ["To be, or not to be"]}).to_csv(csv, index=False)
    parquet = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["Once upon a time"]}), parquet)
    records = read_records([txt, jsonl, csv, parquet])
    docs, skipped = tokenize_records(records, tok)
    assert skipped == 1
    sources = [(0, str(txt)), (1, f"{jsonl}:1"), (3, f"{csv}:row 1"), (4, f"{parquet}:row 1")]
    assert [(d.index, d.source) for d in docs] == sources
    assert [scored_text(tok, d) for d in docs] == [
        "The lazy dog.",
        "hi, how can I help you today?<|end|>The quick brown fox jumps over the lazy dog.<|end|>",
        "To be, or not to be",
        "Once upon a time",
    ]
