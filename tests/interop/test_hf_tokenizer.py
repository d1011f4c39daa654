"""MIA's tokenizers as Hugging Face tokenizer files: AutoTokenizer gives exactly MIA's ids
and text, with no BOS/EOS, on play text and on arbitrary Unicode; import reads them back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sentencepiece import sentencepiece_model_pb2

from mia.errors import UserError
from mia.interop.hf_tokenizer import (
    TOKENIZER_JSON,
    tokenizer_files,
    tokenizer_from_folder,
)
from mia.tokenizer import CharTokenizer, SentencePieceTokenizer, train_tokenizer

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")


def write_files(tokenizer, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in tokenizer_files(tokenizer).items():
        (folder / name).write_bytes(content)
    return folder


def assert_same_as_mia(tokenizer, folder: Path, texts: list[str]) -> None:
    auto = transformers.AutoTokenizer.from_pretrained(folder)
    raw = tokenizers.Tokenizer.from_file(str(folder / TOKENIZER_JSON))
    for text in texts:
        ids = tokenizer.encode(text)
        assert auto(text)["input_ids"] == ids, text[:80]  # default call: no BOS/EOS
        assert auto.encode(text) == ids, text[:80]
        assert raw.encode(text).ids == ids, text[:80]  # the file alone, no transformers
        assert auto.decode(ids) == tokenizer.decode(ids), text[:80]
    every_id = list(range(tokenizer.vocab_size))
    for i in every_id:
        assert auto.decode([i]) == tokenizer.decode([i]), i


@pytest.fixture(scope="module")
def train_text(corpus) -> str:
    """The play corpus, a line of accents, emoji and CJK, and one of markup."""
    extra = "café naïve Ångström 😀🎭👑 日本語のテキスト 中文 한국어\n<b>0x41 in bold</b>\n"
    return corpus.read_text("utf-8") + "\n" + extra


@pytest.mark.parametrize(
    "settings",
    [
        {"vocab_size": 400},
        {"vocab_size": 600, "split_digits": False, "allow_whitespace_only_pieces": False},
        {"vocab_size": 120, "byte_fallback": False},  # unknown characters fuse into <unk>
        {"vocab_size": 420, "model_type": "unigram"},
    ],
    ids=["bpe", "bpe-options", "no-byte-fallback", "unigram"],
)
def test_sentencepiece_files_give_mias_ids_and_text(tmp_path, train_text, sample_texts, settings):
    tokenizer = train_tokenizer({"kind": "sentencepiece", **settings}, train_text)
    folder = write_files(tokenizer, tmp_path / "tok")
    if settings.get("model_type") == "unigram":
        # The one known difference (see mia.interop.hf_tokenizer): special-piece strings
        # ("<s>" in the samples) spelled with characters outside the vocabulary.
        assert set("<s></s><unk><0x41>") <= set(train_text)
    assert_same_as_mia(tokenizer, folder, sample_texts)
    auto = transformers.AutoTokenizer.from_pretrained(folder)
    assert (auto.bos_token_id, auto.eos_token_id) == (tokenizer.bos_id, tokenizer.eos_id)
    assert auto("ROMEO:")["input_ids"][0] != tokenizer.bos_id


def test_a_2048_piece_vocabulary_of_the_real_plays(tmp_path, tiny_shakespeare, sample_texts):
    text = tiny_shakespeare.read_text("utf-8")
    tokenizer = train_tokenizer({"kind": "sentencepiece", "vocab_size": 2048}, text)
    folder = write_files(tokenizer, tmp_path / "tok")
    auto = transformers.AutoTokenizer.from_pretrained(folder)
    assert auto(text)["input_ids"] == tokenizer.encode(text)  # the whole 1.1 MB at once
    assert_same_as_mia(tokenizer, folder, sample_texts)


@pytest.mark.parametrize("unknown", [False, True])
def test_char_files_give_mias_ids_and_text(tmp_path, sample_texts, unknown):
    tokenizer = CharTokenizer("".join(sorted(set("".join(sample_texts)))), unknown=unknown)
    folder = write_files(tokenizer, tmp_path / "tok")
    assert_same_as_mia(tokenizer, folder, sample_texts)
    if unknown:  # characters outside the vocabulary take the unknown id, and decode as U+FFFD
        narrow = CharTokenizer("abc", unknown=True)
        auto = transformers.AutoTokenizer.from_pretrained(write_files(narrow, tmp_path / "n"))
        assert auto("ab🙂c")["input_ids"] == narrow.encode("ab🙂c") == [0, 1, 3, 2]
        assert auto.decode([0, 3, 2]) == narrow.decode([0, 3, 2]) == "a\ufffdc"


def test_import_reads_back_what_export_writes(tmp_path, train_text):
    sp = train_tokenizer({"kind": "sentencepiece", "vocab_size": 400}, train_text)
    back = tokenizer_from_folder(write_files(sp, tmp_path / "sp"))
    assert isinstance(back, SentencePieceTokenizer) and back.model == sp.model
    for unknown in (False, True):
        char = CharTokenizer("\n !,.:?ABCabc", unknown=unknown)
        back = tokenizer_from_folder(write_files(char, tmp_path / f"char{unknown}"))
        assert isinstance(back, CharTokenizer)
        assert back.to_state() == char.to_state()


def test_other_tokenizer_json_is_not_read_as_ours(tmp_path, train_text):
    folder = write_files(
        train_tokenizer({"kind": "sentencepiece", "vocab_size": 400}, train_text), tmp_path / "t"
    )
    (folder / "tokenizer.model").unlink()  # left: a BPE tokenizer.json with merges
    assert tokenizer_from_folder(folder) is None
    (folder / TOKENIZER_JSON).write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        tokenizer_from_folder(folder)
    (folder / TOKENIZER_JSON).unlink()
    assert tokenizer_from_folder(folder) is None


def test_a_sentencepiece_model_that_rewrites_text_does_not_convert(train_text):
    tokenizer = train_tokenizer({"kind": "sentencepiece", "vocab_size": 400}, train_text)
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(tokenizer.model)
    proto.normalizer_spec.add_dummy_prefix = True  # as in Llama 2's tokenizer.model
    rewriting = SentencePieceTokenizer(proto.SerializeToString())
    with pytest.raises(UserError, match="does not convert to tokenizer.json exactly: add_dummy"):
        tokenizer_files(rewriting)


def test_config_asks_transformers_for_nothing_extra(tmp_path, train_text):
    tokenizer = train_tokenizer({"kind": "sentencepiece", "vocab_size": 400}, train_text)
    config = json.loads(
        write_files(tokenizer, tmp_path / "t").joinpath("tokenizer_config.json").read_text()
    )
    assert config["add_bos_token"] is False and config["add_eos_token"] is False
    assert config["clean_up_tokenization_spaces"] is False
    assert config["split_special_tokens"] is True
