"""SentencePiece tokenizer: exact round trip of any text, state in checkpoints, size errors."""

from __future__ import annotations

import io

import pytest
import torch

from mia.data import plays
from mia.errors import UserError
from mia.tokenizer import (
    SentencePieceTokenizer,
    load_tokenizer,
    tokenizer_from_state,
    tokenizer_settings,
    train_tokenizer,
)

UNICODE_SAMPLES = [
    "",
    "plain words",
    "  leading and trailing spaces  ",
    "many     spaces\tand\ttabs",
    "\n\nblank lines\n\n\n",
    "windows\r\nline ends\r\n",
    "accents: café naïve Ångström façade",
    "emoji: 😀🎭👑 and ZWJ 👩‍👩‍👧",
    "CJK: 日本語のテキスト, 中文, 한국어",
    "digits 1234567890 and symbols ~`|\\{}<>§±",
    "\u0301 combining mark alone, \ufeff BOM, \x00 NUL",
]


def _train(text: str, vocab_size: int = 400, model_type: str = "bpe") -> SentencePieceTokenizer:
    config = {"kind": "sentencepiece", "model_type": model_type, "vocab_size": vocab_size}
    tok = train_tokenizer(config, text)
    assert isinstance(tok, SentencePieceTokenizer)
    return tok


@pytest.fixture(scope="module")
def tok(play_text: str) -> SentencePieceTokenizer:
    return _train(play_text)


@pytest.mark.parametrize("text", UNICODE_SAMPLES)
def test_any_unicode_round_trips(tok: SentencePieceTokenizer, text: str) -> None:
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text


def test_unigram_round_trips_too(play_text: str) -> None:
    tok = _train(play_text, vocab_size=350, model_type="unigram")
    for text in UNICODE_SAMPLES:
        assert tok.decode(tok.encode(text)) == text


def test_round_trip_and_compression_on_shakespeare() -> None:
    files = plays.play_files()
    train = plays.markdown_play_to_text(files[0].read_text("utf-8"))
    other = plays.markdown_play_to_text(files[-1].read_text("utf-8"))
    tok = _train(train, vocab_size=512)
    ids = tok.encode(other)
    assert tok.decode(ids) == other
    assert len(other) / len(ids) > 1.5  # subwords, not characters or bytes


def test_encoding_is_line_by_line(tok: SentencePieceTokenizer) -> None:
    """Chunks cut after a newline encode to consecutive parts of the whole encoding."""
    a, b = "HAMLET:\nThe king, my lord", "  and   the queen!\n"
    assert tok.encode(a + "\n" + b) == tok.encode(a + "\n") + tok.encode(b)


def test_special_ids(tok: SentencePieceTokenizer) -> None:
    assert tok.bos_id is not None and tok.eos_id is not None
    assert len({tok.bos_id, tok.eos_id}) == 2
    assert all(0 <= i < tok.vocab_size for i in (tok.bos_id, tok.eos_id))
    assert tok.vocab_size == 400


def test_training_is_deterministic(play_text: str, tok: SentencePieceTokenizer) -> None:
    assert _train(play_text).model == tok.model


def test_state_survives_a_weights_only_checkpoint_and_a_folder(
    tok: SentencePieceTokenizer, tmp_path
) -> None:
    state = tok.to_state()
    assert isinstance(state["model"], bytes)
    buffer = io.BytesIO()
    torch.save({"tokenizer": state}, buffer)
    buffer.seek(0)
    restored = tokenizer_from_state(torch.load(buffer, weights_only=True)["tokenizer"])
    written = tok.save(tmp_path)
    assert (tmp_path / "tokenizer.model").read_bytes() == tok.model
    assert {p.name for p in written} == {"tokenizer.json", "tokenizer.model"}
    loaded = load_tokenizer(tmp_path)
    text = "Good night, sweet prince 👑\n"
    for other in (restored, loaded):
        assert other.to_state() == state
        assert other.encode(text) == tok.encode(text)


def test_too_small_vocabulary_names_the_setting(play_text: str) -> None:
    with pytest.raises(UserError, match=r"tokenizer.vocab_size=280 is too small .* at least \d+"):
        _train(play_text, vocab_size=280)


def test_vocabulary_larger_than_the_corpus_supports_names_the_setting() -> None:
    with pytest.raises(UserError, match=r"too small for tokenizer.vocab_size=5000"):
        _train("a small corpus\nof two lines\n", vocab_size=5000)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"kind": "wordpiece"}, "unknown tokenizer.kind 'wordpiece'"),
        ({"kind": None}, "unknown tokenizer.kind None"),
        ({"kind": "sentencepiece", "model_type": "word"}, "tokenizer.model_type='word'"),
        ({"kind": "sentencepiece", "vocab_size": 0}, "tokenizer.vocab_size=0"),
        ({"kind": "sentencepiece", "character_coverage": 1.5}, "tokenizer.character_coverage"),
    ],
)
def test_bad_settings_are_user_errors(config: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        tokenizer_settings(config)
