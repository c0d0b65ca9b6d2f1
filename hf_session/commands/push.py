"""`hf-session push MODEL_DIR REPO_ID`: upload a saved model folder to the Hugging Face Hub."""


def add_parser(subparsers) -> None:
    push = subparsers.add_parser(
        "push", help="upload a saved model (weights, tokenizer, code files, model card) to the Hub"
    )
    push.add_argument("model_dir", help="a folder written by `hf-session finetune` or save_pretrained")
    push.add_argument("repo_id", help="the Hub repository, e.g. your-name/sst2-session-bert")
    push.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or `hf auth login`)")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.set_defaults(func=_run_push)


def _run_push(args) -> int:
    from ..hub import push_model

    url = push_model(args.model_dir, args.repo_id, token=args.token, private=args.private)
    print(f"pushed {args.model_dir} to {url}")
    return 0
