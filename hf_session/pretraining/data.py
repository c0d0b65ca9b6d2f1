"""Pretraining data: text → documents of tokenized sentences → BERT instances → masked batches.

The steps follow Google's `create_pretraining_data.py`:

1. `read_corpus`: text files (one sentence or paragraph per line) or any `datasets` dataset with a text
   column. A blank line starts a new document, or, in WikiText-style text, a `` = Title = `` line.
2. `tokenize_corpus`: `datasets.map(batched=True, num_proc=...)` with our fast tokenizer, cached on disk
   under a fingerprint of the input and the tokenizer, so a second run reuses it.
3. `group_documents` + `create_nsp_instances`: segments filled from consecutive sentences up to the
   target length, split at a random sentence; half the time segment B is the true continuation
   (`next_sentence_label=0`), half a random stretch of another document (`1`). `create_full_instances`
   is the `nsp=False` mode: full-length single segments (RoBERTa's FULL-SENTENCES).
4. `PretrainingCollator`: dynamic masking at batch time (80% [MASK], 10% random, 10% unchanged) with
   transformers' `DataCollatorForLanguageModeling`; each example's mask is drawn from a generator
   seeded by (seed, epoch, example_id), so it does not depend on the batch, the process count or a
   resume.
"""

import os
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import datasets
import numpy as np
import torch
from datasets.fingerprint import Hasher
from transformers import DataCollatorForLanguageModeling
from transformers.data.data_collator import pad_without_fast_tokenizer_warning

from ..tokenization import check_text_files

# Bumped when the tokenization output changes, so that old caches are not reused.
TOKENIZE_VERSION = 2
LINE_TEXT, LINE_BLANK, LINE_TITLE, LINE_SECTION = 0, 1, 2, 3
# " = Robert Boulter = " starts an article; " = = Career = = " (a section heading) does not.
DOCUMENT_HEADING = re.compile(r"^=\s(?!=).*(?<!=)\s=$")
SECTION_HEADING = re.compile(r"^=(\s=)+\s.*\s=(\s=)+$")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def read_corpus(
    files: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
    dataset: datasets.Dataset | None = None,
    text_column: str = "text",
    cache_dir: str | None = None,
) -> datasets.Dataset:
    """A `datasets.Dataset` with one row per line of text, in column `text_column`.

    Files are read with the `text` builder of `load_dataset` (cached by `datasets`); a dataset is used
    as given. Either way `group_documents` later finds the documents in the rows.
    """
    if (files is None) == (dataset is None):
        raise ValueError("give exactly one of `files` or `dataset`")
    if files is not None:
        files = check_text_files(files)
        return datasets.load_dataset("text", data_files={"train": files}, cache_dir=cache_dir, split="train")
    if text_column not in dataset.column_names:
        raise ValueError(f"the dataset has no column {text_column!r}; its columns are {dataset.column_names}")
    if len(dataset) == 0:
        raise ValueError("the dataset is empty: no text to pretrain on")
    return dataset


def _tokenize_batch(batch, tokenizer, text_column: str, split_sentences: bool) -> dict:
    """One output row per input line: its sentences as lists of ids, and what kind of line it is."""
    sentences, kinds = [], []
    for line in batch[text_column]:
        line = (line or "").strip()
        if not line:
            kind = LINE_BLANK
        elif DOCUMENT_HEADING.match(line):
            kind = LINE_TITLE
        elif SECTION_HEADING.match(line):
            kind = LINE_SECTION
        else:
            kind = LINE_TEXT
        kinds.append(kind)
        if kind != LINE_TEXT:
            sentences.append([])
            continue
        parts = [p for p in SENTENCE_END.split(line) if p] if split_sentences else [line]
        # Whole lines may be longer than the model; instances are cut to max_seq_length later, so no warning.
        ids = tokenizer(parts, add_special_tokens=False, verbose=False)["input_ids"]
        sentences.append([s for s in ids if s])
    return {"sentences": sentences, "line_kind": kinds}


def tokenize_corpus(
    corpus: datasets.Dataset,
    tokenizer,
    text_column: str = "text",
    split_sentences: bool = True,
    num_proc: int | None = None,
) -> datasets.Dataset:
    """Tokenize every line with `datasets.map`; columns `sentences` (list of id lists) and `line_kind`
    (`LINE_TEXT`, `LINE_BLANK`, `LINE_TITLE` for `` = Title = ``, `LINE_SECTION` for `` = = Section = = ``).

    The cache fingerprint is computed from the input's fingerprint and the tokenizer's full JSON, so the
    same corpus with the same tokenizer loads from the cache on a second run, and any change to either
    tokenizes again.
    """
    fingerprint = Hasher.hash(
        (
            corpus._fingerprint,
            tokenizer.backend_tokenizer.to_str(),
            text_column,
            split_sentences,
            TOKENIZE_VERSION,
        )
    )
    return corpus.map(
        _tokenize_batch,
        batched=True,
        num_proc=num_proc if num_proc and num_proc > 1 else None,
        remove_columns=corpus.column_names,
        fn_kwargs={"tokenizer": tokenizer, "text_column": text_column, "split_sentences": split_sentences},
        new_fingerprint=fingerprint,
        desc="Tokenizing",
    )


def group_documents(tokenized: datasets.Dataset) -> list[list[list[int]]]:
    """Documents as lists of sentences (lists of token ids); documents without any text are dropped.

    A WikiText article title starts a document. In a corpus without such titles a blank line does; in one
    with titles blank lines only separate paragraphs (as in WikiText's own files), so an article stays one
    document, as Google's recipe expects.
    """
    boundary = LINE_TITLE if LINE_TITLE in set(tokenized.unique("line_kind")) else LINE_BLANK
    documents, current = [], []
    for batch in tokenized.iter(batch_size=1000):
        for sentences, kind in zip(batch["sentences"], batch["line_kind"], strict=True):
            if kind in (boundary, LINE_TITLE) and current:
                documents.append(current)
                current = []
            current.extend(sentences)
    if current:
        documents.append(current)
    if not documents:
        raise ValueError("the corpus is empty: no line holds any text after tokenization")
    return documents


def _truncate_seq_pair(tokens_a: list, tokens_b: list, max_num_tokens: int, rng: random.Random) -> None:
    """Trim the longer segment, from the front or the back at random, until the pair fits (in place)."""
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def _pair_instance(tokens_a, tokens_b, is_random_next: bool, cls_id: int, sep_id: int) -> dict:
    input_ids = [cls_id, *tokens_a, sep_id, *tokens_b, sep_id]
    return {
        "input_ids": input_ids,
        "token_type_ids": [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1),
        "special_tokens_mask": [1] + [0] * len(tokens_a) + [1] + [0] * len(tokens_b) + [1],
        "next_sentence_label": int(is_random_next),
    }


def _instances_from_document(
    documents: list, document_index: int, max_seq_length: int, short_seq_prob: float, rng: random.Random
) -> Iterator[tuple[list[int], list[int], bool]]:
    """Google's `create_instances_from_document`: (segment A, segment B, B is random) triples."""
    document = documents[document_index]
    max_num_tokens = max_seq_length - 3  # [CLS] A [SEP] B [SEP]
    # Mostly full-length sequences; a few short ones so the model also sees the lengths of fine-tuning.
    target_seq_length = max_num_tokens
    if rng.random() < short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)
    chunk, chunk_length, i = [], 0, 0
    while i < len(document):
        chunk.append(document[i])
        chunk_length += len(document[i])
        if i == len(document) - 1 or chunk_length >= target_seq_length:
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            tokens_a = [t for sentence in chunk[:a_end] for t in sentence]
            tokens_b = []
            if len(chunk) == 1 or rng.random() < 0.5:
                is_random_next = True
                target_b_length = target_seq_length - len(tokens_a)
                # Ten tries at another document; a one-document corpus has to use itself.
                for _ in range(10):
                    random_index = rng.randint(0, len(documents) - 1)
                    if random_index != document_index:
                        break
                random_document = documents[random_index]
                for sentence in random_document[rng.randint(0, len(random_document) - 1) :]:
                    tokens_b.extend(sentence)
                    if len(tokens_b) >= target_b_length:
                        break
                # The sentences of the chunk not used as A are put back, so no text is wasted.
                i -= len(chunk) - a_end
            else:
                is_random_next = False
                tokens_b = [t for sentence in chunk[a_end:] for t in sentence]
            _truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
            yield tokens_a, tokens_b, is_random_next
            chunk, chunk_length = [], 0
        i += 1


def create_nsp_instances(
    documents: list[list[list[int]]],
    max_seq_length: int,
    cls_token_id: int,
    sep_token_id: int,
    short_seq_prob: float = 0.1,
    seed: int = 12345,
    dupe_factor: int = 1,
) -> list[dict]:
    """Sentence-pair instances with NSP labels, as Google's BERT builds them; deterministic for `seed`.

    The corpus is gone through `dupe_factor` times, each pass with other split points, short targets and
    random next segments (Google's default is 10): a small corpus trained for many epochs then does not
    repeat the same pairs, which NSP otherwise learns by heart.

    Returns dicts with `input_ids` (``[CLS] A [SEP] B [SEP]``, at most `max_seq_length` ids),
    `token_type_ids`, `special_tokens_mask` and `next_sentence_label` (0: B follows A, 1: B is random).
    """
    if max_seq_length < 5:
        raise ValueError(f"max_seq_length must be at least 5 for [CLS] A [SEP] B [SEP], got {max_seq_length}")
    if not 0 <= short_seq_prob <= 1:
        raise ValueError(f"short_seq_prob must be between 0 and 1, got {short_seq_prob}")
    if dupe_factor < 1:
        raise ValueError(f"dupe_factor must be at least 1, got {dupe_factor}")
    rng = random.Random(seed)
    instances = []
    for _ in range(dupe_factor):
        for document_index in range(len(documents)):
            for tokens_a, tokens_b, is_random in _instances_from_document(
                documents, document_index, max_seq_length, short_seq_prob, rng
            ):
                instances.append(_pair_instance(tokens_a, tokens_b, is_random, cls_token_id, sep_token_id))
    return instances


def create_full_instances(
    documents: list[list[list[int]]], max_seq_length: int, cls_token_id: int, sep_token_id: int
) -> list[dict]:
    """`nsp=False`: single segments packed with whole sentences up to `max_seq_length` (``[CLS] … [SEP]``).

    As RoBERTa's FULL-SENTENCES, a segment may run into the next document, with an extra [SEP] between
    the two. A sentence longer than a segment is cut into segment-sized pieces.
    """
    if max_seq_length < 3:
        raise ValueError(f"max_seq_length must be at least 3 for [CLS] A [SEP], got {max_seq_length}")
    max_num_tokens = max_seq_length - 2
    instances, buffer, special, separate = [], [], [], False

    def flush():
        if buffer:
            instances.append(
                {
                    "input_ids": [cls_token_id, *buffer, sep_token_id],
                    "token_type_ids": [0] * (len(buffer) + 2),
                    "special_tokens_mask": [1, *special, 1],
                }
            )
            buffer.clear()
            special.clear()

    for document in documents:
        separate = bool(buffer)
        for sentence in document:
            for start in range(0, len(sentence), max_num_tokens):
                piece = sentence[start : start + max_num_tokens]
                if len(buffer) + separate + len(piece) > max_num_tokens:
                    flush()
                    separate = False
                if separate:
                    buffer.append(sep_token_id)
                    special.append(1)
                    separate = False
                buffer.extend(piece)
                special.extend([0] * len(piece))
    flush()
    return instances


def split_documents(documents: list, validation_split_percentage: float, seed: int) -> tuple[list, list]:
    """Hold out whole documents for evaluation (at least one when the percentage is positive)."""
    if validation_split_percentage <= 0:
        return documents, []
    if len(documents) < 2:
        raise ValueError(
            "validation_split_percentage needs at least two documents; give validation_files instead"
        )
    order = list(range(len(documents)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(documents) * validation_split_percentage / 100))
    held = set(order[:n_eval])
    return (
        [d for i, d in enumerate(documents) if i not in held],
        [d for i, d in enumerate(documents) if i in held],
    )


def instances_to_dataset(instances: list[dict]) -> datasets.Dataset:
    """A `datasets.Dataset` of instances, each with its position as `example_id` (the masking seed)."""
    if not instances:
        raise ValueError("no training instance could be built: the corpus holds no text")
    columns = {key: [inst[key] for inst in instances] for key in instances[0]}
    columns["example_id"] = list(range(len(instances)))
    return datasets.Dataset.from_dict(columns)


def build_instances(
    documents: list,
    tokenizer,
    max_seq_length: int,
    nsp: bool,
    short_seq_prob: float,
    seed: int,
    dupe_factor: int = 1,
) -> datasets.Dataset:
    """Documents → instances (NSP pairs or full-length segments) → `datasets.Dataset`.

    `dupe_factor` only applies to NSP pairs: full-length segments are the same on every pass (their masks
    are drawn anew each epoch anyway).
    """
    if nsp:
        instances = create_nsp_instances(
            documents,
            max_seq_length,
            tokenizer.cls_token_id,
            tokenizer.sep_token_id,
            short_seq_prob,
            seed,
            dupe_factor,
        )
    else:
        instances = create_full_instances(
            documents, max_seq_length, tokenizer.cls_token_id, tokenizer.sep_token_id
        )
    return instances_to_dataset(instances)


def _mask_seed(seed: int, epoch: int, example_id: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, example_id]).generate_state(1, dtype=np.uint64)[0] >> 1)


@dataclass
class PretrainingCollator(DataCollatorForLanguageModeling):
    """Pads a list of instances and masks them; returns the model's inputs plus `labels`.

    transformers' collator does the 80/10/10 replacement and whole-word masking; this subclass adds what
    pretraining needs on top: one generator per example, seeded from (`seed`, `epoch`, `example_id`),
    so a batch is masked the same way whatever its neighbours, the number of processes or a resume; and
    whole words found from the ``##`` continuation prefix instead of character offsets (instances are
    built from ids, so they have none). Set `epoch` before each epoch to draw new masks.

    Output: `input_ids`, `token_type_ids`, `attention_mask`, `labels` (-100 where not masked), all
    (batch, seq_len) with seq_len padded to `pad_to_multiple_of`, and `next_sentence_label` (batch,) in
    NSP mode.
    """

    seed: int = 0
    epoch: int = 0
    continuing_subword_prefix: str = "##"

    def __post_init__(self):
        super().__post_init__()
        if self.whole_word_mask:
            vocab = self.tokenizer.get_vocab()
            self._continues_word = np.zeros(len(self.tokenizer), dtype=bool)
            for token, index in vocab.items():
                self._continues_word[index] = token.startswith(self.continuing_subword_prefix)

    def _pseudo_offsets(self, input_ids: torch.Tensor) -> np.ndarray:
        """Character-like offsets that touch exactly when a piece continues the word before it.

        That is what the parent's whole-word grouping reads from real offsets.
        """
        continues = self._continues_word[input_ids.numpy()]
        # A new word leaves a one-character gap after the previous piece; a continuation leaves none.
        starts = np.arange(input_ids.shape[1]) + np.cumsum(~continues, axis=1)
        return np.stack([starts, starts + 1], axis=-1)

    def torch_call(self, examples: list[dict]) -> dict:
        example_ids = [int(e["example_id"]) for e in examples]
        lengths = [len(e["input_ids"]) for e in examples]
        features = [{k: v for k, v in e.items() if k != "example_id"} for e in examples]
        batch = pad_without_fast_tokenizer_warning(
            self.tokenizer, features, return_tensors="pt", pad_to_multiple_of=self.pad_to_multiple_of
        )
        special_tokens_mask = batch.pop("special_tokens_mask")
        input_ids = batch["input_ids"]
        labels = torch.full_like(input_ids, -100)
        # Each example is masked at its own length, so padding never changes the draws.
        for row, (example_id, length) in enumerate(zip(example_ids, lengths, strict=True)):
            self.generator = torch.Generator().manual_seed(_mask_seed(self.seed, self.epoch, example_id))
            ids = input_ids[row : row + 1, :length].clone()
            offsets = self._pseudo_offsets(ids) if self.whole_word_mask else None
            masked, row_labels = self.torch_mask_tokens(
                ids, special_tokens_mask=special_tokens_mask[row : row + 1, :length], offset_mapping=offsets
            )
            input_ids[row, :length] = masked[0]
            labels[row, :length] = row_labels[0]
        batch["labels"] = labels
        return dict(batch)
