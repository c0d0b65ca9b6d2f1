"""hf_session.qa.answer_question: spans map back to the context, windows cover long contexts, scores are right."""

import pytest
import torch
from torch import nn
from transformers.modeling_outputs import QuestionAnsweringModelOutput

from hf_session import SessionBertConfig, SessionBertForQuestionAnswering, train_wordpiece
from hf_session.qa import answer_question
from hf_session.utils import data_path


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece(files=[data_path("wikitext2", "wiki.sample.raw")], vocab_size=500)


class PointAtWord(nn.Module):
    """A stand-in QA model whose start logit peaks at the first piece of `start_word` and end logit at the last
    piece of `end_word`, wherever they are."""

    def __init__(self, tokenizer, start_word, end_word):
        super().__init__()
        self.config = SessionBertConfig(vocab_size=len(tokenizer), hidden_size=8, num_attention_heads=2)
        self.start_id = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(start_word)[0])
        self.end_id = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(end_word)[-1])
        assert tokenizer.unk_token_id not in (self.start_id, self.end_id)
        self.calls = 0

    @property
    def device(self):
        return torch.device("cpu")

    def forward(self, input_ids, **kwargs):
        self.calls += 1
        start = (input_ids == self.start_id).float() * 10
        end = (input_ids == self.end_id).float() * 10
        return QuestionAnsweringModelOutput(start_logits=start, end_logits=end)


def test_answer_is_the_span_of_the_context_in_its_original_case(tokenizer):
    context = "The play Herons was written by Simon Stephens and performed in 2001 ."
    model = PointAtWord(tokenizer, "simon", "stephens")
    result = answer_question(model, tokenizer, "Who wrote the play ?", context)
    assert result["answer"] == "Simon Stephens"
    assert context[result["start"] : result["end"]] == "Simon Stephens"
    assert result["start"] == context.index("Simon")
    assert 0.99 < result["score"] <= 1.0


def test_question_tokens_are_never_the_answer(tokenizer):
    # "play" appears in the question and in the context: only the context occurrence can be chosen.
    context = "He had a guest role in a play in 2004 ."
    result = answer_question(PointAtWord(tokenizer, "play", "play"), tokenizer, "Which play ?", context)
    assert result["start"] == context.index("play") and result["answer"] == "play"


def test_long_context_is_read_in_overlapping_windows(tokenizer):
    filler = "The film was released in the united kingdom . " * 40
    context = filler + "It starred Simon Stephens ."
    model = PointAtWord(tokenizer, "simon", "stephens")
    result = answer_question(model, tokenizer, "Who starred ?", context, max_length=64, stride=16)
    assert model.calls == 1  # all windows in one batch
    assert result["answer"] == "Simon Stephens" and result["start"] == context.index("Simon Stephens")


def test_score_matches_the_model_probabilities(tokenizer):
    torch.manual_seed(0)
    config = SessionBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
    )
    model = SessionBertForQuestionAnswering(config).eval()
    question, context = "Who wrote it ?", "It was written by Simon Stephens in 2001 ."
    result = answer_question(model, tokenizer, question, context, max_answer_length=3)
    encoded = tokenizer(question, context, return_tensors="pt", return_offsets_mapping=True)
    offsets = encoded.pop("offset_mapping")[0]
    with torch.no_grad():
        out = model(**encoded)
    in_context = torch.tensor([s == 1 for s in encoded.sequence_ids(0)])
    p_start = out.start_logits[0].masked_fill(~in_context, float("-inf")).softmax(-1)
    p_end = out.end_logits[0].masked_fill(~in_context, float("-inf")).softmax(-1)
    best = max(
        (float(p_start[i] * p_end[j]), i, j)
        for i in range(len(p_start))
        for j in range(i, min(i + 3, len(p_end)))
        if in_context[i] and in_context[j]
    )
    assert result["score"] == pytest.approx(best[0], rel=1e-5)
    assert (result["start"], result["end"]) == (int(offsets[best[1], 0]), int(offsets[best[2], 1]))
    assert model.training is False


def test_bad_input_is_refused(tokenizer):
    model = PointAtWord(tokenizer, "simon", "stephens")
    with pytest.raises(ValueError, match="non-empty"):
        answer_question(model, tokenizer, "  ", "Some context .")
    with pytest.raises(ValueError, match="leaves no room for the context"):
        answer_question(model, tokenizer, "Who ?", "Some context .", max_length=20, stride=16)
    model.config = SessionBertConfig(vocab_size=100, hidden_size=8, num_attention_heads=2)
    with pytest.raises(ValueError, match="vocab_size is 100"):
        answer_question(model, tokenizer, "Who ?", "Some context .")


def test_best_span_respects_context_order_and_length():
    from hf_session.qa import best_span

    start = torch.tensor([9.0, 1.0, 0.0, 4.0, 0.0])
    end = torch.tensor([9.0, 0.0, 3.0, 0.0, 2.0])
    in_context = [False, True, True, True, True]
    assert best_span(start, end, in_context, max_answer_length=30) == (3, 4)  # 4 + 2 beats 1 + 3
    assert best_span(start, end, in_context, max_answer_length=1) == (3, 3)  # single-token spans only
    assert best_span(end, start, in_context, max_answer_length=30) == (
        2,
        3,
    )  # the end never precedes the start
    assert best_span(start, end, [False] * 5) is None
