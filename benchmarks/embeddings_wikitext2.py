"""Word vectors on WikiText-2 (valid + test, about 455 k words): PPMI-SVD and our word2vec, with
gensim's word2vec (the usual tool) as the named peer, measured in the same run.

    .venv/bin/python benchmarks/embeddings_wikitext2.py                  # needs ../shared/data/wikitext2
    .venv/bin/python benchmarks/embeddings_wikitext2.py --epochs 1       # quicker
    .venv/bin/python benchmarks/embeddings_wikitext2.py --threads 2      # for the speed ratio
    .venv/bin/python benchmarks/embeddings_wikitext2.py --architecture cbow

Each method trains in its own subprocess, so its peak memory (ru_maxrss) is its own; "seconds" is
the wall-clock time of data preparation + training (imports excluded). Then, for every method:
- the nearest neighbours of a few common words;
- a word-relatedness check built from the corpus itself: "topical" words (at least 80 % of their
  occurrences in one article, seen 10+ times) are paired within an article (related) and across
  articles (unrelated); we report the ROC AUC of cosine similarity separating the two (0.5 = chance)
  and the mean cosine of each kind. Only relatedness (co-occurrence in a topic) can be tested this
  way, not synonymy; and the vectors were trained on these very articles, so this measures what the
  methods extract from the corpus, not generalisation.
gensim is optional (`pip install hf-session[bench]`); without it its row is skipped.
"""

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "wikitext2"
METHODS = ("ppmi-svd", "word2vec", "gensim")
COMMON_WORDS = ["city", "war", "film", "album", "king", "river", "church", "game", "she", "season"]
HEADING = re.compile(r"^ = [^=].* = $")  # " = Title = " starts an article; " = = Section = = " does not


def read_corpus(data_dir: Path) -> list[str]:
    lines = []
    for name in ("valid.txt", "test.txt"):
        with open(data_dir / name, encoding="utf-8") as handle:
            lines += [line.rstrip("\n") for line in handle]
    return lines


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_method(method: str, data_dir: Path, output: Path, args) -> dict:
    """Train one method (in this process) and save its vectors to `output`; return time and memory."""
    import torch

    torch.set_num_threads(args.threads)
    from hf_session.embeddings import (
        Word2VecDataArguments,
        Word2VecModelArguments,
        WordVectors,
        train_ppmi_svd,
        train_word2vec,
    )

    lines = [line for line in read_corpus(data_dir) if line.strip()]
    baseline = peak_rss_mb()
    start = time.perf_counter()
    if method == "ppmi-svd":
        vectors = train_ppmi_svd(
            texts=lines,
            dim=args.dim,
            window=args.ppmi_window,
            min_frequency=args.min_frequency,
            split_punctuation=False,
            unk_token="<unk>",
        )
        seconds = time.perf_counter() - start
        vectors.save_pretrained(output, overwrite=True)
        extra = {"vocab_size": len(vectors), "nonzero_ppmi": vectors.config["nonzero_ppmi"]}
    elif method == "word2vec":
        from transformers import TrainingArguments

        corpus_file = output.parent / "wikitext2-valid-test.txt"
        corpus_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        model, metrics = train_word2vec(
            Word2VecDataArguments(
                train_files=[str(corpus_file)],
                min_frequency=args.min_frequency,
                split_punctuation=False,
                unk_token="<unk>",
                subsample_threshold=1e-3,
            ),
            Word2VecModelArguments(
                architecture=args.architecture, hidden_size=args.dim, window=5, num_negatives=5
            ),
            TrainingArguments(
                str(output),
                num_train_epochs=args.epochs,
                per_device_train_batch_size=512,
                learning_rate=args.learning_rate,
                logging_steps=100,
                save_strategy="no",
                report_to="none",
                disable_tqdm=True,
                seed=0,
            ),
            overwrite=True,
        )
        seconds = time.perf_counter() - start
        extra = {
            "vocab_size": model.config.vocab_size,
            "train_examples": metrics["train_examples"],
            "train_loss": round(metrics["train_loss"], 4),
        }
    else:
        from gensim.models import Word2Vec

        sentences = [[w for w in line.lower().split() if w != "<unk>"] for line in lines]
        model = Word2Vec(
            sentences,
            vector_size=args.dim,
            window=5,
            negative=5,
            sg=int(args.architecture == "skip-gram"),
            min_count=args.min_frequency,
            sample=1e-3,
            epochs=args.epochs,
            workers=args.threads,
            seed=0,
        )
        seconds = time.perf_counter() - start
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
        from transformers import PreTrainedTokenizerFast

        words = ["[PAD]", "<unk>", *model.wv.index_to_key]
        backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
        backend.normalizer = normalizers.Lowercase()
        backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="<unk>")
        vectors = torch.cat([torch.zeros(2, args.dim), torch.from_numpy(model.wv.vectors)])
        WordVectors(vectors, tokenizer, {"method": "gensim-word2vec"}).save_pretrained(output, overwrite=True)
        extra = {"vocab_size": len(words)}
    return {
        "method": method,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_after_imports_mb": round(baseline, 1),
        **extra,
    }


def topical_pairs(
    lines: list[str], vocabulary, min_count: int = 10, share: float = 0.8, per_article: int = 12
):
    """(same-article pairs, cross-article pairs) of words concentrated in one article."""
    import random

    counts: dict[str, Counter] = defaultdict(Counter)
    article = -1
    for line in lines:
        if HEADING.match(line):
            article += 1
        for word in line.lower().split():
            if word.isalpha():
                counts[word][article] += 1
    by_article = defaultdict(list)
    for word, per in counts.items():
        total = sum(per.values())
        home, top = per.most_common(1)[0]
        if total >= min_count and top / total >= share and word in vocabulary:
            by_article[home].append((total, word))
    groups = [[w for _, w in sorted(words, reverse=True)[:per_article]] for words in by_article.values()]
    groups = [g for g in groups if len(g) >= 2]
    same = [pair for group in groups for pair in combinations(group, 2)]
    rng = random.Random(0)
    cross = []
    while len(cross) < len(same):
        first, second = rng.sample(range(len(groups)), 2)
        cross.append((rng.choice(groups[first]), rng.choice(groups[second])))
    return same, cross, groups


def evaluate(vectors, lines: list[str], common_words: list[str]) -> dict:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    same, cross, groups = topical_pairs(lines, vectors)
    scores_same = [vectors.similarity(a, b) for a, b in same]
    scores_cross = [vectors.similarity(a, b) for a, b in cross]
    labels = [1] * len(same) + [0] * len(cross)
    return {
        "articles": len(groups),
        "pairs": len(same),
        "auc": round(float(roc_auc_score(labels, scores_same + scores_cross)), 4),
        "cos_same": round(float(np.mean(scores_same)), 3),
        "cos_cross": round(float(np.mean(scores_cross)), 3),
        "neighbors": {
            w: [t for t, _ in vectors.neighbors(w, k=5)] if w in vectors else None for w in common_words
        },
        "example_groups": groups[:3],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with valid.txt and test.txt")
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks" / ".work" / "embeddings")
    parser.add_argument("--threads", type=int, default=1, help="torch / BLAS / gensim threads")
    parser.add_argument("--epochs", type=int, default=5, help="word2vec epochs (ours and gensim)")
    parser.add_argument("--learning-rate", type=float, default=0.03, help="our word2vec (AdamW)")
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument(
        "--architecture", choices=["skip-gram", "cbow"], default="skip-gram", help="word2vec, both"
    )
    parser.add_argument("--ppmi-window", type=int, default=2)
    parser.add_argument("--min-frequency", type=int, default=5)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument(
        "--run", choices=METHODS, help=argparse.SUPPRESS
    )  # internal: one method, in a subprocess
    args = parser.parse_args()

    if not (args.data / "valid.txt").is_file():
        print(f"skipped: {args.data}/valid.txt not found (WikiText-2 from ../shared/data)")
        return 0
    if args.run:
        print(json.dumps(run_method(args.run, args.data, args.work / args.run, args)))
        return 0

    args.work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads))
    results = {}
    for method in args.methods:
        if method == "gensim":
            try:
                import gensim  # noqa: F401
            except ImportError:
                print("gensim is not installed (pip install hf-session[bench]): its row is skipped")
                continue
        command = [sys.executable, __file__, "--run", method, *sys.argv[1:]]
        print(f"training {method} ...", flush=True)
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
        if done.returncode != 0:
            print(done.stderr[-3000:])
            return 1
        results[method] = json.loads(done.stdout.strip().splitlines()[-1])

    from hf_session.embeddings import load_word_vectors

    lines = read_corpus(args.data)
    print(
        f"\nWikiText-2 valid+test, {args.threads} thread(s), dim {args.dim}, min frequency {args.min_frequency}, "
        f"word2vec {args.architecture}"
    )
    print(
        f"{'method':10} {'seconds':>8} {'peak MB':>8} {'(imports)':>9} {'vocab':>6} {'AUC':>6} "
        f"{'cos same':>9} {'cos cross':>9}"
    )
    for method, result in results.items():
        result.update(evaluate(load_word_vectors(args.work / method), lines, COMMON_WORDS))
        print(
            f"{method:10} {result['seconds']:8.1f} {result['peak_rss_mb']:8.0f} {result['rss_after_imports_mb']:9.0f} "
            f"{result['vocab_size']:6d} "
            f"{result['auc']:6.3f} {result['cos_same']:9.3f} {result['cos_cross']:9.3f}"
        )
    first = next(iter(results.values()))
    print(
        f"\nrelatedness check: {first['pairs']} same-article pairs from {first['articles']} articles, as many cross-article"
    )
    print("e.g.", "; ".join(", ".join(group) for group in first["example_groups"]))
    if "gensim" in results:
        for method in ("ppmi-svd", "word2vec"):
            if method in results:
                print(
                    f"time ratio {method} / gensim word2vec: "
                    f"{results[method]['seconds'] / results['gensim']['seconds']:.2f}"
                )
    print("\nnearest neighbours (top 5):")
    for word in COMMON_WORDS:
        for method, result in results.items():
            found = result["neighbors"][word]
            print(f"  {word:8} {method:9} {', '.join(found) if found else '(not in vocabulary)'}")
    (args.work / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nall numbers: {args.work / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
