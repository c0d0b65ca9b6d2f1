"""WordPiece vocabularies trained with `tokenizers`, served as transformers fast tokenizers.

The pipeline is BERT's (normalizer → pre-tokenizer → WordPiece model → ``[CLS] A [SEP] B [SEP]``
post-processor → ``##``-merging decoder) with one change that matters for Korean: accents are stripped
with NFD → StripAccents → NFC. Stock BERT stops after NFD + StripAccents, which leaves every Hangul
syllable decomposed into its jamo (``"안녕하세요"`` becomes 12 pieces in bert-base-uncased); recomposing
with NFC gives back the syllables while "café" still becomes "cafe".

    >>> tok = train_wordpiece(files=["corpus.txt"], vocab_size=8000)
    >>> tok.save_pretrained("my-vocab")
    >>> AutoTokenizer.from_pretrained("my-vocab")   # the same tokenizer
"""

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from .utils import atomic_output_dir, check_output_dir

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MODEL_INPUT_NAMES = ["input_ids", "token_type_ids", "attention_mask"]
UNICODE_FORMS = {"nfc": normalizers.NFC, "nfkc": normalizers.NFKC, None: None}


def build_normalizer(
    lowercase: bool = True, strip_accents: bool | None = None, unicode_form: str | None = "nfc"
) -> normalizers.Normalizer:
    """The Korean-aware normalizer.

    `strip_accents=None` follows `lowercase`, as BERT does. `unicode_form` ("nfc", "nfkc" or None) is
    applied first; "nfkc" also folds full-width and compatibility characters (e.g. "ｈｅｌｌｏ" → "hello").
    """
    if unicode_form not in UNICODE_FORMS:
        raise ValueError(f"unicode_form must be one of 'nfc', 'nfkc' or None, got {unicode_form!r}")
    if strip_accents is None:
        strip_accents = lowercase
    steps = []
    if unicode_form is not None:
        steps.append(UNICODE_FORMS[unicode_form]())
    # BertNormalizer cleans control characters and spaces out CJK ideographs; its own accent stripping
    # is off because it would leave Hangul decomposed.
    steps.append(
        normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=lowercase
        )
    )
    if strip_accents:
        steps += [normalizers.NFD(), normalizers.StripAccents(), normalizers.NFC()]
    return normalizers.Sequence(steps)


def _special_tokens(special_tokens: Iterable[str] | dict | None) -> dict:
    """Map the five BERT roles to token strings; extra tokens are added after them."""
    roles = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")
    if special_tokens is None:
        return dict(zip(roles, SPECIAL_TOKENS, strict=True))
    if isinstance(special_tokens, dict):
        missing = [r for r in roles if r not in special_tokens]
        if missing:
            raise ValueError(f"special_tokens is missing the role(s) {missing}; give all of {list(roles)}")
        return dict(special_tokens)
    tokens = list(special_tokens)
    if len(tokens) < len(roles):
        raise ValueError(
            f"special_tokens needs at least {len(roles)} tokens, in the order pad, unk, cls, sep, mask; "
            f"got {tokens}"
        )
    mapping = dict(zip(roles, tokens[: len(roles)], strict=True))
    if tokens[len(roles) :]:
        mapping["additional_special_tokens"] = tokens[len(roles) :]
    return mapping


def check_text_files(files) -> list[str]:
    """The paths as strings, after checking that each exists and holds UTF-8 text with a non-blank line."""
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    files = [str(f) for f in files]
    if not files:
        raise ValueError("no input files given")
    for f in files:
        if not os.path.exists(f):
            raise FileNotFoundError(f"input file {f!r} does not exist")
        if not os.path.isfile(f):
            raise ValueError(f"input path {f!r} is not a file")
        try:
            with open(f, encoding="utf-8") as handle:
                has_text = any(line.strip() for line in handle)
        except UnicodeDecodeError as err:
            raise ValueError(f"input file {f!r} is not UTF-8 text: {err}") from None
        except OSError as err:
            raise ValueError(f"input file {f!r} cannot be read: {err}") from None
        if not has_text:
            raise ValueError(f"input file {f!r} is empty (no non-blank line)")
    return files


def _batches(texts: Iterable[str], batch_size: int = 1000) -> Iterator[list[str]]:
    """Batch any iterable of strings (a list, a generator, a `datasets` column) and refuse an empty one."""
    batch, seen = [], False
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"texts must yield strings, got {type(text).__name__}")
        if text.strip():
            seen = True
        batch.append(text)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
    if not seen:
        raise ValueError("texts is empty: the iterator gave no non-blank string to train on")


def train_wordpiece(
    files: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
    texts: Iterable[str] | None = None,
    *,
    vocab_size: int = 30522,
    min_frequency: int = 2,
    lowercase: bool = True,
    strip_accents: bool | None = None,
    unicode_form: str | None = "nfc",
    normalizer: normalizers.Normalizer | None = None,
    special_tokens: Iterable[str] | dict | None = None,
    limit_alphabet: int | None = None,
    model_max_length: int = 512,
    continuing_subword_prefix: str = "##",
    show_progress: bool = False,
    output_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> PreTrainedTokenizerFast:
    """Train a WordPiece vocabulary and return it as a transformers fast tokenizer.

    Args:
        files: text file(s), one or more sentences per line. Give the files of both languages for a
            joint vocabulary (what a seq2seq model with shared embeddings needs).
        texts: instead of files, any iterable of strings: a list, a generator, `dataset["text"]`.
        vocab_size: size of the vocabulary, special tokens and the alphabet included.
        min_frequency: a merge must be seen this often to enter the vocabulary.
        lowercase, strip_accents, unicode_form: normalisation; see `build_normalizer`. Hangul is
            never decomposed.
        normalizer: a `tokenizers` normalizer to use instead of ours (e.g. stock BERT's, to compare).
        special_tokens: the pad, unk, cls, sep, mask tokens in that order (extra ones follow), or a
            dict by role (``{"pad_token": ..., ...}``). They get the first ids, in that order.
        limit_alphabet: keep at most this many initial characters (None, the default: all of them;
            Korean text has over 2,000 distinct syllables, and a cut of 1,000 gave 1.1% [UNK] on NSMC);
            characters left out become [UNK].
        model_max_length: the tokenizer's `model_max_length` (what `truncation=True` cuts to).
        show_progress: show the `tokenizers` progress bar.
        output_dir: if given, `save_pretrained` into it (atomically: complete or not at all).
        overwrite: allow `output_dir` to be a non-empty folder, replaced once the new files are ready.

    Returns:
        `PreTrainedTokenizerFast` with `input_ids`, `token_type_ids` and `attention_mask` outputs.
    """
    if (files is None) == (texts is None):
        raise ValueError("give exactly one of `files` or `texts`")
    specials = _special_tokens(special_tokens)
    special_list = [specials[r] for r in ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")]
    special_list += specials.get("additional_special_tokens", [])
    if vocab_size <= len(special_list):
        raise ValueError(
            f"vocab_size={vocab_size} leaves no room for any token beyond the {len(special_list)} special tokens"
        )
    if min_frequency < 1:
        raise ValueError(f"min_frequency must be at least 1, got {min_frequency}")
    if output_dir is not None:
        check_output_dir(output_dir, overwrite)  # fail before training, not after

    backend = Tokenizer(
        models.WordPiece(unk_token=specials["unk_token"], continuing_subword_prefix=continuing_subword_prefix)
    )
    backend.normalizer = (
        normalizer if normalizer is not None else build_normalizer(lowercase, strip_accents, unicode_form)
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix=continuing_subword_prefix)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special_list,
        **({} if limit_alphabet is None else {"limit_alphabet": limit_alphabet}),
        continuing_subword_prefix=continuing_subword_prefix,
        show_progress=show_progress,
    )
    if files is not None:
        backend.train(check_text_files(files), trainer)
    else:
        backend.train_from_iterator(_batches(texts), trainer)

    trained = backend.get_vocab_size()
    if trained > vocab_size:
        # The trainer always keeps the whole alphabet, even past vocab_size.
        raise ValueError(
            f"vocab_size={vocab_size} is smaller than the alphabet plus the {len(special_list)} special tokens "
            f"({trained} entries); raise vocab_size or lower limit_alphabet"
        )
    if trained <= len(special_list):
        raise ValueError("training produced no vocabulary: the input holds no text after normalisation")

    cls_id, sep_id = backend.token_to_id(specials["cls_token"]), backend.token_to_id(specials["sep_token"])
    cls, sep = specials["cls_token"], specials["sep_token"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, cls_id), (sep, sep_id)],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=model_max_length,
        model_input_names=list(MODEL_INPUT_NAMES),
        **specials,
    )
    if output_dir is not None:
        save_tokenizer(tokenizer, output_dir, overwrite=overwrite)
    return tokenizer


def save_tokenizer(tokenizer, output_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """`save_pretrained` into `output_dir` atomically: the folder is complete or untouched."""
    with atomic_output_dir(output_dir, overwrite=overwrite) as tmp:
        tokenizer.save_pretrained(tmp)
    return Path(output_dir)


def load_tokenizer(path: str | os.PathLike, **kwargs) -> PreTrainedTokenizerFast:
    """`AutoTokenizer.from_pretrained` with a clear error for a local path that holds no tokenizer."""
    looks_local = os.path.isabs(path) or str(path).startswith(".") or os.path.exists(path)
    if looks_local and not os.path.isdir(path):
        raise FileNotFoundError(f"tokenizer folder {str(path)!r} does not exist")
    if os.path.isdir(path) and not any(
        os.path.exists(os.path.join(path, name))
        for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")
    ):
        raise FileNotFoundError(f"{str(path)!r} holds no tokenizer (no tokenizer.json or vocab.txt)")
    return AutoTokenizer.from_pretrained(path, **kwargs)


def vocabulary_stats(tokenizer, texts: Iterable[str]) -> dict:
    """Tokens per whitespace word (fertility), [UNK] rate and share of words kept whole, over `texts`."""
    words = [w for t in texts for w in t.split()]
    if not words:
        raise ValueError("texts holds no words")
    pieces = tokenizer(words, add_special_tokens=False)["input_ids"]
    n_tokens = sum(len(ids) for ids in pieces)
    n_unk = sum(ids.count(tokenizer.unk_token_id) for ids in pieces)
    return {
        "vocab_size": len(tokenizer),
        "words": len(words),
        "tokens": n_tokens,
        "tokens_per_word": n_tokens / len(words),
        "unk_rate": n_unk / max(n_tokens, 1),
        "whole_word_rate": sum(len(ids) == 1 for ids in pieces) / len(words),
    }
