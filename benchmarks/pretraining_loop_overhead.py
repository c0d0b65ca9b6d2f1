"""Overhead of the pretraining loop: `pretrain()` against the bare model step on the same batches.

Peer: the bare step of `benchmarks/bert_pretraining.py` (forward with labels, backward, AdamW step) on
batches collated beforehand, so it pays for no data work. The loop pays for everything a run does: the
DataLoader, dynamic masking at collation, our summed losses, the global-count all-reduce, gradient
clipping, the schedule, logging. Same model (4 layers, hidden 256, `session_bert`), same instances
(WikiText-2 test split from ../shared/data, NSP pairs of 128 tokens), same threads; the two sides
alternate so they see the same machine load. Prints real (non-padding) tokens/s of each per round, and the
median overhead 1 - loop / bare (goal: under 10%).

    .venv/bin/python benchmarks/pretraining_loop_overhead.py [--rounds 3] [--steps 20] [--threads 2]
"""

import argparse
import shutil
import statistics
import time
from pathlib import Path

import torch

from hf_session.pretraining import parse_pretraining_args, pretrain
from hf_session.pretraining.train import _collator, _epoch_loader, build_model, prepare_datasets
from hf_session.tokenization import load_tokenizer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikitext2"
WORK = Path(__file__).resolve().parent / ".work" / "pretraining_loop_overhead"


def settings(output_dir: Path, steps: int, tokenizer: Path | None) -> list[str]:
    argv = ["--output_dir", str(output_dir), "--train_files", str(SHARED / "test.txt")]
    argv += ["--validation_split_percentage", "0", "--max_steps", str(steps), "--logging_steps", str(steps)]
    argv += ["--save_steps", str(10 * steps), "--report_to", "none", "--disable_tqdm", "true"]
    argv += ["--cache_dir", str(WORK / "datasets-cache"), "--warmup_steps", "0"]
    if tokenizer is not None:
        argv += ["--tokenizer_name", str(tokenizer)]
    return argv


def loop_speed(recipe: Path, steps: int, tokenizer: Path | None, run: int) -> float:
    out = WORK / f"run-{run}"
    shutil.rmtree(out, ignore_errors=True)
    model_args, data_args, train_args = parse_pretraining_args(recipe, settings(out, steps, tokenizer))
    data_args.validation_files = None  # no evaluation: only training steps are timed
    result = pretrain(model_args, data_args, train_args)
    return result["metrics"]["train/tokens_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per side per round")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not (SHARED / "test.txt").is_file():
        raise SystemExit(f"needs WikiText-2 in {SHARED} (see its PROVENANCE.md)")
    torch.set_num_threads(args.threads)
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "pretrain-bert-mini.yaml"

    # A first loop run trains the tokenizer and fills the datasets cache; it is the warm-up.
    loop_speed(recipe, 2, None, 0)
    tokenizer = WORK / "run-0" / "tokenizer"
    model_args, data_args, train_args = parse_pretraining_args(
        recipe, settings(WORK / "bare", args.steps, tokenizer)
    )
    tok = load_tokenizer(tokenizer)
    train_set, _ = prepare_datasets(data_args, tok, train_args.seed)
    batch_size, seed = train_args.per_device_train_batch_size, train_args.seed
    # The loop's first batches: same order, same masks.
    loader = _epoch_loader(train_set, batch_size, batch_size, _collator(tok, data_args, seed), seed, 0, 0)
    batches = [batch for _, batch in zip(range(args.steps), loader, strict=False)]
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    torch.manual_seed(0)
    model = build_model(model_args, data_args, tok).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # as the loop builds it on CPU
    for batch in batches[:2]:  # warm-up: first-call allocations
        model(**batch).loss.backward()
        optimizer.zero_grad(set_to_none=True)
    print(
        f"{len(train_set)} instances of ≤{data_args.max_seq_length} tokens, batch "
        f"{train_args.per_device_train_batch_size}, {args.threads} threads, {args.steps} steps per side per round"
    )

    loop, bare = [], []
    for r in range(1, args.rounds + 1):
        start = time.perf_counter()
        for batch in batches:
            model(**batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        bare.append(tokens / (time.perf_counter() - start))
        loop.append(loop_speed(recipe, args.steps, tokenizer, r))
        print(f"round {r}: bare model step {bare[-1]:7.0f} real tokens/s   pretrain() loop {loop[-1]:7.0f}")
    overheads = [1 - lo / b for lo, b in zip(loop, bare, strict=True)]
    print(f"\nmedian real tokens/s: bare {statistics.median(bare):.0f}, loop {statistics.median(loop):.0f}")
    print(
        f"loop overhead (1 - loop / bare, median of {args.rounds} rounds): {statistics.median(overheads):.1%}"
    )


if __name__ == "__main__":
    main()
