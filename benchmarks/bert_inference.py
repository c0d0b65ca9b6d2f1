"""BERT inference latency: `SessionBertForSequenceClassification` against transformers'
`BertForSequenceClassification`.

Same config as benchmarks/bert_pretraining.py (hidden 256, 4 layers, 4 heads, intermediate 1024), the same
weights (ours converted into theirs), the same batches: 32 SST-2 dev sentences each (../shared/data/sst2, or
the bundled sample), tokenized with a WordPiece vocabulary trained on SST-2 train, padded to the longest, so
batches hold sentences of very different lengths. Eval mode, no gradients, sdpa attention on both sides.
Rounds alternate between the two models; prints the median latency per batch of each and the median ratio
ours / theirs, in wall-clock time and in this process's CPU time (steadier when the machine is shared).

    .venv/bin/python benchmarks/bert_inference.py [--rounds 7] [--threads 2]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import BertForSequenceClassification

from hf_session import (
    SessionBertConfig,
    SessionBertForSequenceClassification,
    load_tokenizer,
    train_wordpiece,
)
from hf_session.models.session_bert.convert import bert_config_from_session, state_dict_to_bert
from hf_session.utils import data_path, read_tsv_column

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"
WORK = Path(__file__).resolve().parent / ".work"


def sst2(split: str) -> list[str]:
    path = (
        SHARED / f"{split}.tsv" if (SHARED / f"{split}.tsv").is_file() else data_path("sst2", f"{split}.tsv")
    )
    return read_tsv_column(path, "sentence")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", type=int, default=4, help="batches per side per round")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    folder = WORK / "sst2-wordpiece-16000"
    if not (folder / "tokenizer.json").is_file():
        train_wordpiece(texts=sst2("train"), vocab_size=16000, output_dir=folder, overwrite=True)
    tokenizer = load_tokenizer(folder)
    config = SessionBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
    )
    ours = SessionBertForSequenceClassification(config).eval()
    theirs = BertForSequenceClassification(bert_config_from_session(config)).eval()
    theirs.load_state_dict(state_dict_to_bert(ours.state_dict()))
    models = {
        "transformers BertForSequenceClassification": theirs,
        "hf-session SessionBertForSequenceClassification": ours,
    }

    sentences = sst2("dev")
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(sentences), generator=generator).tolist()
    batches = []
    for b in range(args.batches):
        chosen = [sentences[i] for i in order[b * args.batch_size : (b + 1) * args.batch_size]]
        batches.append(
            dict(tokenizer(chosen, padding=True, truncation=True, max_length=128, return_tensors="pt"))
        )
    real = sum(int(b["attention_mask"].sum()) for b in batches) / sum(
        b["attention_mask"].numel() for b in batches
    )
    print(
        f"{args.batches} batches of {args.batch_size} SST-2 dev sentences, longest {max(b['input_ids'].shape[1] for b in batches)} "
        f"tokens, real tokens {real:.1%} of the padded batch; {args.threads} threads"
    )
    with torch.no_grad():
        torch.testing.assert_close(
            ours(**batches[0]).logits, theirs(**batches[0]).logits, atol=1e-4, rtol=1e-4
        )
        for model in models.values():  # warm-up
            model(**batches[0])
        wall = {name: [] for name in models}
        cpu = {name: [] for name in models}
        for r in range(args.rounds):
            for name in models if r % 2 == 0 else reversed(models):
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                for batch in batches:
                    models[name](**batch)
                wall[name].append((time.perf_counter() - start_wall) / len(batches))
                cpu[name].append((time.process_time() - start_cpu) / len(batches))
    for name in models:
        print(
            f"{name:50} {statistics.median(wall[name]) * 1000:7.1f} ms per batch wall, "
            f"{statistics.median(cpu[name]) * 1000:7.1f} ms CPU"
        )
    theirs_name, ours_name = models
    for label, times in (("wall-clock", wall), ("CPU time", cpu)):
        ratios = [o / t for o, t in zip(times[ours_name], times[theirs_name], strict=True)]
        print(
            f"latency ratio ours / transformers ({label}, median of {args.rounds} rounds): {statistics.median(ratios):.2f}×"
        )


if __name__ == "__main__":
    if "OMP_WAIT_POLICY" not in os.environ:
        # Spinning OpenMP threads on a shared machine wait for cores other processes hold: with 2 threads both
        # models ran several times slower than with 1. Sleeping waits keep the comparison about the models.
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    main()
