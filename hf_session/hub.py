"""Model cards and pushing to the Hugging Face Hub.

`write_model_card` writes the README.md the Hub shows: YAML metadata the Hub indexes (library_name,
pipeline_tag, tags, datasets, metrics and a `model-index` with the results) and a body that says what
the model is, how it was trained and how to load it with or without `import hf_session`.

`push_model` uploads a saved model folder (weights, config, tokenizer, the model's code files for
`trust_remote_code`, card, recipe) in one commit. Without a token, or without a reachable Hub, it
raises one `OSError` that says so; the local folder is only read, never changed.
"""

import os
from pathlib import Path

from huggingface_hub import CommitOperationAdd, EvalResult, HfApi, ModelCard, ModelCardData, get_token

# Our task names are the Hub's pipeline tags; the model-index wants a human-readable task name too.
TASK_NAMES = {
    "text-classification": "Text Classification",
    "token-classification": "Token Classification",
    "question-answering": "Question Answering",
    "translation": "Translation",
}
# Recipe keys worth repeating in the card's training section (the whole recipe is in recipe.yaml).
KEY_ARGUMENTS = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "warmup_steps",
    "weight_decay",
    "max_seq_length",
    "seed",
)
# Files a model folder may hold that are not part of the model (Trainer checkpoints and logs).
_NOT_UPLOADED = ("checkpoint-", "runs", ".")


def _parameter_count(model) -> str:
    count = sum(p.numel() for p in model.parameters())
    return f"{count / 1e6:.2f}M" if count >= 1e5 else f"{count / 1e3:.1f}k"


def _architecture_lines(model, tokenizer) -> list[str]:
    config = model.config
    shape = [
        f"{name}={getattr(config, name)}"
        for name in (
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "cell_type",
            "embedding_size",
            "num_layers",
            "bidirectional",
        )
        if getattr(config, name, None) is not None
    ]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    kind = type(backend.model).__name__ if backend is not None else type(tokenizer).__name__
    vocabulary = f"{len(tokenizer):,} tokens ({kind})"
    return [
        f"- **Architecture:** `{type(model).__name__}` (model type `{config.model_type}`), "
        f"{_parameter_count(model)} parameters" + (f"; {', '.join(shape)}" if shape else ""),
        f"- **Vocabulary:** {vocabulary}",
    ]


def _results_table(results: dict[str, dict[str, float]]) -> list[str]:
    splits = list(results)
    names = list(dict.fromkeys(n for split in splits for n in results[split]))
    lines = ["| metric | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    for name in names:
        cells = [f"{results[s][name]:.2f}" if name in results[s] else "" for s in splits]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _usage(model, task: str, repo: str) -> list[str]:
    auto_class = {
        "text-classification": "AutoModelForSequenceClassification",
        "token-classification": "AutoModelForTokenClassification",
        "question-answering": "AutoModelForQuestionAnswering",
        "translation": "AutoModelForSeq2SeqLM",
    }[task]
    custom = bool(getattr(model.config, "auto_map", None))
    lines = ["```python", f"from transformers import AutoTokenizer, {auto_class}", ""]
    if custom:
        lines += ["import hf_session  # registers the model family with the Auto classes", ""]
    lines += [
        f'tokenizer = AutoTokenizer.from_pretrained("{repo}")',
        f'model = {auto_class}.from_pretrained("{repo}")',
        "```",
    ]
    if custom:
        lines += [
            "",
            "Without hf_session installed, the code files in this repository are used instead:",
            "",
            "```python",
            f'tokenizer = AutoTokenizer.from_pretrained("{repo}", trust_remote_code=True)',
            f'model = {auto_class}.from_pretrained("{repo}", trust_remote_code=True)',
            "```",
        ]
    if task in ("text-classification", "token-classification"):
        lines += [
            "",
            "```python",
            "from transformers import pipeline",
            "",
            f'classifier = pipeline("{task}", model="{repo}"'
            + (", trust_remote_code=True" if custom else "")
            + ")",
            "```",
        ]
    if task == "translation":
        lines += ["", "```python", 'batch = tokenizer(["A dog runs in the park."], return_tensors="pt")']
        lines += [
            "print(tokenizer.batch_decode(model.generate(**batch, num_beams=5), skip_special_tokens=True))"
        ]
        lines += ["```"]
    return lines


def write_model_card(
    output_dir: str | os.PathLike,
    *,
    model,
    tokenizer,
    task: str,
    results: dict[str, dict[str, float]],
    recipe: dict,
    recipe_file: str | None = None,
    train_rows: int | None = None,
    train_loss: float | None = None,
    model_name: str | None = None,
    metric_names: list[str] | None = None,
) -> ModelCard:
    """Write `output_dir/README.md`: Hub metadata + what the model is, how it was trained, its results.

    `results`: ``{split: {metric: value}}`` as `run_recipe` computes them (e.g. ``{"validation":
    {"accuracy": 81.2}}``). `model_name`: the Hub repository id or the name the card uses (default: the
    folder name). `metric_names`: the metrics metadata (default: the recipe's `metrics`).
    """
    if task not in TASK_NAMES:
        raise ValueError(f"task must be one of {', '.join(TASK_NAMES)}; got {task!r}")
    output_dir = Path(output_dir)
    name = model_name or output_dir.name
    data = recipe.get("dataset_name") or recipe.get("hub_dataset_id")
    data_files = [recipe[k] for k in ("train_file", "validation_file", "test_file") if recipe.get(k)]
    # Local files are named by their folder (they may be a derived copy of the Hub data set).
    data_label = Path(data_files[0]).parent.name if data_files else data
    eval_results = [
        EvalResult(
            task_type=task,
            task_name=TASK_NAMES[task],
            dataset_type=data or data_label,
            dataset_name=data_label,
            dataset_split=split,
            metric_type=metric,
            metric_name=metric,
            metric_value=round(value, 4),
        )
        for split, scores in results.items()
        for metric, value in scores.items()
        if metric != "loss"
    ]
    metadata = ModelCardData(
        library_name="transformers",
        pipeline_tag=task,
        tags=["hf-session", model.config.model_type, task],
        datasets=[data] if data else None,
        metrics=sorted({m.split(":")[-1] for m in metric_names or recipe.get("metrics") or []}) or None,
        model_name=name,
        eval_results=eval_results or None,
    )
    arguments = [f"`{k}={recipe[k]}`" for k in KEY_ARGUMENTS if k in recipe]
    trained_on = ", ".join(f"`{f}`" for f in data_files) or data
    if data and data_files:
        trained_on += f" (the data set `{data}` on the Hub, or a copy derived from it)"
    body = [
        f"# {name}",
        "",
        f"A {TASK_NAMES[task].lower()} model fine-tuned with [hf-session](https://github.com/hf-session/hf-session), "
        "the classic NLP stack as Hugging Face models.",
        "",
        "## Model",
        "",
        *_architecture_lines(model, tokenizer),
        "",
        "## Training",
        "",
        f"- **Data:** {trained_on}" + (f" ({train_rows:,} training rows)" if train_rows is not None else ""),
        f"- **Recipe:** `{Path(recipe_file).name if recipe_file else 'recipe.yaml'}` (the full recipe is in "
        "`recipe.yaml`; rerun it with `hf-session finetune recipe.yaml`)",
    ]
    if recipe.get("model_type"):
        body.append(f"- **Initialisation:** from scratch (`model_type: {recipe['model_type']}`)")
    elif recipe.get("model_name_or_path"):
        body.append(f"- **Initialisation:** `{recipe['model_name_or_path']}`")
    if arguments:
        body.append(f"- **Key arguments:** {', '.join(arguments)}")
    if train_loss is not None:
        body.append(f"- **Final training loss:** {train_loss:.4f}")
    if recipe.get("do_train") is False:
        body.append(
            "- **Evaluation only:** this recipe run (`do_train: false`) scored the model without training it"
        )
    body += ["", "## Results", ""]
    body += _results_table(results) if results else ["No evaluation split was given."]
    body += ["", "## How to use", "", *_usage(model, task, name), ""]
    card = ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n" + "\n".join(body))
    card.save(output_dir / "README.md")
    return card


def model_files(model_dir: str | os.PathLike) -> list[str]:
    """The files `push_model` uploads: everything in the folder except Trainer checkpoints, logs, dotfiles."""
    model_dir = Path(model_dir)
    files = []
    for path in sorted(model_dir.rglob("*")):
        relative = path.relative_to(model_dir)
        if path.is_file() and not relative.parts[0].startswith(_NOT_UPLOADED):
            files.append(relative.as_posix())
    return files


def push_model(
    model_dir: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload model with hf-session",
) -> str:
    """Upload a saved model folder to the Hub repository `repo_id` in one commit; return the commit URL.

    Raises `OSError` with one clear message when there is no token (argument, `HF_TOKEN` or
    `hf auth login`) or the Hub cannot be reached; `model_dir` is never modified.
    """
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{str(model_dir)!r} is not a saved model folder (no config.json)")
    if not repo_id or repo_id.count("/") > 1:
        raise ValueError(f"repo_id must look like 'user/model-name', got {repo_id!r}")
    token = token or get_token()
    if not token:
        raise OSError(
            "no Hugging Face token: run `hf auth login`, set HF_TOKEN, or pass --token; "
            f"the local model in {str(model_dir)!r} is unchanged"
        )
    files = model_files(model_dir)
    api = HfApi(token=token)
    operations = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(model_dir / f)) for f in files]
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.create_commit(repo_id, operations=operations, commit_message=commit_message)
    except Exception as err:  # httpx / HfHubHTTPError / OfflineModeIsEnabled / auth errors
        raise OSError(
            f"could not push to the Hub repository {repo_id!r} ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
            f"the local model in {str(model_dir)!r} is unchanged"
        ) from err
    return commit.commit_url
