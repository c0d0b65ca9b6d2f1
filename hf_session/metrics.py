"""Evaluation metrics, computed locally with the libraries that `evaluate` wraps.

`evaluate.load("accuracy")` and friends download a metric script from the Hub on first use; these
functions compute the same numbers offline: accuracy/F1 with scikit-learn, entity-level F1 with
seqeval, SQuAD exact match/F1 (the official v1.1 normalisation), BLEU with sacreBLEU. A recipe that
names a metric as ``hub:<name>`` gets `evaluate.load(<name>)` instead, which needs the Hub.

All scores are percentages (0-100), as sacreBLEU and the SQuAD script report them (BLEU's brevity
penalty, a factor in 0-1, is the one ratio).
"""

import collections
import re
import string
from collections.abc import Callable, Sequence

import numpy as np

# Names a recipe may list under `metrics`, by task.
LOCAL_METRICS = ("accuracy", "f1", "precision", "recall", "seqeval", "squad", "sacrebleu")


def classification_scores(
    predictions: Sequence[int], references: Sequence[int], average: str | None = None
) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of class ids.

    `average` as in scikit-learn; by default "binary" for two classes and "macro" for more.
    """
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    predictions, references = np.asarray(predictions), np.asarray(references)
    if predictions.shape != references.shape:
        raise ValueError(f"{predictions.shape[0]} predictions for {references.shape[0]} references")
    if predictions.size == 0:
        raise ValueError("no predictions to score")
    if average is None:
        average = "binary" if set(np.unique(references)) | set(np.unique(predictions)) <= {0, 1} else "macro"
    precision, recall, f1, _ = precision_recall_fscore_support(
        references, predictions, average=average, zero_division=0
    )
    return {
        "accuracy": 100 * float(accuracy_score(references, predictions)),
        "precision": 100 * float(precision),
        "recall": 100 * float(recall),
        "f1": 100 * float(f1),
    }


def seqeval_scores(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> dict:
    """Entity-level precision, recall and F1 (CoNLL style, seqeval) and token accuracy of BIO tags."""
    from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

    predictions, references = [list(p) for p in predictions], [list(r) for r in references]
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predicted sequences for {len(references)} references")
    for i, (p, r) in enumerate(zip(predictions, references, strict=True)):
        if len(p) != len(r):
            raise ValueError(f"sequence {i}: {len(p)} predicted tags for {len(r)} reference tags")
    return {
        "precision": 100 * float(precision_score(references, predictions, zero_division=0)),
        "recall": 100 * float(recall_score(references, predictions, zero_division=0)),
        "f1": 100 * float(f1_score(references, predictions, zero_division=0)),
        "accuracy": 100 * float(accuracy_score(references, predictions)),
    }


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower-case, drop punctuation and English articles, squeeze spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _token_f1(prediction: str, reference: str) -> float:
    pred_tokens, ref_tokens = normalize_answer(prediction).split(), normalize_answer(reference).split()
    common = collections.Counter(pred_tokens) & collections.Counter(ref_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: dict[str, str], references: dict[str, Sequence[str]]) -> dict[str, float]:
    """Exact match and token F1 of extractive answers, as the official SQuAD v1.1 script computes them.

    `predictions` maps a question id to the predicted text; `references` maps it to the gold answers.
    Each question takes its best score over the gold answers.
    """
    missing = sorted(set(references) - set(predictions))
    if missing:
        raise ValueError(f"no prediction for {len(missing)} question(s), e.g. {missing[:3]}")
    if not references:
        raise ValueError("no questions to score")
    exact = f1 = 0.0
    for qid, answers in references.items():
        if isinstance(answers, str) or not answers:
            raise ValueError(f"question {qid!r}: references must be a non-empty list of answer texts")
        exact += max(float(normalize_answer(predictions[qid]) == normalize_answer(a)) for a in answers)
        f1 += max(_token_f1(predictions[qid], a) for a in answers)
    return {"exact_match": 100 * exact / len(references), "f1": 100 * f1 / len(references)}


def bleu_score(predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]) -> dict:
    """Corpus BLEU with sacreBLEU's default 13a tokenisation.

    `references`: one string per prediction, or several reference strings per prediction.
    """
    import sacrebleu

    predictions = list(predictions)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        raise ValueError("no predictions to score")
    per_sentence = [[r] if isinstance(r, str) else list(r) for r in references]
    width = max(len(r) for r in per_sentence)
    if any(len(r) != width for r in per_sentence):
        raise ValueError("give every prediction the same number of references")
    streams = [
        [refs[k] for refs in per_sentence] for k in range(width)
    ]  # sacreBLEU wants one stream per reference
    result = sacrebleu.corpus_bleu(predictions, streams)
    return {"bleu": float(result.score), "bleu_brevity_penalty": float(result.bp)}


def load_hub_metric(name: str) -> Callable[..., dict]:
    """`evaluate.load(name).compute`, with one clear error when the Hub cannot be reached."""
    import evaluate

    try:
        return evaluate.load(name).compute
    except Exception as err:  # evaluate raises many types (ConnectionError, FileNotFoundError, ...)
        raise OSError(
            f"metric 'hub:{name}' needs the Hugging Face Hub, which could not be reached "
            f"({type(err).__name__}); use a local metric instead: {', '.join(LOCAL_METRICS)}"
        ) from err
