"""Character tokenizer: vocabulary from the train split, exact round trip, unknown characters."""

from __future__ import annotations

import io

import pytest
import torch

from mia.errors import UserError
from mia.tokenizer import CharTokenizer, load_tokenizer, tokenizer_from_state, train_tokenizer
from mia.tokenizer.char import UNKNOWN_CHAR


def test_vocabulary_is_sorted_distinct_train_characters() -> None:
    tok = train_tokenizer({"kind": "char"}, "hello world\n")
    assert tok.vocab_size == len(set("hello world\n"))
    assert tok.encode(" \nd") == [1, 0, 2]  # sorted: "\n" < " " < "d" < ...
    assert tok.bos_id is None and tok.eos_id is None


@pytest.mark.parametrize(
    "text",
    [
        "First Citizen:\nBefore we proceed any further, hear me speak.\n\n",
        "héllo 😀 日本語\t  x\r\n",
    ],
)
def test_round_trip_on_text_in_vocabulary(text: str) -> None:
    tok = train_tokenizer({"kind": "char"}, text)
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode(text[::-1])) == text[::-1]


def test_heldout_only_character_gets_one_unknown_id() -> None:
    tok = CharTokenizer.train("abc", heldout_text="abd€")
    assert tok.vocab_size == 4 and tok.unknown_id == 3
    assert tok.encode("ad€") == [0, 3, 3]
    assert tok.decode([0, 3]) == "a" + UNKNOWN_CHAR


def test_no_unknown_id_when_heldout_is_covered() -> None:
    assert CharTokenizer.train("abc", heldout_text="cab").vocab_size == 3


def test_unseen_character_without_unknown_id_is_a_user_error() -> None:
    tok = CharTokenizer.train("abc")
    with pytest.raises(UserError, match="'z' is not in the char tokenizer's vocabulary"):
        tok.encode("abz")


def test_decode_rejects_ids_outside_vocabulary() -> None:
    tok = CharTokenizer.train("abc")
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([3])
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([-1])


def test_state_survives_a_weights_only_checkpoint_and_a_folder(tmp_path) -> None:
    tok = CharTokenizer.train("the quick brown fox", heldout_text="!")
    buffer = io.BytesIO()
    torch.save({"tokenizer": tok.to_state()}, buffer)
    buffer.seek(0)
    restored = tokenizer_from_state(torch.load(buffer, weights_only=True)["tokenizer"])
    tok.save(tmp_path)
    loaded = load_tokenizer(tmp_path)
    for other in (restored, loaded):
        assert isinstance(other, CharTokenizer)
        assert other.to_state() == tok.to_state()
        assert other.encode("fox!") == tok.encode("fox!")
