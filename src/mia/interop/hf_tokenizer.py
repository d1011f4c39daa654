"""MIA's tokenizers as Hugging Face tokenizer files, and back.

Export writes a ``tokenizer.json`` for the ``tokenizers`` library, built here as plain JSON
(no transformers import), plus a ``tokenizer_config.json`` that makes
``AutoTokenizer.from_pretrained`` load that file as it is (``PreTrainedTokenizerFast``) and
add nothing: no BOS/EOS (MIA's data has none), no clean-up of spaces when decoding, and
special-token strings in the text (``"<s>"``) encoded as text, as SentencePiece does.

SentencePiece models convert piece by piece:

* BPE: the vocabulary keeps SentencePiece's ids; the merges are every split ``left + right``
  of a normal piece whose halves are both normal pieces, ranked by the merged piece's score.
  SentencePiece merges, at each step, the adjacent pair whose concatenation is the
  best-scoring piece (leftmost first), which this ranking reproduces (in theory two
  different splits of one piece could compete at overlapping positions, where the
  leftmost rule and the ranking might part; no test text has shown it). Byte pieces
  (``<0x41>``) are the byte fallback; unknown runs fuse into one ``<unk>`` as in
  SentencePiece.
* Unigram: the same pieces and scores (Viterbi over the same lattice). Control and byte
  pieces get a score no segmentation would choose, since ``tokenizers`` would otherwise
  match their strings in the text. One corner case remains: text that spells such a string
  (``"<s>"``, ``"<0x41>"``) with a character outside the vocabulary gets that piece.
* Spaces become ``▁`` (a normalizer), and the text is split at newlines first, as MIA
  encodes line by line. The decoder turns ``▁`` back into spaces and byte pieces back into
  UTF-8 (``ByteFallback``) and joins the pieces (``Fuse``); ``<unk>`` decodes to
  SentencePiece's `` ⁇ `` and control pieces to nothing, as in SentencePiece. Decoding
  differs only on byte pieces that are not valid UTF-8: SentencePiece replaces each bad
  byte with U+FFFD, ``tokenizers`` the whole run of byte pieces.

Only models that encode text exactly convert: identity normalization, no dummy prefix, no
whitespace removal, no user-defined pieces (every model MIA trains). The char tokenizer
becomes a BPE model with no merges: one id per character, and ``<unk>`` for its unknown id
(decoded as U+FFFD). A character outside a vocabulary without an unknown id is an error in
MIA; ``tokenizers`` drops it.

Import reads ``tokenizer.model`` (SentencePiece, as mia-export writes it) or a char
``tokenizer.json`` in the form written here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mia.errors import UserError
from mia.tokenizer import CharTokenizer, SentencePieceTokenizer, Tokenizer
from mia.tokenizer.char import UNKNOWN_CHAR
from mia.tokenizer.subword import parse_model, pretrained_settings

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS_MAP = "special_tokens_map.json"
SENTENCEPIECE_MODEL = "tokenizer.model"
TOKENIZER_FILES = (TOKENIZER_JSON, TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP, SENTENCEPIECE_MODEL)

# sentencepiece_model.proto: ModelProto.SentencePiece.Type and TrainerSpec.ModelType.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
UNIGRAM, BPE = 1, 2
_SPACE, _META_SPACE = " ", "\u2581"
# Unigram score of control and byte pieces: below any real segmentation.
_NEVER_SCORE = -1.0e9
# The unknown id of a char tokenizer, in tokenizer.json (a string no single character equals).
CHAR_UNKNOWN_TOKEN = "<unk>"


def tokenizer_files(tokenizer: Tokenizer) -> dict[str, bytes]:
    """The Hugging Face tokenizer files for `tokenizer` (file name -> content).

    A SentencePiece tokenizer also gets its ``tokenizer.model``, which MIA's import reads.
    """
    if isinstance(tokenizer, SentencePieceTokenizer):
        tokenizer_json, special = sentencepiece_tokenizer_json(tokenizer.model)
        files = {SENTENCEPIECE_MODEL: tokenizer.model}
    elif isinstance(tokenizer, CharTokenizer):
        tokenizer_json, special = char_tokenizer_json(tokenizer)
        files = {}
    else:
        raise UserError(f"the {tokenizer.kind} tokenizer has no Hugging Face form")
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **special,
        "add_bos_token": False,
        "add_eos_token": False,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        # Special-token strings in the text are text, as in SentencePiece and MIA.
        "split_special_tokens": True,
    }
    files[TOKENIZER_JSON] = _json_bytes(tokenizer_json)
    files[TOKENIZER_CONFIG] = _json_bytes(config)
    files[SPECIAL_TOKENS_MAP] = _json_bytes(special)
    return files


def sentencepiece_problems(proto: Any) -> list[str]:
    """What about a SentencePiece model `tokenizer.json` cannot reproduce (empty if none)."""
    problems = []
    trainer, normalizer = proto.trainer_spec, proto.normalizer_spec
    if trainer.model_type not in (BPE, UNIGRAM):
        problems.append("model type other than bpe or unigram")
    if normalizer.name not in ("identity", "") or normalizer.precompiled_charsmap:
        problems.append(f"normalization {normalizer.name!r} (MIA's models use identity)")
    if normalizer.add_dummy_prefix:
        problems.append("add_dummy_prefix")
    if normalizer.remove_extra_whitespaces:
        problems.append("remove_extra_whitespaces")
    if trainer.treat_whitespace_as_suffix:
        problems.append("treat_whitespace_as_suffix")
    kinds = {piece.type for piece in proto.pieces}
    if USER_DEFINED in kinds or UNUSED in kinds:
        problems.append("user-defined or unused pieces")
    return problems


def sentencepiece_tokenizer_json(model: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """``tokenizer.json`` for a serialized SentencePiece model, and its special tokens."""
    proto = parse_model(model, "the checkpoint's tokenizer")
    problems = sentencepiece_problems(proto)
    if problems:
        raise UserError(
            "the tokenizer does not convert to tokenizer.json exactly: " + "; ".join(problems)
        )
    pieces = list(proto.pieces)
    trainer = proto.trainer_spec
    byte_fallback = bool(trainer.byte_fallback)
    if trainer.model_type == BPE:
        model_json: dict[str, Any] = {
            "type": "BPE",
            "dropout": None,
            "unk_token": pieces[trainer.unk_id].piece if trainer.unk_id >= 0 else None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": byte_fallback,
            "ignore_merges": False,
            "vocab": {piece.piece: i for i, piece in enumerate(pieces)},
            "merges": bpe_merges(pieces),
        }
    else:
        model_json = {
            "type": "Unigram",
            "unk_id": trainer.unk_id if trainer.unk_id >= 0 else None,
            "byte_fallback": byte_fallback,
            "vocab": [
                [piece.piece, piece.score if piece.type == NORMAL else _NEVER_SCORE]
                for piece in pieces
            ],
        }

    normal = [piece.piece for piece in pieces if piece.type == NORMAL]
    decoders: list[dict[str, Any]] = []
    # SentencePiece decodes <unk> as its unk_surface and control pieces as nothing. A Replace
    # decoder sees one token at a time, so it only rewrites a normal piece that contains the
    # string, which is checked for.
    surfaces = {
        piece.piece: (trainer.unk_surface if piece.type == UNKNOWN else "")
        for piece in pieces
        if piece.type in (UNKNOWN, CONTROL)
    }
    for token, surface in surfaces.items():
        if not any(token in text for text in normal):
            decoders.append(_replace(token, surface))
    escape = proto.normalizer_spec.escape_whitespaces
    if escape:
        decoders.append(_replace(_META_SPACE, _SPACE))
    if byte_fallback:
        decoders.append({"type": "ByteFallback"})
    decoders.append({"type": "Fuse"})
    tokenizer_json = _tokenizer_json(
        model_json,
        normalizer=_replace(_SPACE, _META_SPACE) if escape else None,
        # MIA encodes line by line (no piece spans a newline), so "\n" is a piece of text of
        # its own: unknown characters do not fuse across it, as in MIA.
        pre_tokenizer={
            "type": "Split",
            "pattern": {"String": "\n"},
            "behavior": "Isolated",
            "invert": False,
        },
        decoders=decoders,
    )

    def piece_or_none(i: int) -> str | None:
        return pieces[i].piece if 0 <= i < len(pieces) else None

    special = {
        "bos_token": piece_or_none(trainer.bos_id),
        "eos_token": piece_or_none(trainer.eos_id),
        "unk_token": piece_or_none(trainer.unk_id),
    }
    return tokenizer_json, {key: value for key, value in special.items() if value is not None}


def bpe_merges(pieces: list[Any]) -> list[list[str]]:
    """Every (left, right) of normal pieces whose concatenation is a normal piece, best merged
    piece first (SentencePiece's BPE order: higher score, then lower id)."""
    normal = {piece.piece for piece in pieces if piece.type == NORMAL}
    ranked = []
    for i, piece in enumerate(pieces):
        if piece.type != NORMAL:
            continue
        text = piece.piece
        for cut in range(1, len(text)):
            left, right = text[:cut], text[cut:]
            if left in normal and right in normal:
                ranked.append((-piece.score, i, cut, left, right))
    ranked.sort()
    return [[left, right] for *_, left, right in ranked]


def char_tokenizer_json(tokenizer: CharTokenizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """``tokenizer.json`` for a char tokenizer: a BPE model without merges."""
    vocab = {char: i for i, char in enumerate(tokenizer.chars)}
    special: dict[str, Any] = {}
    decoders: list[dict[str, Any]] = []
    if tokenizer.unknown_id is not None:
        vocab[CHAR_UNKNOWN_TOKEN] = tokenizer.unknown_id
        special["unk_token"] = CHAR_UNKNOWN_TOKEN
        decoders.append(_replace(CHAR_UNKNOWN_TOKEN, UNKNOWN_CHAR))
    decoders.append({"type": "Fuse"})
    model_json = {
        "type": "BPE",
        "dropout": None,
        "unk_token": special.get("unk_token"),
        "continuing_subword_prefix": None,
        "end_of_word_suffix": None,
        "fuse_unk": False,
        "byte_fallback": False,
        "ignore_merges": False,
        "vocab": vocab,
        "merges": [],
    }
    tokenizer_json = _tokenizer_json(
        model_json, normalizer=None, pre_tokenizer=None, decoders=decoders
    )
    return tokenizer_json, special


def char_tokenizer_from_json(tokenizer_json: Any) -> CharTokenizer | None:
    """The char tokenizer a `char_tokenizer_json` file describes, or None for any other."""
    model = tokenizer_json.get("model") if isinstance(tokenizer_json, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE" or model.get("merges"):
        return None
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or tokenizer_json.get("normalizer"):
        return None
    by_id = sorted(vocab, key=vocab.get)
    if sorted(vocab.values()) != list(range(len(vocab))):
        return None
    unknown = bool(by_id) and by_id[-1] == CHAR_UNKNOWN_TOKEN
    chars = by_id[:-1] if unknown else by_id
    if not chars or any(len(c) != 1 for c in chars) or chars != sorted(set(chars)):
        return None
    return CharTokenizer("".join(chars), unknown=unknown)


def tokenizer_from_folder(folder: str | Path) -> Tokenizer | None:
    """The tokenizer of a Hugging Face model folder, if MIA can use it: ``tokenizer.model``
    (SentencePiece), or a char ``tokenizer.json`` as mia-export writes; else None."""
    folder = Path(folder)
    model_file = folder / SENTENCEPIECE_MODEL
    if model_file.is_file():  # as tokenizer.model_file=<it> would load it
        return SentencePieceTokenizer.from_file(pretrained_settings(model_file))
    json_file = folder / TOKENIZER_JSON
    if json_file.is_file():
        try:
            tokenizer_json = json.loads(json_file.read_text("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise UserError(f"{json_file} is not valid JSON") from None
        return char_tokenizer_from_json(tokenizer_json)
    return None


def _tokenizer_json(
    model: dict[str, Any],
    normalizer: dict[str, Any] | None,
    pre_tokenizer: dict[str, Any] | None,
    decoders: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        # No added tokens: "<s>" in the text is text; transformers registers the special
        # tokens of tokenizer_config.json itself (and split_special_tokens keeps them text).
        "added_tokens": [],
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": None,  # no BOS/EOS
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": model,
    }


def _replace(pattern: str, content: str) -> dict[str, Any]:
    return {"type": "Replace", "pattern": {"String": pattern}, "content": content}


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
