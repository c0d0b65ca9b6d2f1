"""`make demo`: the library's main jobs, end to end, on the samples bundled in `hf_session/data/`.

Each step is a function that takes the working folder and the results of the steps before it; the
steps run in the order of `STEPS`.
"""

import contextlib
import shutil
import time
from pathlib import Path

from .utils import data_path, read_tsv_column


def _banner(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


@contextlib.contextmanager
def _one_thread():
    """Run the body on one torch thread.

    The demo's models are tiny: they gain nothing from a second thread, and on a busy machine threads that
    wait for each other make every step many times slower.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def _quiet_loading():
    """Hide transformers' load report: the demo loads heads from checkpoints that hold other heads too."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


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


def step_bert(workdir: Path, results: dict) -> None:
    """A tiny BERT on the demo tokenizer: a few seconds of MLM, fill-mask, and the same model as stock BERT."""
    import torch
    from transformers import AutoModelForMaskedLM, BertForMaskedLM, DataCollatorForLanguageModeling, pipeline

    from .models.session_bert import SessionBertConfig, SessionBertForMaskedLM
    from .models.session_bert.convert import convert_to_bert
    from .tokenization import load_tokenizer

    _banner("A tiny from-scratch BERT fills a mask")
    tokenizer = load_tokenizer(results["tokenizer_dir"])
    torch.manual_seed(0)
    config = SessionBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=128,
    )
    model = SessionBertForMaskedLM(config).train()
    lines = data_path("wikitext2", "wiki.sample.raw").read_text(encoding="utf-8").splitlines()
    paragraphs = [line for line in lines if line.strip()[:1] not in ("", "=")]
    features = [tokenizer(line, truncation=True, max_length=64) for line in paragraphs]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    start, losses = time.perf_counter(), []
    with _one_thread():
        for step in range(60):
            batch = collator([features[(step * 16 + i) % len(features)] for i in range(16)])
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
    print(
        f"SessionBertForMaskedLM ({model.num_parameters():,} parameters): 60 MLM steps in "
        f"{time.perf_counter() - start:.1f}s, loss {losses[0]:.2f} -> {sum(losses[-10:]) / 10:.2f} "
        "(padding skipped, MLM head only at the masked tokens)"
    )
    model.save_pretrained(workdir / "bert-tiny")
    tokenizer.save_pretrained(workdir / "bert-tiny")
    reloaded = AutoModelForMaskedLM.from_pretrained(workdir / "bert-tiny")
    text = f"The film was {tokenizer.mask_token} in 2006 ."
    ours = pipeline("fill-mask", model=reloaded, tokenizer=tokenizer)(text, top_k=3)
    print(f"fill-mask {text!r} with {type(reloaded).__name__} reloaded by AutoModelForMaskedLM:")
    for guess in ours:
        print(f"  {guess['token_str']:12} {guess['score']:.3f}")
    convert_to_bert(workdir / "bert-tiny", workdir / "bert-tiny-stock")
    with _quiet_loading():
        stock = BertForMaskedLM.from_pretrained(workdir / "bert-tiny-stock")
    theirs = pipeline("fill-mask", model=stock, tokenizer=tokenizer)(text, top_k=3)
    same = [g["token"] for g in theirs] == [g["token"] for g in ours]
    print(
        f"after `hf-session convert to-bert`, transformers' own BertForMaskedLM gives "
        f"{'the same' if same else 'DIFFERENT'} top 3 (largest score difference "
        f"{max(abs(a['score'] - b['score']) for a, b in zip(ours, theirs, strict=True)):.1e})"
    )
    results["bert_tiny_dir"] = workdir / "bert-tiny"


def step_pretraining(workdir: Path, results: dict) -> None:
    """Pretrain a tiny BERT (MLM + NSP) on the bundled WikiText-2 sample, then fill a mask with it."""
    from transformers import pipeline

    from .pretraining import parse_pretraining_args, pretrain

    _banner("Pretraining a tiny BERT (MLM + NSP) with the Accelerate loop")
    recipe = Path(__file__).resolve().parent.parent / "recipes" / "pretrain-bert-tiny.yaml"
    output_dir = workdir / "pretrain-bert-tiny"
    overrides = [
        "--output_dir",
        str(output_dir),
        "--train_files",
        str(data_path("wikitext2", "wiki.sample.raw")),
    ]
    overrides += ["--disable_tqdm", "true"]
    start = time.perf_counter()
    with _one_thread():
        result = pretrain(*parse_pretraining_args(recipe, overrides))
    metrics = result["metrics"]
    print(
        f"{result['global_step']} steps of recipes/{recipe.name} in {time.perf_counter() - start:.1f}s; held-out "
        f"MLM loss {metrics['eval/mlm_loss']:.2f} (perplexity {metrics['eval/perplexity']:.0f}, a uniform guess: "
        f"{len(result['tokenizer'])}), MLM accuracy {metrics['eval/mlm_accuracy']:.1%}, "
        f"NSP accuracy {metrics['eval/nsp_accuracy']:.1%}"
    )
    # fill-mask loads the masked-LM head only; the load report would list the pooler and NSP head as unused.
    with _quiet_loading():
        fill = pipeline("fill-mask", model=str(output_dir), tokenizer=str(output_dir))
    text = "He had a guest role in the television [MASK] ."
    print(f"fill-mask {text!r} (a few dozen steps teach word frequencies, not yet meaning):")
    for guess in fill(text, top_k=5):
        print(f"  {guess['token_str']:12} {guess['score']:.3f}")
    results["pretrained_dir"] = output_dir


def step_embeddings(workdir: Path, results: dict) -> None:
    """Word vectors three ways on the WikiText-2 sample: PPMI-SVD, word2vec (Trainer), BERT's input embeddings."""
    from .embeddings import load_word_vectors, parse_word2vec_recipe, train_ppmi_svd, train_word2vec

    _banner("Word embeddings: PPMI-SVD, word2vec, and the explorer")
    sample = data_path("wikitext2", "wiki.sample.raw")
    ppmi_svd = train_ppmi_svd(
        files=[sample], dim=50, window=2, min_frequency=3, output_dir=workdir / "ppmi-svd"
    )
    print(
        f"PPMI-SVD: {len(ppmi_svd)} words x {ppmi_svd.dim} in {ppmi_svd.config['train_seconds']:.1f}s "
        f"({ppmi_svd.config['nonzero_ppmi']} positive PPMI cells)"
    )
    recipe = Path(__file__).resolve().parent.parent / "recipes" / "word2vec-skipgram.yaml"
    data_args, model_args, training_args = parse_word2vec_recipe(recipe)
    data_args.train_files = [str(sample)]
    training_args.output_dir = str(workdir / "word2vec-skipgram")
    training_args.disable_tqdm = True
    _, metrics = train_word2vec(data_args, model_args, training_args)
    print(
        f"word2vec skip-gram (recipes/{recipe.name}, Trainer): {metrics['train_examples']} examples, "
        f"final loss {metrics['train_loss']:.3f}, {metrics['train_runtime']:.1f}s"
    )
    sources = {"ppmi-svd": workdir / "ppmi-svd", "word2vec": workdir / "word2vec-skipgram"}
    if results.get("pretrained_dir"):
        sources["bert input embeddings"] = results["pretrained_dir"]
    for name, folder in sources.items():
        with _quiet_loading():
            vectors = load_word_vectors(folder)
        for word in ("season", "army"):
            if word in vectors:
                found = ", ".join(token for token, _ in vectors.neighbors(word, k=5))
                print(f"  {name:22} {word:7} -> {found}")
    words = ["season", "game", "team", "football", "army", "battle", "division", "river"]
    plot = load_word_vectors(sources["ppmi-svd"]).plot(words, workdir / "ppmi-svd-words.png")
    print(f"PCA picture of {len(words)} words: {plot}")
    results["word_vectors_dirs"] = sources


def step_finetune(workdir: Path, results: dict) -> None:
    """Fine-tune a small GRU sentiment classifier through the NSMC recipe (bundled sample); print its metrics."""

    from .finetune import run_recipe

    _banner("Fine-tuning a Korean sentiment classifier through a recipe (Trainer)")
    recipe = Path(__file__).resolve().parent.parent / "recipes" / "nsmc-session-rnn-gru.yaml"
    output_dir = workdir / "nsmc-gru-classifier"
    small = (
        "{embedding_size: 64, hidden_size: 64, cell_type: gru, bidirectional: true, classifier_pooling: max}"
    )
    overrides = {
        "train_file": str(data_path("nsmc", "train.tsv")),
        "test_file": str(data_path("nsmc", "test.tsv")),
        "validation_split_percentage": "null",
        "output_dir": str(output_dir),
        "config_overrides": small,
        "tokenizer_vocab_size": "3000",
        "num_train_epochs": "3",
        "per_device_train_batch_size": "32",
        "learning_rate": "5e-3",
        "logging_steps": "30",
        "disable_tqdm": "true",
    }
    start = time.perf_counter()
    with _one_thread():
        result = run_recipe(
            recipe, [item for key, value in overrides.items() for item in (f"--{key}", value)]
        )
    print(
        f"recipes/{recipe.name}, shrunk to the bundled sample (1,000 reviews; tested on 300 others) and a "
        f"64-unit GRU: {time.perf_counter() - start:.1f}s. Model card: {output_dir / 'README.md'}; "
        f"`hf-session push {output_dir} your-name/nsmc-gru` would share it on the Hub."
    )
    results["finetuned_dir"] = Path(result["output_dir"])
    results["finetune_metrics"] = result["metrics"]


def step_translation(workdir: Path, results: dict) -> None:
    """Train a tiny GRU translator (en→de) on the bundled Multi30k sample, translate with beam search."""
    import torch
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments

    from .models.session_rnn import SessionRnnConfig, SessionRnnForConditionalGeneration
    from .plotting import plot_attention
    from .tokenization import train_wordpiece
    from .translation import preprocess_translation, translate, translation_special_ids

    _banner("GRU seq2seq with Bahdanau attention: en→de on the Multi30k sample")
    start = time.perf_counter()
    sample = data_path("multi30k")
    sources = sample.joinpath("train.en").read_text(encoding="utf-8").splitlines()
    targets = sample.joinpath("train.de").read_text(encoding="utf-8").splitlines()
    tokenizer = train_wordpiece(
        files=[sample / "train.en", sample / "train.de"], vocab_size=2000, lowercase=False
    )
    torch.manual_seed(0)
    config = SessionRnnConfig(
        vocab_size=len(tokenizer),
        embedding_size=128,
        hidden_size=128,
        dropout=0.1,
        **translation_special_ids(tokenizer),
    )
    model = SessionRnnForConditionalGeneration(config)
    args = Seq2SeqTrainingArguments(
        output_dir=str(workdir / "translator-trainer"),
        per_device_train_batch_size=32,
        learning_rate=8e-3,
        max_steps=120,
        logging_steps=50,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
    )
    trainer = Seq2SeqTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(preprocess_translation(tokenizer, sources, targets)),
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
        processing_class=tokenizer,
    )
    with _one_thread():
        trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    output_dir = workdir / "translator"
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    print(
        f"{trainer.state.global_step} steps on {len(sources)} pairs in {time.perf_counter() - start:.1f}s; "
        f"training loss {losses[0]:.2f} → {losses[-1]:.2f}; saved to {output_dir}"
    )
    for source in (sources[2], "A man is riding a bike."):
        print(f"  {source!r}\n    beam 5 → {translate(model, source, tokenizer, num_beams=5)!r}")
    picture = plot_attention(output_dir, sources[2], workdir / "translator-attention.png", num_beams=5)
    print(f"alignment heat map: {picture['path']}")
    results["translator_dir"] = output_dir


STEPS = [step_tokenizer, step_bert, step_pretraining, step_embeddings, step_translation, step_finetune]


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
