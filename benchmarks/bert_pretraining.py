"""BERT pretraining speed: `SessionBertForPreTraining` against transformers' `BertForPreTraining`.

Same config (hidden 256, 4 layers, 4 heads, intermediate 1024; BERT's 30,522-row vocabulary unless
`--model-vocab-size 0` sizes it to the tokenizer), same starting weights (ours converted into theirs), same
batches of real text: WikiText-2 paragraphs from ../shared/data (valid + test), tokenized with a WordPiece
vocabulary trained on them, truncated at 128 tokens, batches of 16 padded to their longest paragraph (which
is nearly always 128 tokens here), 15% masking (transformers' DataCollatorForLanguageModeling), random NSP
labels. Each side takes AdamW steps (torch's fused AdamW, the default optimizer of transformers' `Trainer`,
`adamw_torch_fused`; `--optimizer adamw_torch` for torch's per-parameter loop, whose step over the 30,522 × 256
embedding costs both sides alike) in alternating rounds so both see the same machine load; prints the real
(non-padding) tokens per second of each, per round, and the median ratio ours / theirs, in wall-clock time and
in this process's CPU time (steadier when the machine is shared).

    .venv/bin/python benchmarks/bert_pretraining.py [--rounds 5] [--steps 3] [--threads 2] [--ablation]
        [--model-vocab-size 0] [--optimizer adamw_torch]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertForPreTraining, DataCollatorForLanguageModeling

from hf_session import SessionBertConfig, SessionBertForPreTraining, load_tokenizer, train_wordpiece
from hf_session.models.session_bert.convert import bert_config_from_session, state_dict_to_bert

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikitext2"
WORK = Path(__file__).resolve().parent / ".work"


def paragraphs() -> list[str]:
    """Non-empty, non-heading lines of WikiText-2 valid + test: one paragraph each, of very varied lengths."""
    files = [SHARED / "valid.txt", SHARED / "test.txt"]
    if not all(f.is_file() for f in files):
        raise SystemExit(f"needs WikiText-2 in {SHARED} (see its PROVENANCE.md)")
    lines = [line.strip() for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("=")]


def tokenizer_for(texts: list[str], vocab_size: int):
    folder = WORK / f"wikitext2-wordpiece-{vocab_size}"
    if not (folder / "tokenizer.json").is_file():
        train_wordpiece(texts=texts, vocab_size=vocab_size, output_dir=folder, overwrite=True)
    return load_tokenizer(folder)


def make_batches(tokenizer, texts, num_batches: int, batch_size: int, seq_len: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=seed)
    order = torch.randperm(len(texts), generator=generator).tolist()
    batches = []
    for b in range(num_batches):
        chosen = [texts[i] for i in order[b * batch_size : (b + 1) * batch_size]]
        features = [
            dict(tokenizer(text, truncation=True, max_length=seq_len, return_special_tokens_mask=True))
            for text in chosen
        ]
        batch = collator(features)
        batch.pop("special_tokens_mask", None)
        batch["next_sentence_label"] = torch.randint(0, 2, (batch_size,), generator=generator)
        batches.append(batch)
    return batches


def run_steps(model, optimizer, batches) -> tuple[float, float, float]:
    """AdamW steps over `batches`; returns (wall seconds, CPU seconds of this process, mean loss)."""
    losses = []
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return time.perf_counter() - start_wall, time.process_time() - start_cpu, sum(losses) / len(losses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per side per round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--vocab-size", type=int, default=30522, help="WordPiece target (this corpus gives ~17k)"
    )
    parser.add_argument(
        "--model-vocab-size",
        type=int,
        default=30522,
        help="embedding rows: BERT's 30522 (BertConfig's default; the issue's config leaves it there), "
        "or 0 for the tokenizer's own size",
    )
    parser.add_argument(
        "--optimizer",
        choices=["adamw_torch_fused", "adamw_torch"],
        default="adamw_torch_fused",
        help="the same AdamW for both sides: fused (Trainer's default) or torch's per-parameter loop",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also time ours with each speed option switched off (same weights, same batches)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    texts = paragraphs()
    tokenizer = tokenizer_for(texts, args.vocab_size)
    config = SessionBertConfig(
        vocab_size=args.model_vocab_size or len(tokenizer),
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=args.seq_len,
    )
    ours = SessionBertForPreTraining(config).train()
    theirs = BertForPreTraining(BertConfig(**bert_config_from_session(config).to_dict())).train()
    theirs.load_state_dict(state_dict_to_bert(ours.state_dict()))
    models = {"transformers BertForPreTraining": theirs, "hf-session SessionBertForPreTraining": ours}
    if args.ablation:
        # Each option off in turn; an option also needs the ones before it (the last layer is sparse only
        # with the sparse head).
        for label, off in (
            ("sparse_last_layer", {"sparse_last_layer": False}),
            ("sparse_mlm_head", {"sparse_mlm_head": False, "sparse_last_layer": False}),
            ("unpad_inputs", {"unpad_inputs": False}),
        ):
            variant = SessionBertForPreTraining(SessionBertConfig(**{**config.to_dict(), **off})).train()
            variant.load_state_dict(ours.state_dict())
            models[f"hf-session, {label} off"] = variant
    fused = args.optimizer == "adamw_torch_fused"
    optimizers = {
        name: torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused) for name, model in models.items()
    }

    batches = make_batches(tokenizer, texts, (args.rounds + 1) * args.steps, args.batch_size, args.seq_len)
    real = sum(int(b["attention_mask"].sum()) for b in batches)
    padded = sum(b["attention_mask"].numel() for b in batches)
    print(
        f"{len(texts)} WikiText-2 paragraphs, vocab {len(tokenizer)} (model {config.vocab_size}), batch {args.batch_size} × ≤{args.seq_len}, "
        f"{args.threads} threads, {args.optimizer}; real tokens {real / padded:.1%} of the padded batch, "
        f"{sum(int((b['labels'] != -100).sum()) for b in batches) / real:.1%} of them masked"
    )

    # One warm-up chunk each (allocator, first-call overheads), then alternating timed rounds.
    for name, model in models.items():
        run_steps(model, optimizers[name], batches[: args.steps])
    speeds = {name: [] for name in models}
    cpu_speeds = {name: [] for name in models}
    for r in range(1, args.rounds + 1):
        chunk = batches[r * args.steps : (r + 1) * args.steps]
        tokens = sum(int(b["attention_mask"].sum()) for b in chunk)
        for name in models if r % 2 else reversed(models):
            wall, cpu, loss = run_steps(models[name], optimizers[name], chunk)
            speeds[name].append(tokens / wall)
            cpu_speeds[name].append(tokens / cpu)
            print(
                f"round {r}: {name:38} {tokens / wall:8.0f} real tokens/s ({tokens / cpu:6.0f} per CPU s)  loss {loss:.3f}"
            )
    theirs_name, ours_name, *variant_names = models
    print(
        f"\nmedian real tokens/s: transformers {statistics.median(speeds[theirs_name]):.0f}, "
        f"hf-session {statistics.median(speeds[ours_name]):.0f}"
    )
    for label, table in (("wall-clock", speeds), ("CPU time", cpu_speeds)):
        ratios = [o / t for o, t in zip(table[ours_name], table[theirs_name], strict=True)]
        print(
            f"speed-up ours / transformers ({label}, median of {args.rounds} rounds): {statistics.median(ratios):.2f}×"
        )
    for name in variant_names:
        ratios = [o / t for o, t in zip(speeds[name], speeds[theirs_name], strict=True)]
        print(f"  {name:40} / transformers (wall-clock, median): {statistics.median(ratios):.2f}×")


if __name__ == "__main__":
    if "OMP_WAIT_POLICY" not in os.environ:
        # Spinning OpenMP threads on a shared machine wait for cores other processes hold: with 2 threads both
        # models ran several times slower than with 1. Sleeping waits keep the comparison about the models.
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    main()
