"""Training tokens/s and beam-5 decoding sentences/s: our GRU seq2seq vs JoeyNMT 2.3, same sizes and data.

Both sides get the same model (bidirectional GRU encoder, GRU decoder with Bahdanau attention and input
feeding, bridge, tied embeddings, 8k joint WordPiece vocabulary, 256 units), the same Multi30k batches
(sorted by source length, as JoeyNMT needs) and the same thread count; each runs in its own process
(JoeyNMT in its own virtual environment under benchmarks/.work/joeynmt-venv), the two alternating for
`--rounds` rounds. Each round's ratio pairs the two runs made next to each other (the peer's speed moves up to
±30% between runs on a shared machine, ours much less); the summary gives the median of the round ratios and
the ratio of each side's best round. Training is forward + backward + Adam step of the
models themselves (not the two trainers' bookkeeping); decoding is `generate(num_beams=5)` vs JoeyNMT's
`search.beam_search`, both forced to decode exactly `--max-new-tokens` steps (an untrained model's
translation lengths would otherwise differ between the two and decide the result).

    python3 -m venv benchmarks/.work/joeynmt-venv
    echo "$PWD/.venv/lib/python3.11/site-packages" > \
        benchmarks/.work/joeynmt-venv/lib/python3.11/site-packages/hf_session_venv.pth   # reuse torch
    benchmarks/.work/joeynmt-venv/bin/pip install --no-deps "joeynmt==2.3.*"
    benchmarks/.work/joeynmt-venv/bin/pip install importlib_metadata subword-nmt sacremoses sentencepiece
    .venv/bin/python benchmarks/rnn_speed_vs_joeynmt.py --threads 2
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
WORK = ROOT / ".work" / "rnn-speed"
JOEY_PYTHON = ROOT / ".work" / "joeynmt-venv" / "bin" / "python"
SIZES = {"embedding_size": 256, "hidden_size": 256, "dropout": 0.3}


def prepare(args) -> Path:
    """Tokenize Multi30k once; both workers read the same id batches from a JSON file."""
    from hf_session import train_wordpiece
    from hf_session.translation import preprocess_translation

    data = Path(args.data)
    tokenizer = train_wordpiece(
        files=[data / "train.en", data / "train.de"], vocab_size=8000, lowercase=False
    )
    sources = (data / "train.en").read_text(encoding="utf-8").splitlines()
    targets = (data / "train.de").read_text(encoding="utf-8").splitlines()
    n_train = args.train_steps * args.batch_size
    features = preprocess_translation(tokenizer, sources[:n_train], targets[:n_train])
    test = (data / "test_2016_flickr.en").read_text(encoding="utf-8").splitlines()[: args.decode_sentences]
    test_ids = tokenizer(test, return_token_type_ids=False)["input_ids"]

    def batches(sources_ids, labels, size):
        out = []
        for start in range(0, len(sources_ids), size):
            pairs = list(zip(sources_ids[start : start + size], labels[start : start + size], strict=True))
            pairs.sort(key=lambda pair: -len(pair[0]))
            out.append(pairs)
        return out

    payload = {
        "vocab": tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))),
        "train": batches(features["input_ids"], features["labels"], args.batch_size),
        "decode": batches(test_ids, [[]] * len(test_ids), args.decode_batch_size),
        "threads": args.threads,
        "max_new_tokens": args.max_new_tokens,
        "input_feeding": args.input_feeding,
        "sparse_output_layer": args.sparse_output_layer,
    }
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "batches.json"
    path.write_text(json.dumps(payload))
    return path


def pad(rows, value):
    import torch

    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows])


def timed(function, items, warmup=2):
    for item in items[:warmup]:
        function(item)
    start = time.perf_counter()
    for item in items[warmup:]:
        function(item)
    return time.perf_counter() - start


def worker_ours(payload) -> dict:
    import torch

    from hf_session.models.session_rnn import SessionRnnConfig, SessionRnnForConditionalGeneration

    torch.manual_seed(0)
    config = SessionRnnConfig(
        vocab_size=len(payload["vocab"]),
        attention_type="bahdanau",
        input_feeding=payload["input_feeding"],
        sparse_output_layer=payload.get("sparse_output_layer", True),
        **SIZES,
    )
    model = SessionRnnForConditionalGeneration(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step(batch):
        input_ids = pad([s for s, _ in batch], 0)
        labels = pad([t for _, t in batch], -100)
        loss = model(input_ids=input_ids, attention_mask=input_ids.ne(0), labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    model.train()
    train_seconds = timed(train_step, payload["train"])
    model.eval()

    def decode(batch):
        input_ids = pad([s for s, _ in batch], 0)
        with torch.no_grad():
            model.generate(
                input_ids=input_ids,
                attention_mask=input_ids.ne(0),
                num_beams=5,
                max_new_tokens=payload["max_new_tokens"],
                min_new_tokens=payload["max_new_tokens"],
            )

    decode_seconds = timed(decode, payload["decode"], warmup=1)
    return {"train_seconds": train_seconds, "decode_seconds": decode_seconds}


def worker_joeynmt(payload) -> dict:
    from types import SimpleNamespace

    import torch
    from joeynmt.model import build_model
    from joeynmt.search import beam_search
    from joeynmt.vocabulary import Vocabulary

    # JoeyNMT puts its specials first (unk, pad, bos, eos): map our ids to its ids through the tokens.
    ours = payload["vocab"]
    specials = {"[UNK]": "unk", "[PAD]": "pad", "[CLS]": "bos", "[SEP]": "eos"}
    cfg = SimpleNamespace(
        unk_token="[UNK]", pad_token="[PAD]", bos_token="[CLS]", eos_token="[SEP]", sep_token=None,
        unk_id=0, pad_id=1, bos_id=2, eos_id=3, lang_tags=[],
    )  # fmt: skip
    vocab = Vocabulary([t for t in ours if t not in specials], cfg)
    to_joey = [vocab.lookup(t) for t in ours]
    model_cfg = {
        "tied_embeddings": True,
        "tied_softmax": True,
        "encoder": {
            "type": "recurrent", "rnn_type": "gru", "hidden_size": SIZES["hidden_size"], "bidirectional": True,
            "num_layers": 1, "dropout": SIZES["dropout"], "embeddings": {"embedding_dim": SIZES["embedding_size"]},
        },
        "decoder": {
            "type": "recurrent", "rnn_type": "gru", "hidden_size": SIZES["hidden_size"], "num_layers": 1,
            "dropout": SIZES["dropout"], "hidden_dropout": SIZES["dropout"], "attention": "bahdanau",
            "input_feeding": payload["input_feeding"], "init_hidden": "bridge", "embeddings": {"embedding_dim": SIZES["embedding_size"]},
        },
    }  # fmt: skip
    torch.manual_seed(0)
    model = build_model(model_cfg, src_vocab=vocab, trg_vocab=vocab)
    model.loss_function = ("crossentropy", 0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def source(batch):
        src = pad([[to_joey[i] for i in s] for s, _ in batch], vocab.pad_index)
        return src, src.ne(vocab.pad_index).unsqueeze(1), torch.tensor([len(s) for s, _ in batch])

    def train_step(batch):
        src, src_mask, src_length = source(batch)
        trg = pad([[to_joey[i] for i in t] for _, t in batch], vocab.pad_index)
        trg_input = pad([[vocab.bos_index] + [to_joey[i] for i in t[:-1]] for _, t in batch], vocab.pad_index)
        loss, _, _, _ = model(
            return_type="loss",
            src=src,
            trg=trg,
            trg_input=trg_input,
            src_mask=src_mask,
            src_length=src_length,
            trg_mask=trg.ne(vocab.pad_index).unsqueeze(1),
        )
        # JoeyNMT sums the loss over tokens and normalises by the token count, as we do.
        (loss / trg.ne(vocab.pad_index).sum()).backward()
        optimizer.step()
        optimizer.zero_grad()

    model.train()
    train_seconds = timed(train_step, payload["train"])
    model.eval()

    def decode(batch):
        src, src_mask, src_length = source(batch)
        with torch.no_grad():
            encoder_output, encoder_hidden, _, _ = model(
                return_type="encode", src=src, src_length=src_length, src_mask=src_mask
            )
            beam_search(
                model=model,
                beam_size=5,
                encoder_output=encoder_output,
                encoder_hidden=encoder_hidden,
                src_mask=src_mask,
                max_output_length=payload["max_new_tokens"],
                min_output_length=payload["max_new_tokens"],
                alpha=1.0,
            )

    decode_seconds = timed(decode, payload["decode"], warmup=1)
    return {"train_seconds": train_seconds, "decode_seconds": decode_seconds}


def run_worker(python, implementation, batches_path) -> dict:
    command = [str(python), __file__, "--worker", implementation, "--batches", str(batches_path)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{implementation} worker failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent.parent / "shared" / "data" / "multi30k"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=22, help="including 2 warm-up steps")
    parser.add_argument("--decode-sentences", type=int, default=320)
    parser.add_argument("--decode-batch-size", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--input-feeding",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="without it, our decoder runs its RNN over the whole target in one call when training",
    )
    parser.add_argument(
        "--sparse-output-layer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ours: output layer only at real target tokens when training (the default); "
        "--no-sparse-output-layer for the dense ablation",
    )
    parser.add_argument("--worker", choices=["ours", "joeynmt"], help=argparse.SUPPRESS)
    parser.add_argument("--batches", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        import torch

        payload = json.loads(Path(args.batches).read_text())
        torch.set_num_threads(payload["threads"])
        worker = worker_ours if args.worker == "ours" else worker_joeynmt
        print(json.dumps(worker(payload)))
        return

    if not JOEY_PYTHON.exists():
        raise SystemExit(
            f"JoeyNMT's environment {JOEY_PYTHON.parent.parent} is missing: see this file's docstring"
        )
    batches_path = prepare(args)
    payload = json.loads(batches_path.read_text())
    train_tokens = sum(len(t) for batch in payload["train"][2:] for _, t in batch)
    decode_sentences = sum(len(batch) for batch in payload["decode"][1:])
    best, round_ratios = {}, {"train": [], "decode": []}
    workers = [("ours", sys.executable), ("joeynmt", JOEY_PYTHON)]
    for round_ in range(args.rounds):
        results = {}
        for name, python in workers if round_ % 2 == 0 else workers[::-1]:
            results[name] = result = run_worker(python, name, batches_path)
            print(f"round {round_ + 1} {name}: {result}", flush=True)
            for key, value in result.items():
                best[(name, key)] = min(value, best.get((name, key), float("inf")))
        for kind in round_ratios:  # seconds: the peer's over ours is our speed over the peer's
            round_ratios[kind].append(
                results["joeynmt"][f"{kind}_seconds"] / results["ours"][f"{kind}_seconds"]
            )
    rows = {
        name: {
            "train_tokens_per_s": train_tokens / best[(name, "train_seconds")],
            "decode_sentences_per_s": decode_sentences / best[(name, "decode_seconds")],
        }
        for name in ("ours", "joeynmt")
    }
    summary = {
        "threads": args.threads,
        "input_feeding": args.input_feeding,
        "sparse_output_layer": args.sparse_output_layer,
        "train_target_tokens": train_tokens,
        "decode_sentences": decode_sentences,
        **{f"{name}_{key}": round(value, 1) for name, row in rows.items() for key, value in row.items()},
        **{
            f"{kind}_ratio_ours_over_joeynmt_per_round": [round(r, 3) for r in ratios]
            for kind, ratios in round_ratios.items()
        },
        **{
            f"{kind}_ratio_ours_over_joeynmt_median": round(statistics.median(ratios), 3)
            for kind, ratios in round_ratios.items()
        },
        "train_ratio_ours_over_joeynmt_best_rounds": round(
            rows["ours"]["train_tokens_per_s"] / rows["joeynmt"]["train_tokens_per_s"], 3
        ),
        "decode_ratio_ours_over_joeynmt_best_rounds": round(
            rows["ours"]["decode_sentences_per_s"] / rows["joeynmt"]["decode_sentences_per_s"], 3
        ),
    }
    print(json.dumps(summary, indent=2))
    (
        WORK
        / f"summary-{args.threads}threads-feeding-{args.input_feeding}-sparse-{args.sparse_output_layer}.json"
    ).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
