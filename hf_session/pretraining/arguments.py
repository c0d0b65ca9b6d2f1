"""Pretraining settings: three dataclasses read by `HfArgumentParser` from a YAML file plus `--key value`.

Names are transformers' wherever one exists (BERT's config names for the model, `TrainingArguments`'
names for the loop), so a recipe reads like the `run_mlm.py` command line it replaces.
"""

import os
from dataclasses import dataclass, field, fields

import yaml
from transformers import HfArgumentParser


@dataclass
class ModelArguments:
    """Which model to build and how big (ignored when resuming: the checkpoint holds the weights)."""

    model_type: str = field(
        default="session_bert",
        metadata={"help": "AutoConfig model type: session_bert, or bert for transformers'"},
    )
    tokenizer_name: str | None = field(
        default=None,
        metadata={
            "help": "tokenizer folder; if unset, a WordPiece vocabulary of vocab_size is trained on the text"
        },
    )
    vocab_size: int = field(default=8000, metadata={"help": "size of the WordPiece vocabulary trained here"})
    lowercase: bool = field(default=True, metadata={"help": "lower-case the trained vocabulary"})
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 512
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1


@dataclass
class DataArguments:
    """Where the text is and how instances are built and masked."""

    train_files: list[str] | None = field(
        default=None, metadata={"help": "text files: one sentence or paragraph per line, documents apart"}
    )
    validation_files: list[str] | None = field(default=None, metadata={"help": "held-out text files"})
    dataset_name: str | None = field(
        default=None,
        metadata={"help": "instead of files: a `datasets` name or a folder saved with save_to_disk"},
    )
    dataset_config_name: str | None = None
    dataset_split: str = "train"
    text_column: str = "text"
    validation_split_percentage: float = field(
        default=5.0, metadata={"help": "share of documents held out when no validation_files are given"}
    )
    max_seq_length: int = 128
    nsp: bool = field(
        default=True,
        metadata={"help": "sentence pairs with next-sentence labels; false: full-length MLM only"},
    )
    short_seq_prob: float = field(
        default=0.1, metadata={"help": "share of NSP instances with a shorter target"}
    )
    dupe_factor: int = field(
        default=1,
        metadata={
            "help": "NSP: build pairs from the corpus this many times, each with other random splits "
            "(Google's BERT uses 10); the training set grows by this factor"
        },
    )
    split_sentences: bool = field(default=True, metadata={"help": "split lines into sentences at . ! ?"})
    mlm_probability: float = 0.15
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    whole_word_mask: bool = False
    pad_to_multiple_of: int | None = 8
    preprocessing_num_workers: int | None = None
    cache_dir: str | None = field(
        default=None, metadata={"help": "`datasets` cache (default: HF_DATASETS_CACHE)"}
    )


@dataclass
class PretrainingArguments:
    """The loop; `TrainingArguments`' names and meanings."""

    output_dir: str | None = None
    max_steps: int = 1000
    per_device_train_batch_size: int = 32
    per_device_eval_batch_size: int = 64
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-6
    max_grad_norm: float = 1.0
    lr_scheduler_type: str = "linear"
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    logging_steps: int = 50
    eval_steps: int = 500
    save_steps: int = 500
    save_total_limit: int = 2
    seed: int = 42
    bf16: bool = False
    fp16: bool = False
    use_cpu: bool = False
    report_to: str = field(default="tensorboard", metadata={"help": "tensorboard or none"})
    dataloader_num_workers: int = 0
    disable_tqdm: bool = False
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "'latest' or a checkpoint folder to continue from"}
    )

    def __post_init__(self):
        positive = ("max_steps", "per_device_train_batch_size", "per_device_eval_batch_size")
        positive += (
            "gradient_accumulation_steps",
            "logging_steps",
            "eval_steps",
            "save_steps",
            "save_total_limit",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.bf16 and self.fp16:
            raise ValueError("choose one of bf16 and fp16")
        if self.report_to not in ("tensorboard", "none"):
            raise ValueError(f"report_to must be 'tensorboard' or 'none', got {self.report_to!r}")


ARGUMENT_CLASSES = (ModelArguments, DataArguments, PretrainingArguments)


def valid_keys() -> list[str]:
    return sorted(f.name for cls in ARGUMENT_CLASSES for f in fields(cls))


def _as_command_line(settings: dict) -> list[str]:
    """YAML settings as `--key value` tokens, so they get the same type conversion as the command line."""
    tokens = []
    for key, value in settings.items():
        if value is None:
            continue
        tokens.append(f"--{key}")
        if isinstance(value, (list, tuple)):
            tokens.extend(str(v) for v in value)
        else:
            tokens.append(str(value).lower() if isinstance(value, bool) else str(value))
    return tokens


def parse_pretraining_args(
    config_file: str | os.PathLike | None = None, overrides: list[str] | None = None
) -> tuple[ModelArguments, DataArguments, PretrainingArguments]:
    """Read the YAML `config_file`, then apply `overrides` (``["--max_steps", "10", ...]``, later wins).

    Unknown keys, in the file or on the command line, raise one ValueError that lists the valid ones.
    """
    settings = {}
    if config_file is not None:
        if not os.path.isfile(config_file):
            raise FileNotFoundError(f"config file {str(config_file)!r} does not exist")
        with open(config_file, encoding="utf-8") as handle:
            try:
                settings = yaml.safe_load(handle) or {}
            except yaml.YAMLError as err:
                raise ValueError(f"config file {str(config_file)!r} is not valid YAML: {err}") from None
        if not isinstance(settings, dict):
            raise ValueError(f"config file {str(config_file)!r} must hold a mapping of key: value")
        unknown = sorted(set(settings) - set(valid_keys()))
        if unknown:
            raise ValueError(
                f"unknown key(s) {', '.join(unknown)} in {str(config_file)!r}; valid keys: {', '.join(valid_keys())}"
            )
    parser = HfArgumentParser(ARGUMENT_CLASSES)
    *parsed, remaining = parser.parse_args_into_dataclasses(
        args=_as_command_line(settings) + list(overrides or []), return_remaining_strings=True
    )
    if remaining:
        raise ValueError(
            f"unknown option(s) {' '.join(remaining)}; valid keys (as --key value): {', '.join(valid_keys())}"
        )
    return tuple(parsed)
