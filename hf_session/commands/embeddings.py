"""`hf-session embeddings count|train|neighbors|analogy|plot`."""

import argparse

SOURCE_HELP = (
    "a PPMI-SVD folder, a word2vec checkpoint, or any checkpoint with a tokenizer (its input embeddings)"
)


def add_parser(subparsers) -> None:
    group = subparsers.add_parser("embeddings", help="train and explore word vectors (PPMI-SVD, word2vec)")
    commands = group.add_subparsers(dest="embeddings_command", required=True)

    count = commands.add_parser("count", help="count-based vectors: co-occurrence → PPMI → truncated SVD")
    count.add_argument("--files", nargs="+", required=True, help="UTF-8 text files, one paragraph per line")
    count.add_argument(
        "--output", required=True, help="folder to write (refused if it is a file or not empty)"
    )
    count.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    count.add_argument("--tokenizer", help="tokenizer folder (e.g. WordPiece); default: whole words")
    count.add_argument("--dim", type=int, default=100)
    count.add_argument("--window", type=int, default=2)
    count.add_argument("--min-frequency", type=int, default=5)
    count.add_argument("--max-vocab-size", type=int)
    count.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=True)
    count.add_argument(
        "--split-punctuation",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="--no-split-punctuation for text that is already tokenized",
    )
    count.add_argument("--unk-token", default="[UNK]", help="e.g. '<unk>' for WikiText")
    count.add_argument("--alpha", type=float, default=0.75, help="context-distribution smoothing")
    count.set_defaults(func=_run_count)

    train = commands.add_parser("train", help="train word2vec with Trainer from a recipe YAML")
    train.add_argument("recipe", help="e.g. recipes/word2vec-skipgram.yaml")
    train.add_argument("--output-dir", help="override the recipe's output_dir")
    train.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    train.set_defaults(func=_run_train)

    neighbors = commands.add_parser("neighbors", help="nearest words by cosine")
    neighbors.add_argument("source", help=SOURCE_HELP)
    neighbors.add_argument("word", nargs="+")
    neighbors.add_argument("-k", type=int, default=10, help="how many neighbours")
    neighbors.set_defaults(func=_run_neighbors)

    analogy = commands.add_parser("analogy", help="words nearest to A - B + C (king - man + woman)")
    analogy.add_argument("source", help=SOURCE_HELP)
    analogy.add_argument("a")
    analogy.add_argument("b")
    analogy.add_argument("c")
    analogy.add_argument("-k", type=int, default=10)
    analogy.set_defaults(func=_run_analogy)

    plot = commands.add_parser("plot", help="2-D PCA picture of chosen words, saved as PNG")
    plot.add_argument("source", help=SOURCE_HELP)
    plot.add_argument("words", nargs="+", metavar="WORD")
    plot.add_argument("--output", required=True, help="PNG file to write")
    plot.add_argument("--title")
    plot.set_defaults(func=_run_plot)

    for command in (neighbors, analogy, plot):
        command.add_argument(
            "--trust-remote-code", action="store_true", help="allow loading a checkpoint's own model code"
        )


def _print_scored(pairs) -> None:
    for token, score in pairs:
        print(f"  {token:20} {score:.4f}")


def _run_count(args) -> int:
    from ..embeddings import train_ppmi_svd
    from ..tokenization import load_tokenizer

    vectors = train_ppmi_svd(
        files=args.files,
        tokenizer=load_tokenizer(args.tokenizer) if args.tokenizer else None,
        dim=args.dim,
        window=args.window,
        min_frequency=args.min_frequency,
        max_vocab_size=args.max_vocab_size,
        lowercase=args.lowercase,
        split_punctuation=args.split_punctuation,
        unk_token=args.unk_token,
        alpha=args.alpha,
        output_dir=args.output,
        overwrite=args.overwrite,
    )
    config = vectors.config
    print(
        f"saved {len(vectors)} x {vectors.dim} PPMI-SVD vectors to {args.output} "
        f"({config['corpus_tokens']} tokens, {config['nonzero_ppmi']} positive PPMI cells, "
        f"{config['train_seconds']:.1f}s)"
    )
    return 0


def _run_train(args) -> int:
    from ..embeddings import parse_word2vec_recipe, train_word2vec

    data_args, model_args, training_args = parse_word2vec_recipe(args.recipe)
    if args.output_dir:
        training_args.output_dir = args.output_dir
    model, metrics = train_word2vec(data_args, model_args, training_args, overwrite=args.overwrite)
    print(
        f"saved a {model.config.architecture} word2vec model ({model.config.vocab_size} x "
        f"{model.config.hidden_size}) to {training_args.output_dir}: {metrics['train_examples']} examples, "
        f"final train loss {metrics['train_loss']:.4f}, {metrics['train_runtime']:.1f}s"
    )
    return 0


def _run_neighbors(args) -> int:
    from ..embeddings import load_word_vectors

    vectors = load_word_vectors(args.source, trust_remote_code=args.trust_remote_code)
    for word in args.word:
        print(f"{word}:")
        _print_scored(vectors.neighbors(word, k=args.k))
    return 0


def _run_analogy(args) -> int:
    from ..embeddings import load_word_vectors

    vectors = load_word_vectors(args.source, trust_remote_code=args.trust_remote_code)
    print(f"{args.a} - {args.b} + {args.c}:")
    _print_scored(vectors.analogy(args.a, args.b, args.c, k=args.k))
    return 0


def _run_plot(args) -> int:
    from ..embeddings import load_word_vectors

    vectors = load_word_vectors(args.source, trust_remote_code=args.trust_remote_code)
    path = vectors.plot(args.words, args.output, title=args.title)
    print(f"saved the PCA plot of {len(args.words)} words to {path}")
    return 0
