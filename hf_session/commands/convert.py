"""`hf-session convert from-bert|to-bert SRC OUT`."""


def add_parser(subparsers) -> None:
    group = subparsers.add_parser(
        "convert", help="convert checkpoints between transformers' BERT and session_bert"
    )
    commands = group.add_subparsers(dest="convert_command", required=True)
    for name, help_text in (
        ("from-bert", "a transformers BERT checkpoint folder → a session_bert checkpoint"),
        ("to-bert", "a session_bert checkpoint → a transformers BERT checkpoint (no remote code needed)"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument(
            "src", help="checkpoint folder (config.json + weights, tokenizer files optional)"
        )
        command.add_argument("out", help="folder to write (refused if it is a file or not empty)")
        command.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
        command.set_defaults(func=_run_convert)


def _run_convert(args) -> int:
    from ..models.session_bert.convert import convert_from_bert, convert_to_bert

    convert = convert_from_bert if args.convert_command == "from-bert" else convert_to_bert
    out = convert(args.src, args.out, overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0
