"""Multi30k en→de with a GRU or LSTM seq2seq + Bahdanau attention: sacreBLEU on test_2016_flickr, beam 5.

Trains with `Seq2SeqTrainer(predict_with_generate=True)` and `DataCollatorForSeq2Seq` on a joint
(cased) WordPiece vocabulary trained on train.en + train.de, then decodes the test set with beam 5 and
scores the detokenized output against the raw references with sacreBLEU (13a tokenization, cased).

    nice -n 10 .venv/bin/python benchmarks/rnn_multi30k_bleu.py --cell gru --threads 1 \
        > benchmarks/.work/multi30k-gru.log 2>&1 &

Data: `../shared/data/multi30k` (see its PROVENANCE.md). Goal of issue 7: ≥ 35 sacreBLEU.
"""

import argparse
import json
import time
from pathlib import Path

import sacrebleu
import torch
from datasets import Dataset
from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

from hf_session import load_tokenizer, train_wordpiece
from hf_session.models.session_rnn import SessionRnnConfig, SessionRnnForConditionalGeneration
from hf_session.translation import preprocess_translation, translate, translation_special_ids

ROOT = Path(__file__).resolve().parent


class TimeBudget(TrainerCallback):
    """Stop training once `minutes` have passed (the learning-rate schedule is then cut where it is)."""

    def __init__(self, minutes: float | None):
        self.seconds = None if minutes is None else 60 * minutes
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.seconds is not None and time.perf_counter() - self.start > self.seconds:
            control.should_training_stop = True


class InOrderSeq2SeqTrainer(Seq2SeqTrainer):
    """Evaluates in data order, so that generated translations line up with the raw references.

    transformers 5.x groups evaluation batches by length too when `train_sampling_strategy` is
    "group_by_length", which shuffles the predictions against any reference list kept outside the dataset.
    """

    def _get_eval_sampler(self, eval_dataset):
        return torch.utils.data.SequentialSampler(eval_dataset)


def read(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=["gru", "lstm"], default="gru")
    parser.add_argument("--data", default=str(ROOT.parent.parent / "shared" / "data" / "multi30k"))
    parser.add_argument("--workdir", default=None, help="default: benchmarks/.work/multi30k-<cell>")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--num-layers", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--epochs", type=float, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--eval-strategy", default="no", help='"epoch": greedy val BLEU after each epoch')
    parser.add_argument("--max-train", type=int, default=None, help="use only the first N training pairs")
    parser.add_argument("--max-test", type=int, default=None, help="score only the first N test pairs")
    parser.add_argument("--num-beams", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--init-from",
        default=None,
        help="continue training a model folder this script saved (model + tokenizer)",
    )
    parser.add_argument(
        "--time-budget", type=float, default=None, help="stop training after this many minutes"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = Path(args.data)
    workdir = Path(args.workdir or ROOT / ".work" / f"multi30k-{args.cell}")
    workdir.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    if args.init_from:
        tokenizer = load_tokenizer(args.init_from)
    else:
        tokenizer = train_wordpiece(
            files=[data / "train.en", data / "train.de"], vocab_size=args.vocab_size, lowercase=False
        )
    train_src, train_tgt = read(data / "train.en"), read(data / "train.de")
    if args.max_train:
        train_src, train_tgt = train_src[: args.max_train], train_tgt[: args.max_train]
    val_src, val_tgt = read(data / "val.en"), read(data / "val.de")
    test_src, test_tgt = read(data / "test_2016_flickr.en"), read(data / "test_2016_flickr.de")
    if args.max_test:
        test_src, test_tgt = test_src[: args.max_test], test_tgt[: args.max_test]

    def dataset(sources, targets):
        return Dataset.from_dict(preprocess_translation(tokenizer, sources, targets))

    train_set, val_set, test_set = (
        dataset(train_src, train_tgt),
        dataset(val_src, val_tgt),
        dataset(test_src, test_tgt),
    )
    config = SessionRnnConfig(
        vocab_size=len(tokenizer),
        embedding_size=args.hidden_size,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        cell_type=args.cell,
        bidirectional=True,
        attention_type="bahdanau",
        input_feeding=True,
        dropout=args.dropout,
        label_smoothing=args.label_smoothing,
        **translation_special_ids(tokenizer),
    )
    if args.init_from:
        model = SessionRnnForConditionalGeneration.from_pretrained(args.init_from)
    else:
        model = SessionRnnForConditionalGeneration(config)
    print(f"{args.cell}: {model.num_parameters():,} parameters, vocabulary {len(tokenizer)}", flush=True)

    references = {"val": val_tgt, "test": test_tgt}
    bleu = sacrebleu.BLEU()

    def bleu_of(split):
        def compute_metrics(prediction):
            ids = prediction.predictions
            ids[ids == -100] = tokenizer.pad_token_id
            hypotheses = tokenizer.batch_decode(ids, skip_special_tokens=True)
            return {"bleu": bleu.corpus_score(hypotheses, [references[split]]).score}

        return compute_metrics

    training_args = Seq2SeqTrainingArguments(
        output_dir=str(workdir / "trainer"),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=128,
        learning_rate=args.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=100,
        max_grad_norm=1.0,
        train_sampling_strategy="group_by_length",
        eval_strategy=args.eval_strategy,
        save_strategy="no",
        logging_steps=100,
        predict_with_generate=True,
        generation_num_beams=1,
        generation_max_length=80,
        report_to="none",
        use_cpu=True,
        seed=0,
    )
    trainer = InOrderSeq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=val_set,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
        processing_class=tokenizer,
        compute_metrics=bleu_of("val"),
        callbacks=[TimeBudget(args.time_budget)],
    )
    train_start = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - train_start

    decode_start = time.perf_counter()
    trainer.compute_metrics = bleu_of("test")
    result = trainer.predict(test_set, num_beams=args.num_beams, max_length=80, length_penalty=1.0)
    decode_seconds = time.perf_counter() - decode_start
    test_bleu = result.metrics["test_bleu"]

    model_dir = workdir / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    # The one-line helper must give the same translations as the trainer.
    sample = translate(model, test_src[:5], tokenizer, num_beams=args.num_beams, max_length=80)
    summary = {
        "cell": args.cell,
        "parameters": model.num_parameters(),
        "train_pairs": len(train_set),
        "init_from": args.init_from,
        "epochs": args.epochs,
        "epochs_done": round(trainer.state.epoch, 2),
        "steps_done": trainer.state.global_step,
        "threads": args.threads,
        "train_seconds": round(train_seconds, 1),
        "test_2016_flickr_sacrebleu_beam": round(test_bleu, 2),
        "num_beams": args.num_beams,
        "decode_seconds": round(decode_seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
        "bleu_signature": str(bleu.get_signature()),
    }
    for source, hypothesis in zip(test_src[:5], sample, strict=True):
        print(f"  {source}\n  → {hypothesis}")
    print(json.dumps(summary, indent=2))
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
