"""WordPiece training: `hf_session.train_wordpiece` against the bare `tokenizers` trainer.

Same input (WikiText-2 valid + test from ../shared/data, or the bundled sample when that is absent),
same settings, same thread count, alternating runs; prints the median time of each and the ratio
(ours / bare; the wrapper should add at most 10%), then the batch-encoding throughput of the saved
tokenizer through transformers (`AutoTokenizer`) against the bare `tokenizers.Tokenizer`.

    .venv/bin/python benchmarks/tokenizer_training.py [--repeats 5] [--vocab-size 30522]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer

from hf_session.tokenization import SPECIAL_TOKENS, build_normalizer, train_wordpiece
from hf_session.utils import data_path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikitext2"


def bare_train(files, vocab_size):
    """The same pipeline written directly against `tokenizers`, no wrapper, no transformers object."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = build_normalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        limit_alphabet=1000,
        show_progress=False,
    )
    tok.train(files, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return tok


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--vocab-size", type=int, default=30522)
    args = parser.parse_args()

    files = [SHARED / "valid.txt", SHARED / "test.txt"]
    if not all(f.exists() for f in files):
        files = [data_path("wikitext2", "wiki.sample.raw")]
    files = [str(f) for f in files]
    size_mb = sum(Path(f).stat().st_size for f in files) / 1e6
    print(f"input: {', '.join(files)} ({size_mb:.1f} MB), vocab_size={args.vocab_size}")

    ours_t, bare_t = [], []
    for _ in range(args.repeats):
        t, ours = timed(lambda: train_wordpiece(files=files, vocab_size=args.vocab_size))
        ours_t.append(t)
        t, bare = timed(lambda: bare_train(files, args.vocab_size))
        bare_t.append(t)
    # The trainer breaks ties between equally frequent merges differently from run to run, so two runs
    # of either pipeline differ by a handful of entries; the vocabularies must still agree closely.
    overlap = len(set(ours.get_vocab()) & set(bare.get_vocab())) / bare.get_vocab_size()
    assert overlap > 0.99, f"the two pipelines trained different vocabularies (overlap {overlap:.3f})"
    ours_med, bare_med = statistics.median(ours_t), statistics.median(bare_t)
    print(
        f"train  ours {ours_med:.3f}s  bare tokenizers {bare_med:.3f}s  ratio ours/bare {ours_med / bare_med:.3f}"
    )

    lines = [line for f in files for line in Path(f).read_text(encoding="utf-8").splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        ours.save_pretrained(tmp)
        loaded = AutoTokenizer.from_pretrained(tmp)
        backend = Tokenizer.from_file(f"{tmp}/tokenizer.json")
        enc_ours, enc_bare = [], []
        for _ in range(args.repeats):
            enc_ours.append(timed(lambda: loaded(lines, truncation=True, max_length=128))[0])
            enc_bare.append(timed(lambda: backend.encode_batch(lines))[0])
    n_tokens = sum(len(e.ids) for e in backend.encode_batch(lines))
    o, b = statistics.median(enc_ours), statistics.median(enc_bare)
    print(
        f"encode {len(lines)} lines ({n_tokens} tokens): AutoTokenizer {len(lines) / o:,.0f} lines/s "
        f"({n_tokens / o:,.0f} tokens/s), bare Tokenizer.encode_batch {len(lines) / b:,.0f} lines/s, ratio {o / b:.3f}"
    )


if __name__ == "__main__":
    main()
