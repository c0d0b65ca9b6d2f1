"""`hf-session pretrain CONFIG.yaml [--key value ...] [--resume latest|PATH]`."""

import argparse


def add_parser(subparsers) -> None:
    pretrain = subparsers.add_parser(
        "pretrain",
        help="pretrain a BERT (MLM + NSP) from a YAML recipe",
        description="Pretrain a BERT from a YAML recipe (see recipes/pretrain-bert-*.yaml). Any key of the "
        "recipe can be overridden as --key value. Several processes: accelerate launch or torchrun with "
        "`-m hf_session pretrain ...`.",
    )
    pretrain.add_argument("config", help="YAML recipe")
    pretrain.add_argument(
        "--resume", metavar="latest|PATH", help="continue from the latest or a given checkpoint"
    )
    pretrain.add_argument(
        "overrides", nargs=argparse.REMAINDER, help="--key value pairs overriding the recipe"
    )
    pretrain.set_defaults(func=_run_pretrain)


def _run_pretrain(args) -> int:
    from ..pretraining import parse_pretraining_args, pretrain

    # Everything after CONFIG lands in `overrides`, --resume included when it comes later.
    overrides, resume = list(args.overrides), args.resume
    if "--resume" in overrides:
        at = overrides.index("--resume")
        if at + 1 >= len(overrides):
            raise ValueError("--resume needs a value: latest or a checkpoint folder")
        resume = overrides[at + 1]
        del overrides[at : at + 2]
    if resume:
        overrides += ["--resume_from_checkpoint", resume]
    model_args, data_args, training_args = parse_pretraining_args(args.config, overrides)
    result = pretrain(model_args, data_args, training_args)
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in result["metrics"].items() if k != "step")
    print(f"step {result['global_step']}: {metrics}")
    print(f"saved model and tokenizer to {training_args.output_dir}")
    return 0
