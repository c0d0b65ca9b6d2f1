"""From text to id sequences: a whole-word vocabulary, or any transformers tokenizer (e.g. our WordPiece).

Both count-based vectors and word2vec read a corpus the same way: one id array per non-blank line (a
line is the unit a context window never crosses), unknown words dropped, as word2vec does.
"""

import os
from collections.abc import Iterable

import numpy as np
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast


def read_lines(files: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """The non-blank lines of UTF-8 text file(s), with a clear error for a missing, empty or binary file."""
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    files = [str(f) for f in files]
    if not files:
        raise ValueError("no input files given")
    lines = []
    for name in files:
        if not os.path.isfile(name):
            raise FileNotFoundError(f"input file {name!r} does not exist or is not a file")
        try:
            with open(name, encoding="utf-8") as handle:
                found = [line.strip() for line in handle if line.strip()]
        except UnicodeDecodeError as err:
            raise ValueError(f"input file {name!r} is not UTF-8 text: {err}") from None
        if not found:
            raise ValueError(f"input file {name!r} is empty (no non-blank line)")
        lines += found
    return lines


def train_word_tokenizer(
    texts: Iterable[str],
    *,
    min_frequency: int = 1,
    max_vocab_size: int | None = None,
    lowercase: bool = True,
    split_punctuation: bool = True,
    pad_token: str = "[PAD]",
    unk_token: str = "[UNK]",
) -> PreTrainedTokenizerFast:
    """A whole-word vocabulary (tokenizers' `WordLevel`) served as a transformers fast tokenizer.

    Ids: `pad_token` 0, `unk_token` 1, then words by falling frequency. `split_punctuation=False` splits
    on whitespace only, right for text that is already tokenized (WikiText's ``@-@``); give
    ``unk_token="<unk>"`` when the corpus writes its rare words that way, so they are not a word.
    """
    if min_frequency < 1:
        raise ValueError(f"min_frequency must be at least 1, got {min_frequency}")
    if max_vocab_size is not None and max_vocab_size <= 2:
        raise ValueError(f"max_vocab_size={max_vocab_size} leaves no room beyond the pad and unk tokens")
    backend = Tokenizer(models.WordLevel(unk_token=unk_token))
    if lowercase:
        backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = (
        pre_tokenizers.BertPreTokenizer() if split_punctuation else pre_tokenizers.WhitespaceSplit()
    )
    trainer = trainers.WordLevelTrainer(
        vocab_size=max_vocab_size or 2**31 - 1,
        min_frequency=min_frequency,
        special_tokens=[pad_token, unk_token],
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    # The trainer counts a special token that also occurs in the text (WikiText's "<unk>") as a word and
    # ranks it by frequency; put the two special tokens back at ids 0 and 1.
    trained = sorted(backend.get_vocab().items(), key=lambda item: item[1])
    words = [token for token, _ in trained if token not in (pad_token, unk_token)]
    if not words:
        raise ValueError(f"no word occurs at least min_frequency={min_frequency} times in the texts")
    vocab = {token: index for index, token in enumerate([pad_token, unk_token, *words])}
    backend.model = models.WordLevel(vocab, unk_token=unk_token)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=pad_token,
        unk_token=unk_token,
        model_input_names=["input_ids", "attention_mask"],
    )


def encode_lines(texts: Iterable[str], tokenizer, batch_size: int = 1000) -> list[np.ndarray]:
    """Token ids of each line, without special tokens, unknown words dropped; empty lines are skipped.

    Returns a list of int64 arrays, one per line that kept at least one token.
    """
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty")
    unk = tokenizer.unk_token_id
    sequences = []
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(texts[start : start + batch_size], add_special_tokens=False)["input_ids"]
        for ids in encoded:
            ids = np.asarray(ids, dtype=np.int64)
            ids = ids[ids != unk] if unk is not None else ids
            if len(ids):
                sequences.append(ids)
    if not sequences:
        raise ValueError("no known token in the texts: every word is out of the vocabulary")
    return sequences


def token_counts(sequences: list[np.ndarray], vocab_size: int) -> np.ndarray:
    """How often each id occurs: (vocab_size,) int64."""
    return np.bincount(np.concatenate(sequences), minlength=vocab_size)
