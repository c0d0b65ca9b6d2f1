"""The pretraining loop: one Accelerate loop for one CPU, one GPU, several GPUs or several machines.

    >>> from hf_session.pretraining import parse_pretraining_args, pretrain
    >>> pretrain(*parse_pretraining_args("recipes/pretrain-bert-tiny.yaml", ["--max_steps", "50"]))

What it does, in order: tokenizer (given, or a WordPiece vocabulary trained on the text) → instances
(`data.py`) → `AutoModelForPreTraining.from_config` → AdamW with weight-decay groups and a warm-up/decay
schedule → steps of `gradient_accumulation_steps` micro-batches, with evaluation, logging and atomic
checkpoints → `save_pretrained` of model and tokenizer into `output_dir`.

The loss of a step is the sum over every masked token of the step (all micro-batches, all processes)
divided by their count, plus the same for NSP over pairs; so gradient accumulation and the number of
processes change nothing but speed, and a 2-process run matches a 1-process one with the same global
batch. Resuming is exact: the checkpoint holds model, optimizer, schedule, RNG states and the data
position; epochs are shuffled from (seed, epoch) and masks drawn from (seed, epoch, example).
"""

import contextlib
import json
import math
import os
import re
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import datasets
import torch
import torch.nn.functional as F
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.data_loader import prepare_data_loader
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModelForPreTraining, get_scheduler
from transformers.trainer_pt_utils import get_parameter_names

from ..tokenization import load_tokenizer, train_wordpiece
from .arguments import DataArguments, ModelArguments, PretrainingArguments
from .data import (
    PretrainingCollator,
    build_instances,
    group_documents,
    read_corpus,
    split_documents,
    tokenize_corpus,
)

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"  # written last into a checkpoint: its presence marks a complete one
CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint to resume from is missing, incomplete or unreadable."""


# ----------------------------------------------------------------------------------------------- data


def _load_documents(data_args: DataArguments, tokenizer, files, dataset=None) -> list:
    corpus = read_corpus(
        files=files, dataset=dataset, text_column=data_args.text_column, cache_dir=data_args.cache_dir
    )
    tokenized = tokenize_corpus(
        corpus,
        tokenizer,
        data_args.text_column,
        data_args.split_sentences,
        data_args.preprocessing_num_workers,
    )
    return group_documents(tokenized)


def _user_dataset(data_args: DataArguments) -> datasets.Dataset:
    if os.path.isdir(data_args.dataset_name) and os.path.exists(
        os.path.join(data_args.dataset_name, "dataset_info.json")
    ):
        return datasets.load_from_disk(data_args.dataset_name)
    return datasets.load_dataset(
        data_args.dataset_name,
        data_args.dataset_config_name,
        split=data_args.dataset_split,
        cache_dir=data_args.cache_dir,
    )


def prepare_datasets(
    data_args: DataArguments, tokenizer, seed: int
) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """Train and evaluation instances (the latter None when nothing is held out)."""
    if (data_args.train_files is None) == (data_args.dataset_name is None):
        raise ValueError("give exactly one of train_files or dataset_name")
    dataset = _user_dataset(data_args) if data_args.dataset_name else None
    train_docs = _load_documents(data_args, tokenizer, data_args.train_files, dataset)
    if data_args.validation_files:
        eval_docs = _load_documents(data_args, tokenizer, data_args.validation_files)
    else:
        train_docs, eval_docs = split_documents(train_docs, data_args.validation_split_percentage, seed)
    build = dict(
        tokenizer=tokenizer,
        max_seq_length=data_args.max_seq_length,
        nsp=data_args.nsp,
        short_seq_prob=data_args.short_seq_prob,
    )
    train = build_instances(train_docs, seed=seed, dupe_factor=data_args.dupe_factor, **build)
    evaluation = build_instances(eval_docs, seed=seed + 1, **build) if eval_docs else None
    return train, evaluation


def _collator(tokenizer, data_args: DataArguments, seed: int) -> PretrainingCollator:
    return PretrainingCollator(
        tokenizer,
        mlm_probability=data_args.mlm_probability,
        mask_replace_prob=data_args.mask_replace_prob,
        random_replace_prob=data_args.random_replace_prob,
        whole_word_mask=data_args.whole_word_mask,
        pad_to_multiple_of=data_args.pad_to_multiple_of,
        seed=seed,
    )


def _epoch_loader(
    dataset, batch_size: int, global_batch: int, collator, seed: int, epoch: int, num_workers: int
) -> DataLoader:
    """The epoch's order is a permutation drawn from (seed, epoch): the same for any process count.

    It is cut to whole global batches, so every process gets the same number of batches and a global
    batch holds the same examples whether it is split over one process or several.
    """
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    order = order[: len(order) // global_batch * global_batch]
    # The loader's own generator keeps iterator creation from drawing on the global RNG, which dropout
    # uses: otherwise a resumed run (one more iterator) would drop out differently.
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=order,
        collate_fn=collator,
        drop_last=True,
        num_workers=num_workers,
        generator=torch.Generator(),
    )


# ----------------------------------------------------------------------------------------------- model


def build_model(model_args: ModelArguments, data_args: DataArguments, tokenizer):
    if model_args.max_position_embeddings < data_args.max_seq_length:
        raise ValueError(
            f"max_seq_length={data_args.max_seq_length} exceeds max_position_embeddings="
            f"{model_args.max_position_embeddings}"
        )
    config = AutoConfig.for_model(
        model_args.model_type,
        vocab_size=len(tokenizer),
        hidden_size=model_args.hidden_size,
        num_hidden_layers=model_args.num_hidden_layers,
        num_attention_heads=model_args.num_attention_heads,
        intermediate_size=model_args.intermediate_size,
        max_position_embeddings=model_args.max_position_embeddings,
        hidden_dropout_prob=model_args.hidden_dropout_prob,
        attention_probs_dropout_prob=model_args.attention_probs_dropout_prob,
        type_vocab_size=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    return AutoModelForPreTraining.from_config(config)


def build_optimizer(model, args: PretrainingArguments, device_type: str = "cpu") -> torch.optim.AdamW:
    """AdamW; biases and LayerNorm weights get no weight decay (as in BERT and `Trainer`).

    torch's fused AdamW (one kernel for all parameters; `Trainer`'s default, `adamw_torch_fused`) on the devices
    that have it: on CPU it is ~4× faster than the per-parameter loop, which mattered at BERT's vocabulary.
    """
    decay = set(get_parameter_names(model, [torch.nn.LayerNorm], [r"bias", r"layernorm", r"norm"]))
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in params if n in decay], "weight_decay": args.weight_decay},
        {"params": [p for n, p in params if n not in decay], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups,
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        fused=device_type in ("cpu", "cuda") or None,
    )


def loss_sums(model, batch: dict) -> dict:
    """Summed (not averaged) MLM and NSP losses and hit counts of one micro-batch.

    Works whether the model returns `prediction_logits` for every position (batch, seq_len, vocab), as
    transformers' BERT does, or only for the labelled positions (n_masked, vocab).
    """
    outputs = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        token_type_ids=batch["token_type_ids"],
        labels=batch["labels"],
        next_sentence_label=batch.get("next_sentence_label"),
    )
    labels = batch["labels"]
    logits = outputs.prediction_logits
    if logits.shape[:-1] == labels.shape:
        logits, labels = logits[labels != -100], labels[labels != -100]
    else:
        labels = labels[labels != -100]
    logits = logits.float()
    sums = {
        "mlm_loss": F.cross_entropy(logits, labels, reduction="sum"),
        "mlm_correct": (logits.argmax(-1) == labels).sum(),
        "mlm_count": torch.tensor(labels.numel(), device=logits.device),
    }
    if "next_sentence_label" in batch:
        nsp_logits = outputs.seq_relationship_logits.float()
        nsp_labels = batch["next_sentence_label"]
        sums["nsp_loss"] = F.cross_entropy(nsp_logits, nsp_labels, reduction="sum")
        sums["nsp_correct"] = (nsp_logits.argmax(-1) == nsp_labels).sum()
        sums["nsp_count"] = torch.tensor(nsp_labels.numel(), device=nsp_logits.device)
    return sums


@torch.no_grad()
def evaluate(model, loader, accelerator: Accelerator) -> dict:
    """MLM loss, accuracy and perplexity, and NSP loss and accuracy, over the whole evaluation set."""
    model.eval()
    totals = {}
    for batch in loader:
        for key, value in loss_sums(model, batch).items():
            totals[key] = totals.get(key, 0) + value.detach().double()
    model.train()
    totals = {k: accelerator.reduce(v, "sum").item() for k, v in totals.items()}
    metrics = {
        "eval/mlm_loss": totals["mlm_loss"] / max(totals["mlm_count"], 1),
        "eval/mlm_accuracy": totals["mlm_correct"] / max(totals["mlm_count"], 1),
    }
    metrics["eval/perplexity"] = math.exp(min(metrics["eval/mlm_loss"], 50))
    if "nsp_count" in totals:
        metrics["eval/nsp_loss"] = totals["nsp_loss"] / max(totals["nsp_count"], 1)
        metrics["eval/nsp_accuracy"] = totals["nsp_correct"] / max(totals["nsp_count"], 1)
    return metrics


# ----------------------------------------------------------------------------------------------- checkpoints


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary folders of an interrupted save are ignored)."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in root.iterdir() if (m := CHECKPOINT_NAME.match(p.name)) and p.is_dir()
    ]
    return [p for _, p in sorted(found)]


def resolve_checkpoint(resume: str, output_dir: str | os.PathLike) -> Path:
    """The checkpoint folder for ``--resume latest|PATH``, checked to be complete; CheckpointError if not."""
    if resume == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            raise CheckpointError(
                f"--resume latest: no checkpoint in {str(Path(output_dir) / CHECKPOINTS)!r}"
            )
        path = found[-1]
    else:
        path = Path(resume)
        if not path.is_dir():
            raise CheckpointError(f"checkpoint {resume!r} does not exist")
    read_checkpoint_state(path)
    return path


def read_checkpoint_state(path: Path) -> dict:
    try:
        with open(path / STATE_FILE, encoding="utf-8") as handle:
            state = json.load(handle)
        return {
            key: int(state[key]) for key in ("global_step", "epoch", "batches_in_epoch", "global_batch_size")
        }
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is incomplete or corrupt ({STATE_FILE}: {err}); resume from another "
            f"checkpoint with --resume PATH"
        ) from None


def save_checkpoint(accelerator: Accelerator, output_dir: Path, state: dict, save_total_limit: int) -> Path:
    """`save_state` into a temporary folder, then one rename; then drop all but the last `save_total_limit`.

    An interrupted save leaves only the temporary folder, never a half-written `checkpoint-N`, and older
    checkpoints are deleted only once the new one is complete.
    """
    root = output_dir / CHECKPOINTS
    final = root / f"checkpoint-{state['global_step']}"
    tmp = root / f".tmp-checkpoint-{state['global_step']}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with open(tmp / STATE_FILE, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=2)
        # A run resumed from an older checkpoint saves again at a step that may exist; the old folder
        # goes only once the new one is in place.
        replaced = root / f".old-checkpoint-{state['global_step']}"
        if final.exists():
            os.replace(final, replaced)
        os.replace(tmp, final)
        shutil.rmtree(replaced, ignore_errors=True)
        for old in list_checkpoints(output_dir)[:-save_total_limit]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Accelerator, path: Path) -> dict:
    state = read_checkpoint_state(path)
    try:
        accelerator.load_state(str(path))
    except Exception as err:  # any failure to read a file is the same problem to the user
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be loaded ({type(err).__name__}: {err}); resume from another "
            f"checkpoint with --resume PATH"
        ) from None
    return state


def _check_fresh_output_dir(output_dir: Path) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"output_dir {str(output_dir)!r} is a file")
    if output_dir.is_dir() and any(output_dir.iterdir()):
        hint = "continue it with --resume latest" if list_checkpoints(output_dir) else "it is not empty"
        raise FileExistsError(
            f"output_dir {str(output_dir)!r} already holds another run ({hint}); choose another output_dir"
        )


def save_final(model, tokenizer, output_dir: Path) -> None:
    """`save_pretrained` of model and tokenizer into `output_dir`; `config.json` is moved in last, so a
    folder with a `config.json` holds a complete model."""
    tmp = output_dir / ".tmp-final"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    for name in sorted(os.listdir(tmp), key=lambda n: n == "config.json"):
        target = output_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(tmp / name, target)
    tmp.rmdir()


# ----------------------------------------------------------------------------------------------- the loop


def _tokenizer(model_args, data_args, output_dir: Path, accelerator: Accelerator):
    """The run's tokenizer lives in `output_dir/tokenizer`: trained (or copied) once, reloaded on resume."""
    path = output_dir / "tokenizer"
    if accelerator.is_main_process and not path.exists():
        if model_args.tokenizer_name:
            load_tokenizer(model_args.tokenizer_name).save_pretrained(path)
        elif data_args.train_files:
            train_wordpiece(
                files=data_args.train_files,
                vocab_size=model_args.vocab_size,
                lowercase=model_args.lowercase,
                model_max_length=model_args.max_position_embeddings,
                output_dir=path,
            )
        else:
            raise ValueError("give tokenizer_name when pretraining on dataset_name")
    accelerator.wait_for_everyone()
    return load_tokenizer(path)


def pretrain(model_args: ModelArguments, data_args: DataArguments, args: PretrainingArguments) -> dict:
    """Run (or resume) a pretraining.

    Returns a dict: `metrics` (the last log entry), `log_history`, `global_step`, and the trained `model`
    (unwrapped, on this process) and `tokenizer`.
    """
    if not args.output_dir:
        raise ValueError("output_dir is not set")
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        cpu=args.use_cpu,
        mixed_precision="bf16" if args.bf16 else "fp16" if args.fp16 else "no",
        log_with=None if args.report_to == "none" else args.report_to,
        project_dir=str(output_dir),
        # Order and masks come from explicit seeds; nothing needs Accelerate's RNG synchronisation.
        rng_types=[],
        # Without NSP the pooler and NSP head get no gradient, which DDP must be told about.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=not data_args.nsp)],
    )
    resume = args.resume_from_checkpoint
    checkpoint = resolve_checkpoint(resume, output_dir) if resume else None
    if checkpoint is None and accelerator.is_main_process:
        _check_fresh_output_dir(output_dir)
    accelerator.wait_for_everyone()
    set_seed(args.seed)

    tokenizer = _tokenizer(model_args, data_args, output_dir, accelerator)
    with accelerator.main_process_first():
        train_set, eval_set = prepare_datasets(data_args, tokenizer, args.seed)
    model = build_model(model_args, data_args, tokenizer)
    optimizer = build_optimizer(model, args, accelerator.device.type)
    warmup = args.warmup_steps or math.ceil(args.warmup_ratio * args.max_steps)
    scheduler = get_scheduler(args.lr_scheduler_type, optimizer, warmup, args.max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    # Not prepared: Accelerate would step it once per process; it only needs to be checkpointed.
    accelerator.register_for_checkpointing(scheduler)

    global_batch = args.per_device_train_batch_size * accelerator.num_processes
    batches_per_epoch = len(train_set) // global_batch
    if batches_per_epoch < args.gradient_accumulation_steps:
        raise ValueError(
            f"{len(train_set)} training instances do not fill one step of {args.gradient_accumulation_steps} "
            f"batches of {global_batch}; add text or lower the batch size"
        )
    collator = _collator(tokenizer, data_args, args.seed)
    eval_loader = None
    if eval_set is not None:
        eval_collator = _collator(tokenizer, data_args, args.seed + 1)
        # Uneven shards, so that every example is evaluated exactly once (no padding by repetition).
        eval_loader = prepare_data_loader(
            DataLoader(
                eval_set,
                batch_size=args.per_device_eval_batch_size,
                collate_fn=eval_collator,
                generator=torch.Generator(),
            ),
            device=accelerator.device,
            num_processes=accelerator.num_processes,
            process_index=accelerator.process_index,
            even_batches=False,
        )

    state = {"global_step": 0, "epoch": 0, "batches_in_epoch": 0, "global_batch_size": global_batch}
    if checkpoint is not None:
        state = load_checkpoint(accelerator, checkpoint)
        if state["global_batch_size"] != global_batch:
            # The data position counts batches of the old size.
            raise CheckpointError(
                f"checkpoint {str(checkpoint)!r} was written with a global batch of {state['global_batch_size']} "
                f"(per_device_train_batch_size × processes); this run has {global_batch}"
            )
        accelerator.print(f"resumed from {checkpoint} at step {state['global_step']}")
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    if args.report_to != "none":
        config = {k: v for a in (model_args, data_args, args) for k, v in asdict(a).items()}
        accelerator.init_trackers(
            "pretraining", config={k: v for k, v in config.items() if isinstance(v, (int, float, str, bool))}
        )

    history_file = output_dir / "log_history.jsonl"
    history = []
    if accelerator.is_main_process and history_file.exists():
        # Steps logged after the checkpoint by the interrupted run are about to be run again.
        kept = [
            line
            for line in history_file.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["step"] <= state["global_step"]
        ]
        history_file.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    progress = tqdm(
        total=args.max_steps,
        initial=state["global_step"],
        disable=args.disable_tqdm or not accelerator.is_local_main_process,
        desc="pretraining",
    )
    running = {}
    tokens_seen, window_start = 0, time.perf_counter()
    model.train()
    while state["global_step"] < args.max_steps:
        collator.epoch = state["epoch"]
        loader = accelerator.prepare_data_loader(
            _epoch_loader(
                train_set,
                args.per_device_train_batch_size,
                global_batch,
                collator,
                args.seed,
                state["epoch"],
                args.dataloader_num_workers,
            )
        )
        if state["batches_in_epoch"]:
            loader = accelerator.skip_first_batches(loader, state["batches_in_epoch"])
        batches = iter(loader)
        while state["global_step"] < args.max_steps:
            micro = []
            for _ in range(args.gradient_accumulation_steps):
                batch = next(batches, None)
                if batch is None:
                    break
                micro.append(batch)
            if len(micro) < args.gradient_accumulation_steps:
                break  # the end of the epoch; an incomplete step is dropped
            counts = torch.stack(
                [
                    sum((b["labels"] != -100).sum() for b in micro),
                    sum(b["input_ids"].new_tensor(b["input_ids"].shape[0]) for b in micro),
                ]
            )
            n_masked, n_pairs = accelerator.reduce(counts, "sum").tolist()
            for i, batch in enumerate(micro):
                sync = i == len(micro) - 1
                with contextlib.nullcontext() if sync else accelerator.no_sync(model):
                    sums = loss_sums(model, batch)
                    # DDP averages gradients over processes; multiplying by their number makes the
                    # result the gradient of (global sum / global count).
                    loss = sums["mlm_loss"] / max(n_masked, 1)
                    if "nsp_loss" in sums:
                        loss = loss + sums["nsp_loss"] / n_pairs
                    accelerator.backward(loss * accelerator.num_processes)
                for key, value in sums.items():
                    running[key] = running.get(key, 0) + value.detach().double()
                tokens_seen += int(batch["attention_mask"].sum())
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["global_step"] += 1
            state["batches_in_epoch"] += len(micro)
            step = state["global_step"]
            progress.update(1)

            logs = {}
            if step % args.logging_steps == 0 or step == args.max_steps:
                totals = {k: accelerator.reduce(v, "sum").item() for k, v in running.items()}
                tokens = accelerator.reduce(torch.tensor(tokens_seen, dtype=torch.float64), "sum").item()
                elapsed = time.perf_counter() - window_start
                logs = {
                    "train/loss": totals["mlm_loss"] / totals["mlm_count"]
                    + (totals["nsp_loss"] / totals["nsp_count"] if "nsp_count" in totals else 0.0),
                    "train/mlm_loss": totals["mlm_loss"] / totals["mlm_count"],
                    "train/mlm_accuracy": totals["mlm_correct"] / totals["mlm_count"],
                    "train/learning_rate": scheduler.get_last_lr()[0],
                    "train/grad_norm": float(grad_norm),
                    "train/tokens_per_second": tokens / elapsed,
                }
                if "nsp_count" in totals:
                    logs["train/nsp_accuracy"] = totals["nsp_correct"] / totals["nsp_count"]
                progress.set_postfix(
                    loss=f"{logs['train/loss']:.3f}", tok_s=f"{logs['train/tokens_per_second']:.0f}"
                )
                running, tokens_seen, window_start = {}, 0, time.perf_counter()
            if eval_loader is not None and (step % args.eval_steps == 0 or step == args.max_steps):
                # The bare model: DDP's forward would synchronise buffers, and the shards are uneven.
                logs.update(evaluate(accelerator.unwrap_model(model), eval_loader, accelerator))
            if logs:
                accelerator.log(logs, step=step)
                history.append({"step": step, **logs})
                if accelerator.is_main_process:
                    with open(history_file, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps({"step": step, **logs}) + "\n")
            if step % args.save_steps == 0 or step == args.max_steps:
                save_checkpoint(accelerator, output_dir, dict(state), args.save_total_limit)
        if state["global_step"] < args.max_steps:
            state["epoch"] += 1
            state["batches_in_epoch"] = 0
    progress.close()

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_final(accelerator.unwrap_model(model), tokenizer, output_dir)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return {
        "metrics": history[-1] if history else {},
        "log_history": history,
        "global_step": state["global_step"],
        "model": accelerator.unwrap_model(model),
        "tokenizer": tokenizer,
    }
