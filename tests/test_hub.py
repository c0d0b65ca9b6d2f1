"""Model cards and the Hub upload path, without a network: HfApi's repo and commit calls are intercepted,
the uploaded files are written to a folder, and that folder is loaded with trust_remote_code in a clean
process where hf_session cannot be imported."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
import yaml
from huggingface_hub import CommitInfo, HfApi, RepoUrl
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
)

from hf_session import cli, hub
from hf_session.finetune import run_recipe
from hf_session.tokenization import train_wordpiece
from hf_session.utils import data_path

TINY_BERT = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
RECIPE = {
    "task": "text-classification",
    "model_type": "session_bert",
    "config_overrides": {**TINY_BERT, "max_position_embeddings": 64},
    "tokenizer_vocab_size": 500,
    "train_file": str(data_path("sst2", "train.tsv")),
    "validation_file": str(data_path("sst2", "dev.tsv")),
    "hub_dataset_id": "stanfordnlp/sst2",
    "text_column": "sentence",
    "class_names": ["negative", "positive"],
    "max_train_samples": 32,
    "max_eval_samples": 16,
    "max_seq_length": 32,
    "max_steps": 2,
    "per_device_train_batch_size": 8,
    "disable_tqdm": True,
}
# What a fine-tuned session_bert folder holds, and so what is uploaded: weights, config, the model's
# code for trust_remote_code, tokenizer, card, recipe, Trainer's arguments.
UPLOADED = [
    "README.md",
    "config.json",
    "configuration_session_bert.py",
    "model.safetensors",
    "modeling_session_bert.py",
    "recipe.yaml",
    "tokenizer.json",
    "tokenizer_config.json",
    "training_args.bin",
]
SENTENCES = ["a charming and often affecting journey", "contains no wit , only labored gags"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hub") / "sst2-tiny"
    run_recipe({**RECIPE, "output_dir": str(folder)})
    return folder


def folder_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


class FakeHub:
    """Stands in for the Hub: records create_repo, writes each commit's files into `storage`."""

    def __init__(self, storage: Path):
        self.storage, self.repos, self.commits = storage, [], []

    def create_repo(self, api, repo_id, **kwargs):
        self.repos.append((repo_id, kwargs))
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def create_commit(self, api, repo_id, operations, **kwargs):
        operations = list(operations)
        self.commits.append((repo_id, sorted(op.path_in_repo for op in operations)))
        for op in operations:
            target = self.storage / op.path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(op.path_or_fileobj, target)
        return CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/{'0' * 40}",
            commit_message=kwargs["commit_message"],
            commit_description="",
            oid="0" * 40,
        )

    def patches(self):
        return (
            mock.patch.object(HfApi, "create_repo", autospec=True, side_effect=self.create_repo),
            mock.patch.object(HfApi, "create_commit", autospec=True, side_effect=self.create_commit),
        )


def test_model_card_metadata_and_body(model_dir):
    text = (model_dir / "README.md").read_text(encoding="utf-8")
    metadata = yaml.safe_load(text.split("---\n")[1])
    assert metadata["library_name"] == "transformers"
    assert metadata["pipeline_tag"] == "text-classification"
    assert metadata["tags"] == ["hf-session", "session_bert", "text-classification"]
    assert metadata["datasets"] == ["stanfordnlp/sst2"]
    assert metadata["metrics"] == ["accuracy", "f1"]
    (entry,) = metadata["model-index"]
    assert entry["name"] == "sst2-tiny"
    (result,) = entry["results"]
    assert result["task"] == {"type": "text-classification", "name": "Text Classification"}
    assert result["dataset"]["type"] == "stanfordnlp/sst2" and result["dataset"]["split"] == "validation"
    assert [m["type"] for m in result["metrics"]] == ["accuracy", "f1"]

    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    parameters = sum(p.numel() for p in model.parameters())
    assert (
        f"`SessionBertForSequenceClassification` (model type `session_bert`), {parameters / 1e3:.1f}k" in text
    )
    assert f"- **Vocabulary:** {len(AutoTokenizer.from_pretrained(model_dir)):,} tokens" in text
    assert "hf_session/data/sst2/train.tsv`" in text and "`stanfordnlp/sst2` on the Hub" in text
    assert "(32 training rows)" in text
    assert "`max_steps=2`, `per_device_train_batch_size=8`" in text
    assert "import hf_session" in text
    assert 'AutoModelForSequenceClassification.from_pretrained("sst2-tiny", trust_remote_code=True)' in text
    assert "| metric | validation |" in text


def test_model_card_results_table_and_plain_transformers_model(tmp_path):
    """The results go into the table and the model-index unchanged; a built-in model needs no remote code."""
    model = BertForSequenceClassification(BertConfig(**TINY_BERT, vocab_size=100))
    tokenizer = train_wordpiece(texts=["a small text to train on"] * 5, vocab_size=60)
    results = {"validation": {"loss": 0.5, "accuracy": 81.25}, "test": {"accuracy": 79.5}}
    card = hub.write_model_card(
        tmp_path,
        model=model,
        tokenizer=tokenizer,
        task="text-classification",
        results=results,
        recipe={"train_file": "data/sst2/train.tsv", "metrics": ["accuracy", "hub:f1"]},
        model_name="me/plain-bert",
    )
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert text.strip() == str(card).strip()
    assert "| accuracy | 81.25 | 79.50 |" in text and "| loss | 0.50 |  |" in text
    values = {
        (r["dataset"]["split"], m["type"]): m["value"]
        for r in yaml.safe_load(text.split("---\n")[1])["model-index"][0]["results"]
        for m in r["metrics"]
    }
    assert values == {("validation", "accuracy"): 81.25, ("test", "accuracy"): 79.5}  # no loss in the index
    assert "trust_remote_code" not in text and "import hf_session" not in text
    assert "`data/sst2/train.tsv`" in text
    with pytest.raises(ValueError, match="task must be one of"):
        hub.write_model_card(tmp_path, model=model, tokenizer=tokenizer, task="chat", results={}, recipe={})


def test_push_uploads_exactly_the_model_files_and_they_load_without_hf_session(model_dir, tmp_path):
    (model_dir / "checkpoint-1").mkdir(exist_ok=True)  # Trainer leftovers are not uploaded
    (model_dir / "checkpoint-1" / "optimizer.pt").write_bytes(b"x")
    assert hub.model_files(model_dir) == UPLOADED
    before = folder_digest(model_dir)

    fake = FakeHub(tmp_path / "uploaded")
    patch_repo, patch_commit = fake.patches()
    with patch_repo, patch_commit:
        url = hub.push_model(model_dir, "me/sst2-tiny", token="hf_fake")
    assert url == f"https://huggingface.co/me/sst2-tiny/commit/{'0' * 40}"
    assert fake.repos == [("me/sst2-tiny", {"private": False, "exist_ok": True})]
    assert fake.commits == [("me/sst2-tiny", UPLOADED)]
    assert folder_digest(model_dir) == before
    shutil.rmtree(model_dir / "checkpoint-1")

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with torch.no_grad():
        expected = model(**tokenizer(SENTENCES, padding=True, return_tensors="pt")).logits.tolist()
    script = f"""
import json, sys
sys.modules["hf_session"] = None  # any import of hf_session fails
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
model = AutoModelForSequenceClassification.from_pretrained({str(tmp_path / "uploaded")!r}, trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained({str(tmp_path / "uploaded")!r}, trust_remote_code=True)
with torch.no_grad():
    logits = model.eval()(**tokenizer({SENTENCES!r}, padding=True, return_tensors="pt")).logits
print(json.dumps({{"class": type(model).__module__, "labels": model.config.id2label, "logits": logits.tolist()}}))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["class"].startswith("transformers_modules.")  # the uploaded code, not hf_session's
    assert loaded["labels"] == {"0": "negative", "1": "positive"}
    torch.testing.assert_close(torch.tensor(loaded["logits"]), torch.tensor(expected), atol=1e-5, rtol=0)


def test_push_without_token_is_one_clear_error(model_dir):
    before = folder_digest(model_dir)
    with (
        mock.patch.object(hub, "get_token", return_value=None),
        mock.patch.object(HfApi, "create_repo") as repo,
    ):
        with pytest.raises(OSError, match="no Hugging Face token: run `hf auth login`, set HF_TOKEN"):
            hub.push_model(model_dir, "me/sst2-tiny")
    repo.assert_not_called()
    assert folder_digest(model_dir) == before


def test_push_to_an_unreachable_hub_is_one_clear_error(model_dir):
    before = folder_digest(model_dir)
    with mock.patch.object(HfApi, "create_repo", side_effect=ConnectionError("name resolution failed")):
        with pytest.raises(
            OSError, match=r"could not push to the Hub repository 'me/sst2-tiny' \(ConnectionError"
        ):
            hub.push_model(model_dir, "me/sst2-tiny", token="hf_fake")
    assert folder_digest(model_dir) == before


def test_push_refuses_a_folder_without_a_model_and_a_bad_repo_id(tmp_path, model_dir):
    with pytest.raises(FileNotFoundError, match="not a saved model folder"):
        hub.push_model(tmp_path, "me/x", token="hf_fake")
    with pytest.raises(ValueError, match="repo_id must look like 'user/model-name'"):
        hub.push_model(model_dir, "a/b/c", token="hf_fake")


def test_cli_push(model_dir, tmp_path, capsys):
    fake = FakeHub(tmp_path / "uploaded")
    patch_repo, patch_commit = fake.patches()
    with patch_repo, patch_commit:
        assert cli.main(["push", str(model_dir), "me/cli-model", "--token", "hf_fake", "--private"]) == 0
    assert f"pushed {model_dir} to https://huggingface.co/me/cli-model/commit/" in capsys.readouterr().out
    assert fake.repos == [("me/cli-model", {"private": True, "exist_ok": True})]
    with mock.patch.object(hub, "get_token", return_value=None):
        assert cli.main(["push", str(model_dir), "me/cli-model"]) == 2
    assert "hf-session: error: no Hugging Face token" in capsys.readouterr().err


def test_recipe_with_push_to_hub_pushes_the_finished_folder(tmp_path):
    fake = FakeHub(tmp_path / "uploaded")
    output_dir = tmp_path / "pushed"
    recipe = {**RECIPE, "output_dir": str(output_dir), "push_to_hub": True, "hub_model_id": "me/pushed"}
    patch_repo, patch_commit = fake.patches()
    with patch_repo, patch_commit:
        run_recipe(recipe, ["--hub_token", "hf_secret"])
    assert fake.commits == [("me/pushed", UPLOADED)]
    for file in ("recipe.yaml", "README.md"):  # the token is never written, let alone uploaded
        assert "hf_secret" not in (output_dir / file).read_text(encoding="utf-8")
    assert folder_digest(tmp_path / "uploaded") == folder_digest(output_dir)
    assert "model-index:\n- name: me/pushed" in (output_dir / "README.md").read_text(encoding="utf-8")

    # The Hub failing after training: one clear error, and the saved model is complete and kept.
    failed_dir = tmp_path / "kept"
    with mock.patch.object(HfApi, "create_repo", side_effect=ConnectionError("offline")):
        with pytest.raises(OSError, match="the local model in .*kept' is unchanged"):
            run_recipe({**recipe, "output_dir": str(failed_dir)}, ["--hub_token", "hf_fake"])
    assert hub.model_files(failed_dir) == UPLOADED
    with pytest.raises(ValueError, match="push_to_hub: true needs a hub_model_id"):
        run_recipe({**recipe, "hub_model_id": None, "output_dir": str(tmp_path / "never")})
