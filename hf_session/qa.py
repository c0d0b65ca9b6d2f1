"""Extractive question answering in one call: transformers 5.x has no question-answering pipeline any more.

`answer_question(model, tokenizer, question, context)` returns the best answer span of `context`: its text, its
character span, and its score (p(start) · p(end), the probabilities taken over the context tokens of the
window that holds it). Long contexts are read in overlapping windows, as BERT's SQuAD code does.
"""

import torch

from .models.session_bert.convert import check_tokenizer_fits


def best_span(start_logits, end_logits, in_context, max_answer_length: int = 30):
    """The best answer span of one window: start ≤ end < start + max_answer_length, both in the context.

    start_logits, end_logits: (seq_len,) tensors or arrays; in_context: (seq_len,) booleans, True on context
    tokens. The span maximises start_logit + end_logit (the same span maximises p(start) · p(end) within the
    window). Returns (start_token, end_token), or None when the window holds no context token.
    """
    in_context = torch.as_tensor(in_context, dtype=torch.bool)
    if not in_context.any():
        return None
    start = torch.as_tensor(start_logits, dtype=torch.float32).masked_fill(~in_context, float("-inf"))
    end = torch.as_tensor(end_logits, dtype=torch.float32).masked_fill(~in_context, float("-inf"))
    # scores[i, j] = start[i] + end[j], kept for i ≤ j < i + max_answer_length
    scores = start[:, None] + end[None, :]
    length = torch.arange(len(start))[None, :] - torch.arange(len(start))[:, None]
    scores = scores.masked_fill((length < 0) | (length >= max_answer_length), float("-inf"))
    start_token, end_token = divmod(int(scores.flatten().argmax()), scores.shape[1])
    return start_token, end_token


def answer_question(
    model,
    tokenizer,
    question: str,
    context: str,
    max_length: int = 384,
    stride: int = 128,
    max_answer_length: int = 30,
) -> dict:
    """Answer `question` with a span of `context`.

    model: any question-answering model (start_logits, end_logits), e.g. `SessionBertForQuestionAnswering`;
    tokenizer: a fast tokenizer (offsets are needed); max_length: tokens per window (question + context);
    stride: tokens shared by consecutive windows; max_answer_length: longest answer, in tokens.

    Returns {"answer": str, "start": int, "end": int, "score": float} with context[start:end] == answer.
    """
    if not question.strip() or not context.strip():
        raise ValueError("question and context must both be non-empty text")
    if not tokenizer.is_fast:
        raise ValueError("answer_question needs a fast tokenizer (it maps tokens back to characters)")
    if max_answer_length < 1:
        raise ValueError(f"max_answer_length must be at least 1, got {max_answer_length}")
    check_tokenizer_fits(tokenizer, model.config)
    question_length = len(tokenizer(question, add_special_tokens=False)["input_ids"])
    if question_length + 3 + stride >= max_length:
        raise ValueError(
            f"max_length={max_length} leaves no room for the context: the question takes {question_length} "
            f"tokens, plus 3 special tokens and stride={stride}; raise max_length or lower stride"
        )

    encoded = tokenizer(
        question,
        context,
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=True,
        return_tensors="pt",
    )
    offsets = encoded.pop("offset_mapping")
    encoded.pop("overflow_to_sample_mapping", None)
    model_inputs = {k: v.to(model.device) for k, v in encoded.items() if k in tokenizer.model_input_names}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        outputs = model(**model_inputs)
    model.train(was_training)

    best = None
    for window in range(offsets.shape[0]):
        in_context = torch.tensor([s == 1 for s in encoded.sequence_ids(window)])
        start_token, end_token = best_span(
            outputs.start_logits[window], outputs.end_logits[window], in_context, max_answer_length
        )
        # Windows are compared by probability, each normalised over its own context tokens.
        start_probs = outputs.start_logits[window].float().masked_fill(~in_context, float("-inf")).softmax(-1)
        end_probs = outputs.end_logits[window].float().masked_fill(~in_context, float("-inf")).softmax(-1)
        score = start_probs[start_token] * end_probs[end_token]
        if best is None or score > best[0]:
            best = (score, int(offsets[window, start_token, 0]), int(offsets[window, end_token, 1]))
    score, start, end = best
    return {"answer": context[start:end], "start": start, "end": end, "score": float(score)}
