"""`hf-session finetune RECIPE.yaml [--key value ...]`: run a fine-tuning recipe."""

import argparse


def add_parser(subparsers) -> None:
    finetune = subparsers.add_parser(
        "finetune",
        help="fine-tune a model as a YAML recipe says (Trainer / Seq2SeqTrainer)",
        description="Train, evaluate and save (model, tokenizer, model card) as the recipe says. Any recipe key "
        "can be overridden: --max_steps 10 --output_dir runs/try --config_overrides.hidden_size 64",
    )
    finetune.add_argument("recipe", help="a YAML recipe, e.g. recipes/sst2-session-bert.yaml")
    finetune.add_argument(
        "overrides", nargs=argparse.REMAINDER, help="--key value pairs that replace recipe keys"
    )
    finetune.set_defaults(func=_run_finetune)


def _run_finetune(args) -> int:
    from ..finetune import run_recipe

    run_recipe(args.recipe, args.overrides)
    return 0
