"""`hf-session translate MODEL_DIR`: source sentences on stdin, one a line → translations on stdout."""

import sys


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "translate", help="translate stdin line by line with a seq2seq model folder (model + tokenizer)"
    )
    parser.add_argument("model_dir", help="folder written by save_pretrained of the model and its tokenizer")
    parser.add_argument("--num-beams", type=int, default=5, help="beam size (1: greedy)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: 1.5 × source length + 10")
    parser.add_argument("--length-penalty", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.set_defaults(func=_run_translate)


def _run_translate(args) -> int:
    from ..translation import load_translator, translate

    if args.num_beams < 1:
        raise ValueError(f"--num-beams must be at least 1, got {args.num_beams}")
    model, tokenizer = load_translator(args.model_dir)
    lines = [line.rstrip("\n") for line in sys.stdin]
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise ValueError(f"line {number} of the input is empty: nothing to translate")
    kwargs = {"num_beams": args.num_beams, "batch_size": args.batch_size}
    if args.num_beams > 1:
        kwargs["length_penalty"] = args.length_penalty
    if args.max_new_tokens is not None:
        kwargs["max_new_tokens"] = args.max_new_tokens
    for translation in translate(model, lines, tokenizer, **kwargs):
        print(translation)
    return 0
