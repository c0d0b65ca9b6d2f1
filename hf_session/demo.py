"""`make demo`: the library's main jobs, end to end, on the samples bundled in `hf_session/data/`.

Each step is a function that takes the working folder and the results of the steps before it; the
steps run in the order of `STEPS`.
"""

import shutil
import time
from pathlib import Path

from .utils import data_path, read_tsv_column


def _banner(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


def step_tokenizer(workdir: Path, results: dict) -> None:
    """Train one WordPiece vocabulary on English and Korean text, save it, reload it with AutoTokenizer."""
    from transformers import AutoTokenizer

    from .tokenization import train_wordpiece, vocabulary_stats

    _banner("1. WordPiece vocabulary (English + Korean)")
    english = data_path("wikitext2", "wiki.sample.raw")
    korean = read_tsv_column(data_path("nsmc", "train.tsv"), "document")
    korean_file = workdir / "nsmc_train.txt"
    korean_file.write_text("\n".join(korean) + "\n", encoding="utf-8")

    start = time.perf_counter()
    train_wordpiece(files=[english, korean_file], vocab_size=6000, output_dir=workdir / "tokenizer")
    print(f"trained on {english.name} + {len(korean)} NSMC reviews in {time.perf_counter() - start:.2f}s")
    tokenizer = AutoTokenizer.from_pretrained(workdir / "tokenizer")
    print(
        f"reloaded with AutoTokenizer from {workdir / 'tokenizer'}: {type(tokenizer).__name__}, "
        f"{len(tokenizer)} tokens"
    )
    for text in ("The film was released in 2006 .", "이 영화 정말 재미있어요 ㅋㅋ", "안녕하세요, Café!"):
        print(f"  {text!r:40} -> {tokenizer.tokenize(text)}")
    pair = tokenizer("Robert Boulter is an actor .", "He starred in a play .")
    print("  pair ->", tokenizer.convert_ids_to_tokens(pair["input_ids"]))
    print("  token_type_ids ->", pair["token_type_ids"])
    test_reviews = read_tsv_column(data_path("nsmc", "test.tsv"), "document")
    for name, texts in (
        ("English (WikiText-2)", english.read_text(encoding="utf-8").splitlines()[:200]),
        ("Korean (NSMC test)", test_reviews),
    ):
        stats = vocabulary_stats(tokenizer, texts)
        print(
            f"  {name:22} {stats['tokens_per_word']:.2f} tokens/word, [UNK] {stats['unk_rate']:.2%}, "
            f"whole words {stats['whole_word_rate']:.1%}"
        )
    results["tokenizer_dir"] = workdir / "tokenizer"


STEPS = [step_tokenizer]


def run_demo(output: str = "demo_output") -> dict:
    workdir = Path(output)
    marker = workdir / ".hf-session-demo"
    if workdir.exists():
        if any(workdir.iterdir()) and not marker.exists():
            raise FileExistsError(f"{output!r} exists and was not made by the demo; choose another --output")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    marker.touch()
    results: dict = {}
    for step in STEPS:
        step(workdir, results)
    print(f"\nDemo finished; everything it wrote is in {workdir}/")
    return results
