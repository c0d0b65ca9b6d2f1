"""hf_session.metrics: values worked out by hand, the official SQuAD normalisation, error messages."""

import math
from unittest import mock

import pytest

from hf_session import metrics


def test_classification_scores_binary_by_hand():
    # tp=2 (ids 0, 3), fp=1 (id 1), fn=1 (id 2), tn=1 (id 4)
    scores = metrics.classification_scores([1, 1, 0, 1, 0], [1, 0, 1, 1, 0])
    assert scores["accuracy"] == pytest.approx(60.0)
    assert scores["precision"] == pytest.approx(100 * 2 / 3)
    assert scores["recall"] == pytest.approx(100 * 2 / 3)
    assert scores["f1"] == pytest.approx(100 * 2 / 3)


def test_classification_scores_multiclass_is_macro():
    # class 0: p=1, r=1/2; class 1: p=1/2, r=1; class 2: p=r=1  -> macro F1 = (2/3 + 2/3 + 1) / 3
    scores = metrics.classification_scores([0, 1, 1, 2], [0, 0, 1, 2])
    assert scores["accuracy"] == pytest.approx(75.0)
    assert scores["f1"] == pytest.approx(100 * (2 / 3 + 2 / 3 + 1) / 3)


def test_classification_scores_errors():
    with pytest.raises(ValueError, match="2 predictions for 3 references"):
        metrics.classification_scores([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="no predictions"):
        metrics.classification_scores([], [])


def test_seqeval_scores_entity_level():
    references = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    # PER right, LOC missed, ORG predicted as LOC, one spurious PER: 1 correct of 3 predicted, 3 gold
    predictions = [["B-PER", "I-PER", "B-PER", "O"], ["O", "B-LOC"]]
    scores = metrics.seqeval_scores(predictions, references)
    assert scores["precision"] == pytest.approx(100 / 3)
    assert scores["recall"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 / 3)
    assert scores["accuracy"] == pytest.approx(100 * 3 / 6)  # 3 of 6 tags right
    # A half-found entity is wrong at entity level although most of its tags are right.
    assert metrics.seqeval_scores([["B-PER", "O"]], [["B-PER", "I-PER"]])["f1"] == 0.0


def test_seqeval_scores_length_mismatch():
    with pytest.raises(ValueError, match="sequence 0: 1 predicted tags for 2 reference tags"):
        metrics.seqeval_scores([["O"]], [["O", "O"]])


def test_squad_scores_official_normalisation():
    predictions = {"a": "The Eiffel Tower!", "b": "in 1889", "c": "Paris France", "d": "nothing"}
    references = {"a": ["Eiffel Tower"], "b": ["1889", "in the year 1889"], "c": ["Paris"], "d": ["tower"]}
    scores = metrics.squad_scores(predictions, references)
    # a: exact once "the" and "!" are dropped. b: the best of "1889" (P 1/2, R 1 -> 2/3) and
    # "in the year 1889" -> "in year 1889" (P 1, R 2/3 -> 0.8). c: P 1/2, R 1 -> 2/3. d: 0.
    assert scores["exact_match"] == pytest.approx(25.0)
    assert scores["f1"] == pytest.approx(100 * (1 + 0.8 + 2 / 3 + 0) / 4)
    assert metrics.normalize_answer("  The  cat, an owl ") == "cat owl"


def test_squad_scores_errors():
    with pytest.raises(ValueError, match="no prediction for 1 question"):
        metrics.squad_scores({}, {"q1": ["x"]})
    with pytest.raises(ValueError, match="non-empty list"):
        metrics.squad_scores({"q1": "x"}, {"q1": "x"})


def test_bleu_score():
    sentences = ["a man rides a bike in the park .", "two dogs play in the snow ."]
    assert metrics.bleu_score(sentences, sentences)["bleu"] == pytest.approx(100.0)
    # 1-gram precision 1/4, no longer match; sacreBLEU's default "exp" smoothing turns the empty 2-, 3-
    # and 4-gram counts into 1/(2*3), 1/(4*2), 1/(8*1): BLEU = (1/4 * 1/6 * 1/8 * 1/8) ** (1/4).
    expected = 100 * (1 / 4 * 1 / 6 * 1 / 8 * 1 / 8) ** 0.25
    assert metrics.bleu_score(["the cat sat down"], ["the dog ran away"])["bleu"] == pytest.approx(expected)
    # Shorter hypothesis than reference: brevity penalty exp(1 - 9/8).
    short = metrics.bleu_score(["a man rides a bike in the park"], ["a man rides a bike in the park ."])
    assert short["bleu_brevity_penalty"] == pytest.approx(math.exp(1 - 9 / 8), rel=1e-4)
    # Two references per sentence: the matching one counts.
    assert metrics.bleu_score(sentences[:1], [["nothing alike here at all", sentences[0]]])[
        "bleu"
    ] == pytest.approx(100)


def test_bleu_score_errors():
    with pytest.raises(ValueError, match="1 predictions for 2 references"):
        metrics.bleu_score(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="same number of references"):
        metrics.bleu_score(["a", "b"], [["a"], ["b", "c"]])


def test_load_hub_metric_unreachable_names_local_alternatives():
    with mock.patch("evaluate.load", side_effect=ConnectionError("offline")):
        with pytest.raises(OSError, match="needs the Hugging Face Hub.*accuracy, f1"):
            metrics.load_hub_metric("accuracy")


def test_load_hub_metric_returns_compute():
    fake = mock.Mock()
    fake.compute.return_value = {"accuracy": 1.0}
    with mock.patch("evaluate.load", return_value=fake) as load:
        assert metrics.load_hub_metric("accuracy")(predictions=[1], references=[1]) == {"accuracy": 1.0}
    load.assert_called_once_with("accuracy")
