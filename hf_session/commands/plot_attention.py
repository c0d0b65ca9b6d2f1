"""`hf-session plot-attention MODEL_DIR "sentence" --output F.png`: an attention heat map as a PNG."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "plot-attention",
        help="draw a seq2seq model's alignment, or one BERT layer/head, on a sentence",
    )
    parser.add_argument("model_dir", help="folder with the model and its tokenizer")
    parser.add_argument("sentence")
    parser.add_argument("--output", required=True, help="PNG file to write")
    parser.add_argument("--layer", type=int, default=None, help="BERT layer (default: the last)")
    parser.add_argument("--head", type=int, default=None, help="BERT head (default: 0)")
    parser.add_argument("--num-beams", type=int, default=1, help="seq2seq: beam size of the translation")
    parser.set_defaults(func=_run_plot_attention)


def _run_plot_attention(args) -> int:
    from ..plotting import plot_attention

    kwargs = {"layer": args.layer, "head": args.head}
    if args.num_beams != 1:
        kwargs["num_beams"] = args.num_beams
    result = plot_attention(args.model_dir, args.sentence, args.output, **kwargs)
    rows, columns = result["weights"].shape
    print(f"wrote {result['path']} ({rows} × {columns} attention weights)")
    if result["y_tokens"] is not result["x_tokens"]:
        print("translation:", " ".join(result["y_tokens"]))
    return 0
