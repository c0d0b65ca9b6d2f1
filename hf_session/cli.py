"""`hf-session` command line. Thin on purpose: parse, call the library, print.

The command groups live in `hf_session/commands/`, one module each (see its `__init__`).
"""

import argparse
import importlib
import pkgutil
import sys

from huggingface_hub.errors import StrictDataclassError

from . import commands

# Errors that are the user's to fix: printed as one line, exit code 2, no traceback.
USER_ERRORS = (ValueError, OSError, StrictDataclassError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-session", description="The classic NLP stack as Hugging Face models: tokenizers, RNNs, BERT."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{module.name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as err:
        print(f"hf-session: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
