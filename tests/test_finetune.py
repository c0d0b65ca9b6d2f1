"""The recipe runner: parsing and overrides, data readers, QA span decoding, and every recipe run for a
few steps on the bundled samples (metrics computed, model card and recipe written, model reloadable)."""

import math
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import yaml
from transformers import AutoModelForSequenceClassification, AutoTokenizer, EvalPrediction

from hf_session import cli
from hf_session.finetune import (
    apply_overrides,
    best_answers,
    build_compute_metrics,
    load_recipe,
    parse_recipe,
    print_metrics_table,
    read_conll,
    read_squad,
    run_recipe,
)
from hf_session.metrics import bleu_score
from hf_session.translation import translate
from hf_session.utils import OutputExistsError, data_path

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "recipes"
QA_SAMPLE = Path(__file__).resolve().parent / "data" / "qa_sample.json"
TINY_BERT = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
}
TINY_RNN = {"embedding_size": 16, "hidden_size": 16}
# A few steps on a few rows: the recipes' real data and sizes are replaced, everything else is kept.
FEW_STEPS = {
    "max_steps": 3,
    "max_train_samples": 48,
    "max_eval_samples": 16,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 16,
    "tokenizer_vocab_size": 800,
    "max_seq_length": 48,
    "disable_tqdm": True,
    "logging_steps": 1,
}
SST2 = {
    "train_file": str(data_path("sst2", "train.tsv")),
    "validation_file": str(data_path("sst2", "dev.tsv")),
}
NSMC = {"train_file": str(data_path("nsmc", "train.tsv")), "test_file": str(data_path("nsmc", "test.tsv"))}
MULTI30K = {
    "train_file": str(data_path("multi30k", "train.{lang}")),
    "validation_file": str(data_path("multi30k", "test_2016_flickr.{lang}")),
    "test_file": None,
}
# Enough steps for the decoder to emit words (not only [SEP]), so that the BLEU comparison means something.
TRANSLATION_FEW_STEPS = {
    "max_steps": 8,
    "learning_rate": 0.02,
    "generation_max_length": 12,
    "generation_num_beams": 2,
    "eval_strategy": "no",
    # Long enough that no source is truncated: the BLEU check below translates the full sentences.
    "max_seq_length": 128,
}
# recipe file -> (sample data and model size, splits evaluated, metric names expected)
SAMPLE_RUNS = {
    "sst2-session-bert.yaml": (
        {**SST2, "config_overrides": TINY_BERT},
        ["validation"],
        ["accuracy", "f1"],
    ),
    "nsmc-session-bert.yaml": (
        {**NSMC, "config_overrides": TINY_BERT, "validation_split_percentage": 10},
        ["validation", "test"],
        ["accuracy", "f1"],
    ),
    "nsmc-session-rnn-gru.yaml": (
        {**NSMC, "config_overrides": {**TINY_RNN, "cell_type": "gru"}, "validation_split_percentage": 10},
        ["validation", "test"],
        ["accuracy", "f1"],
    ),
    "wnut17-session-bert.yaml": (
        {
            "train_file": str(data_path("wnut17", "train.conll")),
            "validation_file": str(data_path("wnut17", "dev.conll")),
            "test_file": None,
            "config_overrides": TINY_BERT,
        },
        ["validation"],
        ["precision", "recall", "f1", "accuracy"],
    ),
    "korquad-session-bert.yaml": (
        {
            "train_file": str(QA_SAMPLE),
            "validation_file": str(QA_SAMPLE),
            "config_overrides": TINY_BERT,
            "max_seq_length": 64,
            "doc_stride": 24,
        },
        ["validation"],
        ["exact_match", "f1"],
    ),
    "translate-multi30k-gru.yaml": (
        {**MULTI30K, **TRANSLATION_FEW_STEPS, "config_overrides": {**TINY_RNN, "cell_type": "gru"}},
        ["validation"],
        ["bleu"],
    ),
    "translate-multi30k-lstm.yaml": (
        {**MULTI30K, **TRANSLATION_FEW_STEPS, "config_overrides": {**TINY_RNN, "cell_type": "lstm"}},
        ["validation"],
        ["bleu"],
    ),
}
# Recipes for other commands (pretraining, word2vec) are not fine-tuning recipes.
NOT_FINETUNING = ("pretrain-", "word2vec-")


pytestmark = pytest.mark.usefixtures("one_thread")


def finetuning_recipes() -> list[str]:
    return sorted(p.name for p in RECIPES.glob("*.yaml") if not p.name.startswith(NOT_FINETUNING))


def overrides_for(values: dict) -> list[str]:
    """A mapping as command-line overrides (each value written as YAML, as a user would type it)."""
    pairs = []
    for key, value in values.items():
        pairs += [
            f"--{key}",
            yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip(),
        ]
    return pairs


def card_metadata(folder: Path) -> dict:
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


# ------------------------------------------------------------------------------------- parsing


def minimal_recipe(**extra) -> dict:
    return {
        "task": "text-classification",
        "model_type": "session_bert",
        "train_file": "x.tsv",
        "output_dir": "out",
        **extra,
    }


def test_apply_overrides_types_nesting_and_errors():
    recipe = {"learning_rate": 0.1, "config_overrides": {"hidden_size": 64, "num_hidden_layers": 2}}
    updated = apply_overrides(
        recipe,
        [
            "--learning_rate",
            "1e-3",
            "--config_overrides.hidden_size",
            "32",
            "--metrics=[accuracy]",
            "--x",
            "a b",
        ],
    )
    assert updated == {
        "learning_rate": "1e-3",  # YAML 1.1 reads a float without a dot as a string; parse_recipe converts it
        "config_overrides": {"hidden_size": 32, "num_hidden_layers": 2},
        "metrics": ["accuracy"],
        "x": "a b",
    }
    assert recipe["config_overrides"]["hidden_size"] == 64  # the recipe given is not modified
    with pytest.raises(ValueError, match="--max_steps needs a value"):
        apply_overrides({}, ["--max_steps"])
    with pytest.raises(ValueError, match="expected --key value, got 'max_steps'"):
        apply_overrides({}, ["max_steps", "3"])


def test_parse_recipe_picks_the_training_arguments_class():
    model_args, data_args, training_args = parse_recipe(
        minimal_recipe(max_steps=7, config_overrides={"a": 1})
    )
    assert type(training_args).__name__ == "TrainingArguments"
    assert (model_args.model_type, model_args.config_overrides, data_args.metrics) == (
        "session_bert",
        {"a": 1},
        ["accuracy", "f1"],
    )
    assert training_args.max_steps == 7
    *_, training_args = parse_recipe(minimal_recipe(learning_rate="5e-4"))  # YAML's reading of 5e-4
    assert training_args.learning_rate == 5e-4
    with pytest.raises(ValueError, match="learning_rate must be a number, got 'fast'"):
        parse_recipe(minimal_recipe(learning_rate="fast"))
    assert training_args.save_strategy == "no"  # runner default: the final model is saved anyway
    *_, seq2seq_args = parse_recipe(minimal_recipe(task="translation", predict_with_generate=True))
    assert type(seq2seq_args).__name__ == "Seq2SeqTrainingArguments" and seq2seq_args.predict_with_generate


def test_parse_recipe_unknown_key_lists_valid_keys_and_suggests():
    with pytest.raises(ValueError) as info:
        parse_recipe(minimal_recipe(max_trian_samples=3, colour="red"))
    message = str(info.value)
    assert "'colour', 'max_trian_samples' (did you mean 'max_train_samples'?)" in message
    for valid in ("ModelArguments: config_overrides", "DataArguments: answers_column", "learning_rate"):
        assert valid in message


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        (minimal_recipe(task="summarization"), "task must be one of text-classification"),
        (
            {"task": "text-classification", "model_type": "session_bert", "train_file": "x"},
            "needs an output_dir",
        ),
        (minimal_recipe(model_name_or_path="bert-base-uncased"), "exactly one of model_name_or_path"),
        (minimal_recipe(train_file=None), "exactly one of train_file"),
        (
            minimal_recipe(metrics=["sacrebleu"]),
            "metric 'sacrebleu' is not available for text-classification",
        ),
        (minimal_recipe(validation_split_percentage=100), "validation_split_percentage must be in 1..99"),
        (minimal_recipe(config_overrides=[1]), "config_overrides must be a mapping"),
    ],
)
def test_parse_recipe_refuses_bad_recipes(recipe, message):
    with pytest.raises(ValueError, match=message):
        parse_recipe(recipe)


def test_load_recipe_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_recipe(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="must be a YAML mapping"):
        load_recipe(tmp_path / "list.yaml")


def test_every_shipped_recipe_parses():
    for name in finetuning_recipes():
        parse_recipe(load_recipe(RECIPES / name))


# ------------------------------------------------------------------------------------ data readers


def test_read_conll_bundled_wnut17():
    columns = read_conll(data_path("wnut17", "train.conll"))
    assert len(columns["tokens"]) == 150  # the sample's sentence count (hf_session/data/README.md)
    assert columns["tokens"][0][:3] == ["@paulwalk", "It", "'s"]
    assert all(len(t) == len(g) for t, g in zip(columns["tokens"], columns["ner_tags"], strict=True))
    assert {tag for tags in columns["ner_tags"] for tag in tags} >= {"O", "B-location", "I-location"}


def test_read_conll_refuses_a_line_without_a_tag(tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_text("Paris\tB-LOC\nrains\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.conll:2: expected 'word tag'"):
        read_conll(bad)


def test_read_squad_sample_answers_point_into_the_context():
    rows = read_squad(QA_SAMPLE)
    assert len(rows) == 19 and len({r["id"] for r in rows}) == 19
    for row in rows:
        (start,), (text,) = row["answers"]["answer_start"], row["answers"]["text"]
        assert row["context"][start : start + len(text)] == text


def test_best_answers_takes_the_best_valid_span_over_windows():
    context = "Harbor Town was founded in 1820 by sailors."
    examples = [{"id": "q1", "context": context}]
    # Two windows of the same example; token offsets are None outside the context.
    features = {
        "example_id": ["q1", "q1"],
        "offset_mapping": [
            [None, (0, 6), (7, 11), (12, 15)],
            [None, (16, 23), (24, 26), (27, 31)],
        ],
    }
    start = np.array([[9.0, 1.0, 0.0, 0.0], [9.0, 0.0, 0.0, 5.0]])  # the None position must be skipped
    end = np.array([[9.0, 0.0, 2.0, 0.0], [9.0, 0.0, 0.0, 5.0]])
    assert best_answers(examples, features, start, end) == {"q1": "1820"}
    # An end before the start is never chosen, even with the best scores.
    end_before = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 9.0, 0.0, 1.0]])
    start_after = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 9.0]])
    assert best_answers(examples, features, start_after, end_before) == {"q1": "1820"}
    # The longest span scores best, unless it is longer than max_answer_length tokens.
    start = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 6.0, 0.0, 5.0]])
    end = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 6.0]])
    assert best_answers(examples, features, start, end) == {"q1": "founded in 1820"}
    assert best_answers(examples, features, start, end, max_answer_length=1) == {"q1": "1820"}


def test_compute_metrics_token_classification_scores_first_pieces_only():
    label_names = ["O", "B-PER", "I-PER", "B-LOC"]
    # Two sentences; -100 marks special tokens and the 2nd pieces of words, which are not scored.
    labels = np.array([[-100, 1, 2, -100, 0, -100], [-100, 3, 0, -100, -100, -100]])
    predicted_ids = np.array([[0, 1, 2, 3, 0, 0], [0, 0, 0, 0, 0, 0]])
    logits = np.eye(4)[predicted_ids]  # one-hot: argmax gives predicted_ids
    compute = build_compute_metrics("token-classification", ["seqeval"], label_names=label_names)
    scores = compute(EvalPrediction(predictions=logits, label_ids=labels))
    # PER found, LOC missed: precision 1/1, recall 1/2; token accuracy 4/5 on the scored positions.
    assert scores == pytest.approx({"precision": 100.0, "recall": 50.0, "f1": 100 * 2 / 3, "accuracy": 80.0})


def test_compute_metrics_classification_with_a_hub_metric():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0]])  # predicts 0, 1, 0, 1
    prediction = EvalPrediction(predictions=logits, label_ids=np.array([0, 1, 1, 1]))
    hub_metric = mock.Mock(return_value={"accuracy": 0.75, "note": "text is dropped"})
    with mock.patch("hf_session.metrics.load_hub_metric", return_value=hub_metric) as load:
        compute = build_compute_metrics("text-classification", ["accuracy", "hub:accuracy"])
        scores = compute(prediction)
    load.assert_called_once_with("accuracy")
    hub_metric.assert_called_once_with(predictions=[0, 1, 0, 1], references=[0, 1, 1, 1])
    assert scores == {"accuracy": 75.0, "hub_accuracy": 0.75}


def test_print_metrics_table(capsys):
    table = print_metrics_table({"validation": {"accuracy": 81.234, "f1": 80.0}, "test": {"accuracy": 79.5}})
    assert table.splitlines() == [
        "| metric   | validation |       test |",
        "|----------|------------|------------|",
        "| accuracy |      81.23 |      79.50 |",
        "| f1       |      80.00 |            |",
    ]
    assert capsys.readouterr().out.strip() == table


# ------------------------------------------------------------------------------- end-to-end runs


def test_every_finetuning_recipe_has_a_sample_run():
    assert set(finetuning_recipes()) <= set(SAMPLE_RUNS), "give each new recipe a SAMPLE_RUNS entry"


@pytest.mark.parametrize("name", [n for n in SAMPLE_RUNS if (RECIPES / n).exists()])
def test_recipe_runs_on_the_bundled_sample(name, tmp_path):
    sample, splits, metric_names = SAMPLE_RUNS[name]
    output_dir = tmp_path / "model"
    result = run_recipe(RECIPES / name, overrides_for({**FEW_STEPS, **sample, "output_dir": str(output_dir)}))

    assert list(result["metrics"]) == splits
    for split in splits:
        scores = result["metrics"][split]
        for metric in metric_names:
            assert 0 <= scores[metric] <= 100, (split, metric, scores)
        if "exact_match" not in metric_names:  # QA is scored on answer texts, without a loss
            assert math.isfinite(scores["loss"])

    saved = sorted(p.name for p in output_dir.iterdir())
    assert {"README.md", "config.json", "model.safetensors", "recipe.yaml", "tokenizer.json"} <= set(saved)
    assert not [p for p in saved if p.startswith("checkpoint-")]
    saved_recipe = yaml.safe_load((output_dir / "recipe.yaml").read_text(encoding="utf-8"))
    assert saved_recipe["max_steps"] == {**FEW_STEPS, **sample}["max_steps"]  # the overrides, as run
    metadata = card_metadata(output_dir)
    assert metadata["pipeline_tag"] == yaml.safe_load((RECIPES / name).read_text())["task"]
    reported = {
        (r["dataset"]["split"], m["type"]): m["value"]
        for r in metadata["model-index"][0]["results"]
        for m in r["metrics"]
    }
    for split in splits:
        for metric in metric_names:
            assert reported[(split, metric)] == pytest.approx(result["metrics"][split][metric], abs=1e-4)
    if metadata["pipeline_tag"] == "translation":
        # BLEU is sacreBLEU of what `translate` outputs for the same sources, against the raw targets.
        sources = data_path("multi30k", "test_2016_flickr.en").read_text(encoding="utf-8").splitlines()[:16]
        targets = data_path("multi30k", "test_2016_flickr.de").read_text(encoding="utf-8").splitlines()[:16]
        translations = translate(str(output_dir), sources, num_beams=2, max_length=12)
        assert any(t.strip() for t in translations)
        expected = bleu_score(translations, targets)["bleu"]
        assert result["metrics"]["validation"]["bleu"] == pytest.approx(expected)


def test_a_recipe_learns_a_separable_task(tmp_path):
    """Loss goes down and held-out accuracy reaches 100% on data a classifier must learn to separate."""
    rng = np.random.default_rng(0)
    fillers = "the a this that film movie plot story it was is really quite very".split()
    good, bad = ["great", "wonderful", "superb"], ["awful", "boring", "terrible"]

    def write(path, n):
        lines = ["sentence\tlabel"]
        for _ in range(n):
            label = int(rng.integers(2))
            words = list(rng.choice(fillers, 5)) + [rng.choice(good if label else bad)]
            rng.shuffle(words)
            lines.append(f"{' '.join(words)}\t{label}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    write(tmp_path / "train.tsv", 480)
    write(tmp_path / "dev.tsv", 60)
    recipe = {
        "task": "text-classification",
        "model_type": "session_bert",
        "config_overrides": TINY_BERT,
        "tokenizer_vocab_size": 100,
        "train_file": str(tmp_path / "train.tsv"),
        "validation_file": str(tmp_path / "dev.tsv"),
        "text_column": "sentence",
        "class_names": ["negative", "positive"],
        "output_dir": str(tmp_path / "model"),
        "max_steps": 60,
        "per_device_train_batch_size": 16,
        "learning_rate": 5e-3,
        "logging_steps": 10,
        "disable_tqdm": True,
    }
    result = run_recipe(recipe)
    assert result["metrics"]["validation"]["accuracy"] == 100.0
    losses = [entry["loss"] for entry in result["log_history"] if "loss" in entry]
    assert len(losses) == 6 and losses[-1] < 0.75 * losses[0], losses
    assert result["metrics"]["validation"]["loss"] < 0.2  # chance is ln 2 = 0.69
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    assert model.config.id2label == {0: "negative", 1: "positive"}
    logits = model(
        **tokenizer(["it was really superb", "this plot is boring"], return_tensors="pt", padding=True)
    )
    assert logits.logits.argmax(-1).tolist() == [1, 0]

    # `do_train: false` scores a trained model through the same recipe: same numbers, weights untouched.
    scratch_keys = ("model_type", "config_overrides", "tokenizer_vocab_size")
    evaluation = {k: v for k, v in recipe.items() if k not in scratch_keys}
    evaluation.update(model_name_or_path=str(tmp_path / "model"), output_dir=str(tmp_path / "eval"))
    again = run_recipe(evaluation, ["--do_train", "false"])
    assert again["metrics"]["validation"]["loss"] == pytest.approx(
        result["metrics"]["validation"]["loss"], abs=1e-6
    )
    assert again["metrics"]["validation"]["accuracy"] == 100.0
    assert not [entry for entry in again["log_history"] if "loss" in entry]  # no training step was taken
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "eval")
    for name, value in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], value), name
    assert "Evaluation only" in (tmp_path / "eval" / "README.md").read_text(encoding="utf-8")


def test_output_dir_is_checked_before_training_and_never_half_written(tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    recipe = {**minimal_recipe(train_file=str(data_path("sst2", "train.tsv"))), "output_dir": str(taken)}
    with pytest.raises(OutputExistsError, match="not empty"):
        run_recipe(recipe)
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]

    # A bad column is found before anything is written.
    fresh = tmp_path / "fresh"
    with pytest.raises(ValueError, match=r"no column\(s\) \['review'\].*\['sentence', 'label'\]"):
        run_recipe({**recipe, "output_dir": str(fresh), "text_column": "review"})
    assert not fresh.exists()

    # A run that fails after training, while saving, leaves nothing behind either.
    small = {**recipe, "output_dir": str(fresh), "text_column": "sentence", "config_overrides": TINY_BERT}
    small.update(max_steps=1, max_train_samples=8, tokenizer_vocab_size=200, disable_tqdm=True)
    with mock.patch("transformers.Trainer.save_model", side_effect=OSError("disk full")):
        with pytest.raises(OSError, match="disk full"):
            run_recipe(small)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_misspelt_config_override_is_refused_not_ignored(tmp_path):
    recipe = {
        **minimal_recipe(train_file=str(data_path("sst2", "train.tsv")), output_dir=str(tmp_path / "m")),
        "text_column": "sentence",
        "config_overrides": {**TINY_BERT, "num_hiden_layers": 1},
        "tokenizer_vocab_size": 300,
        "max_train_samples": 16,
    }
    with pytest.raises(
        ValueError, match=r"config_overrides \['num_hiden_layers'\] are not fields of SessionBertConfig"
    ):
        run_recipe(recipe)
    assert not (tmp_path / "m").exists()


def test_cli_finetune_and_its_errors(tmp_path, capsys):
    output_dir = tmp_path / "cli-model"
    argv = ["finetune", str(RECIPES / "sst2-session-bert.yaml")]
    argv += overrides_for({**FEW_STEPS, **SST2, "config_overrides": TINY_BERT, "output_dir": str(output_dir)})
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert f"saved the fine-tuned model, tokenizer and model card to {output_dir}" in out
    assert "| accuracy |" in out and (output_dir / "README.md").exists()

    assert cli.main(["finetune", str(RECIPES / "sst2-session-bert.yaml"), "--learning_rat", "1"]) == 2
    assert "unknown recipe key(s): 'learning_rat' (did you mean 'learning_rate'?)" in capsys.readouterr().err
