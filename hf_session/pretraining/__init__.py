"""BERT pretraining (MLM + NSP) with one Accelerate loop: `data.py` builds and masks the instances,
`train.py` runs the loop, `arguments.py` reads the YAML recipe."""

from .arguments import DataArguments, ModelArguments, PretrainingArguments, parse_pretraining_args
from .data import PretrainingCollator, create_full_instances, create_nsp_instances
from .train import CheckpointError, pretrain

__all__ = [
    "CheckpointError",
    "DataArguments",
    "ModelArguments",
    "PretrainingArguments",
    "PretrainingCollator",
    "create_full_instances",
    "create_nsp_instances",
    "parse_pretraining_args",
    "pretrain",
]
