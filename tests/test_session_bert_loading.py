"""SessionBert checkpoints load without hf_session (trust_remote_code) and work in transformers' pipelines."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import pipeline

from hf_session import (
    SessionBertConfig,
    SessionBertForMaskedLM,
    SessionBertForSequenceClassification,
    SessionBertForTokenClassification,
    SessionBertModel,
    train_wordpiece,
)
from hf_session.utils import data_path


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece(files=[data_path("wikitext2", "wiki.sample.raw")], vocab_size=400)


def config_for(tokenizer, **overrides):
    settings = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=64,
    )
    return SessionBertConfig(**{**settings, **overrides})


REMOTE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.modules["hf_session"] = None  # importing hf_session now fails: only the checkpoint's own code is there
    import torch
    import transformers

    path, auto_names, result_file = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    batch = tokenizer(["The film was released in 2006 .", "He starred"], padding=True, return_tensors="pt")
    results = {}
    for auto_name in auto_names:
        model = getattr(transformers, auto_name).from_pretrained(path, trust_remote_code=True).eval()
        inputs = {k: v[:, None] for k, v in batch.items()} if "MultipleChoice" in auto_name else batch
        with torch.no_grad():
            out = model(**inputs)
        results[auto_name] = [type(model).__name__, type(model).__module__, out[0].tolist()]
    with open(result_file, "w") as handle:
        json.dump(results, handle)
    """
)


def test_every_head_loads_with_trust_remote_code_without_hf_session(tmp_path, tokenizer):
    torch.manual_seed(0)
    model = SessionBertForMaskedLM(config_for(tokenizer)).eval()
    model.save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    heads = {
        "AutoModel": "SessionBertModel",
        "AutoModelForPreTraining": "SessionBertForPreTraining",
        "AutoModelForMaskedLM": "SessionBertForMaskedLM",
        "AutoModelForNextSentencePrediction": "SessionBertForNextSentencePrediction",
        "AutoModelForSequenceClassification": "SessionBertForSequenceClassification",
        "AutoModelForTokenClassification": "SessionBertForTokenClassification",
        "AutoModelForQuestionAnswering": "SessionBertForQuestionAnswering",
        "AutoModelForMultipleChoice": "SessionBertForMultipleChoice",
    }
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    (tmp_path / "script.py").write_text(REMOTE_SCRIPT)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_HUB_OFFLINE": "1",
    }
    completed = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "script.py"),
            str(tmp_path / "ckpt"),
            ",".join(heads),
            str(tmp_path / "out.json"),
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "out.json").read_text())
    for auto_name, class_name in heads.items():
        loaded_class, module, _ = results[auto_name]
        assert loaded_class == class_name
        assert module.startswith("transformers_modules") and "hf_session" not in module
    # The MLM head is the saved one: same logits as in this process, at the real positions.
    batch = tokenizer(["The film was released in 2006 .", "He starred"], padding=True, return_tensors="pt")
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        expected = model(**batch).logits
    remote = torch.tensor(results["AutoModelForMaskedLM"][2])
    torch.testing.assert_close(remote[real], expected[real], atol=1e-5, rtol=0)


def test_fill_mask_pipeline_scores_are_the_model_softmax(tokenizer):
    torch.manual_seed(0)
    model = SessionBertForMaskedLM(config_for(tokenizer)).eval()
    fill = pipeline("fill-mask", model=model, tokenizer=tokenizer, top_k=3)
    text = f"The film was {tokenizer.mask_token} in 2006 ."
    predictions = fill(text)
    encoded = tokenizer(text, return_tensors="pt")
    position = encoded["input_ids"][0].tolist().index(tokenizer.mask_token_id)
    with torch.no_grad():
        probs = model(**encoded).logits[0, position].softmax(-1)
    top = probs.topk(3)
    assert [p["token"] for p in predictions] == top.indices.tolist()
    assert [p["score"] for p in predictions] == pytest.approx(top.values.tolist(), rel=1e-5)


def test_text_token_classification_and_feature_extraction_pipelines(tokenizer):
    torch.manual_seed(0)
    text = "Robert Boulter is an English film actor ."
    encoded = tokenizer(text, return_tensors="pt")

    labels = {0: "negative", 1: "positive"}
    classifier = SessionBertForSequenceClassification(config_for(tokenizer, id2label=labels)).eval()
    result = pipeline("text-classification", model=classifier, tokenizer=tokenizer)(text)[0]
    with torch.no_grad():
        probs = classifier(**encoded).logits[0].softmax(-1)
    assert result["label"] == labels[int(probs.argmax())]
    assert result["score"] == pytest.approx(float(probs.max()), rel=1e-5)

    tags = {0: "O", 1: "B-person", 2: "I-person"}
    tagger = SessionBertForTokenClassification(config_for(tokenizer, id2label=tags)).eval()
    entities = pipeline("token-classification", model=tagger, tokenizer=tokenizer)(text)
    with torch.no_grad():
        predicted = tagger(**encoded).logits[0].argmax(-1).tolist()
    expected = [
        (i, tags[t]) for i, t in enumerate(predicted) if tags[t] != "O" and 0 < i < len(predicted) - 1
    ]
    assert [(e["index"], e["entity"]) for e in entities] == expected

    encoder = SessionBertModel(config_for(tokenizer)).eval()
    features = pipeline("feature-extraction", model=encoder, tokenizer=tokenizer)(text)
    with torch.no_grad():
        hidden = encoder(**encoded).last_hidden_state
    torch.testing.assert_close(torch.tensor(features), hidden, atol=1e-5, rtol=0)
