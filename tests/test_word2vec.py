"""session_word2vec: config checks, the loss by hand, data preparation, training with Trainer, loading."""

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from embedding_corpus import ANIMALS, VEHICLES, group_of, planted_corpus
from huggingface_hub.errors import StrictDataclassError
from transformers import AutoConfig, AutoModel, TrainingArguments

from hf_session.cli import main
from hf_session.embeddings import (
    Word2VecDataArguments,
    Word2VecModelArguments,
    build_word2vec_dataset,
    load_word_vectors,
    parse_word2vec_recipe,
    subsample,
    train_word2vec,
    train_word_tokenizer,
    word2vec_examples,
)
from hf_session.models.session_word2vec import SessionWord2VecConfig, SessionWord2VecModel
from hf_session.utils import OutputExistsError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "planted.txt"
    path.write_text("\n".join(planted_corpus()) + "\n", encoding="utf-8")
    return path


def train_planted(corpus_file, output_dir, architecture):
    data_args = Word2VecDataArguments(train_files=[str(corpus_file)], min_frequency=1, subsample_threshold=0)
    model_args = Word2VecModelArguments(architecture=architecture, hidden_size=16, window=2, num_negatives=3)
    training_args = TrainingArguments(
        str(output_dir),
        per_device_train_batch_size=64,
        num_train_epochs=3,
        learning_rate=0.02,
        logging_steps=10,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    return train_word2vec(data_args, model_args, training_args)


@pytest.fixture(scope="module", params=["skip-gram", "cbow"])
def trained(request, corpus_file, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp(request.param) / "model"
    model, metrics = train_planted(corpus_file, output_dir, request.param)
    return model, metrics, output_dir


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"architecture": "glove"}, "architecture"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"window": 0}, "window"),
        ({"num_negatives": 0}, "num_negatives"),
        ({"noise_exponent": -1}, "noise_exponent"),
        ({"vocab_size": 10, "pad_token_id": 10}, "pad_token_id"),
    ],
)
def test_config_rejects_impossible_settings(kwargs, field):
    with pytest.raises(StrictDataclassError) as info:
        SessionWord2VecConfig(**kwargs)
    assert field in str(info.value)


def test_loss_matches_the_negative_sampling_formula():
    torch.manual_seed(0)
    model = SessionWord2VecModel(SessionWord2VecConfig(vocab_size=12, hidden_size=4, num_negatives=2))
    torch.nn.init.normal_(model.output_embeddings.weight)
    torch.nn.init.normal_(model.input_embeddings.weight)
    input_ids = torch.tensor([[1, 2, 0], [3, 0, 0]])
    attention_mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    labels = torch.tensor([[5, 6], [7, -100]])
    negatives = torch.tensor([[[8, 9], [10, 11]], [[8, 8], [1, 1]]])
    out = model(input_ids, attention_mask=attention_mask, labels=labels, negative_ids=negatives)

    emb_in, emb_out = model.input_embeddings.weight.detach(), model.output_embeddings.weight.detach()
    hidden = [(emb_in[1] + emb_in[2]) / 2, emb_in[3]]
    terms = []
    for b, targets in enumerate([[5, 6], [7]]):
        for t, target in enumerate(targets):
            term = -math.log(torch.sigmoid(hidden[b] @ emb_out[target]).item())
            term -= sum(
                math.log(torch.sigmoid(-hidden[b] @ emb_out[n]).item()) for n in negatives[b, t].tolist()
            )
            terms.append(term)
    assert out.loss.item() == pytest.approx(sum(terms) / 3, rel=1e-5)
    assert torch.allclose(out.pooler_output[0], hidden[0])
    assert out.logits.shape == (2, 2) and out.negative_logits.shape == (2, 2, 2)
    # Trainer's num_items_in_batch turns the mean into sum / count, exact under gradient accumulation
    summed = model(input_ids, attention_mask, labels, negatives, num_items_in_batch=6)
    assert summed.loss.item() == pytest.approx(sum(terms) / 6, rel=1e-5)
    # without labels the model gives the input vector only
    assert model(input_ids, attention_mask).loss is None


def test_fresh_model_has_word2vec_initialisation_and_uniform_noise():
    model = SessionWord2VecModel(SessionWord2VecConfig(vocab_size=50, hidden_size=10))
    assert model.input_embeddings.weight.abs().max() <= 0.05 and model.input_embeddings.weight.std() > 0.01
    assert torch.count_nonzero(model.output_embeddings.weight) == 0
    assert torch.allclose(model.noise_distribution, torch.full((50,), 0.02))


def test_noise_distribution_follows_counts_to_the_three_quarters():
    model = SessionWord2VecModel(SessionWord2VecConfig(vocab_size=4, hidden_size=2, num_negatives=4))
    model.set_noise_distribution([0, 1, 16, 81])
    expected = torch.tensor([0, 1, 8, 27]) / 36
    assert torch.allclose(model.noise_distribution, expected)
    torch.manual_seed(0)
    draws = model.sample_negatives((500, 5))
    assert draws.shape == (500, 5, 4) and (draws != 0).all()
    frequencies = torch.bincount(draws.flatten(), minlength=4) / draws.numel()
    assert torch.allclose(frequencies, expected, atol=0.01)
    with pytest.raises(ValueError, match="4 non-negative numbers"):
        model.set_noise_distribution([1, 2, 3])
    with pytest.raises(ValueError, match="non-negative"):
        model.set_noise_distribution([0, 0, 0, 0])


def test_examples_by_hand():
    sequences = [np.array([1, 2, 3]), np.array([4, 5])]
    skip = word2vec_examples(sequences, "skip-gram", window=1, shrink_window=False)
    assert skip["input_ids"].tolist() == [[1], [2], [3], [4], [5]]
    # windows stop at the end of a line: 3 and 4 are not neighbours
    assert skip["labels"].tolist() == [[-100, 2], [1, 3], [2, -100], [-100, 5], [4, -100]]
    cbow = word2vec_examples(sequences, "cbow", window=1, pad_token_id=0, shrink_window=False)
    assert cbow["input_ids"].tolist() == [[0, 2], [1, 3], [2, 0], [0, 5], [4, 0]]
    assert cbow["attention_mask"].tolist() == [[0, 1], [1, 1], [1, 0], [0, 1], [1, 0]]
    assert cbow["labels"].tolist() == [[1], [2], [3], [4], [5]]
    # a one-word line gives no example; shrunk windows never reach past `window`
    single = word2vec_examples([np.array([7])], "skip-gram", window=2)
    assert len(single["labels"]) == 0
    shrunk = word2vec_examples([np.arange(1, 200)], "skip-gram", window=3, rng=np.random.default_rng(0))
    reach = (shrunk["labels"] != -100)[:, :3][:, ::-1].sum(1)  # context words to the left
    assert set(reach[3:].tolist()) == {1, 2, 3}
    with pytest.raises(ValueError, match="architecture"):
        word2vec_examples(sequences, "glove", window=1)


def test_subsampling_thins_frequent_words():
    counts = np.array([0, 9000, 1000])
    sequences = [np.array([1] * 900 + [2] * 100)] * 20
    kept = np.concatenate(subsample(sequences, counts, 1e-2, np.random.default_rng(0)))
    # keep probability min(1, sqrt(t / f)): word 1 (f=0.9) about 0.105, word 2 (f=0.1) about 0.316
    assert (kept == 1).sum() / 18000 == pytest.approx(math.sqrt(0.01 / 0.9), abs=0.01)
    assert (kept == 2).sum() / 2000 == pytest.approx(math.sqrt(0.01 / 0.1), abs=0.03)
    assert subsample(sequences, counts, 0, np.random.default_rng(0)) is sequences


def test_build_dataset_counts_before_subsampling():
    lines = planted_corpus(50)
    tokenizer = train_word_tokenizer(lines)
    config = SessionWord2VecConfig(vocab_size=len(tokenizer), window=2, architecture="cbow")
    dataset, counts = build_word2vec_dataset(
        lines, tokenizer, config, Word2VecDataArguments(subsample_threshold=1e-3)
    )
    assert counts[tokenizer.convert_tokens_to_ids("the")] == sum(line.split().count("the") for line in lines)
    assert len(dataset) < sum(len(line.split()) for line in lines)  # "the" was thinned out
    row = dataset[0]
    assert len(row["input_ids"]) == len(row["attention_mask"]) == 4 and len(row["labels"]) == 1


def test_training_lowers_the_loss_and_finds_the_planted_pattern(trained):
    model, metrics, output_dir = trained
    assert metrics["train_examples"] == sum(len(line.split()) for line in planted_corpus())
    log = [e["loss"] for e in model_log(output_dir) if "loss" in e]
    assert log[-1] < 0.8 * log[0]
    vectors = load_word_vectors(output_dir)
    for word in ANIMALS + VEHICLES:
        found = [token for token, _ in vectors.neighbors(word, k=3)]
        assert sorted(found) == sorted(w for w in group_of(word) if w != word), (
            model.config.architecture,
            word,
        )


def model_log(output_dir):
    import json

    with open(os.path.join(output_dir, "trainer_state.json"), encoding="utf-8") as handle:
        return json.load(handle)["log_history"]


def test_checkpoint_loads_with_auto_classes(trained):
    model, _, output_dir = trained
    assert sorted(
        f for f in os.listdir(output_dir) if not f.startswith(("training_args", "all_results"))
    ) == [
        "config.json",
        "configuration_session_word2vec.py",
        "model.safetensors",
        "modeling_session_word2vec.py",
        "tokenizer.json",
        "tokenizer_config.json",
        "train_results.json",
        "trainer_state.json",
    ]
    assert AutoConfig.from_pretrained(output_dir).model_type == "session_word2vec"
    loaded = AutoModel.from_pretrained(output_dir)
    assert type(loaded) is SessionWord2VecModel
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert torch.equal(load_word_vectors(output_dir).vectors, model.input_embeddings.weight.detach())


@pytest.mark.parametrize("trained", ["cbow"], indirect=True)  # one architecture is enough for a subprocess
def test_checkpoint_loads_with_remote_code_without_hf_session(trained, tmp_path):
    model, _, output_dir = trained
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["hf_session"] = None
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(output_dir)!r}, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        out = model(torch.tensor([[1, 2, 3, 4]]), labels=torch.tensor([[5]]))
        print(type(model).__name__, model.config.architecture, round(out.pooler_output.sum().item(), 5))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    expected = model(torch.tensor([[1, 2, 3, 4]])).pooler_output.sum().item()
    assert result.stdout.split() == ["SessionWord2VecModel", "cbow", str(round(expected, 5))]


def test_recipes_parse_into_the_argument_dataclasses():
    for name, architecture in (("word2vec-skipgram.yaml", "skip-gram"), ("word2vec-cbow.yaml", "cbow")):
        data_args, model_args, training_args = parse_word2vec_recipe(os.path.join(REPO, "recipes", name))
        assert model_args.architecture == architecture
        assert data_args.train_files == ["hf_session/data/wikitext2/wiki.sample.raw"]
        assert isinstance(training_args, TrainingArguments) and training_args.learning_rate > 0
        SessionWord2VecConfig(vocab_size=100, **vars(model_args))  # every model field is a config field
    with pytest.raises(FileNotFoundError, match="recipe"):
        parse_word2vec_recipe("no-such-recipe.yaml")


def test_cli_train_then_explore(corpus_file, tmp_path, capsys):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        textwrap.dedent(
            f"""
            train_files: [{corpus_file}]
            min_frequency: 1
            subsample_threshold: 0
            architecture: skip-gram
            hidden_size: 8
            window: 2
            output_dir: {tmp_path / "w2v"}
            max_steps: 3
            per_device_train_batch_size: 32
            report_to: none
            save_strategy: "no"
            disable_tqdm: true
            """
        ),
        encoding="utf-8",
    )
    assert main(["embeddings", "train", str(recipe)]) == 0
    assert "saved a skip-gram word2vec model (21 x 8)" in capsys.readouterr().out
    assert main(["embeddings", "train", str(recipe)]) == 2  # the folder exists now
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(OutputExistsError):
        train_planted(corpus_file, tmp_path / "w2v", "cbow")
    assert AutoConfig.from_pretrained(tmp_path / "w2v").architecture == "skip-gram"  # left untouched
    assert (
        main(["embeddings", "train", str(recipe), "--overwrite", "--output-dir", str(tmp_path / "other")])
        == 0
    )
    assert (tmp_path / "other" / "model.safetensors").is_file()
    capsys.readouterr()

    assert main(["embeddings", "neighbors", str(tmp_path / "w2v"), "cat", "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "cat:" and len(lines) == 3
    assert main(["embeddings", "analogy", str(tmp_path / "w2v"), "cat", "grass", "road", "-k", "1"]) == 0
    assert capsys.readouterr().out.startswith("cat - grass + road:")
    assert (
        main(
            [
                "embeddings",
                "plot",
                str(tmp_path / "w2v"),
                "cat",
                "dog",
                "bus",
                "--output",
                str(tmp_path / "p.png"),
            ]
        )
        == 0
    )
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["embeddings", "neighbors", str(tmp_path / "w2v"), "zebra"]) == 2
    assert "'zebra' is not in the vocabulary" in capsys.readouterr().err


def test_cli_count_writes_ppmi_svd_vectors(corpus_file, tmp_path, capsys):
    output = tmp_path / "ppmi"
    args = [
        "embeddings",
        "count",
        "--files",
        str(corpus_file),
        "--output",
        str(output),
        "--dim",
        "4",
        "--min-frequency",
        "1",
    ]
    assert main(args) == 0
    assert "saved 21 x 4 PPMI-SVD vectors" in capsys.readouterr().out
    assert main(["embeddings", "neighbors", str(output), "truck", "-k", "3"]) == 0
    found = {line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]}
    assert found == {"car", "bus", "van"}
    assert main(args) == 2 and "not empty" in capsys.readouterr().err
    assert (
        main(
            ["embeddings", "count", "--files", str(tmp_path / "missing.txt"), "--output", str(tmp_path / "x")]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_word2vec_over_wordpiece_pieces(corpus_file, tmp_path):
    from hf_session.tokenization import train_wordpiece

    wordpiece = train_wordpiece(files=[corpus_file], vocab_size=60, output_dir=tmp_path / "wordpiece")
    data_args = Word2VecDataArguments(train_files=[str(corpus_file)], tokenizer=str(tmp_path / "wordpiece"))
    training_args = TrainingArguments(
        str(tmp_path / "w2v"),
        max_steps=2,
        per_device_train_batch_size=16,
        report_to="none",
        save_strategy="no",
    )
    model, _ = train_word2vec(
        data_args, Word2VecModelArguments(architecture="cbow", hidden_size=8), training_args
    )
    assert model.config.vocab_size == len(wordpiece) == 60
    vectors = load_word_vectors(tmp_path / "w2v")
    pieces = vectors.token_ids("trucks")  # not a word of the corpus: several pieces, mean vector
    assert len(pieces) > 1 and torch.allclose(vectors.vector("trucks"), vectors.vectors[pieces].mean(0))


def test_gradient_accumulation_gives_the_same_update(tmp_path):
    from datasets import Dataset
    from transformers import Trainer, default_data_collator

    # Rows with 1 to 4 real targets: a per-batch mean would weight them differently from one big batch.
    labels = [[t if j <= i % 4 else -100 for j, t in enumerate([3, 4, 5, 6])] for i in range(8)]
    dataset = Dataset.from_dict(
        {"input_ids": [[i % 7 + 1] for i in range(8)], "attention_mask": [[1]] * 8, "labels": labels}
    )
    weights = []
    for batch_size, accumulation in ((8, 1), (4, 2), (2, 4)):
        torch.manual_seed(0)
        model = SessionWord2VecModel(SessionWord2VecConfig(vocab_size=10, hidden_size=4, num_negatives=2))
        torch.nn.init.normal_(model.output_embeddings.weight)
        model.set_noise_distribution([0] * 9 + [1])  # every negative is token 9: no sampling noise
        before = torch.cat([model.input_embeddings.weight, model.output_embeddings.weight]).detach().clone()
        args = TrainingArguments(
            str(tmp_path / f"run{batch_size}"),
            per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=accumulation,
            max_steps=1,
            learning_rate=0.5,
            optim="sgd",
            lr_scheduler_type="constant",
            max_grad_norm=0,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
        )
        Trainer(model=model, args=args, train_dataset=dataset, data_collator=default_data_collator).train()
        weights.append(torch.cat([model.input_embeddings.weight, model.output_embeddings.weight]).detach())
    assert (weights[0] - before).abs().max() > 1e-3  # the step did move the vectors
    torch.testing.assert_close(weights[1], weights[0])
    torch.testing.assert_close(weights[2], weights[0])
