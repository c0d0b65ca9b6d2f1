"""The RNN classifier with the same tokenized data as BERT: Trainer learns, pipeline() serves it."""

import random

import pytest
import torch
from datasets import Dataset
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, pipeline

from hf_session import train_wordpiece
from hf_session.models.session_rnn import SessionRnnConfig, SessionRnnForSequenceClassification

WORDS = "the a film movie was is really quite very story actors plot music long short".split()


def make_texts(count: int, seed: int) -> tuple[list[str], list[int]]:
    """Label 1 when the sentence contains "great" (anywhere), else 0: the RNN must carry it to the end."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(count):
        words = rng.choices(WORDS, k=rng.randint(3, 10))
        label = rng.random() < 0.5
        if label:
            words.insert(rng.randrange(len(words) + 1), "great")
        texts.append(" ".join(words))
        labels.append(int(label))
    return texts, labels


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tokenizer():
    texts, _ = make_texts(200, seed=0)
    return train_wordpiece(texts=texts + ["great"], vocab_size=60, min_frequency=1)


def test_trainer_learns_and_pipeline_serves_the_classifier(tokenizer, tmp_path):
    train_texts, train_labels = make_texts(400, seed=1)
    test_texts, test_labels = make_texts(100, seed=2)
    # token_type_ids are in the features, as for BERT: the model accepts and ignores them.
    train = Dataset.from_dict({**tokenizer(train_texts), "labels": train_labels})
    assert "token_type_ids" in train.column_names
    torch.manual_seed(0)
    config = SessionRnnConfig(
        vocab_size=len(tokenizer),
        embedding_size=16,
        hidden_size=16,
        cell_type="lstm",
        classifier_pooling="max",
        dropout=0.0,
        num_labels=2,
        id2label={0: "other", 1: "great"},
        label2id={"other": 0, "great": 1},
    )
    model = SessionRnnForSequenceClassification(config)
    args = TrainingArguments(
        output_dir=str(tmp_path / "trainer"),
        per_device_train_batch_size=32,
        learning_rate=1e-2,
        num_train_epochs=4,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
    )
    trainer.train()
    model.eval()
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")

    classify = pipeline("text-classification", model=str(tmp_path / "model"))
    predictions = classify(test_texts)
    accuracy = sum(
        p["label"] == ("great" if y else "other") for p, y in zip(predictions, test_labels, strict=True)
    ) / len(test_labels)
    assert accuracy >= 0.95
    with torch.no_grad():
        probabilities = model(**tokenizer(test_texts[:1], return_tensors="pt")).logits.softmax(-1)[0]
    assert predictions[0]["score"] == pytest.approx(probabilities.max().item(), abs=1e-5)
