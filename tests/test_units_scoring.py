"""Byte spans and words at scoring time (SPEC §8): the partition, the words, the store, the checks of issue 13.
Two tokenizers trained here on one corpus — the byte-level BPE of
``pctce_cli.testing`` (also with trimmed offsets) and a Unigram with a
SentencePiece-style ``▁`` — must give the same words and the same bytes on
hard strings, and a tiny model scored end to end must give mean word CE =
ln(word perplexity) and byte mean = ln(byte perplexity).
"""

from __future__ import annotations

import json
import math
import re
import sys

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pctce_cli.data import Record, move_trailing_whitespace, tokenize_records, units_status
from pctce_cli.data import spans
from pctce_cli.data.spans import char_to_byte, token_units
from pctce_cli.errors import UsageError
from pctce_cli.stats import summarize, word_ce
from pctce_cli.testing import CHAT_TEMPLATE, CORPUS, reseal

from .cli import run

HARD = [
    "héllo wörld, naïve café façade",
    "emoji 😀 split 👍🏽 and 👨‍👩‍👧 family",
    "東京都に住んでいます。今日は晴れです",
    "tabs\tand\nnewlines\r\n\n  indented line",
    "mixed 東京 and emoji😀inside words",
    "no\u00a0break and\u3000ideographic space",
    "The quick brown fox jumps over the lazy dog.",
]
EDGES = ["  leading and trailing whitespace \n", "\n\n", " x "]
CHAT = [
    {"role": "user", "content": "hi there"},
    {"role": "assistant", "content": "héllo 😀 東京 ok\n"},
    {"role": "user", "content": "again"},
    {"role": "assistant", "content": " two  words"},
]


# --------------------------------------------------------------------------- tokenizers


def _unigram():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=special, unk_token="<unk>", show_progress=False)
    tok.train_from_iterator((CORPUS + HARD) * 4, trainer=trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    hf.chat_template = CHAT_TEMPLATE
    return hf


def _bpe(trim: bool):
    from tokenizers import processors

    from pctce_cli.testing import make_tokenizer

    tok = make_tokenizer()
    if trim:  # RoBERTa-style: offsets leave out the whitespace a token starts with
        tok._tokenizer.post_processor = processors.ByteLevel(trim_offsets=True)
    return tok


@pytest.fixture(scope="module")
def tokenizers():
    return {"bpe": _bpe(False), "bpe-trimmed": _bpe(True), "unigram": _unigram()}


class CharTokenizer:
    """Built on first use (transformers is heavy): a slow (pure-Python) character tokenizer."""

    @staticmethod
    def make():
        from transformers import PreTrainedTokenizer

        class _Char(PreTrainedTokenizer):
            def __init__(self, **kw):
                self._vocab = {"<bos>": 0, "<eos>": 1, **{chr(c): c - 30 for c in range(32, 127)}, "<unk>": 97}
                self._inv = {v: k for k, v in self._vocab.items()}
                super().__init__(bos_token="<bos>", eos_token="<eos>", unk_token="<unk>", **kw)

            @property
            def vocab_size(self):
                return len(self._vocab)

            def get_vocab(self):
                return dict(self._vocab)

            def _tokenize(self, text):
                return list(text)

            def _convert_token_to_id(self, token):
                return self._vocab.get(token, 97)

            def _convert_id_to_token(self, index):
                return self._inv.get(index, "<unk>")

        _Char.__name__ = "CharTokenizer"
        return _Char()


# --------------------------------------------------------------------------- helpers


def word_texts(text: str, nbytes: np.ndarray, word: np.ndarray, start: int = 0) -> list[str]:
    """Each word's text rebuilt from its targets' spans (the spans laid end to end from byte ``start``)."""
    raw = text.encode("utf-8")
    ends = start + np.cumsum(nbytes)
    begins = ends - nbytes
    out: dict[int, bytes] = {}
    for b, e, w in zip(begins, ends, word):
        if w >= 0:
            out[int(w)] = out.get(int(w), b"") + raw[b:e]
    assert sorted(out) == list(range(len(out))), "word indices are not 0..n-1"
    return [out[k].decode("utf-8").strip() for k in sorted(out)]


def plain(text: str, tok):
    [doc], _ = tokenize_records([Record(0, "t", text=text)], tok)
    return doc


# --------------------------------------------------------------------------- plain text


@pytest.mark.parametrize("text", HARD + EDGES)
def test_spans_partition_the_text_and_words_are_its_words(tokenizers, text):
    seen = {}
    for name, tok in tokenizers.items():
        doc = plain(text, tok)
        assert doc.nbytes.dtype == np.int32 and doc.word.dtype == np.int32
        assert len(doc.nbytes) == doc.targets.sum()
        assert int(doc.nbytes.sum()) == len(text.encode("utf-8")) == doc.n_bytes, name
        # every token of plain text has bytes, but a "▁" prepended beside a character of one byte
        # (more tokens than bytes: one of them has none)
        empty = tok.convert_ids_to_tokens(doc.input_ids[doc.targets][doc.nbytes == 0].tolist())
        assert set(empty) <= ({"▁"} if name == "unigram" else set()), f"{name}: empty spans {empty}"
        words = word_texts(text, doc.nbytes, doc.word)
        assert words == text.split(), name
        ws = doc.word[doc.word >= 0]
        assert (np.diff(ws) >= 0).all()
        seen[name] = (words, int(doc.nbytes.sum()))
    assert len(set(map(repr, seen.values()))) == 1, seen  # identical across tokenizers


@pytest.mark.parametrize("text", HARD)
def test_word_count_is_the_lm_eval_count_without_leading_or_trailing_whitespace(tokenizers, text):
    for tok in tokenizers.values():
        doc = plain(text, tok)
        assert len(set(doc.word.tolist()) - {-1}) == doc.n_words == len(re.split(r"\s+", text))


def test_word_counts_differ_from_lm_eval_only_by_leading_and_trailing_whitespace(tokenizers):
    tok = tokenizers["bpe"]
    for text in EDGES:
        doc = plain(text, tok)
        words = len(set(doc.word.tolist()) - {-1})
        assert words == len(text.split())
        edge = int(text[:1].isspace()) + int(text[-1:].isspace())
        assert doc.n_words == (words + edge if text.strip() else 2)


def test_whitespace_only_text_has_bytes_but_no_word(tokenizers):
    doc = plain("\n\n", tokenizers["bpe"])
    assert int(doc.nbytes.sum()) == 2 and (doc.word == -1).all()


def test_byte_level_pieces_of_one_character_get_one_byte_each(tokenizers):
    tok = tokenizers["bpe"]
    doc = plain("a😀b", tok)
    ids = doc.input_ids[doc.targets]
    pieces = tok.convert_ids_to_tokens(ids.tolist())
    assert len(pieces) == 6 and doc.nbytes.tolist() == [1, 1, 1, 1, 1, 1]  # a, 4 pieces of the emoji, b
    assert doc.word.tolist() == [0] * 6


@pytest.mark.slow  # over half a second: kept out of the fast lane
def test_python_whitespace_and_regex_whitespace_agree():
    # words use str.split() (SPEC §8), the lm-eval count re.split(r"\s+") (§2): one whitespace set
    points = [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000]
    assert all(bool(re.match(r"\s", chr(c))) == chr(c).isspace() for c in points)
    # spans.py looks whitespace up in a table of the code points below _SPACE_LIMIT
    assert max(c for c in points if chr(c).isspace()) < spans._SPACE_LIMIT
    text = "".join(chr(c) for c in points[::97]) + "\u3000\u2028\x1c a"
    starts, ends = spans._word_bytes(spans._code_points(text), 0, len(text), spans.char_to_byte(text))
    raw = text.encode("utf-8", "surrogatepass")
    assert [raw[a:b].decode() for a, b in zip(starts, ends)] == text.split()


def test_no_prefix_drops_the_first_tokens_span(tokenizers):
    # with --prefix none the first token is no target: its bytes (and CE) are left out, the rest unchanged
    tok = tokenizers["bpe"]
    [auto], _ = tokenize_records([Record(0, "t", text="hello wörld")], tok)
    [none], _ = tokenize_records([Record(0, "t", text="hello wörld")], tok, prefix="none")
    assert none.nbytes.tolist() == auto.nbytes[1:].tolist() and none.word.tolist() == auto.word[1:].tolist()


# --------------------------------------------------------------------------- prompt/completion and chat


def test_prompt_completion_only_the_completion_forms_words(tokenizers):
    seen = set()
    for name, tok in tokenizers.items():
        rec = Record(0, "p", prompt="Question: where? Answer: ", completion="東京 😀 ok")
        [doc], _ = tokenize_records([rec], tok)
        _, completion = move_trailing_whitespace(rec.prompt, rec.completion)
        assert int(doc.nbytes.sum()) == len(completion.encode()) == doc.n_bytes, name
        prompt_bytes = len(rec.prompt.rstrip().encode())
        words = word_texts(rec.prompt.rstrip() + completion, doc.nbytes, doc.word, start=prompt_bytes)
        assert words == completion.split(), name
        seen.add((tuple(words), int(doc.nbytes.sum())))
    assert len(seen) == 1


def test_chat_assistant_turns_only_and_template_tokens_are_empty(tokenizers):
    contents = [m["content"] for m in CHAT if m["role"] == "assistant"]
    seen = set()
    for name, tok in tokenizers.items():
        [doc], _ = tokenize_records([Record(0, "c", messages=CHAT)], tok)
        assert int(doc.nbytes.sum()) == sum(len(c.encode()) for c in contents) == doc.n_bytes, name
        tokens = tok.convert_ids_to_tokens(doc.input_ids[doc.targets].tolist())
        ends = [i for i, t in enumerate(tokens) if t == "<|end|>"]
        assert len(ends) == 2 and (doc.nbytes[ends] == 0).all() and (doc.word[ends] == -1).all(), name
        assert int((doc.nbytes == 0).sum()) == 2, name
        assert len(set(doc.word.tolist()) - {-1}) == sum(len(c.split()) for c in contents)
        # the words, turn by turn: rebuild each turn's text from its targets
        spans = np.split(np.arange(len(tokens)), [ends[0] + 1])
        words = []
        for content, idx in zip(contents, spans):
            words += word_texts(content, doc.nbytes[idx], doc.word[idx] - (doc.word[idx][doc.word[idx] >= 0].min()))
        assert words == [w for c in contents for w in c.split()], name
        seen.add((tuple(words), int(doc.nbytes.sum())))
    assert len(seen) == 1


def test_a_template_that_trims_the_message_is_scored_for_the_trimmed_text(tokenizers):
    tok = _bpe(False)
    tok.chat_template = CHAT_TEMPLATE.replace("message['content']", "message['content'] | trim")
    [doc], _ = tokenize_records([Record(0, "c", messages=CHAT)], tok)
    assert units_status([doc], tok)["available"]
    assert int(doc.nbytes.sum()) == sum(len(m["content"].strip().encode()) for m in CHAT if m["role"] == "assistant")


def test_a_template_that_rewrites_the_message_has_no_units_and_says_why():
    tok = _bpe(False)
    tok.chat_template = CHAT_TEMPLATE.replace("message['content']", "message['content'] | upper")
    docs, _ = tokenize_records([Record(0, "c", messages=CHAT)], tok)
    status = units_status(docs, tok, "tok-dir")
    assert docs[0].nbytes is None and not status["available"]
    assert "tok-dir" in status["reason"] and "chat template" in status["reason"] and "c" in status["reason"]


def test_a_slow_tokenizer_scores_by_token_and_names_itself():
    tok = CharTokenizer.make()
    docs, _ = tokenize_records([Record(0, "t", text="ab c")], tok)
    assert docs[0].nbytes is None and docs[0].word is None
    status = units_status(docs, tok, "chars")
    assert status == {"available": False, "reason": status["reason"], "tokenizer": "CharTokenizer"}
    assert "CharTokenizer is a slow tokenizer" in status["reason"]


# --------------------------------------------------------------------------- random strings and tokenizations

ALPHABET = st.sampled_from(list("ab xyz\t\n.") + ["é", "東", "😀", "\u00a0", "  ", "👍🏽"])


@st.composite
def tokenized(draw):
    """A random text and a random tokenization of it, with the habits of real tokenizers' offsets."""
    text = "".join(draw(st.lists(ALPHABET, min_size=1, max_size=30)))
    n = len(text)
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, n - 1)), max_size=n))) - {n})
    bounds = [0, *[c for c in cuts if 0 < c < n], n]
    offsets = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        piece = text[a:b]
        nbytes = len(piece.encode())
        if b - a == 1 and nbytes > 1 and draw(st.booleans()):
            # byte-level pieces of one character: each gets the whole character's offsets
            offsets += [(a, b)] * draw(st.integers(2, nbytes))
            continue
        if draw(st.booleans()):  # trimmed offsets: leading whitespace left out
            a = min(b, a + len(piece) - len(piece.lstrip()))
        if draw(st.integers(0, 9)) == 0:  # a zero-width token (a prepended ▁)
            offsets.append((a, a))
        offsets.append((a, b))
    return text, offsets


@settings(max_examples=300, deadline=None)
@given(tokenized())
@example(("é\xa0a", [(0, 1), (0, 1), (2, 3)]))  # two byte pieces of é, then a no-break space no offset covers
@example(("a\xa0a", [(0, 0), (0, 2), (2, 3)]))  # a zero-width ▁, then a token over "a" and a no-break space
def test_random_tokenizations_partition_the_bytes(case):
    text, offsets = case
    nbytes, word, n_bytes, n_words = token_units(text, offsets, [(0, len(offsets), 0, len(text))])
    assert n_bytes == len(text.encode()) == int(nbytes.sum()) and (nbytes >= 0).all()
    assert n_words == len(text.split())
    kept = word[word >= 0]
    assert (np.diff(kept) >= 0).all() and (kept < max(n_words, 1)).all()
    if n_words:
        assert ((word == -1) == (nbytes == 0)).all()
    else:
        assert (word == -1).all()
    # words are rebuilt exactly when no token straddles whitespace between two words
    spans = np.cumsum(nbytes)
    raw = text.encode()
    straddles = any(len(raw[e - n : e].decode("utf-8", "replace").split()) > 1 for e, n in zip(spans, nbytes))
    if not straddles:
        assert word_texts(text, nbytes, word) == text.split()


@settings(max_examples=200, deadline=None)
@given(st.lists(ALPHABET, min_size=1, max_size=30))
def test_as_many_byte_pieces_as_bytes_give_the_true_bytes(chars):
    text = "".join(chars)
    offsets = []
    for i, ch in enumerate(text):  # a byte-level tokenizer with no merges: one token per byte
        offsets += [(i, i + 1)] * len(ch.encode())
    nbytes, word, _, _ = token_units(text, offsets, [(0, len(offsets), 0, len(text))])
    assert nbytes.tolist() == [1] * len(text.encode())


def test_char_to_byte():
    text = "aé東😀\t"
    cb = char_to_byte(text)
    assert cb.tolist() == [len(text[:i].encode()) for i in range(len(text) + 1)]
    assert char_to_byte("ascii only") is None


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def scored_store(tiny_ckpt, tmp_path_factory):
    base = tmp_path_factory.mktemp("units")
    data = base / "val.jsonl"
    texts = HARD + ["Once upon a time there was a little cat.", "She sells sea shells by the sea shore."]
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    out = base / "out"
    r = run("score", str(tiny_ckpt), "--data", str(data), "--out", str(out), "--quiet", "--shard-targets", "60")
    assert r.exit_code == 0, r.output
    return out, texts


def test_score_records_units_and_the_checks_of_issue_13_hold(scored_store, one_thread):
    from pctce_cli.scoring.result import summary_from_store
    from pctce_cli.store import load_units, read_manifest

    out, texts = scored_store
    u = load_units(out, "tiny")
    man = read_manifest(out, "tiny")
    assert man["units"] == {"available": True, "rule": "spec8-v1"} and man["empty_span_targets"] == 0
    assert man["identity"]["settings"]["units"] == "spec8-v1" and len(man["shards"]) > 1
    docs = u.docs.set_index("doc")
    assert (docs["n_empty"] == 0).all()
    for d, text in enumerate(texts):
        sel = u.doc == d
        assert int(u.nbytes[sel].sum()) == len(text.encode()) == docs.loc[d, "n_bytes"]
        w, _, _, empty, n_empty = word_ce(u.ce[sel], u.doc[sel], u.word[sel])
        assert len(w) == docs.loc[d, "n_words"] == len(re.split(r"\s+", text))
        assert w.sum() + empty == pytest.approx(u.ce[sel].astype(np.float64).sum(), rel=1e-12)
    row = summary_from_store(out, "tiny")
    words = summarize(u.ce, unit="word", doc=u.doc, word=u.word)
    assert words["n"] == docs["n_words"].sum()
    assert words["mean"] == pytest.approx(math.log(row["word_ppl"]), rel=1e-6)
    assert summarize(u.ce, unit="byte", nbytes=u.nbytes)["mean"] == pytest.approx(math.log(row["byte_ppl"]), rel=1e-6)


def test_score_model_carries_the_same_units_and_to_store_writes_the_same_shards(scored_store, model, tiny_tokenizer, tmp_path, one_thread):
    from pctce_cli.api import score_model
    from pctce_cli.store import load_units, read_manifest

    out, texts = scored_store
    res = score_model(model, tiny_tokenizer, texts, shard_targets=60)
    u = load_units(out, "tiny")
    assert np.array_equal(res.nbytes, u.nbytes) and np.array_equal(res.word, u.word)
    s = res.summary(unit="word")
    assert s["n"] == u.docs["n_words"].sum() and s["empty_span_targets"] == 0
    assert res.summary(unit="byte")["n"] == u.docs["n_bytes"].sum()
    res.to_store(tmp_path / "mem", "tiny")
    ours = [r["tokens_sha256"] for r in read_manifest(tmp_path / "mem", "tiny")["shards"]]
    theirs = [r["tokens_sha256"] for r in read_manifest(out, "tiny")["shards"]]
    assert ours == theirs


def test_chat_scored_end_to_end_counts_empty_spans(tiny_ckpt, tmp_path, one_thread):
    from pctce_cli.store import load_units, read_manifest

    data = tmp_path / "chat.jsonl"
    data.write_text(json.dumps({"messages": CHAT}) + "\n", encoding="utf-8")
    r = run("score", str(tiny_ckpt), "--data", str(data), "--out", str(tmp_path / "o"), "--quiet")
    assert r.exit_code == 0, r.output
    u = load_units(tmp_path / "o", "tiny")
    assert read_manifest(tmp_path / "o", "tiny")["empty_span_targets"] == 2 == int(u.docs["n_empty"].sum())
    _, _, _, empty, n_empty = word_ce(u.ce, u.doc, u.word)
    assert n_empty == 2 and empty == pytest.approx(u.ce[u.nbytes == 0].astype(np.float64).sum())


def test_slow_tokenizer_scores_without_units_and_word_units_name_it(model, tmp_path, one_thread):
    from pctce_cli.api import score_model
    from pctce_cli.store import load_scores, load_units, read_manifest

    res = score_model(model, CharTokenizer.make(), ["ab c d", "hello there"])
    assert res.nbytes is None and res.info["units"]["tokenizer"] == "CharTokenizer"
    assert res.summary()["targets"] == len(res)
    with pytest.raises(UsageError, match="CharTokenizer"):
        res.summary(unit="word")
    res.to_store(tmp_path / "s", "slow")
    man = read_manifest(tmp_path / "s", "slow")
    assert man["units"]["available"] is False and "units" not in man["identity"]["settings"]
    assert "empty_span_targets" not in man and "n_empty" not in load_scores(tmp_path / "s", "slow").docs
    with pytest.raises(UsageError, match="CharTokenizer"):
        load_units(tmp_path / "s", "slow", "byte")


def test_a_store_written_before_units_is_kept_not_rescored(tiny_ckpt, text_jsonl, tmp_path, one_thread):
    from pctce_cli.scoring.options import ScoreOptions
    from pctce_cli.scoring.run import score_checkpoints
    from pctce_cli.store import MANIFEST, load_units, partition_dir

    out = tmp_path / "old"
    [res] = score_checkpoints([str(tiny_ckpt)], ScoreOptions(data=[str(text_jsonl)], out=out, units=False))
    assert res.status == "scored"
    man_path = partition_dir(out, "tiny") / MANIFEST
    man = json.loads(man_path.read_text())
    del man["units"]  # as pctce wrote manifests before it recorded byte spans
    man_path.write_text(json.dumps(man))
    reseal(man_path.parent)  # the manifest's checksum follows the edit
    [again] = score_checkpoints([str(tiny_ckpt)], ScoreOptions(data=[str(text_jsonl)], out=out))
    assert again.status == "skipped" and "before pctce recorded byte spans" in again.message
    with pytest.raises(UsageError, match="--force"):
        load_units(out, "tiny")
    [forced] = score_checkpoints([str(tiny_ckpt)], ScoreOptions(data=[str(text_jsonl)], out=out, force=True))
    assert forced.status == "scored" and load_units(out, "tiny").nbytes.size == forced.targets


def test_an_unfinished_run_without_units_is_not_resumed_with_them(tmp_path):
    from pctce_cli.store import partition_state, start_partition
    from pctce_cli.store.write import without_units

    new = {"weights": "w", "tokenizer": "t", "data": "d", "documents": "x", "settings": {"stride": 8, "units": "spec8-v1"}}
    start_partition(tmp_path, "ck", without_units(new), fresh=True)
    assert partition_state(tmp_path, "ck", new)[0] == "new"
    start_partition(tmp_path, "ck", new, fresh=True)
    assert partition_state(tmp_path, "ck", new)[0] == "resume"
