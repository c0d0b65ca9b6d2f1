"""SessionBert models: config checks, heads and losses, the two speed features, attention backends, gradient
checkpointing, Trainer-exact losses, bad input, save/load, tied weights."""

import pytest
import torch
from huggingface_hub.errors import StrictDataclassError
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForPreTraining
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndCrossAttentions

from hf_session import (
    SessionBertConfig,
    SessionBertForMaskedLM,
    SessionBertForMultipleChoice,
    SessionBertForNextSentencePrediction,
    SessionBertForPreTraining,
    SessionBertForQuestionAnswering,
    SessionBertForSequenceClassification,
    SessionBertForTokenClassification,
    SessionBertModel,
)
from hf_session.models.session_bert import modeling_session_bert as session_bert_modeling
from hf_session.models.session_bert.modeling_session_bert import (
    eager_attention_forward,
    pad_tokens,
    unpad_tokens,
)
from hf_session.models.session_rnn import modeling_session_rnn as session_rnn_modeling

VOCAB = 50


def tiny_config(**overrides) -> SessionBertConfig:
    settings = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=24,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    settings.update(overrides)
    return SessionBertConfig(**settings)


def make_batch(batch_size=3, seq_len=12, lengths=(12, 7, 4), seed=0):
    """Random ids with [CLS]=2 first, two segments, right padding to `lengths`, ~30% MLM labels."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, VOCAB, (batch_size, seq_len), generator=generator)
    input_ids[:, 0] = 2
    attention_mask = torch.zeros(batch_size, seq_len, dtype=torch.long)
    for row, length in enumerate(lengths):
        attention_mask[row, :length] = 1
    input_ids[attention_mask == 0] = 0
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, seq_len // 2 :] = 1
    token_type_ids[attention_mask == 0] = 0
    labels = torch.full_like(input_ids, -100)
    chosen = (torch.rand(batch_size, seq_len, generator=generator) < 0.3) & attention_mask.bool()
    chosen[:, 1] = True  # at least one label per row
    labels[chosen] = input_ids[chosen]
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
        "labels": labels,
    }


def unlabelled(batch):
    return {k: v for k, v in batch.items() if k != "labels"}


# --- config -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"hidden_size": 30}, "hidden_size"),
        ({"hidden_dropout_prob": 1.0}, "hidden_dropout_prob"),
        ({"hidden_act": "swishy"}, "hidden_act"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"pad_token_id": VOCAB}, "pad_token_id"),
        ({"layer_norm_eps": 0.0}, "layer_norm_eps"),
    ],
)
def test_config_rejects_impossible_settings_naming_the_field(overrides, field):
    with pytest.raises(StrictDataclassError) as info:
        tiny_config(**overrides)
    assert field in str(info.value) and isinstance(info.value.__cause__, ValueError)


def test_config_type_checked_and_round_trips(tmp_path):
    with pytest.raises(StrictDataclassError):
        tiny_config(num_hidden_layers="2")
    config = tiny_config(unpad_inputs=False, classifier_dropout=0.3)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded) is SessionBertConfig
    assert {k: v for k, v in loaded.to_dict().items() if k != "_name_or_path"} == {
        k: v for k, v in config.to_dict().items() if k != "_name_or_path"
    }


# --- base model and heads -----------------------------------------------------------------------------


def test_base_model_shapes_and_pooler_is_tanh_of_cls():
    torch.manual_seed(0)
    model = SessionBertModel(tiny_config()).eval()
    out = model(**unlabelled(make_batch()), output_hidden_states=True, output_attentions=True)
    assert isinstance(out, BaseModelOutputWithPoolingAndCrossAttentions)
    assert out.last_hidden_state.shape == (3, 12, 32) and out.pooler_output.shape == (3, 32)
    expected_pooled = torch.tanh(model.pooler.dense(out.last_hidden_state[:, 0]))
    torch.testing.assert_close(out.pooler_output, expected_pooled)
    assert len(out.hidden_states) == 3 and len(out.attentions) == 2
    torch.testing.assert_close(out.hidden_states[-1], out.last_hidden_state)
    # Attention probabilities sum to one over real keys and are zero on padded keys.
    probs = out.attentions[0]
    assert probs.shape == (3, 4, 12, 12)
    torch.testing.assert_close(probs.sum(-1), torch.ones(3, 4, 12))
    assert probs[1, :, :, 7:].abs().max() == 0 and probs[2, :, :, 4:].abs().max() == 0


def test_return_dict_false_gives_tuples():
    model = SessionBertModel(tiny_config()).eval()
    out = model(**unlabelled(make_batch()), return_dict=False)
    assert isinstance(out, tuple) and out[0].shape == (3, 12, 32) and out[1].shape == (3, 32)


def test_pretraining_loss_is_mlm_plus_nsp():
    torch.manual_seed(0)
    model = SessionBertForPreTraining(tiny_config()).eval()
    batch = make_batch()
    nsp = torch.tensor([0, 1, 0])
    out = model(**batch, next_sentence_label=nsp)
    mlm = torch.nn.functional.cross_entropy(out.prediction_logits.view(-1, VOCAB), batch["labels"].view(-1))
    expected = mlm + torch.nn.functional.cross_entropy(out.seq_relationship_logits, nsp)
    torch.testing.assert_close(out.loss, expected)
    assert out.prediction_logits.shape == (3, 12, VOCAB) and out.seq_relationship_logits.shape == (3, 2)
    # One objective's labels only (e.g. MLM-only data): that objective's loss.
    torch.testing.assert_close(model(**batch).loss, mlm)
    torch.testing.assert_close(model(**unlabelled(batch), next_sentence_label=nsp).loss, expected - mlm)
    assert model(**unlabelled(batch)).loss is None


def test_mlm_decoder_is_tied_and_stays_tied_after_resize():
    model = SessionBertForMaskedLM(tiny_config())
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    model.resize_token_embeddings(VOCAB + 6)
    assert model.cls.predictions.decoder.weight is model.get_input_embeddings().weight
    assert model.cls.predictions.decoder.bias.shape == (VOCAB + 6,) and model.config.vocab_size == VOCAB + 6


def test_bert_initialisation():
    torch.manual_seed(0)
    model = SessionBertForPreTraining(
        tiny_config(hidden_size=64, intermediate_size=256, initializer_range=0.05)
    )
    weight = model.bert.encoder.layer[0].intermediate.dense.weight
    assert abs(weight.std().item() - 0.05) < 0.005
    assert model.bert.embeddings.word_embeddings.weight[0].abs().max() == 0  # [PAD]
    assert model.cls.predictions.decoder.bias.abs().max() == 0
    assert torch.equal(model.bert.encoder.layer[1].output.LayerNorm.weight, torch.ones(64))


@pytest.mark.parametrize(
    "problem_type", ["single_label_classification", "multi_label_classification", "regression"]
)
def test_sequence_classification_problem_types(problem_type):
    torch.manual_seed(0)
    num_labels = 1 if problem_type == "regression" else 3
    model = SessionBertForSequenceClassification(tiny_config(num_labels=num_labels)).eval()
    batch = unlabelled(make_batch())
    if problem_type == "single_label_classification":
        labels = torch.tensor([0, 2, 1])
    elif problem_type == "multi_label_classification":
        labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    else:
        labels = torch.tensor([0.5, -1.0, 2.0])
    out = model(**batch, labels=labels)
    assert model.config.problem_type == problem_type
    logits = out.logits
    assert logits.shape == (3, num_labels)
    if problem_type == "single_label_classification":
        expected = torch.nn.functional.cross_entropy(logits, labels)
    elif problem_type == "multi_label_classification":
        expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    else:
        expected = torch.nn.functional.mse_loss(logits.squeeze(-1), labels)
    torch.testing.assert_close(out.loss, expected)


def test_token_classification_question_answering_multiple_choice_nsp():
    torch.manual_seed(0)
    batch = unlabelled(make_batch())
    tokens = SessionBertForTokenClassification(tiny_config(num_labels=5)).eval()
    tags = torch.randint(0, 5, (3, 12))
    tags[batch["attention_mask"] == 0] = -100
    out = tokens(**batch, labels=tags)
    torch.testing.assert_close(
        out.loss, torch.nn.functional.cross_entropy(out.logits.view(-1, 5), tags.view(-1), ignore_index=-100)
    )

    qa = SessionBertForQuestionAnswering(tiny_config()).eval()
    start, end = torch.tensor([1, 3, 40]), torch.tensor([2, 5, 40])  # 40: outside, ignored
    out = qa(**batch, start_positions=start, end_positions=end)
    assert out.start_logits.shape == (3, 12)
    expected = (
        torch.nn.functional.cross_entropy(out.start_logits[:2], start[:2])
        + torch.nn.functional.cross_entropy(out.end_logits[:2], end[:2])
    ) / 2
    torch.testing.assert_close(out.loss, expected)

    choice = SessionBertForMultipleChoice(tiny_config()).eval()
    # (2 questions, 2 choices, 12): the same two choices twice
    mc_batch = {k: v[:2].unsqueeze(0).repeat(2, 1, 1) for k, v in batch.items()}
    out = choice(**mc_batch, labels=torch.tensor([0, 1]))
    assert out.logits.shape == (2, 2)
    torch.testing.assert_close(out.logits[0], out.logits[1])
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 1])))

    nsp = SessionBertForNextSentencePrediction(tiny_config()).eval()
    out = nsp(**batch, labels=torch.tensor([1, 0, 1]))
    torch.testing.assert_close(
        out.loss, torch.nn.functional.cross_entropy(out.logits, torch.tensor([1, 0, 1]))
    )


# --- speed features: unpadding and the sparse MLM head -------------------------------------------------


def test_pad_and_unpad_tokens_are_inverse():
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    indices = mask.flatten().nonzero().squeeze(1)
    padded = torch.arange(12.0).view(2, 3, 2)
    packed = unpad_tokens(padded, indices)
    assert packed.tolist() == [[0, 1], [2, 3], [6, 7]]
    assert pad_tokens(packed, indices, 2, 3).tolist() == [[[0, 1], [2, 3], [0, 0]], [[6, 7], [0, 0], [0, 0]]]


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_unpadding_equals_padded_computation_at_real_positions(attn_implementation):
    torch.manual_seed(0)
    padded_model = SessionBertForPreTraining(tiny_config(unpad_inputs=False))
    padded_model.set_attn_implementation(attn_implementation)
    unpadded_model = SessionBertForPreTraining(tiny_config(unpad_inputs=True))
    unpadded_model.set_attn_implementation(attn_implementation)
    unpadded_model.load_state_dict(padded_model.state_dict())
    batch = make_batch()
    real = batch["attention_mask"].bool()
    outputs, grads = [], []
    for model in (padded_model, unpadded_model):
        model.train()  # dropout is 0: training mode only switches on the sparse head, same in both
        out = model(**batch, next_sentence_label=torch.tensor([0, 1, 1]), output_hidden_states=True)
        out.loss.backward()
        outputs.append(out)
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    padded, unpadded = outputs
    torch.testing.assert_close(unpadded.loss, padded.loss, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(
        unpadded.seq_relationship_logits, padded.seq_relationship_logits, atol=1e-6, rtol=0
    )
    for h_padded, h_unpadded in zip(padded.hidden_states, unpadded.hidden_states, strict=True):
        torch.testing.assert_close(h_unpadded[real], h_padded[real], atol=1e-5, rtol=0)
        assert h_unpadded[~real].abs().max() == 0  # padded positions are never computed
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-5, rtol=1e-4, msg=name)


def assert_same_gradients(reference, model):
    for (name, expected), param in zip(reference.named_parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(param.grad, expected.grad, atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.parametrize("sparse_last_layer", [False, True])
def test_sparse_mlm_head_loss_and_gradients_equal_dense(sparse_last_layer):
    torch.manual_seed(0)
    dense_model = SessionBertForMaskedLM(tiny_config(sparse_mlm_head=False)).train()
    sparse_model = SessionBertForMaskedLM(
        tiny_config(sparse_mlm_head=True, sparse_last_layer=sparse_last_layer)
    ).train()
    sparse_model.load_state_dict(dense_model.state_dict())
    batch = make_batch()
    dense, sparse = dense_model(**batch), sparse_model(**batch)
    labelled = batch["labels"] != -100
    assert dense.logits.shape == (3, 12, VOCAB) and sparse.logits.shape == (int(labelled.sum()), VOCAB)
    torch.testing.assert_close(sparse.logits, dense.logits[labelled])
    torch.testing.assert_close(sparse.loss, dense.loss)
    dense.loss.backward()
    sparse.loss.backward()
    assert_same_gradients(dense_model, sparse_model)
    # Inference (eval mode) always gives the full logits, as fill-mask needs them.
    sparse_model.eval()
    assert sparse_model(**batch).logits.shape == (3, 12, VOCAB)


def plain_and_carrier_models():
    """Two identical sparse-head SessionBertForPreTraining: one with autograd's usual tied-weight path (two
    gradients, summed), one handing the decoder's gradient to the embedding lookup (`TiedGradient`)."""
    torch.manual_seed(0)
    plain = SessionBertForPreTraining(tiny_config()).train()
    plain._tied_gradient = lambda *args: None
    carrier = SessionBertForPreTraining(tiny_config()).train()
    carrier.load_state_dict(plain.state_dict())
    return plain, carrier


def objective_loss(objective: str, out, batch) -> torch.Tensor:
    if objective == "nsp only":
        return torch.nn.functional.cross_entropy(out.seq_relationship_logits, batch["next_sentence_label"])
    if objective == "mlm loss + logits":
        return out.loss + 0.1 * out.prediction_logits.square().mean()
    return out.loss


@pytest.mark.parametrize(
    "objective",
    [
        "mlm+nsp",
        "nsp only",
        "mlm loss + logits",
        "two accumulated backwards",
        "autograd.grad",
        "bias-only grad first",
    ],
)
def test_tied_weight_gets_one_gradient_equal_to_the_sum(objective):
    """Whatever parts of the graph a backward goes through, every gradient equals the usual path's."""
    plain, carrier = plain_and_carrier_models()
    batch = {**make_batch(), "next_sentence_label": torch.tensor([0, 1, 1])}
    # A pad id inside the text: its lookup gives the padding row no gradient.
    batch["input_ids"][0, 3] = plain.config.pad_token_id
    grads = []
    for model in (plain, carrier):
        weight = model.bert.embeddings.word_embeddings.weight
        assert model.cls.predictions.decoder.weight is weight
        if objective == "autograd.grad":
            (grad,) = torch.autograd.grad(model(**batch).loss, [weight])
            grads.append({"word_embeddings": grad})
            continue
        for _ in range(2 if objective == "two accumulated backwards" else 1):
            out = model(**batch)
            if objective == "bias-only grad first":
                # A backward through the decoder that never reaches the lookup must leave nothing behind.
                bias = model.cls.predictions.decoder.bias
                torch.autograd.grad(out.prediction_logits.sum(), [bias], retain_graph=True)
            objective_loss(objective, out, batch).backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name, expected in grads[0].items():
        torch.testing.assert_close(grads[1][name], expected, atol=1e-6, rtol=1e-5, msg=name)
    assert grads[1][next(iter(grads[1]))].abs().max() > 0


def test_tied_gradient_steps_aside_when_the_lookup_is_not_its_own():
    """No carrier without a lookup in this forward (inputs_embeds), without grad mode, or with frozen word
    embeddings; the last trains the rest as the usual path does."""
    plain, carrier = plain_and_carrier_models()
    batch = make_batch()
    assert carrier._tied_gradient(batch["input_ids"], batch["labels"], True) is not None
    assert carrier._tied_gradient(None, batch["labels"], True) is None
    assert carrier._tied_gradient(batch["input_ids"], None, True) is None
    with torch.no_grad():
        assert carrier._tied_gradient(batch["input_ids"], batch["labels"], True) is None
    for model in (plain, carrier):
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    assert carrier._tied_gradient(batch["input_ids"], batch["labels"], True) is None
    for model in (plain, carrier):
        model(**batch).loss.backward()
    assert carrier.bert.embeddings.word_embeddings.weight.grad is None
    for (name, expected), param in zip(plain.named_parameters(), carrier.parameters(), strict=True):
        if param.requires_grad:
            torch.testing.assert_close(param.grad, expected.grad, atol=1e-6, rtol=1e-5, msg=name)


def test_sparse_head_under_bf16_autocast_matches_the_dense_head():
    torch.manual_seed(0)
    dense_model = SessionBertForPreTraining(tiny_config(sparse_mlm_head=False)).train()
    sparse_model = SessionBertForPreTraining(tiny_config()).train()
    sparse_model.load_state_dict(dense_model.state_dict())
    batch = {**make_batch(), "next_sentence_label": torch.tensor([0, 1, 1])}
    losses = []
    for model in (dense_model, sparse_model):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        losses.append(loss)
    torch.testing.assert_close(losses[1], losses[0], atol=2e-2, rtol=1e-2)
    for (name, expected), param in zip(
        dense_model.named_parameters(), sparse_model.parameters(), strict=True
    ):
        assert param.grad.dtype == torch.float32, name
        scale = expected.grad.abs().max().item() + 1e-3
        assert (param.grad - expected.grad).abs().max().item() < 0.05 * scale, name


@pytest.mark.parametrize("copy", ["session_bert", "session_rnn"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_labelled_cross_entropy_equals_torch(copy, label_smoothing):
    """Both copies (each model folder stands alone for remote code) against F.cross_entropy."""
    function = (
        session_rnn_modeling if copy == "session_rnn" else session_bert_modeling
    )._LabelledCrossEntropy
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 11, generator=generator, requires_grad=True)
    labels = torch.randint(0, 11, (7,), generator=generator)
    for count in (None, 20):
        ours = function.apply(logits, labels, label_smoothing) / (count or 7)
        reference = torch.nn.functional.cross_entropy(
            logits, labels, reduction="sum", label_smoothing=label_smoothing
        ) / (count or 7)
        torch.testing.assert_close(ours, reference)
        (grad,) = torch.autograd.grad(ours, logits)
        (expected,) = torch.autograd.grad(reference, logits)
        torch.testing.assert_close(grad, expected)
    loss = function.apply(logits, labels, 0.0)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="inplace"):
        loss.backward()  # the first backward reused the saved log-probabilities


def test_labelled_cross_entropy_guards_its_input():
    """session_bert's entry point (session_rnn checks its labels with `_check_ids` first)."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 11, generator=generator, requires_grad=True)
    labels = torch.randint(0, 11, (7,), generator=generator)
    torch.testing.assert_close(
        session_bert_modeling.labelled_cross_entropy(logits, labels, 20, 0.1),
        torch.nn.functional.cross_entropy(logits, labels, reduction="sum", label_smoothing=0.1) / 20,
    )
    with pytest.raises(ValueError, match="vocab_size=11"):
        session_bert_modeling.labelled_cross_entropy(logits, torch.tensor([0, 11, 2, 3, 4, 5, 6]))
    # As F.cross_entropy with nothing to score.
    assert session_bert_modeling.labelled_cross_entropy(logits[:0], labels[:0]).isnan()


@pytest.mark.parametrize("layout", ["batch first", "heads first"])
@pytest.mark.parametrize("mask_form", ["none", "bool keys", "bool full", "additive full"])
def test_eager_attention_mask_forms(mask_form, layout):
    """eager_attention_forward = softmax(q kᵀ · s + mask) v for every mask form transformers or we pass, with
    (batch, heads, seq_len, head_dim) inputs contiguous or laid out heads first (as `split_heads` gives them)."""
    generator = torch.Generator().manual_seed(0)
    query, key, value = (torch.randn(2, 3, 5, 4, generator=generator) for _ in range(3))
    if layout == "heads first":
        query, key, value = (t.transpose(0, 1).contiguous().transpose(0, 1) for t in (query, key, value))
        assert not query.is_contiguous()
    keep = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    if mask_form == "none":
        keep[:] = True
        mask = None
    elif mask_form == "bool keys":
        mask = keep[:, None, None, :]
    elif mask_form == "bool full":
        mask = keep[:, None, None, :].expand(2, 1, 5, 5)
    else:
        mask = torch.zeros(2, 1, 5, 5).masked_fill(~keep[:, None, None, :], torch.finfo(torch.float32).min)
    module = torch.nn.Module().eval()
    output, probs = eager_attention_forward(module, query, key, value, mask, scaling=0.5)
    scores = (query @ key.transpose(2, 3)) * 0.5
    expected_probs = scores.masked_fill(~keep[:, None, None, :], float("-inf")).softmax(-1)
    torch.testing.assert_close(probs, expected_probs)
    torch.testing.assert_close(output, (expected_probs @ value).transpose(1, 2))
    assert output.is_contiguous()
    if mask_form != "none":
        assert probs[1, :, :, 3:].abs().max() == 0


def test_split_heads_scatters_rows_heads_first():
    """Rows at flat positions of a (batch, seq_len) grid → per part (batch, heads, seq_len, head_dim), zero
    elsewhere, heads first in memory; gradients gather back to the rows."""
    generator = torch.Generator().manual_seed(0)
    rows = torch.randn(4, 2 * 3 * 5, generator=generator, requires_grad=True)  # 2 parts, 3 heads, head_dim 5
    indices = torch.tensor([0, 1, 5, 6])  # batch 2, seq_len 4: sequence 0 at 0-1, sequence 1 at 1-2
    parts = session_bert_modeling.split_heads(rows, indices, 2, 4, 3, 5)
    expected = torch.zeros(8, 2, 3, 5).index_put((indices,), rows.view(4, 2, 3, 5))
    for number, part in enumerate(parts):
        assert part.shape == (2, 3, 4, 5) and part.transpose(0, 1).is_contiguous()
        torch.testing.assert_close(part, expected[:, number].view(2, 4, 3, 5).transpose(1, 2))
    upstream = [torch.randn(2, 3, 4, 5, generator=generator) for _ in parts]
    (grad,) = torch.autograd.grad(sum((p * u).sum() for p, u in zip(parts, upstream, strict=True)), rows)
    gathered = torch.stack([u.transpose(1, 2).reshape(8, 15)[indices] for u in upstream], 1)
    torch.testing.assert_close(grad, gathered.view(4, 30))
    # Every position present (no padding): the same tensors without the scatter.
    full = session_bert_modeling.split_heads(rows, None, 1, 4, 3, 5)
    torch.testing.assert_close(full[1], rows.view(1, 4, 2, 3, 5)[:, :, 1].transpose(1, 2))


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("unpad_inputs", [False, True])
def test_sparse_last_layer_pretraining_equals_dense(unpad_inputs, attn_implementation):
    """The last layer computed only at labelled positions and [CLS] (its queries packed per sequence): same
    MLM + NSP loss, logits, gradients."""
    torch.manual_seed(0)
    dense_model = SessionBertForPreTraining(
        tiny_config(num_hidden_layers=3, sparse_mlm_head=False, unpad_inputs=unpad_inputs)
    ).train()
    sparse_model = SessionBertForPreTraining(
        tiny_config(num_hidden_layers=3, unpad_inputs=unpad_inputs)
    ).train()
    sparse_model.set_attn_implementation(attn_implementation)
    assert sparse_model.config._attn_implementation == attn_implementation
    sparse_model.load_state_dict(dense_model.state_dict())
    batch = make_batch(batch_size=4, lengths=(12, 7, 4, 9), seed=3)
    batch["next_sentence_label"] = torch.tensor([0, 1, 1, 0])
    labelled = batch["labels"] != -100
    dense, sparse = dense_model(**batch), sparse_model(**batch)
    torch.testing.assert_close(sparse.prediction_logits, dense.prediction_logits[labelled])
    torch.testing.assert_close(sparse.seq_relationship_logits, dense.seq_relationship_logits)
    torch.testing.assert_close(sparse.loss, dense.loss)
    dense.loss.backward()
    sparse.loss.backward()
    assert_same_gradients(dense_model, sparse_model)
    # The last layer really skipped the other positions: they are zero in its output ...
    hidden = sparse_model.bert(
        **{k: v for k, v in batch.items() if k not in ("labels", "next_sentence_label")},
        output_positions=labelled,
    ).last_hidden_state
    assert hidden[~labelled].abs().max() == 0 and hidden[labelled].abs().min() > 0
    # ... and asking for hidden states turns it off, so they stay complete.
    full = sparse_model(**batch, output_hidden_states=True)
    torch.testing.assert_close(
        full.hidden_states[-1], dense_model(**batch, output_hidden_states=True).hidden_states[-1]
    )


# --- attention backends -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend, with_padding",
    [
        ("sdpa", False),
        ("sdpa", True),
        # flex compiles its kernel on first use (~30 s here): one case, the one a causal default would break.
        pytest.param("flex_attention", False, marks=pytest.mark.slow),
    ],
)
def test_attention_backends_agree_with_eager_and_are_bidirectional(backend, with_padding):
    torch.manual_seed(0)
    eager = AutoModel.from_config(tiny_config(), attn_implementation="eager").eval()
    other = AutoModel.from_config(tiny_config(), attn_implementation=backend).eval()
    other.load_state_dict(eager.state_dict())
    assert eager.config._attn_implementation == "eager" and other.config._attn_implementation == backend
    batch = unlabelled(make_batch(lengths=(12, 7, 4) if with_padding else (12, 12, 12)))
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        out_eager, out_other = eager(**batch).last_hidden_state, other(**batch).last_hidden_state
        torch.testing.assert_close(out_other[real], out_eager[real], atol=1e-5, rtol=1e-5)
        # Bidirectional: changing the last token changes the first position's output.
        changed = {**batch, "input_ids": batch["input_ids"].clone()}
        changed["input_ids"][0, -1] = 7 if batch["input_ids"][0, -1] != 7 else 8
        assert not torch.allclose(other(**changed).last_hidden_state[0, 0], out_other[0, 0])


def test_output_attentions_with_sdpa_falls_back_to_eager_weights():
    torch.manual_seed(0)
    eager = AutoModel.from_config(tiny_config(), attn_implementation="eager").eval()
    sdpa = AutoModel.from_config(tiny_config(), attn_implementation="sdpa").eval()
    sdpa.load_state_dict(eager.state_dict())
    batch = unlabelled(make_batch())
    a_eager = eager(**batch, output_attentions=True).attentions
    a_sdpa = sdpa(**batch, output_attentions=True).attentions
    for x, y in zip(a_eager, a_sdpa, strict=True):
        torch.testing.assert_close(x, y)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = SessionBertForPreTraining(tiny_config()).train()
    checkpointed = SessionBertForPreTraining(tiny_config()).train()
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.activation_checkpointing_enable()
    assert checkpointed.is_activation_checkpointing
    batch = {**make_batch(), "next_sentence_label": torch.tensor([0, 1, 1])}
    plain(**batch).loss.backward()
    checkpointed(**batch).loss.backward()
    for (name, p), q in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-6, rtol=1e-5, msg=name)


# --- losses under gradient accumulation ----------------------------------------------------------------


@pytest.mark.parametrize("model_class", [SessionBertForMaskedLM, SessionBertForTokenClassification])
def test_num_items_in_batch_makes_accumulated_gradients_exact(model_class):
    """Two micro-batches with num_items_in_batch = their total label count give exactly the gradient of the
    one big batch, although they hold different numbers of labels (mean of means would not)."""
    torch.manual_seed(0)
    config = tiny_config(num_labels=VOCAB)
    big_model, accumulated_model = model_class(config).train(), model_class(config).train()
    accumulated_model.load_state_dict(big_model.state_dict())
    batch = make_batch(batch_size=4, lengths=(12, 9, 5, 3))
    batch["labels"][0, 2:] = -100  # uneven label counts between the two halves
    big_model(**batch).loss.backward()
    halves = [{k: v[:2] for k, v in batch.items()}, {k: v[2:] for k, v in batch.items()}]
    total = sum(int((h["labels"] != -100).sum()) for h in halves)
    for half in halves:
        accumulated_model(**half, num_items_in_batch=torch.tensor(total)).loss.backward()
    for (name, p), q in zip(big_model.named_parameters(), accumulated_model.parameters(), strict=True):
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, atol=1e-6, rtol=1e-4, msg=name)


def test_trainer_gradient_accumulation_logs_the_big_batch_loss(tmp_path):
    """Trainer with accumulation 2 and batch 2 gives the same first-step loss as batch 4."""
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    batch = make_batch(batch_size=4, lengths=(12, 9, 5, 3))
    batch["labels"][0, 2:] = -100
    rows = Dataset.from_dict({k: v.tolist() for k, v in batch.items()})
    losses = []
    for per_device, accumulation in ((4, 1), (2, 2)):
        torch.manual_seed(0)
        model = SessionBertForMaskedLM(tiny_config())
        args = TrainingArguments(
            output_dir=str(tmp_path / f"run{accumulation}"),
            per_device_train_batch_size=per_device,
            gradient_accumulation_steps=accumulation,
            max_steps=1,
            learning_rate=1e-3,
            logging_steps=1,
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            dataloader_drop_last=False,
        )
        trainer = Trainer(model=model, args=args, train_dataset=rows)
        trainer.train()
        losses.append(trainer.state.log_history[0]["loss"])
        if accumulation == 1:
            expected_weights = model.bert.embeddings.word_embeddings.weight.detach().clone()
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    torch.testing.assert_close(model.bert.embeddings.word_embeddings.weight.detach(), expected_weights)


# --- bad input ----------------------------------------------------------------------------------------


def test_bad_input_gets_one_clear_error():
    model = SessionBertModel(tiny_config()).eval()
    batch = unlabelled(make_batch())
    with pytest.raises(ValueError, match=r"sequence length 30 exceeds max_position_embeddings=24"):
        model(input_ids=torch.full((1, 30), 5))
    with pytest.raises(ValueError, match=r"input_ids must be in \[0, vocab_size=50\).*tokenizer"):
        model(**{**batch, "input_ids": batch["input_ids"] + VOCAB})
    with pytest.raises(ValueError, match=r"token_type_ids must be in \[0, type_vocab_size=2\)"):
        model(**{**batch, "token_type_ids": batch["token_type_ids"] + 1})
    with pytest.raises(ValueError, match=r"input_ids must have shape \(batch, seq_len\).*got \(12,\)"):
        model(input_ids=batch["input_ids"][0])
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(batch, seq_len\) = \(3, 12\)"):
        model(**{**batch, "attention_mask": batch["attention_mask"][:, None, None, :]})
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model()


# --- save / load --------------------------------------------------------------------------------------


def test_save_and_load_with_auto_classes_every_head(tmp_path):
    torch.manual_seed(0)
    model = SessionBertForPreTraining(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert set(config.auto_map) >= {
        "AutoConfig",
        "AutoModel",
        "AutoModelForPreTraining",
        "AutoModelForMaskedLM",
        "AutoModelForNextSentencePrediction",
        "AutoModelForSequenceClassification",
        "AutoModelForTokenClassification",
        "AutoModelForQuestionAnswering",
        "AutoModelForMultipleChoice",
    }
    assert (tmp_path / "modeling_session_bert.py").is_file()
    assert (tmp_path / "configuration_session_bert.py").is_file()
    batch = unlabelled(make_batch())
    reloaded = AutoModelForPreTraining.from_pretrained(tmp_path).eval()
    assert type(reloaded) is SessionBertForPreTraining
    torch.testing.assert_close(reloaded(**batch).prediction_logits, model(**batch).prediction_logits)
    masked_lm = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(masked_lm(**batch).logits, model(**batch).prediction_logits)
    base = AutoModel.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(base(**batch).pooler_output, model.bert(**batch).pooler_output)


def test_pretraining_output_has_the_fields_of_transformers_bert_output():
    from transformers.models.bert.modeling_bert import BertForPreTrainingOutput

    from hf_session.models.session_bert import SessionBertForPreTrainingOutput

    assert list(SessionBertForPreTrainingOutput.__dataclass_fields__) == list(
        BertForPreTrainingOutput.__dataclass_fields__
    )


@pytest.mark.parametrize("lengths", [(12, 12, 12), (12, 7, 4)], ids=["no padding", "padding"])
def test_gradients_reach_the_returned_hidden_states(lengths):
    """Saliency maps and probes take gradients w.r.t. hidden_states: they must be the tensors the model used."""
    model = SessionBertModel(tiny_config()).eval()
    out = model(**unlabelled(make_batch(lengths=lengths)), output_hidden_states=True)
    for hidden in out.hidden_states:
        hidden.retain_grad()
    out.last_hidden_state.sum().backward()
    assert out.hidden_states[-1] is out.last_hidden_state
    for hidden in out.hidden_states:
        assert hidden.grad is not None and hidden.grad.abs().sum() > 0


def test_pretraining_loss_with_num_items_in_batch():
    """One micro-batch: num_items_in_batch = its masked-token count gives exactly the plain loss. Two
    micro-batches: the MLM parts sum to the big batch's MLM loss, and the NSP means are weighted by their
    share of the masked tokens."""
    torch.manual_seed(0)
    model = SessionBertForPreTraining(tiny_config(sparse_mlm_head=False)).eval()
    batch = {
        **make_batch(batch_size=4, lengths=(12, 9, 5, 3)),
        "next_sentence_label": torch.tensor([0, 1, 1, 0]),
    }
    batch["labels"][0, 2:] = -100
    count = int((batch["labels"] != -100).sum())
    plain = model(**batch)
    torch.testing.assert_close(model(**batch, num_items_in_batch=torch.tensor(count)).loss, plain.loss)

    halves = [{k: v[:2] for k, v in batch.items()}, {k: v[2:] for k, v in batch.items()}]
    accumulated = sum(model(**half, num_items_in_batch=torch.tensor(count)).loss for half in halves)
    mlm = torch.nn.functional.cross_entropy(plain.prediction_logits.view(-1, VOCAB), batch["labels"].view(-1))
    nsp = sum(
        torch.nn.functional.cross_entropy(model(**half).seq_relationship_logits, half["next_sentence_label"])
        * int((half["labels"] != -100).sum())
        / count
        for half in halves
    )
    torch.testing.assert_close(accumulated, mlm + nsp)


@pytest.mark.parametrize("rows, bias", [(1000, True), (1000, False), (3, True)])
def test_vocab_linear_in_slabs_equals_linear(rows, bias):
    """The MLM decoder's slab-by-slab product (CPU, float32) against F.linear, with a vocabulary that the slabs
    do not divide evenly; a wrong slab offset or a missed last slab fails it."""
    generator = torch.Generator().manual_seed(0)
    vocab = 4 * 256 + 77 if rows == 1000 else 4 * 65536 + 77
    hidden = torch.randn(rows, 8, generator=generator)
    weight = torch.randn(vocab, 8, generator=generator)
    bias_vector = torch.randn(vocab, generator=generator) if bias else None
    slab = session_bert_modeling.vocab_slab(hidden, weight, bias_vector)
    assert slab is not None and vocab % slab != 0
    out = session_bert_modeling.vocab_linear(hidden, weight, bias_vector)
    torch.testing.assert_close(out, torch.nn.functional.linear(hidden, weight, bias_vector))
    assert out.is_contiguous()
    # Plain F.linear where slabs do not pay or cannot be written: small vocabularies, bf16, autocast.
    assert session_bert_modeling.vocab_slab(hidden, weight[: 3 * slab], bias_vector) is None
    assert session_bert_modeling.vocab_slab(hidden.bfloat16(), weight.bfloat16(), None) is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert session_bert_modeling.vocab_slab(hidden, weight, bias_vector) is None


def test_tied_decoder_in_slabs_gives_linear_gradients():
    """The tied decoder's slab-by-slab forward and weight gradient against F.linear under autograd."""
    generator = torch.Generator().manual_seed(1)
    hidden = torch.randn(1000, 8, generator=generator, requires_grad=True)
    weight = torch.randn(4 * 256 + 77, 8, generator=generator, requires_grad=True)
    bias = torch.randn(4 * 256 + 77, generator=generator, requires_grad=True)
    assert session_bert_modeling.vocab_slab(hidden, weight, bias) is not None
    upstream = torch.randn(1000, 4 * 256 + 77, generator=generator)
    carrier = session_bert_modeling.TiedGradient()
    logits = session_bert_modeling._TiedDecoder.apply(hidden, weight, bias, carrier)
    grads = torch.autograd.grad((logits * upstream).sum(), [hidden, bias])
    reference = torch.nn.functional.linear(hidden, weight, bias)
    expected = torch.autograd.grad((reference * upstream).sum(), [hidden, weight, bias])
    torch.testing.assert_close(logits, reference)
    torch.testing.assert_close(grads[0], expected[0])
    torch.testing.assert_close(carrier.grad, expected[1])
    torch.testing.assert_close(grads[1], expected[2])


def test_packed_query_slots():
    """Each sequence's positions side by side from slot 0 of a grid as wide as the fullest sequence."""
    positions = torch.tensor([0, 3, 4, 10, 11, 12, 13, 30])  # seq_len 8: sequences 0, 0, 0, 1, 1, 1, 1, 3
    slots, q_len = session_bert_modeling.packed_query_slots(positions, batch_size=4, seq_len=8)
    assert q_len == 4
    assert slots.tolist() == [0, 1, 2, 4, 5, 6, 7, 12]
    slots, q_len = session_bert_modeling.packed_query_slots(positions[:0], batch_size=4, seq_len=8)
    assert q_len == 1 and slots.numel() == 0


def test_sparse_last_layer_with_a_query_by_key_mask_keeps_every_query_slot():
    """An attention function registered with a (batch, 1, seq_len, seq_len) mask (here sdpa's mask builder):
    the last layer's queries stay in the full (batch, seq_len) grid, since that mask has a row per query, and the
    loss and logits still equal the dense model's."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    seen = []

    def recording_attention(module, query, key, value, attention_mask, **kwargs):
        seen.append((query.shape[2], tuple(attention_mask.shape)))
        return session_bert_modeling.eager_attention_forward(
            module, query, key, value, attention_mask, **kwargs
        )

    AttentionInterface.register("session_test_attention", recording_attention)
    AttentionMaskInterface.register("session_test_attention", sdpa_mask)
    try:
        torch.manual_seed(0)
        dense_model = SessionBertForPreTraining(
            tiny_config(num_hidden_layers=2, sparse_mlm_head=False)
        ).train()
        sparse_model = SessionBertForPreTraining(tiny_config(num_hidden_layers=2)).train()
        sparse_model.load_state_dict(dense_model.state_dict())
        sparse_model.set_attn_implementation("session_test_attention")
        batch = make_batch()
        labelled = batch["labels"] != -100
        dense, sparse = dense_model(**batch), sparse_model(**batch)
        torch.testing.assert_close(sparse.prediction_logits, dense.prediction_logits[labelled])
        torch.testing.assert_close(sparse.loss, dense.loss)
        assert seen == [(12, (3, 1, 12, 12))] * 2
    finally:
        del AttentionInterface._global_mapping["session_test_attention"]
        del AttentionMaskInterface._global_mapping["session_test_attention"]
