"""`python -m hf_session ...` is the same as the `hf-session` command (and works under `accelerate launch -m`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
