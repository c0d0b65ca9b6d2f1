"""One module per `hf-session` command group.

Each module defines ``add_parser(subparsers)``, which adds its sub-command(s) and sets ``func`` to a
function ``(args) -> exit code``. Library imports happen inside those functions, so ``--help`` is fast.
Adding a command means adding a module here.
"""
