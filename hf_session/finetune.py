"""Fine-tuning recipes: one YAML file → `HfArgumentParser` → `Trainer` / `Seq2SeqTrainer`.

A recipe is a flat YAML mapping whose keys are the fields of `ModelArguments`, `DataArguments` and
transformers' `TrainingArguments` (`Seq2SeqTrainingArguments` for translation), as in the
alignment-handbook. Adding a task means adding a recipe, not a script::

    task: text-classification
    model_type: session_bert          # a fresh model; or model_name_or_path: a folder / Hub id
    config_overrides: {hidden_size: 128, num_hidden_layers: 2}
    train_file: ../shared/data/sst2/train.tsv   # tokenizer_name absent: WordPiece trained on it
    validation_file: ../shared/data/sst2/dev.tsv
    text_column: sentence
    label_column: label
    output_dir: runs/sst2
    num_train_epochs: 3

    $ hf-session finetune recipes/sst2-session-bert.yaml --max_steps 10 --config_overrides.hidden_size 64

The run trains, evaluates on the validation (and test) split, saves model + tokenizer + `recipe.yaml`
+ a model card into `output_dir` (all at once: a failed run leaves no half-written folder), prints the
metrics table, and pushes to the Hub when the recipe says `push_to_hub: true`.
"""

import collections
import dataclasses
import difflib
import json
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from . import metrics as metrics_lib

# task → (Auto class, default metrics)
TASKS = {
    "text-classification": ("AutoModelForSequenceClassification", ["accuracy", "f1"]),
    "token-classification": ("AutoModelForTokenClassification", ["seqeval"]),
    "question-answering": ("AutoModelForQuestionAnswering", ["squad"]),
    "translation": ("AutoModelForSeq2SeqLM", ["sacrebleu"]),
}
# Metrics a task can compute locally (see hf_session.metrics); "hub:<name>" is always accepted.
TASK_METRICS = {
    "text-classification": {"accuracy", "f1", "precision", "recall"},
    "token-classification": {"seqeval"},
    "question-answering": {"squad"},
    "translation": {"sacrebleu"},
}
# Trainer defaults a recipe does not have to repeat: the final model is always saved, so intermediate
# checkpoints are opt-in, and nothing is reported to tracking services unless asked.
RUNNER_DEFAULTS = {"save_strategy": "no", "report_to": "none"}


@dataclass
class ModelArguments:
    """Which model and tokenizer to fine-tune."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "a pretrained model: local folder or Hub id (or use model_type)"}
    )
    model_type: str | None = field(
        default=None, metadata={"help": "train from scratch: a registered model type, e.g. session_bert"}
    )
    config_overrides: dict | None = field(
        default=None, metadata={"help": "config fields to set, e.g. {hidden_size: 128, cell_type: lstm}"}
    )
    tokenizer_name: str | None = field(
        default=None,
        metadata={
            "help": "tokenizer folder or Hub id; default: the model's, or a WordPiece trained on train_file"
        },
    )
    tokenizer_vocab_size: int = field(default=8000, metadata={"help": "size of a WordPiece trained here"})
    tokenizer_lowercase: bool = field(default=True, metadata={"help": "lower-case a WordPiece trained here"})
    trust_remote_code: bool = field(default=False, metadata={"help": "allow code from a model folder / Hub"})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "replace a non-empty output_dir"})

    def __post_init__(self):
        if (self.model_name_or_path is None) == (self.model_type is None):
            raise ValueError(
                "a recipe needs exactly one of model_name_or_path (pretrained) or model_type (fresh)"
            )
        if self.config_overrides is not None and not isinstance(self.config_overrides, dict):
            raise ValueError(f"config_overrides must be a mapping, got {self.config_overrides!r}")


@dataclass
class DataArguments:
    """The task, the data and how it is read, and the metrics."""

    task: str = field(default="", metadata={"help": f"one of {', '.join(TASKS)}"})
    dataset_name: str | None = field(default=None, metadata={"help": "a Hub dataset id (needs the Hub)"})
    dataset_config_name: str | None = field(default=None, metadata={"help": "the Hub dataset's config"})
    hub_dataset_id: str | None = field(
        default=None, metadata={"help": "Hub id of the data set behind local files, for the model card"}
    )
    train_file: str | None = field(
        default=None,
        metadata={
            "help": "csv/tsv/json(l) file; .conll for token-classification; SQuAD-format json for QA; "
            "for translation also parallel text files written as a pattern with {lang}, e.g. train.{lang}"
        },
    )
    validation_file: str | None = field(default=None, metadata={"help": "same format as train_file"})
    test_file: str | None = field(default=None, metadata={"help": "same format as train_file"})
    validation_split_percentage: int | None = field(
        default=None, metadata={"help": "without validation_file: hold out this % of the training data"}
    )
    text_column: str = field(default="text", metadata={"help": "text-classification: the text"})
    text_pair_column: str | None = field(default=None, metadata={"help": "text-classification: 2nd text"})
    label_column: str = field(default="label", metadata={"help": "text-classification: the label"})
    class_names: list[str] | None = field(
        default=None, metadata={"help": "names of label ids 0, 1, ... (default: the values in the data)"}
    )
    tokens_column: str = field(default="tokens", metadata={"help": "token-classification: the words"})
    tags_column: str = field(default="ner_tags", metadata={"help": "token-classification: the tags"})
    question_column: str = field(default="question", metadata={"help": "question-answering"})
    context_column: str = field(default="context", metadata={"help": "question-answering"})
    answers_column: str = field(default="answers", metadata={"help": "question-answering"})
    source_lang: str = field(default="en", metadata={"help": "translation: source column / {lang} value"})
    target_lang: str = field(default="de", metadata={"help": "translation: target column / {lang} value"})
    max_seq_length: int = field(default=128, metadata={"help": "tokens per input (longer ones are cut)"})
    max_target_length: int = field(default=64, metadata={"help": "translation: tokens per target"})
    doc_stride: int = field(default=64, metadata={"help": "question-answering: overlap of context windows"})
    max_answer_length: int = field(default=30, metadata={"help": "question-answering: longest answer"})
    max_train_samples: int | None = field(default=None, metadata={"help": "use the first N training rows"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "use the first N eval/test rows"})
    metrics: list[str] | None = field(
        default=None, metadata={"help": "metric names (see hf_session.metrics) or hub:<evaluate name>"}
    )

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}; got {self.task!r}")
        if (self.dataset_name is None) == (self.train_file is None):
            raise ValueError("a recipe needs exactly one of train_file (local data) or dataset_name (Hub)")
        if self.metrics is None:
            self.metrics = list(TASKS[self.task][1])
        for name in self.metrics:
            if not name.startswith("hub:") and name not in TASK_METRICS[self.task]:
                raise ValueError(
                    f"metric {name!r} is not available for {self.task}; choose from "
                    f"{sorted(TASK_METRICS[self.task])} or hub:<evaluate metric name>"
                )
        if self.validation_split_percentage is not None and not 0 < self.validation_split_percentage < 100:
            raise ValueError(
                f"validation_split_percentage must be in 1..99, got {self.validation_split_percentage}"
            )


def _training_arguments_class(task: str):
    from transformers import Seq2SeqTrainingArguments, TrainingArguments

    return Seq2SeqTrainingArguments if task == "translation" else TrainingArguments


def _parse_value(text: str) -> Any:
    """A command-line value read as YAML: ``3`` → 3, ``true`` → True, ``[a, b]`` → a list."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(recipe: dict, overrides: list[str]) -> dict:
    """Apply ``--key value`` (or ``--key=value``) pairs to a recipe; ``--a.b value`` sets a nested key."""
    recipe = dict(recipe)
    i = 0
    while i < len(overrides):
        item = overrides[i]
        if not item.startswith("--") or len(item) == 2:
            raise ValueError(f"expected --key value, got {item!r}")
        key, eq, value = item[2:].partition("=")
        if not eq:
            if i + 1 >= len(overrides):
                raise ValueError(f"--{key} needs a value")
            value = overrides[i + 1]
            i += 1
        i += 1
        head, _, rest = key.partition(".")
        if rest:
            nested = dict(recipe.get(head) or {})
            nested[rest] = _parse_value(value)
            recipe[head] = nested
        else:
            recipe[head] = _parse_value(value)
    return recipe


def load_recipe(path: str | os.PathLike) -> dict:
    """Read a recipe file: a YAML mapping of argument names to values."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe {str(path)!r} does not exist")
    recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(recipe, dict):
        raise ValueError(f"recipe {str(path)!r} must be a YAML mapping of argument names to values")
    return recipe


def parse_recipe(recipe: dict) -> tuple[ModelArguments, DataArguments, Any]:
    """`HfArgumentParser` over (ModelArguments, DataArguments, [Seq2Seq]TrainingArguments).

    Unknown keys are refused with the list of valid ones (and the closest match).
    """
    from transformers import HfArgumentParser

    task = recipe.get("task")
    if task not in TASKS:
        raise ValueError(f"the recipe's task must be one of {', '.join(TASKS)}; got {task!r}")
    if "output_dir" not in recipe:
        raise ValueError("the recipe needs an output_dir")
    classes = (ModelArguments, DataArguments, _training_arguments_class(task))
    groups = {cls.__name__: [f.name for f in dataclasses.fields(cls) if f.init] for cls in classes}
    valid = sorted(name for names in groups.values() for name in names)
    unknown = sorted(set(recipe) - set(valid))
    if unknown:
        hints = [
            f"{key!r} (did you mean {close[0]!r}?)"
            if (close := difflib.get_close_matches(key, valid, n=1))
            else repr(key)
            for key in unknown
        ]
        listing = "; ".join(f"{group}: {', '.join(sorted(names))}" for group, names in groups.items())
        raise ValueError(f"unknown recipe key(s): {', '.join(hints)}. Valid keys are those of {listing}")
    types = {name: hint for cls in classes for name, hint in typing.get_type_hints(cls).items()}
    recipe = {key: _as_number(key, value, types[key]) for key, value in recipe.items()}
    defaults = dict(RUNNER_DEFAULTS)
    if task == "translation":
        defaults["predict_with_generate"] = True  # BLEU scores generated text, not teacher-forced logits
        if recipe.get("predict_with_generate") is False:
            raise ValueError("translation is scored on generated text: predict_with_generate must be true")
    return HfArgumentParser(classes).parse_dict({**defaults, **recipe})


def _as_number(key: str, value: Any, hint) -> Any:
    """YAML reads ``1e-3`` (no dot) as a string; a float field takes it as the number it is."""
    if isinstance(value, str) and (hint is float or float in typing.get_args(hint)):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{key} must be a number, got {value!r}") from None
    return value


# --------------------------------------------------------------------------------------------- data


def read_conll(path: str | os.PathLike) -> dict[str, list]:
    """CoNLL columns (word ... tag, tab or space separated; blank line between sentences) → tokens/tags."""
    tokens, tags, sentence, sentence_tags = [], [], [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            parts = line.split()
            if not parts or line.startswith("-DOCSTART-"):
                if sentence:
                    tokens.append(sentence)
                    tags.append(sentence_tags)
                sentence, sentence_tags = [], []
                continue
            if len(parts) < 2:
                raise ValueError(f"{path}:{number}: expected 'word tag', got {line.rstrip()!r}")
            sentence.append(parts[0])
            sentence_tags.append(parts[-1])
    if sentence:
        tokens.append(sentence)
        tags.append(sentence_tags)
    if not tokens:
        raise ValueError(f"{path} holds no sentence")
    return {"tokens": tokens, "ner_tags": tags}


def read_squad(path: str | os.PathLike) -> list[dict]:
    """SQuAD-format json ({"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}) → flat rows."""
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    rows = []
    for article in document["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = qa.get("answers") or []
                rows.append(
                    {
                        "id": str(qa["id"]),
                        "title": article.get("title", ""),
                        "context": paragraph["context"],
                        "question": qa["question"],
                        "answers": {
                            "text": [a["text"] for a in answers],
                            "answer_start": [int(a["answer_start"]) for a in answers],
                        },
                    }
                )
    if not rows:
        raise ValueError(f"{path} holds no question")
    return rows


def _is_squad_json(path: str) -> bool:
    if not path.endswith(".json"):
        return False
    with open(path, encoding="utf-8") as handle:
        head = handle.read(4096)
    return '"data"' in head and '"paragraphs"' in head


def _load_split(path: str, data_args: DataArguments):
    import datasets

    if "{lang}" in path:  # parallel text: one file per language, line i of each is a pair
        columns = {}
        for lang in (data_args.source_lang, data_args.target_lang):
            file = path.format(lang=lang)
            if not os.path.isfile(file):
                raise FileNotFoundError(f"data file {file!r} does not exist")
            with open(file, encoding="utf-8") as handle:
                columns[lang] = [line.rstrip("\n") for line in handle]
        sizes = {lang: len(lines) for lang, lines in columns.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"parallel files {path!r} differ in length: {sizes}")
        return datasets.Dataset.from_dict(columns)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data file {path!r} does not exist")
    if path.endswith((".conll", ".bio", ".iob")) or path.endswith(".annotated"):
        return datasets.Dataset.from_dict(read_conll(path))
    if _is_squad_json(path):
        return datasets.Dataset.from_list(read_squad(path))
    suffix = Path(path).suffix
    if suffix in (".csv", ".tsv"):
        # QUOTE_NONE: reviews hold unbalanced quotes that the default quoting would swallow into one field.
        kwargs = {"delimiter": "\t", "quoting": 3} if suffix == ".tsv" else {}
        return datasets.load_dataset("csv", data_files=path, split="train", **kwargs)
    if suffix in (".json", ".jsonl"):
        return datasets.load_dataset("json", data_files=path, split="train")
    raise ValueError(
        f"cannot read {path!r}: use .csv, .tsv, .json, .jsonl, .conll or a text pattern with {{lang}}"
    )


def load_raw_datasets(data_args: DataArguments):
    """The train / validation / test splits the recipe names, as a `datasets.DatasetDict`."""
    import datasets

    if data_args.dataset_name is not None:
        raw = datasets.load_dataset(data_args.dataset_name, data_args.dataset_config_name)
        if "validation" not in raw and "test" in raw and data_args.validation_split_percentage is None:
            raw["validation"] = raw["test"]
    else:
        files = {
            "train": data_args.train_file,
            "validation": data_args.validation_file,
            "test": data_args.test_file,
        }
        raw = datasets.DatasetDict(
            {split: _load_split(path, data_args) for split, path in files.items() if path}
        )
    if data_args.validation_split_percentage is not None and "validation" not in raw:
        held = raw["train"].train_test_split(test_size=data_args.validation_split_percentage / 100, seed=0)
        raw["train"], raw["validation"] = held["train"], held["test"]
    for split, limit in (
        ("train", data_args.max_train_samples),
        ("validation", data_args.max_eval_samples),
        ("test", data_args.max_eval_samples),
    ):
        if split in raw and limit is not None:
            raw[split] = raw[split].select(range(min(limit, len(raw[split]))))
    return raw


def _require_columns(raw, columns: list[str], task: str) -> None:
    for split, dataset in raw.items():
        missing = [c for c in columns if c not in dataset.column_names]
        if missing:
            raise ValueError(
                f"{task}: the {split} data has no column(s) {missing}; its columns are {dataset.column_names}. "
                "Name the right ones in the recipe (e.g. text_column, label_column)."
            )


def _texts_for_vocabulary(raw, data_args: DataArguments) -> list[str]:
    train = raw["train"]
    task = data_args.task
    if task == "text-classification":
        columns = [data_args.text_column] + (
            [data_args.text_pair_column] if data_args.text_pair_column else []
        )
        return [t for c in columns for t in train[c] if t]
    if task == "token-classification":
        return [" ".join(words) for words in train[data_args.tokens_column]]
    if task == "question-answering":
        return list(dict.fromkeys(train[data_args.context_column])) + list(train[data_args.question_column])
    return [t for lang in (data_args.source_lang, data_args.target_lang) for t in train[lang] if t]


# -------------------------------------------------------------------------------------- preprocessing


def _drop_empty(raw, columns: list[str]):
    """Rows whose text is missing (an empty review in a tsv) cannot be scored; they are left out."""
    return raw.filter(lambda row: all(row[c] is not None and row[c] != "" for c in columns))


def _label_space(raw, data_args: DataArguments) -> list[str]:
    """Label names in id order: the recipe's `class_names`, or the sorted values seen in any split.

    Every split counts, so that a rare tag missing from (a slice of) the training data still gets an id
    and is scored as missed rather than refused.
    """
    if data_args.task == "token-classification":
        values = sorted(
            {tag for split in raw.values() for tags in split[data_args.tags_column] for tag in tags}
        )
        if "O" in values:  # "O" first, as CoNLL label lists usually are
            values.remove("O")
            values.insert(0, "O")
        return values
    values = sorted({v for split in raw.values() for v in split[data_args.label_column] if v is not None})
    if not values:
        raise ValueError(f"the {data_args.label_column!r} column holds no label")
    if data_args.class_names is not None:
        if not all(isinstance(v, int) for v in values) or max(values) >= len(data_args.class_names):
            raise ValueError(
                f"class_names {data_args.class_names} names ids 0..{len(data_args.class_names) - 1}, "
                f"but the labels in the data are {values[:20]}"
            )
        return list(data_args.class_names)
    if all(isinstance(v, int) for v in values):
        return [str(i) for i in range(max(values) + 1)]
    return [str(v) for v in values]


def _classification_features(raw, tokenizer, data_args: DataArguments, label_names: list[str]):
    text, pair, label = data_args.text_column, data_args.text_pair_column, data_args.label_column
    raw = _drop_empty(raw, [text, label] + ([pair] if pair else []))
    to_id = {name: i for i, name in enumerate(label_names)}

    def encode(batch):
        encoded = tokenizer(
            batch[text], batch[pair] if pair else None, truncation=True, max_length=data_args.max_seq_length
        )
        encoded["labels"] = [v if isinstance(v, int) else to_id[str(v)] for v in batch[label]]
        return encoded

    return raw.map(encode, batched=True, remove_columns=raw["train"].column_names)


def _token_classification_features(raw, tokenizer, data_args: DataArguments, label_names: list[str]):
    words, tags = data_args.tokens_column, data_args.tags_column
    to_id = {name: i for i, name in enumerate(label_names)}

    def encode(batch):
        encoded = tokenizer(
            batch[words], is_split_into_words=True, truncation=True, max_length=data_args.max_seq_length
        )
        labels = []
        for i, sentence_tags in enumerate(batch[tags]):
            previous, row = None, []
            for word in encoded.word_ids(i):
                # Only a word's first piece is scored; the other pieces and special tokens are ignored.
                row.append(-100 if word is None or word == previous else to_id[sentence_tags[word]])
                previous = word
            labels.append(row)
        encoded["labels"] = labels
        return encoded

    return raw.map(encode, batched=True, remove_columns=raw["train"].column_names)


def _qa_windows(tokenizer, questions, contexts, data_args: DataArguments):
    """Question + context pairs cut into overlapping windows of the context (SQuAD style), with offsets."""
    return tokenizer(
        [q.lstrip() for q in questions],
        contexts,
        truncation="only_second",
        max_length=data_args.max_seq_length,
        stride=data_args.doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )


def _qa_train_features(dataset, tokenizer, data_args: DataArguments):
    question, context, answers = data_args.question_column, data_args.context_column, data_args.answers_column

    def encode(batch):
        encoded = _qa_windows(tokenizer, batch[question], batch[context], data_args)
        sample_map = encoded.pop("overflow_to_sample_mapping")
        starts, ends = [], []
        for i, offsets in enumerate(encoded.pop("offset_mapping")):
            answer = batch[answers][sample_map[i]]
            sequence_ids = encoded.sequence_ids(i)
            first = sequence_ids.index(1)
            last = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
            start_char = answer["answer_start"][0]
            end_char = start_char + len(answer["text"][0])
            if offsets[first][0] > start_char or offsets[last][1] < end_char:
                starts.append(0)  # the answer is not in this window: point at [CLS]
                ends.append(0)
                continue
            start = first
            while start <= last and offsets[start][0] <= start_char:
                start += 1
            end = last
            while end >= first and offsets[end][1] >= end_char:
                end -= 1
            starts.append(start - 1)
            ends.append(end + 1)
        encoded["start_positions"], encoded["end_positions"] = starts, ends
        return encoded

    return dataset.map(encode, batched=True, remove_columns=dataset.column_names)


def _qa_eval_features(dataset, tokenizer, data_args: DataArguments):
    question, context = data_args.question_column, data_args.context_column

    def encode(batch):
        encoded = _qa_windows(tokenizer, batch[question], batch[context], data_args)
        sample_map = encoded.pop("overflow_to_sample_mapping")
        encoded["example_id"] = [batch["id"][s] for s in sample_map]
        # Offsets outside the context become None so that no answer is read from the question.
        encoded["offset_mapping"] = [
            [o if encoded.sequence_ids(i)[k] == 1 else None for k, o in enumerate(offsets)]
            for i, offsets in enumerate(encoded["offset_mapping"])
        ]
        return encoded

    return dataset.map(encode, batched=True, remove_columns=dataset.column_names)


def best_answers(examples, features, start_logits, end_logits, max_answer_length: int = 30):
    """The highest-scoring span (start + end logit) of each example over all its context windows.

    `start_logits`, `end_logits`: (num_features, seq_len) in the order of `features`, which carry
    `example_id` and `offset_mapping` (None outside the context). Returns {example id: answer text}.
    """
    from .qa import best_span

    offset_mappings = features["offset_mapping"]  # read each column once: a Dataset rebuilds it per access
    by_example = collections.defaultdict(list)
    for index, example_id in enumerate(features["example_id"]):
        by_example[example_id].append(index)
    answers = {}
    for example in examples:
        best_score, best_text = -np.inf, ""
        for index in by_example[example["id"]]:
            offsets = offset_mappings[index]
            starts, ends = start_logits[index][: len(offsets)], end_logits[index][: len(offsets)]
            span = best_span(starts, ends, [o is not None for o in offsets], max_answer_length)
            if span is None:
                continue
            s, e = span
            if starts[s] + ends[e] > best_score:
                best_score, best_text = starts[s] + ends[e], example["context"][offsets[s][0] : offsets[e][1]]
        answers[example["id"]] = best_text
    return answers


def _translation_features(raw, tokenizer, data_args: DataArguments):
    from .translation import preprocess_translation

    source, target = data_args.source_lang, data_args.target_lang

    def encode(batch):
        return preprocess_translation(
            tokenizer,
            batch[source],
            batch[target],
            max_source_length=data_args.max_seq_length,
            max_target_length=data_args.max_target_length,
        )

    return raw.map(encode, batched=True, remove_columns=raw["train"].column_names)


# ---------------------------------------------------------------------------------------------- metrics


def _hub_metric_inputs(task: str, predictions, references) -> dict:
    """The argument layout of `evaluate`'s metric of the same kind."""
    if task == "question-answering":
        return {
            "predictions": [{"id": k, "prediction_text": v} for k, v in predictions.items()],
            "references": [
                {"id": k, "answers": {"text": v, "answer_start": [0] * len(v)}} for k, v in references.items()
            ],
        }
    if task == "translation":
        return {"predictions": predictions, "references": [[r] for r in references]}
    return {"predictions": predictions, "references": references}


def _score(task: str, names: list[str], predictions, references) -> dict[str, float]:
    scores: dict[str, float] = {}
    local = [n for n in names if not n.startswith("hub:")]
    if local:
        if task == "text-classification":
            all_scores = metrics_lib.classification_scores(predictions, references)
            scores.update({n: all_scores[n] for n in local})
        elif task == "token-classification":
            scores.update(metrics_lib.seqeval_scores(predictions, references))
        elif task == "question-answering":
            scores.update(metrics_lib.squad_scores(predictions, references))
        else:
            scores.update(metrics_lib.bleu_score(predictions, references))
    for name in names:
        if name.startswith("hub:"):
            metric = name[4:]
            result = metrics_lib.load_hub_metric(metric)(**_hub_metric_inputs(task, predictions, references))
            scores.update(
                {
                    f"hub_{metric}" if key == metric else f"hub_{metric}_{key}": float(value)
                    for key, value in result.items()
                    if isinstance(value, (int, float))
                }
            )
    return scores


def build_compute_metrics(task: str, names: list[str], tokenizer=None, label_names=None, references=None):
    """`compute_metrics(EvalPrediction) -> dict` for `Trainer`, scoring with `hf_session.metrics`.

    `references`: for question-answering ``(examples, features, max_answer_length)`` of the split
    evaluated; for translation the raw target sentences, which BLEU compares with the decoded output
    (not the tokenized labels, which the vocabulary may have lower-cased or cut).
    """

    def compute_metrics(prediction) -> dict[str, float]:
        logits, labels = prediction.predictions, prediction.label_ids
        if task == "text-classification":
            logits = logits[0] if isinstance(logits, tuple) else logits
            return _score(task, names, logits.argmax(-1).tolist(), labels.tolist())
        if task == "token-classification":
            logits = logits[0] if isinstance(logits, tuple) else logits
            predicted, gold = [], []
            for row_logits, row_labels in zip(logits.argmax(-1), labels, strict=True):
                keep = row_labels != -100
                predicted.append([label_names[i] for i in row_logits[keep]])
                gold.append([label_names[i] for i in row_labels[keep]])
            return _score(task, names, predicted, gold)
        if task == "question-answering":
            examples, features, max_answer_length = references
            start_logits, end_logits = logits[:2]
            predicted = best_answers(examples, features, start_logits, end_logits, max_answer_length)
            gold = {e["id"]: e["answers"]["text"] for e in examples}
            return _score(task, names, predicted, gold)
        generated = np.where(logits != -100, logits, tokenizer.pad_token_id)
        predicted = [t.strip() for t in tokenizer.batch_decode(generated, skip_special_tokens=True)]
        return _score(task, names, predicted, list(references))

    return compute_metrics


# ------------------------------------------------------------------------------------------ the runner


def _load_tokenizer(model_args: ModelArguments, texts_for_vocabulary):
    from transformers import AutoTokenizer

    from .tokenization import train_wordpiece

    source = model_args.tokenizer_name or model_args.model_name_or_path
    if source is not None:
        return AutoTokenizer.from_pretrained(source, trust_remote_code=model_args.trust_remote_code)
    return train_wordpiece(
        texts=texts_for_vocabulary(),
        vocab_size=model_args.tokenizer_vocab_size,
        lowercase=model_args.tokenizer_lowercase,
    )


def _build_model(model_args: ModelArguments, data_args: DataArguments, tokenizer, label_names):
    import transformers

    auto_class = getattr(transformers, TASKS[data_args.task][0])
    label_kwargs = {}
    if label_names is not None:
        label_kwargs = {
            "num_labels": len(label_names),
            "id2label": dict(enumerate(label_names)),
            "label2id": {name: i for i, name in enumerate(label_names)},
        }
    overrides = dict(model_args.config_overrides or {})
    source = model_args.model_name_or_path or model_args.model_type
    if model_args.model_name_or_path is not None:
        base = transformers.AutoConfig.from_pretrained(
            model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code
        )
    else:
        base = transformers.AutoConfig.for_model(model_args.model_type)
    # A config takes unknown keyword arguments silently; a misspelt size would train the default model.
    unknown = sorted(key for key in overrides if not hasattr(base, key))
    if unknown:
        fields = sorted(f.name for f in dataclasses.fields(base)) if dataclasses.is_dataclass(base) else []
        raise ValueError(
            f"config_overrides {unknown} are not fields of {type(base).__name__} ({source})"
            + (f"; its fields are {', '.join(fields)}" if fields else "")
        )
    if model_args.model_name_or_path is not None:
        config = transformers.AutoConfig.from_pretrained(
            model_args.model_name_or_path,
            trust_remote_code=model_args.trust_remote_code,
            **label_kwargs,
            **overrides,
        )
        return auto_class.from_pretrained(
            model_args.model_name_or_path, config=config, trust_remote_code=model_args.trust_remote_code
        )
    special = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
    if data_args.task == "translation":
        from .translation import translation_special_ids

        special.update(translation_special_ids(tokenizer))
    config = transformers.AutoConfig.for_model(
        model_args.model_type, **{**special, **label_kwargs, **overrides}
    )
    return auto_class.from_config(config)


def print_metrics_table(results: dict[str, dict[str, float]]) -> str:
    """Print (and return) a table with one row per metric and one column per split."""
    splits = list(results)
    names = list(dict.fromkeys(n for split in splits for n in results[split]))
    width = max([len("metric")] + [len(n) for n in names])
    lines = [f"| {'metric':<{width}} | " + " | ".join(f"{s:>10}" for s in splits) + " |"]
    lines.append(f"|{'-' * (width + 2)}|" + "|".join("-" * 12 for _ in splits) + "|")
    for name in names:
        cells = [f"{results[s][name]:>10.2f}" if name in results[s] else f"{'':>10}" for s in splits]
        lines.append(f"| {name:<{width}} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    return table


# Metrics Trainer reports that are speeds and counters, not scores; kept out of the results table and card.
_NOT_SCORES = ("runtime", "samples_per_second", "steps_per_second", "epoch", "model_preparation_time")


def _split_scores(raw_metrics: dict, prefix: str) -> dict[str, float]:
    scores = {}
    for key, value in raw_metrics.items():
        name = key[len(prefix) + 1 :] if key.startswith(prefix + "_") else key
        if name not in _NOT_SCORES:
            scores[name] = float(value)
    return scores


def run_recipe(recipe: dict | str | os.PathLike, overrides: list[str] | None = None) -> dict:
    """Fine-tune as the recipe says; return its `output_dir`, `metrics` ({split: {name: value}}), the
    `recipe` as run (overrides applied) and Trainer's `log_history`.

    `recipe`: a path to a YAML recipe or the mapping itself; `overrides`: ``["--key", "value", ...]``.
    """
    from transformers import (
        DataCollatorForSeq2Seq,
        DataCollatorForTokenClassification,
        DataCollatorWithPadding,
        Seq2SeqTrainer,
        Trainer,
        set_seed,
    )

    from . import hub
    from .utils import atomic_output_dir, check_output_dir

    recipe_file = None
    if not isinstance(recipe, dict):
        recipe_file = str(recipe)
        recipe = load_recipe(recipe)
    recipe = apply_overrides(recipe, overrides or [])
    model_args, data_args, training_args = parse_recipe(recipe)
    output_dir = training_args.output_dir
    check_output_dir(output_dir, model_args.overwrite_output_dir)  # before any training, not after
    if training_args.push_to_hub and not training_args.hub_model_id:
        raise ValueError("push_to_hub: true needs a hub_model_id (e.g. your-name/sst2-session-bert)")
    set_seed(training_args.seed)

    task = data_args.task
    raw = load_raw_datasets(data_args)
    if "train" not in raw:
        raise ValueError("the recipe names no training data (train_file or a dataset with a train split)")
    required = {
        "text-classification": [data_args.text_column, data_args.label_column]
        + ([data_args.text_pair_column] if data_args.text_pair_column else []),
        "token-classification": [data_args.tokens_column, data_args.tags_column],
        "question-answering": [
            "id",
            data_args.question_column,
            data_args.context_column,
            data_args.answers_column,
        ],
        "translation": [data_args.source_lang, data_args.target_lang],
    }[task]
    _require_columns(raw, required, task)
    tokenizer = _load_tokenizer(model_args, lambda: _texts_for_vocabulary(raw, data_args))

    label_names = None
    references = {}  # split -> what its predictions are scored against, when labels do not say it
    if task == "text-classification":
        label_names = _label_space(raw, data_args)
        features = _classification_features(raw, tokenizer, data_args, label_names)
        collator = DataCollatorWithPadding(tokenizer)
    elif task == "token-classification":
        label_names = _label_space(raw, data_args)
        features = _token_classification_features(raw, tokenizer, data_args, label_names)
        collator = DataCollatorForTokenClassification(tokenizer)
    elif task == "question-answering":
        features = {"train": _qa_train_features(raw["train"], tokenizer, data_args)}
        for split in ("validation", "test"):
            if split in raw:
                split_features = _qa_eval_features(raw[split], tokenizer, data_args)
                references[split] = (raw[split], split_features, data_args.max_answer_length)
                features[split] = split_features.remove_columns(["example_id", "offset_mapping"])
        collator = DataCollatorWithPadding(tokenizer)
    else:
        raw = _drop_empty(raw, [data_args.source_lang, data_args.target_lang])
        features = _translation_features(raw, tokenizer, data_args)
        references = {split: raw[split][data_args.target_lang] for split in raw}

    model = _build_model(model_args, data_args, tokenizer, label_names)
    if task == "translation":
        collator = DataCollatorForSeq2Seq(tokenizer, model=model)

    def compute_metrics_for(split):
        return build_compute_metrics(task, data_args.metrics, tokenizer, label_names, references.get(split))

    # The token must not end up in the model folder, which may be pushed.
    saved_recipe = {key: value for key, value in recipe.items() if key != "hub_token"}
    results: dict[str, dict[str, float]] = {}
    with atomic_output_dir(output_dir, model_args.overwrite_output_dir) as tmp:
        # Trainer writes (checkpoints, logs) into the temporary folder, which becomes output_dir only
        # once the model, tokenizer and card are all saved. The push comes after, from the final folder.
        run_args = dataclasses.replace(training_args, output_dir=str(tmp), push_to_hub=False)
        trainer_class = Seq2SeqTrainer if task == "translation" else Trainer
        trainer = trainer_class(
            model=model,
            args=run_args,
            train_dataset=features["train"],
            eval_dataset=features.get("validation"),
            processing_class=tokenizer,
            data_collator=collator,
            compute_metrics=None if task == "question-answering" else compute_metrics_for("validation"),
        )
        # `do_train: false` (TrainingArguments' own flag, honoured only when the recipe sets it) evaluates the
        # model as it is, e.g. a checkpoint trained elsewhere, through the recipe's metrics.
        train_loss = None
        if recipe.get("do_train", True) is not False:
            train_loss = float(trainer.train().training_loss)
        for split in ("validation", "test"):
            if split not in features:
                continue
            prefix = "eval" if split == "validation" else "test"
            if task == "question-answering":
                # Answers are scored as text spans of whole examples, not from labels of the windows the
                # model sees, so Trainer (which scores only batches with labels) just predicts.
                predicted = trainer.predict(features[split], metric_key_prefix=prefix)
                results[split] = compute_metrics_for(split)(predicted)
            else:
                trainer.compute_metrics = compute_metrics_for(split)
                results[split] = _split_scores(
                    trainer.evaluate(features[split], metric_key_prefix=prefix), prefix
                )
        trainer.save_model(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / "recipe.yaml").write_text(
            yaml.safe_dump(saved_recipe, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        hub.write_model_card(
            tmp,
            model=trainer.model,
            tokenizer=tokenizer,
            task=task,
            results=results,
            recipe=saved_recipe,
            metric_names=data_args.metrics,
            recipe_file=recipe_file,
            train_rows=len(raw["train"]) if train_loss is not None else None,
            train_loss=train_loss,
            model_name=training_args.hub_model_id or Path(output_dir).name,
        )
    print(f"\nsaved the fine-tuned model, tokenizer and model card to {output_dir}")
    if results:
        print_metrics_table(results)
    if training_args.push_to_hub:
        url = hub.push_model(output_dir, training_args.hub_model_id, token=training_args.hub_token)
        print(f"pushed to {url}")
    return {
        "output_dir": output_dir,
        "metrics": results,
        "recipe": saved_recipe,
        "log_history": trainer.state.log_history,
    }
