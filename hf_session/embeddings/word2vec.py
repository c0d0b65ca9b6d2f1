"""Training word2vec with `Trainer`: text → (input, targets) examples → `SessionWord2VecModel`.

The data preparation is a set of functions (`word2vec_examples`, `build_word2vec_dataset`) that a
general recipe runner can call; `train_word2vec` wires them to `Trainer`, and `parse_word2vec_recipe`
reads a recipe YAML (`recipes/word2vec-*.yaml`) with `HfArgumentParser`.
"""

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from datasets import Dataset
from transformers import HfArgumentParser, Trainer, TrainingArguments, default_data_collator

from ..models.session_word2vec import SessionWord2VecConfig, SessionWord2VecModel
from ..tokenization import load_tokenizer
from ..utils import atomic_output_dir, check_output_dir
from .corpus import encode_lines, read_lines, token_counts, train_word_tokenizer


def subsample(
    sequences: list[np.ndarray], counts: np.ndarray, threshold: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Drop each occurrence of word w with probability 1 - sqrt(threshold / f(w)) (f: relative frequency).

    Frequent words ("the", ",") are thinned out, which speeds training and lets rarer words' windows
    reach further; `threshold=0` keeps everything.
    """
    if threshold <= 0:
        return sequences
    frequency = counts / counts.sum()
    keep_probability = np.minimum(1.0, np.sqrt(threshold / np.maximum(frequency, 1e-12)))
    kept = [s[rng.random(len(s)) < keep_probability[s]] for s in sequences]
    return [s for s in kept if len(s)]


def word2vec_examples(
    sequences: list[np.ndarray],
    architecture: str,
    window: int,
    pad_token_id: int = 0,
    shrink_window: bool = True,
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """One example per token position, in the layout `SessionWord2VecModel.forward` takes.

    skip-gram: input_ids (n, 1) the centre word, labels (n, 2*window) its context (-100 where none);
    CBOW: input_ids (n, 2*window) the context (padded, see attention_mask), labels (n, 1) the centre.
    With `shrink_window`, each position uses a window of b ~ U{1..window} words, as word2vec does, so
    near words count more than far ones. Positions with no context word at all are dropped.
    """
    if architecture not in ("skip-gram", "cbow"):
        raise ValueError(f"architecture must be 'skip-gram' or 'cbow', got {architecture!r}")
    rng = rng or np.random.default_rng(0)
    ids = np.concatenate(sequences)
    line = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    n = len(ids)
    reach = rng.integers(1, window + 1, size=n) if shrink_window else np.full(n, window)
    offsets = [o for o in range(-window, window + 1) if o != 0]
    context = np.full((n, len(offsets)), -1, dtype=np.int64)
    for column, offset in enumerate(offsets):
        source = np.arange(n) + offset
        inside = (source >= 0) & (source < n)
        ok = np.zeros(n, dtype=bool)
        ok[inside] = line[source[inside]] == line[inside]
        ok &= np.abs(offset) <= reach
        context[ok, column] = ids[source[ok]]
    has_context = (context >= 0).any(axis=1)
    context, centre = context[has_context], ids[has_context]
    present = context >= 0
    if architecture == "skip-gram":
        return {
            "input_ids": centre[:, None],
            "attention_mask": np.ones((len(centre), 1), dtype=np.int64),
            "labels": np.where(present, context, -100),
        }
    return {
        "input_ids": np.where(present, context, pad_token_id),
        "attention_mask": present.astype(np.int64),
        "labels": centre[:, None],
    }


@dataclass
class Word2VecDataArguments:
    """Where the text comes from and how it becomes ids (the `data:` part of a word2vec recipe)."""

    train_files: list[str] = field(
        default_factory=list, metadata={"help": "UTF-8 text files, one paragraph per line"}
    )
    tokenizer: str | None = field(
        default=None,
        metadata={
            "help": "tokenizer folder (e.g. a WordPiece vocabulary); by default whole words are the tokens"
        },
    )
    min_frequency: int = field(default=5, metadata={"help": "whole words: keep words seen this often"})
    max_vocab_size: int | None = field(
        default=None, metadata={"help": "whole words: keep the most frequent ones"}
    )
    lowercase: bool = field(default=True, metadata={"help": "whole words: lower-case the text"})
    split_punctuation: bool = field(
        default=True, metadata={"help": "whole words: split off punctuation (False for pre-tokenized text)"}
    )
    unk_token: str = field(default="[UNK]", metadata={"help": "whole words: the unknown token, e.g. <unk>"})
    subsample_threshold: float = field(
        default=1e-3, metadata={"help": "frequent-word subsampling t (0: none)"}
    )
    shrink_window: bool = field(default=True, metadata={"help": "sample each window's size in 1..window"})


@dataclass
class Word2VecModelArguments:
    """The `SessionWord2VecConfig` fields a recipe sets (the vocabulary size comes from the tokenizer)."""

    architecture: str = field(default="skip-gram", metadata={"help": "skip-gram or cbow"})
    hidden_size: int = field(default=100, metadata={"help": "dimension of the word vectors"})
    window: int = 5
    num_negatives: int = 5
    noise_exponent: float = 0.75


def build_word2vec_dataset(
    lines: list[str],
    tokenizer,
    config: SessionWord2VecConfig,
    data_args: Word2VecDataArguments,
    seed: int = 0,
) -> tuple[Dataset, np.ndarray]:
    """Examples for `config` from text lines, plus the unigram counts (vocab_size,) for the noise.

    Counts are taken before subsampling: the noise distribution follows the real word frequencies.
    Subsampling and window sizes are drawn once here (seeded), not again at every epoch as word2vec's
    C tool does: a fixed `Dataset` is what `Trainer` and its shuffling expect.
    """
    rng = np.random.default_rng(seed)
    sequences = encode_lines(lines, tokenizer)
    counts = token_counts(sequences, config.vocab_size)
    kept = subsample(sequences, counts, data_args.subsample_threshold, rng)
    if not kept:
        raise ValueError("subsampling removed every token; lower subsample_threshold")
    examples = word2vec_examples(
        kept, config.architecture, config.window, config.pad_token_id or 0, data_args.shrink_window, rng
    )
    if not len(examples["labels"]):
        raise ValueError("the corpus gives no (word, context) pair: every line has a single token")
    # No torch format: default_data_collator builds tensors from plain rows faster (13 vs 23 ms per 512).
    return Dataset.from_dict(examples), counts


def parse_word2vec_recipe(
    path: str | os.PathLike,
) -> tuple[Word2VecDataArguments, Word2VecModelArguments, TrainingArguments]:
    """Read a recipe YAML (flat keys: data, model and `TrainingArguments` fields) with `HfArgumentParser`.

    Paths in the recipe are relative to the working folder, as in the other recipes.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"recipe {str(path)!r} does not exist")
    parser = HfArgumentParser((Word2VecDataArguments, Word2VecModelArguments, TrainingArguments))
    return parser.parse_yaml_file(str(path))


def train_word2vec(
    data_args: Word2VecDataArguments,
    model_args: Word2VecModelArguments,
    training_args: TrainingArguments,
    overwrite: bool = False,
) -> tuple[SessionWord2VecModel, dict]:
    """Train word2vec with `Trainer` and save model + tokenizer to `training_args.output_dir`.

    The output folder is written atomically (Trainer works in a temporary folder next to it, which
    replaces it only when training and saving succeeded). Returns the model and the train metrics.
    """
    output_dir = Path(training_args.output_dir)
    check_output_dir(output_dir, overwrite)
    if not data_args.train_files:
        raise ValueError("the recipe gives no train_files")
    lines = read_lines(data_args.train_files)
    start = time.perf_counter()
    if data_args.tokenizer:
        tokenizer = load_tokenizer(data_args.tokenizer)
    else:
        tokenizer = train_word_tokenizer(
            lines,
            min_frequency=data_args.min_frequency,
            max_vocab_size=data_args.max_vocab_size,
            lowercase=data_args.lowercase,
            split_punctuation=data_args.split_punctuation,
            unk_token=data_args.unk_token,
        )
    config = SessionWord2VecConfig(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id or 0, **dataclasses.asdict(model_args)
    )
    dataset, counts = build_word2vec_dataset(lines, tokenizer, config, data_args, seed=training_args.seed)
    prep_seconds = time.perf_counter() - start

    model = SessionWord2VecModel(config)
    model.set_noise_distribution(counts)
    try:
        with atomic_output_dir(output_dir, overwrite=overwrite) as tmp:
            training_args.output_dir = str(tmp)
            trainer = Trainer(
                model=model,
                args=training_args,
                train_dataset=dataset,
                data_collator=default_data_collator,
                processing_class=tokenizer,
            )
            result = trainer.train()
            trainer.save_model(str(tmp))
            metrics = dict(result.metrics, prep_seconds=round(prep_seconds, 3), train_examples=len(dataset))
            trainer.save_metrics("train", metrics)
            trainer.save_state()  # trainer_state.json: the loss curve
    finally:
        training_args.output_dir = str(output_dir)
    return model, metrics
