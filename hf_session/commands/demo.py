"""`hf-session demo`: the end-to-end demo (`make demo`)."""


def add_parser(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="run the end-to-end demo on the bundled samples")
    demo.add_argument("--output", default="demo_output", help="working folder (replaced on each run)")
    demo.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    from ..demo import run_demo

    run_demo(args.output)
    return 0
