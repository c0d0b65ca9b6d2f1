"""The Accelerate pretraining loop: loss goes down, exact resume, atomic checkpoints, 2 processes, bad inputs."""

import json
import os
import random
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import pytest
import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors.torch import load_file
from transformers import AutoModelForPreTraining, AutoTokenizer

from hf_session import cli
from hf_session.pretraining import CheckpointError, parse_pretraining_args, pretrain, train
from hf_session.pretraining.arguments import valid_keys

REPO = Path(__file__).resolve().parents[1]
WORDS = (
    "the a cat dog bird man woman child sat ran flew saw liked found on under near big small red old".split()
)


def write_corpus(path: Path, n_docs=24, n_sentences=6, seed=0) -> Path:
    """Short sentences from a small grammar, documents apart: enough structure to learn in a few steps."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_docs):
        for _ in range(n_sentences):
            lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9))) + " .")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "train.txt")


def tiny_args(output_dir, corpus, **overrides):
    settings = dict(
        model_type="session_bert",
        vocab_size=120,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        train_files=[str(corpus)],
        validation_split_percentage=0,
        max_seq_length=32,
        output_dir=str(output_dir),
        max_steps=6,
        per_device_train_batch_size=4,
        learning_rate=0.005,
        logging_steps=1,
        save_steps=2,
        save_total_limit=2,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        cache_dir=str(Path(output_dir).parent / "datasets-cache"),
    )
    settings.update(overrides)
    argv = []
    for key, value in settings.items():
        argv += [f"--{key}", *(map(str, value) if isinstance(value, list) else [str(value)])]
    return parse_pretraining_args(None, argv)


def weights(path) -> dict:
    return load_file(str(Path(path) / "model.safetensors"))


def test_a_few_steps_lower_the_loss_and_save_a_loadable_model(tmp_path, corpus):
    out = tmp_path / "run"
    result = pretrain(
        *tiny_args(out, corpus, max_steps=30, logging_steps=10, validation_split_percentage=20, eval_steps=30)
    )
    losses = [h["train/mlm_loss"] for h in result["log_history"] if "train/mlm_loss" in h]
    assert len(losses) == 3 and losses[-1] < losses[0] - 0.5, losses
    metrics = result["metrics"]
    assert metrics["eval/mlm_accuracy"] > 0.1 and 0 <= metrics["eval/nsp_accuracy"] <= 1
    assert metrics["eval/perplexity"] == pytest.approx(torch.tensor(metrics["eval/mlm_loss"]).exp().item())
    # The folder loads back with the Auto classes and gives the trained model's outputs.
    model = AutoModelForPreTraining.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert type(model).__name__ == "SessionBertForPreTraining"
    inputs = tokenizer("the cat sat on the mat .", "a dog ran .", return_tensors="pt")
    trained = result["model"].eval()
    with torch.no_grad():
        assert torch.allclose(model(**inputs).prediction_logits, trained(**inputs).prediction_logits)
    assert (out / "log_history.jsonl").read_text().count("\n") == len(result["log_history"])
    assert [p.name for p in train.list_checkpoints(out)] == ["checkpoint-28", "checkpoint-30"]


@pytest.mark.parametrize("model_type", ["bert", "session_bert"])
def test_loss_sums_match_the_models_own_loss(model_type):
    """Our summed losses over their counts give the model's mean loss (dense or sparse MLM head)."""
    from transformers import AutoConfig

    config = AutoConfig.for_model(
        model_type,
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    model = AutoModelForPreTraining.from_config(config).train()
    torch.manual_seed(0)
    input_ids = torch.randint(5, 50, (3, 12))
    labels = torch.where(torch.rand(3, 12) < 0.3, input_ids, -100)
    batch = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "token_type_ids": torch.zeros_like(input_ids),
        "labels": labels,
        "next_sentence_label": torch.tensor([0, 1, 1]),
    }
    model.eval()  # no dropout, so two forwards agree; session_bert's sparse head is checked below
    sums = train.loss_sums(model, batch)
    expected = model(**batch).loss
    ours = sums["mlm_loss"] / sums["mlm_count"] + sums["nsp_loss"] / sums["nsp_count"]
    assert torch.allclose(ours, expected, atol=1e-5)
    assert sums["mlm_count"] == (labels != -100).sum() and sums["nsp_count"] == 3
    if model_type == "session_bert":
        model.config.hidden_dropout_prob = 0.0
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        model.train()
        sparse = train.loss_sums(model, batch)
        assert model(**batch).prediction_logits.shape[0] == (labels != -100).sum()
        for key in sums:
            assert torch.allclose(sparse[key].float(), sums[key].float(), atol=1e-4), key


class Killed(Exception):
    pass


def test_killed_and_resumed_run_ends_with_the_same_weights(tmp_path, corpus):
    # Dropout on, gradient accumulation, 5 steps an epoch: the run resumes mid-epoch from step 3 and crosses
    # into the next epoch; everything a resume must restore.
    settings = dict(max_steps=8, save_steps=3, gradient_accumulation_steps=2, hidden_dropout_prob=0.1)
    settings["max_seq_length"] = 64
    uninterrupted = pretrain(*tiny_args(tmp_path / "a", corpus, **settings))
    position = train.read_checkpoint_state(tmp_path / "a" / "checkpoints" / "checkpoint-6")
    assert position == {"global_step": 6, "epoch": 1, "batches_in_epoch": 2, "global_batch_size": 4}
    assert uninterrupted["global_step"] == 8

    calls = {"n": 0}
    real_loss_sums = train.loss_sums

    def dies_in_step_5(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2 * 4 + 1:  # two micro-batches per step: step 5 has begun
            raise Killed
        return real_loss_sums(*args, **kwargs)

    with mock.patch.object(train, "loss_sums", side_effect=dies_in_step_5), pytest.raises(Killed):
        pretrain(*tiny_args(tmp_path / "b", corpus, **settings))
    assert [p.name for p in train.list_checkpoints(tmp_path / "b")] == ["checkpoint-3"]
    assert not (tmp_path / "b" / "config.json").exists()

    resumed = pretrain(*tiny_args(tmp_path / "b", corpus, resume_from_checkpoint="latest", **settings))
    assert resumed["global_step"] == 8
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # The log of the resumed steps equals the uninterrupted one.
    assert [h["train/loss"] for h in resumed["log_history"]] == [
        h["train/loss"] for h in uninterrupted["log_history"][3:]
    ]
    # The run's log file holds each step once, with the uninterrupted run's losses.
    logged = [
        [
            (entry["step"], entry["train/loss"])
            for entry in map(json.loads, (tmp_path / run / "log_history.jsonl").open())
        ]
        for run in ("a", "b")
    ]
    assert logged[0] == logged[1] and [step for step, _ in logged[0]] == list(range(1, 9))


def test_checkpoints_rotate_and_bad_checkpoints_give_one_clear_error(tmp_path, corpus):
    out = tmp_path / "run"
    pretrain(*tiny_args(out, corpus, max_steps=6, save_steps=2, save_total_limit=2))
    assert [p.name for p in train.list_checkpoints(out)] == ["checkpoint-4", "checkpoint-6"]
    # An interrupted save leaves a temporary folder that "latest" ignores.
    (out / "checkpoints" / ".tmp-checkpoint-8").mkdir()
    assert train.resolve_checkpoint("latest", out).name == "checkpoint-6"

    with pytest.raises(CheckpointError, match="global batch of 4 .* this run has 2"):
        pretrain(
            *tiny_args(
                out, corpus, max_steps=8, per_device_train_batch_size=2, resume_from_checkpoint="latest"
            )
        )
    with pytest.raises(CheckpointError, match="does not exist"):
        pretrain(*tiny_args(out, corpus, max_steps=8, resume_from_checkpoint=str(out / "nowhere")))
    (out / "checkpoints" / "checkpoint-6" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="checkpoint-6.*cannot be loaded"):
        pretrain(*tiny_args(out, corpus, max_steps=8, resume_from_checkpoint="latest"))
    (out / "checkpoints" / "checkpoint-4" / "trainer_state.json").unlink()
    with pytest.raises(CheckpointError, match="checkpoint-4.*incomplete or corrupt"):
        pretrain(
            *tiny_args(out, corpus, max_steps=8, resume_from_checkpoint=str(out / "checkpoints/checkpoint-4"))
        )
    # Nothing was deleted by the failed resumes.
    assert [p.name for p in train.list_checkpoints(out)] == ["checkpoint-4", "checkpoint-6"]
    assert (out / "checkpoints" / "checkpoint-6" / "optimizer.bin").exists()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train.resolve_checkpoint("latest", tmp_path / "empty")


def test_output_folder_holding_another_run_is_refused(tmp_path, corpus):
    out = tmp_path / "run"
    pretrain(*tiny_args(out, corpus, max_steps=2))
    before = weights(out)
    with pytest.raises(FileExistsError, match="already holds another run.*--resume latest"):
        pretrain(*tiny_args(out, corpus, max_steps=2))
    assert all(torch.equal(before[k], v) for k, v in weights(out).items())
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        pretrain(*tiny_args(tmp_path / "other", corpus))


def test_bad_configuration(tmp_path, corpus):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("max_steps: 3\nlearning_rat: 0.1\nhidden_sizes: 8\n", encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"unknown key\(s\) hidden_sizes, learning_rat in .*valid keys: .*learning_rate"
    ):
        parse_pretraining_args(recipe)
    with pytest.raises(ValueError, match="unknown option.*--max_stepz 3.*valid keys"):
        parse_pretraining_args(None, ["--max_stepz", "3"])
    with pytest.raises(FileNotFoundError):
        parse_pretraining_args(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="max_steps must be at least 1"):
        parse_pretraining_args(None, ["--max_steps", "0"])
    with pytest.raises(ValueError, match="max_seq_length=128 exceeds max_position_embeddings=64"):
        pretrain(*tiny_args(tmp_path / "r1", corpus, max_seq_length=128))
    with pytest.raises(StrictDataclassError):
        pretrain(*tiny_args(tmp_path / "r2", corpus, hidden_size=30, num_attention_heads=4))
    with pytest.raises(ValueError, match="do not fill one step"):
        pretrain(*tiny_args(tmp_path / "r3", corpus, per_device_train_batch_size=4096))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        pretrain(*tiny_args(tmp_path / "r4", empty, tokenizer_name=str(tmp_path / "r1" / "tokenizer")))
    assert "per_device_train_batch_size" in valid_keys()


def test_yaml_recipe_with_command_line_overrides(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "model_type: bert\nhidden_size: 64\nnsp: false\nlearning_rate: 1e-4\ntrain_files: [a.txt, b.txt]\n"
        "max_steps: 10\n",
        encoding="utf-8",
    )
    model_args, data_args, args = parse_pretraining_args(recipe, ["--max_steps", "20", "--nsp", "true"])
    assert (model_args.model_type, model_args.hidden_size) == ("bert", 64)
    assert data_args.train_files == ["a.txt", "b.txt"] and data_args.nsp is True
    assert args.max_steps == 20 and args.learning_rate == 1e-4


def test_shipped_recipes_parse():
    for name in ("pretrain-bert-tiny.yaml", "pretrain-bert-mini.yaml"):
        model_args, data_args, args = parse_pretraining_args(REPO / "recipes" / name)
        assert model_args.model_type == "session_bert" and args.output_dir


def test_cli_pretrain_and_resume(tmp_path, corpus, capsys):
    common = ["--output_dir", str(tmp_path / "run"), "--train_files", str(corpus), "--report_to", "none"]
    common += [
        "--vocab_size",
        "120",
        "--hidden_size",
        "32",
        "--num_hidden_layers",
        "1",
        "--disable_tqdm",
        "true",
    ]
    common += ["--intermediate_size", "64", "--per_device_train_batch_size", "4", "--save_steps", "2"]
    recipe = REPO / "recipes" / "pretrain-bert-tiny.yaml"
    assert cli.main(["pretrain", str(recipe), *common, "--max_steps", "2"]) == 0
    assert "step 2:" in capsys.readouterr().out
    assert cli.main(["pretrain", str(recipe), *common, "--max_steps", "4", "--resume", "latest"]) == 0
    assert "step 4:" in capsys.readouterr().out
    assert cli.main(["pretrain", str(recipe), *common, "--max_steps", "4"]) == 2
    assert "already holds another run" in capsys.readouterr().err
    assert cli.main(["pretrain", str(recipe), "--no_such_key", "1"]) == 2
    assert "valid keys" in capsys.readouterr().err


def test_saved_model_loads_with_trust_remote_code_without_hf_session(tmp_path, corpus):
    out = tmp_path / "run"
    pretrain(*tiny_args(out, corpus, max_steps=1))
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["hf_session"] = None
        from transformers import AutoModelForPreTraining
        model = AutoModelForPreTraining.from_pretrained({str(out)!r}, trust_remote_code=True)
        print(type(model).__name__)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("SessionBertForPreTraining")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


DDP_WORKER = """
import sys, torch
from hf_session.pretraining import parse_pretraining_args, pretrain
result = pretrain(*parse_pretraining_args(None, sys.argv[2:]))
from accelerate import PartialState
state = PartialState()
torch.save({k: v.detach().clone() for k, v in result["model"].state_dict().items()},
           f"{sys.argv[1]}/rank{state.process_index}-of-{state.num_processes}.pt")
"""


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path, corpus):
    """torchrun --nproc_per_node 2 (gloo): both ranks hold the same weights, equal to a 1-process run."""
    worker = tmp_path / "worker.py"
    worker.write_text(DDP_WORKER, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def argv(out, per_device):
        settings = dict(hidden_dropout_prob=0, attention_probs_dropout_prob=0, max_steps=4, save_steps=4)
        settings.update(validation_split_percentage=25, per_device_eval_batch_size=3, eval_steps=4)
        model_args, data_args, args = tiny_args(
            out, corpus, per_device_train_batch_size=per_device, **settings
        )
        flat = []
        for group in (model_args, data_args, args):
            for key, value in vars(group).items():
                if value is not None:
                    flat += [f"--{key}", *(map(str, value) if isinstance(value, list) else [str(value)])]
        return flat

    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
         str(worker), str(tmp_path), *argv(tmp_path / "two", 2)],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run(
        [sys.executable, str(worker), str(tmp_path), *argv(tmp_path / "one", 4)],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    rank0, rank1 = torch.load(tmp_path / "rank0-of-2.pt"), torch.load(tmp_path / "rank1-of-2.pt")
    single = torch.load(tmp_path / "rank0-of-1.pt")
    for name in single:
        assert torch.equal(rank0[name], rank1[name]), name
        assert torch.allclose(rank0[name], single[name], atol=2e-5), (
            name,
            (rank0[name] - single[name]).abs().max(),
        )
    # Same losses step by step (the logged loss is over the global batch), and they went down; the same
    # evaluation (every held-out example once, on uneven shards).
    logs = [
        [json.loads(line) for line in (tmp_path / run / "log_history.jsonl").read_text().splitlines()]
        for run in ("one", "two")
    ]
    losses = [[entry["train/loss"] for entry in log] for log in logs]
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)
    assert len(losses[0]) == 4 and losses[0][-1] < losses[0][0]
    for key in ("eval/mlm_loss", "eval/mlm_accuracy", "eval/nsp_accuracy"):
        assert logs[0][-1][key] == pytest.approx(logs[1][-1][key], abs=1e-5), key


def test_mlm_only_on_a_saved_dataset_with_a_given_tokenizer_and_tensorboard(tmp_path, corpus):
    import datasets

    first = pretrain(*tiny_args(tmp_path / "first", corpus, max_steps=1))
    lines = corpus.read_text(encoding="utf-8").splitlines()
    datasets.Dataset.from_dict({"content": lines}).save_to_disk(str(tmp_path / "saved"))
    settings = dict(
        train_files=None, dataset_name=str(tmp_path / "saved"), text_column="content", nsp=False,
        tokenizer_name=str(tmp_path / "first"), report_to="tensorboard", max_steps=12, logging_steps=4,
    )  # fmt: skip
    model_args, data_args, args = tiny_args(tmp_path / "mlm", corpus)
    for key, value in settings.items():
        setattr(
            model_args if hasattr(model_args, key) else data_args if hasattr(data_args, key) else args,
            key,
            value,
        )
    result = pretrain(model_args, data_args, args)
    assert result["tokenizer"].get_vocab() == first["tokenizer"].get_vocab()
    history = result["log_history"]
    assert all("train/nsp_accuracy" not in h for h in history)
    assert history[-1]["train/mlm_loss"] < history[0]["train/mlm_loss"]
    assert list((tmp_path / "mlm" / "pretraining").glob("events.out.tfevents.*"))
    data_args.text_column, args.output_dir = "text", str(tmp_path / "other")
    with pytest.raises(ValueError, match=r"no column 'text'; its columns are \['content'\]"):
        pretrain(model_args, data_args, args)
