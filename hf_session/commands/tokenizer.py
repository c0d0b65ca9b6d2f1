"""`hf-session tokenizer train|encode`."""

import argparse
import itertools
import sys


def add_parser(subparsers) -> None:
    group = subparsers.add_parser("tokenizer", help="train and use WordPiece vocabularies")
    commands = group.add_subparsers(dest="tokenizer_command", required=True)

    train = commands.add_parser("train", help="train a WordPiece vocabulary from text files")
    train.add_argument(
        "--files", nargs="+", required=True, help="UTF-8 text files (both languages for a joint vocabulary)"
    )
    train.add_argument("--vocab-size", type=int, default=30522)
    train.add_argument("--min-frequency", type=int, default=2)
    train.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=True)
    train.add_argument(
        "--strip-accents",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="default: follow --lowercase (Hangul is never decomposed)",
    )
    train.add_argument("--unicode-form", choices=["nfc", "nfkc", "none"], default="nfc")
    train.add_argument(
        "--limit-alphabet", type=int, default=None, help="keep at most N characters (default: all)"
    )
    train.add_argument("--model-max-length", type=int, default=512)
    train.add_argument(
        "--output", required=True, help="folder to write (refused if it is a file or not empty)"
    )
    train.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    train.set_defaults(func=_run_tokenizer_train)

    encode = commands.add_parser("encode", help="print the pieces and ids of a text")
    encode.add_argument("tokenizer", help="folder written by `tokenizer train` (or any AutoTokenizer path)")
    encode.add_argument("text")
    encode.add_argument("pair", nargs="?", help="optional second segment")
    encode.set_defaults(func=_run_tokenizer_encode)


def _run_tokenizer_train(args) -> int:
    from ..tokenization import train_wordpiece, vocabulary_stats

    tokenizer = train_wordpiece(
        files=args.files,
        vocab_size=args.vocab_size,
        min_frequency=args.min_frequency,
        lowercase=args.lowercase,
        strip_accents=args.strip_accents,
        unicode_form=None if args.unicode_form == "none" else args.unicode_form,
        limit_alphabet=args.limit_alphabet,
        model_max_length=args.model_max_length,
        show_progress=sys.stderr.isatty(),
        output_dir=args.output,
        overwrite=args.overwrite,
    )
    with open(args.files[0], encoding="utf-8") as handle:
        sample = list(itertools.islice(handle, 2000))
    stats = vocabulary_stats(tokenizer, sample)
    print(f"saved a {len(tokenizer)}-token WordPiece vocabulary to {args.output}")
    print(
        f"on the first {len(sample)} lines of {args.files[0]}: {stats['tokens_per_word']:.3f} tokens/word, "
        f"[UNK] rate {stats['unk_rate']:.4%}, words kept whole {stats['whole_word_rate']:.1%}"
    )
    return 0


def _run_tokenizer_encode(args) -> int:
    from ..tokenization import load_tokenizer

    tokenizer = load_tokenizer(args.tokenizer)
    encoding = tokenizer(args.text, args.pair)
    pieces = tokenizer.convert_ids_to_tokens(encoding["input_ids"])
    print("pieces:        ", " ".join(pieces))
    print("input_ids:     ", " ".join(map(str, encoding["input_ids"])))
    if "token_type_ids" in encoding:
        print("token_type_ids:", " ".join(map(str, encoding["token_type_ids"])))
    print("decoded:       ", tokenizer.decode(encoding["input_ids"], skip_special_tokens=True))
    return 0
