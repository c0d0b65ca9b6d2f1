"""Does pretraining pay? Pretrain the mini BERT on WikiText-2, fine-tune it on SST-2, and compare with the
same fine-tuning from random initialisation.

0. The vocabulary (8,000 lowercase WordPiece): by default trained on the two WikiText-2 files plus the
   SST-2 training sentences (their text only, no labels), so that the words of the downstream task have
   pieces; `--vocab-text wikitext` trains it on WikiText-2 alone, as the recipe does by itself.
1. `pretrain()` with `recipes/pretrain-bert-mini.yaml` (4 layers × 256, MLM + NSP, dupe_factor 10) on the
   WikiText-2 copy in ../shared/data, for `--pretrain-steps` steps; the loss curve goes to
   `loss_curve.png`. By default it trains on both files there (test.txt + valid.txt, 455k words) and holds
   out 5% of the documents for the MLM/NSP evaluation (`--recipe-data` keeps the recipe's test/valid split
   instead). The pretraining text is WikiText-2 only.
2. `run_recipe("recipes/sst2-session-bert.yaml")` twice, on ../shared/data/sst2: from the pretrained
   weights, and from a random initialisation of the same architecture with the same vocabulary (the
   peer). Prints SST-2 dev accuracy of both and the gain.

    .venv/bin/python benchmarks/pretraining_real_run.py --pretrain-steps 5800 --pretrain-set bf16 true
        [--threads 2] [--vocab-text wikitext] [--pretrain-set KEY VALUE ...] [--finetune --key value ...]
"""

import argparse
import json
import shutil
from pathlib import Path

import torch
import yaml

from hf_session.finetune import load_recipe, run_recipe
from hf_session.pretraining import parse_pretraining_args, pretrain

REPO = Path(__file__).resolve().parents[1]
WORK = Path(__file__).resolve().parent / ".work" / "pretraining_real_run"
SHARED = REPO.parent / "shared" / "data"
SIZE_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
)


def plot_loss_curve(history_file: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = [json.loads(line) for line in history_file.read_text(encoding="utf-8").splitlines()]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("train/mlm_loss", "train MLM loss"), ("eval/mlm_loss", "held-out MLM loss")):
        points = [(e["step"], e[key]) for e in entries if key in e]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o" if key.startswith("eval") else None, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("BERT-mini pretraining on WikiText-2")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


def finetune(name: str, pretrained: Path, from_pretrained: bool, overrides: list[str]) -> float:
    recipe = load_recipe(REPO / "recipes" / "sst2-session-bert.yaml")
    config = json.loads((pretrained / "config.json").read_text(encoding="utf-8"))
    for key in ("model_type", "config_overrides", "tokenizer_vocab_size", "hub_dataset_id"):
        recipe.pop(key, None)
    if from_pretrained:
        recipe["model_name_or_path"] = str(pretrained)
    else:
        recipe["model_type"] = config["model_type"]
        recipe["tokenizer_name"] = str(pretrained)
        recipe["config_overrides"] = {key: config[key] for key in SIZE_KEYS}
    recipe["output_dir"] = str(WORK / name)
    shutil.rmtree(WORK / name, ignore_errors=True)
    result = run_recipe(recipe, ["--disable_tqdm", "true", *overrides])
    return result["metrics"]["validation"]["accuracy"]


def train_vocabulary(vocab_text: str) -> Path | None:
    """The pretraining vocabulary's folder, or None to let the recipe train one on its own files."""
    if vocab_text == "wikitext":
        return None
    import pandas as pd

    from hf_session import train_wordpiece

    sentences = WORK / "sst2-train-sentences.txt"
    sst2 = pd.read_csv(SHARED / "sst2" / "train.tsv", sep="\t", quoting=3, keep_default_na=False)
    sentences.write_text("\n".join(sst2["sentence"]) + "\n", encoding="utf-8")
    folder = WORK / "vocab-wikitext-sst2"
    train_wordpiece(
        files=[SHARED / "wikitext2" / "test.txt", SHARED / "wikitext2" / "valid.txt", sentences],
        vocab_size=8000,
        lowercase=True,
        output_dir=folder,
        overwrite=True,
    )
    return folder


def run_pretraining(args: argparse.Namespace, pretrained: Path) -> None:
    shutil.rmtree(pretrained, ignore_errors=True)
    overrides = [
        "--output_dir",
        str(pretrained),
        "--max_steps",
        str(args.pretrain_steps),
        "--report_to",
        "none",
    ]
    vocabulary = train_vocabulary(args.vocab_text)
    if vocabulary is not None and "tokenizer_name" not in dict(args.pretrain_set):
        overrides += ["--tokenizer_name", str(vocabulary)]
    overrides += [token for key, value in args.pretrain_set for token in (f"--{key}", value)]
    settings = yaml.safe_load((REPO / "recipes" / "pretrain-bert-mini.yaml").read_text(encoding="utf-8"))
    if not args.recipe_data:
        wikitext = SHARED / "wikitext2"
        settings["train_files"] = [str(wikitext / "test.txt"), str(wikitext / "valid.txt")]
        settings.pop("validation_files", None)
        settings["validation_split_percentage"] = 5.0
    config_file = WORK / "pretrain-config.yaml"
    config_file.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    result = pretrain(*parse_pretraining_args(config_file, overrides))
    plot_loss_curve(pretrained / "log_history.jsonl", WORK / "loss_curve.png")
    print(
        f"pretrained {result['global_step']} steps: {result['metrics']}; loss curve in {WORK / 'loss_curve.png'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-steps", type=int, default=5800)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--recipe-data", action="store_true", help="train on test.txt, evaluate on valid.txt")
    parser.add_argument(
        "--vocab-text",
        choices=["wikitext+sst2", "wikitext"],
        default="wikitext+sst2",
        help="text the 8k WordPiece vocabulary is trained on (the model is pretrained on WikiText-2 either way)",
    )
    parser.add_argument(
        "--pretrain-set",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="recipe override",
    )
    parser.add_argument(
        "--skip-pretrain", action="store_true", help="fine-tune the model an earlier run pretrained"
    )
    parser.add_argument(
        "--pretrained-learning-rate",
        type=float,
        default=1e-4,
        help="fine-tuning learning rate for the pretrained model (the random init keeps the recipe's 5e-4)",
    )
    parser.add_argument(
        "--finetune", nargs=argparse.REMAINDER, default=[], help="overrides for the SST-2 recipe"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    WORK.mkdir(parents=True, exist_ok=True)

    pretrained = WORK / "pretrain"
    if not args.skip_pretrain:
        run_pretraining(args, pretrained)

    accuracy = {
        "pretrained": finetune(
            "sst2-pretrained",
            pretrained,
            True,
            ["--learning_rate", str(args.pretrained_learning_rate), *args.finetune],
        ),
        "random init": finetune("sst2-random", pretrained, False, args.finetune),
    }
    for name, value in accuracy.items():  # run_recipe reports percentages
        print(f"SST-2 dev accuracy, {name:12}: {value:.2f}%")
    print(f"gain from pretraining: {accuracy['pretrained'] - accuracy['random init']:+.2f} points")


if __name__ == "__main__":
    main()
