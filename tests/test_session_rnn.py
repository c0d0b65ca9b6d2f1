"""The GRU/LSTM family: config checks, packed encoder, decoder parity, generate(), save/load, heads."""

import itertools
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from huggingface_hub.errors import StrictDataclassError
from torch.nn import functional as F
from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

import hf_session
from hf_session.models.session_rnn import (
    SessionRnnConfig,
    SessionRnnForConditionalGeneration,
    SessionRnnForSequenceClassification,
    SessionRnnModel,
)
from hf_session.models.session_rnn.modeling_session_rnn import _Prefixes, shift_tokens_right

VARIANTS = [
    dict(cell_type=cell, input_feeding=feed, attention_type=attention, num_layers=layers)
    for cell, feed, attention, layers in [
        ("gru", True, "bahdanau", 2),
        ("lstm", True, "bahdanau", 1),
        ("gru", False, "general", 1),
        ("lstm", False, "general", 2),
        ("gru", True, "none", 1),
        ("lstm", True, "dot", 1),
    ]
]


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**overrides) -> SessionRnnConfig:
    values = dict(vocab_size=40, embedding_size=12, hidden_size=12, num_layers=1, dropout=0.0)
    values.update(overrides)
    if values.get("attention_type") == "dot":
        values["bidirectional"] = False
    return SessionRnnConfig(**values)


def tiny_model(seed=0, **overrides) -> SessionRnnForConditionalGeneration:
    torch.manual_seed(seed)
    return SessionRnnForConditionalGeneration(tiny_config(**overrides)).eval()


def source_batch():
    """Two right-padded sources of lengths 7 and 4."""
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, 40, (2, 7), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    input_ids[1, 4:] = 0
    attention_mask[1, 4:] = 0
    return input_ids, attention_mask


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(cell_type="rnn"), "cell_type must be one of"),
        (dict(attention_type="luong"), "attention_type must be one of"),
        (dict(init_decoder="random"), "init_decoder must be one of"),
        (dict(classifier_pooling="first"), "classifier_pooling must be one of"),
        (dict(hidden_size=0), "hidden_size must be a positive integer"),
        (dict(dropout=1.5), "dropout must be in [0, 1)"),
        (dict(attention_type="dot", bidirectional=True), "attention_type='dot' needs encoder outputs"),
        (
            dict(embedding_size=8, hidden_size=16),
            "tie_word_embeddings=True needs embedding_size == hidden_size",
        ),
        (dict(eos_token_id=99, vocab_size=50), "eos_token_id=99 is outside the vocabulary"),
    ],
)
def test_config_rejects_bad_values(overrides, message):
    with pytest.raises(StrictDataclassError) as error:
        SessionRnnConfig(**overrides)
    assert message in str(error.value)
    assert isinstance(error.value.__cause__, ValueError)


def test_config_rejects_wrong_type_and_roundtrips(tmp_path):
    with pytest.raises(StrictDataclassError, match="bidirectional"):
        SessionRnnConfig(bidirectional="yes")
    config = SessionRnnConfig(cell_type="lstm", attention_type="general", dropout=0, label_smoothing=0.1)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded) is SessionRnnConfig
    assert (loaded.cell_type, loaded.attention_type, loaded.label_smoothing) == ("lstm", "general", 0.1)
    assert loaded.encoder_output_size == 2 * loaded.hidden_size


# ---------------------------------------------------------------- encoder and decoder


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_padding_never_changes_results(variant):
    """A sentence gives the same encoder outputs and logits alone as padded in a batch (packed sequences)."""
    model = tiny_model(**variant)
    input_ids, attention_mask = source_batch()
    labels = torch.randint(5, 40, (2, 5), generator=torch.Generator().manual_seed(2))
    batch = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    alone = model(input_ids=input_ids[1:, :4], labels=labels[1:])
    torch.testing.assert_close(alone.logits, batch.logits[1:], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(alone.encoder_last_hidden_state, batch.encoder_last_hidden_state[1:, :4])
    assert batch.encoder_last_hidden_state[1, 4:].abs().max() == 0


def test_encoder_final_state_is_last_forward_and_first_backward_output():
    model = tiny_model(cell_type="gru", num_layers=2)
    input_ids, attention_mask = source_batch()
    encoded = model.get_encoder()(input_ids, attention_mask=attention_mask)
    hidden = model.config.hidden_size
    for row, length in enumerate((7, 4)):
        outputs = encoded.last_hidden_state[row]
        expected = torch.cat([outputs[length - 1, :hidden], outputs[0, hidden:]])
        torch.testing.assert_close(encoded.pooler_output[row], expected)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_incremental_decoder_equals_teacher_forced_pass(variant):
    model = tiny_model(**variant)
    input_ids, attention_mask = source_batch()
    decoder_input_ids = torch.randint(5, 40, (2, 6), generator=torch.Generator().manual_seed(3))
    decoder_input_ids[:, 0] = model.config.decoder_start_token_id
    full = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids)
    encoder_outputs = model.get_encoder()(input_ids, attention_mask=attention_mask)
    cache, steps = None, []
    for t in range(decoder_input_ids.shape[1]):
        step = model(
            encoder_outputs=encoder_outputs,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids[:, t : t + 1],
            cache=cache,
            use_cache=True,
        )
        cache = step.cache
        steps.append(step.logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full.logits, atol=1e-6, rtol=1e-5)


def test_attention_weights_are_distributions_over_real_source_tokens():
    model = tiny_model(attention_type="bahdanau")
    input_ids, attention_mask = source_batch()
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        decoder_input_ids=torch.full((2, 3), 2),
        output_attentions=True,
    )
    (weights,) = out.cross_attentions
    assert weights.shape == (2, 1, 3, 7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 1, 3))
    assert weights[1, :, :, 4:].max() == 0


def test_bridge_and_zeros_initial_states():
    input_ids, attention_mask = source_batch()
    decoder_input_ids = torch.full((2, 1), 2)
    zeros = tiny_model(init_decoder="zeros", attention_type="none", input_feeding=False)
    encoder_outputs = zeros.get_encoder()(input_ids, attention_mask=attention_mask)
    state = zeros.model.decoder.initial_state(
        encoder_outputs.last_hidden_state, encoder_outputs.pooler_output
    )
    assert state.hidden.abs().max() == 0
    # With zero initial state and no attention, the first step cannot depend on the source.
    a = zeros(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids).logits
    torch.testing.assert_close(a[0], a[1])
    bridge = tiny_model(init_decoder="bridge", attention_type="none", input_feeding=False)
    b = bridge(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids).logits
    assert not torch.allclose(b[0], b[1])


# ---------------------------------------------------------------- loss


def test_loss_label_smoothing_shift_and_num_items_in_batch():
    model = tiny_model(label_smoothing=0.1)
    input_ids, attention_mask = source_batch()
    labels = torch.tensor([[7, 8, 9, 3], [10, 3, -100, -100]])
    out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    decoder_input_ids = torch.tensor([[2, 7, 8, 9], [2, 10, 3, 0]])
    assert torch.equal(shift_tokens_right(labels, 0, 2), decoder_input_ids)
    logits = model(
        input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids
    ).logits
    expected = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100, label_smoothing=0.1)
    torch.testing.assert_close(out.loss, expected)
    # Trainer's token count over all accumulation steps replaces the batch's own count.
    summed = model(
        input_ids=input_ids, attention_mask=attention_mask, labels=labels, num_items_in_batch=12
    ).loss
    torch.testing.assert_close(summed, expected * 6 / 12)
    assert out.cache is None


@pytest.mark.parametrize("variant", VARIANTS[:2], ids=lambda v: f"{v['cell_type']}-{v['attention_type']}")
def test_sparse_output_layer_gives_the_dense_loss_and_gradients(variant):
    """In training mode the output layer runs only at labelled target positions, and the input-feeding decoder
    stops each sequence after its last label: same loss, same gradients (dropout on)."""
    input_ids, attention_mask = source_batch()
    labels = torch.tensor([[7, 8, 9, 11, 3], [10, 3, -100, -100, -100]])
    # Our dropout masks are drawn for the whole batch in the same order either way; nn.GRU's own dropout
    # between stacked layers draws per row it runs, so stacked models are compared without dropout.
    dropout = 0.3 if variant["num_layers"] == 1 else 0.0
    results = {}
    for sparse in (True, False):
        model = tiny_model(
            label_smoothing=0.1, dropout=dropout, sparse_output_layer=sparse, **variant
        ).train()
        torch.manual_seed(5)  # the same dropout masks: sparse or not, they are drawn in the same order
        out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
        out.loss.backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        results[sparse] = out, grads
    (sparse_out, sparse_grads), (dense_out, dense_grads) = results[True], results[False]
    torch.testing.assert_close(sparse_out.loss, dense_out.loss)
    assert sparse_out.logits.shape == (7, 40) and dense_out.logits.shape == (2, 5, 40)
    torch.testing.assert_close(sparse_out.logits, dense_out.logits[labels != -100])
    assert sparse_grads.keys() == dense_grads.keys()
    for name in dense_grads:
        torch.testing.assert_close(sparse_grads[name], dense_grads[name], msg=name)
    # The decoder really stops a sequence after its last label: zeros beyond, the same vectors before.
    decoder_input_ids = shift_tokens_right(labels, 0, 2)
    bare = tiny_model(**variant).model
    full = bare(input_ids, attention_mask, decoder_input_ids=decoder_input_ids).last_hidden_state
    cut_out = bare(
        input_ids,
        attention_mask,
        decoder_input_ids=decoder_input_ids,
        decoder_lengths=torch.tensor([5, 2]),
        use_cache=True,
        output_attentions=True,
    )
    cut = cut_out.last_hidden_state
    assert torch.all(cut[1, 2:] == 0) and not torch.all(full[1, 2:] == 0)
    torch.testing.assert_close(cut[0], full[0])
    torch.testing.assert_close(cut[1, :2], full[1, :2])
    assert torch.all(cut_out.cross_attentions[0][1, 0, 2:] == 0)
    # Each sequence's state is the one after its own last step.
    for row, steps in ((0, 5), (1, 2)):
        alone = bare(
            input_ids, attention_mask, decoder_input_ids=decoder_input_ids[:, :steps], use_cache=True
        )
        for name in ("hidden", "cell", "attentional"):
            if getattr(alone.cache, name) is not None:
                torch.testing.assert_close(getattr(cut_out.cache, name)[row], getattr(alone.cache, name)[row])
    # Labels that are not a prefix (a -100 inside a target) keep the full loop and still match.
    holes = labels.clone()
    holes[0, 1] = -100
    losses = []
    for sparse in (True, False):
        model = tiny_model(
            label_smoothing=0.1, dropout=dropout, sparse_output_layer=sparse, **variant
        ).train()
        torch.manual_seed(5)
        losses.append(model(input_ids=input_ids, attention_mask=attention_mask, labels=holes).loss)
    torch.testing.assert_close(losses[0], losses[1])
    # Evaluation keeps full logits (Trainer's evaluation and generate() read them).
    model.eval()
    assert model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).logits.shape == (2, 5, 40)


def test_output_layer_is_tied_and_resize_keeps_the_tie():
    model = tiny_model()
    assert model.lm_head.weight.data_ptr() == model.model.encoder.embed_tokens.weight.data_ptr()
    model.resize_token_embeddings(48)
    assert model.lm_head.weight.shape == (48, 12)
    assert model.lm_head.weight.data_ptr() == model.model.encoder.embed_tokens.weight.data_ptr()
    untied = tiny_model(tie_word_embeddings=False, embedding_size=8)
    assert untied.lm_head.weight.shape == (40, 12)


# ---------------------------------------------------------------- generate()


def hand_greedy(model, input_ids, attention_mask, steps):
    """Greedy decoding written by hand, re-running the full teacher-forced pass at every step."""
    sequences = torch.full((input_ids.shape[0], 1), model.config.decoder_start_token_id)
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool)
    for _ in range(steps):
        logits = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=sequences).logits
        token = logits[:, -1].argmax(-1)
        token = torch.where(finished, torch.full_like(token, model.config.pad_token_id), token)
        sequences = torch.cat([sequences, token[:, None]], dim=1)
        finished |= token == model.config.eos_token_id
        if finished.all():
            break
    return sequences


@pytest.mark.parametrize("variant", VARIANTS[:4], ids=lambda v: "-".join(map(str, v.values())))
def test_cached_greedy_equals_uncached_greedy_equals_hand_loop(variant):
    model = tiny_model(**variant)
    input_ids, attention_mask = source_batch()
    cached = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=10)
    uncached = model.generate(
        input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=10, use_cache=False
    )
    assert torch.equal(cached, uncached)
    assert torch.equal(cached, hand_greedy(model, input_ids, attention_mask, 10))
    assert cached.shape[1] > 3


def test_beam_of_one_equals_greedy():
    model = tiny_model(cell_type="lstm")
    input_ids, attention_mask = source_batch()
    greedy = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=8)
    beam = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=8, num_beams=1)
    assert torch.equal(greedy, beam)


def sequence_log_prob(model, input_ids, attention_mask, sequence) -> float:
    """Teacher-forced log-probability of `sequence` (decoder start first), up to its eos or its end."""
    tokens = sequence.tolist()
    if model.config.eos_token_id in tokens[1:]:
        tokens = tokens[: tokens.index(model.config.eos_token_id, 1) + 1]
    tokens = torch.tensor([tokens])
    logits = model(
        input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=tokens[:, :-1]
    ).logits
    return logits.log_softmax(-1).gather(-1, tokens[:, 1:, None]).sum().item()


@pytest.mark.parametrize("cell_type", ["gru", "lstm"])
def test_large_beam_finds_the_exhaustive_search_optimum(cell_type):
    """On a 6-token vocabulary, beam search with 36 beams over 3 steps sees every prefix: it must return the
    highest-scoring sequence that enumerating all 6 + 36 + 216 candidates finds, with the same score."""
    vocab, steps = 6, 3
    model = tiny_model(seed=4, cell_type=cell_type, vocab_size=vocab, embedding_size=8, hidden_size=8)
    # A sharper model than the near-uniform random one, so that the optimum is unique.
    with torch.no_grad():
        model.lm_head.weight.mul_(8)
    input_ids = torch.tensor([[2, 5, 4, 5, 3]])
    attention_mask = torch.ones_like(input_ids)
    start, eos = model.config.decoder_start_token_id, model.config.eos_token_id
    candidates = []
    for length in range(1, steps + 1):
        for tokens in itertools.product(range(vocab), repeat=length):
            if eos in tokens[:-1] or (length < steps and tokens[-1] != eos):
                continue  # only finished sequences, or unfinished ones of the maximal length
            sequence = torch.tensor([start, *tokens])
            candidates.append((sequence_log_prob(model, input_ids, attention_mask, sequence), tokens))
    best_score, best_tokens = max(candidates)
    out = model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        max_new_tokens=steps,
        num_beams=36,
        length_penalty=0.0,
        early_stopping="never",
        return_dict_in_generate=True,
        output_scores=True,
    )
    found = out.sequences[0, 1:].tolist()
    if eos in found:
        found = found[: found.index(eos) + 1]
    assert tuple(found) == best_tokens
    assert out.sequences_scores[0].item() == pytest.approx(best_score, abs=1e-4)


def test_beam_scores_equal_teacher_forced_log_probability_and_return_sequences():
    model = tiny_model(seed=5, cell_type="gru", attention_type="general")
    with torch.no_grad():
        model.lm_head.weight.mul_(4)
    input_ids, attention_mask = source_batch()
    out = model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        max_new_tokens=6,
        num_beams=4,
        num_return_sequences=3,
        length_penalty=0.0,
        return_dict_in_generate=True,
        output_scores=True,
    )
    assert out.sequences.shape[0] == 6
    for row in range(6):
        source = row // 3
        expected = sequence_log_prob(
            model, input_ids[source : source + 1], attention_mask[source : source + 1], out.sequences[row]
        )
        assert out.sequences_scores[row].item() == pytest.approx(expected, abs=1e-4)
    assert out.sequences_scores[0] >= out.sequences_scores[1] >= out.sequences_scores[2]


def test_sampling_is_reproducible_and_top_k_one_is_greedy():
    model = tiny_model()
    input_ids, attention_mask = source_batch()
    kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=8, do_sample=True)
    torch.manual_seed(0)
    first = model.generate(**kwargs, temperature=2.0, top_p=0.9)
    torch.manual_seed(0)
    assert torch.equal(first, model.generate(**kwargs, temperature=2.0, top_p=0.9))
    greedy = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=8)
    assert torch.equal(model.generate(**kwargs, top_k=1), greedy)


# ---------------------------------------------------------------- bad input


def test_bad_inputs_get_one_clear_error():
    model = tiny_model(max_source_length=6)
    input_ids, attention_mask = source_batch()
    with pytest.raises(ValueError, match="longer than the configured maximum max_source_length=6"):
        model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=torch.full((2, 1), 2))
    short = input_ids[:, :4]
    with pytest.raises(ValueError, match="empty source: sentence 1"):
        model(input_ids=short, attention_mask=torch.tensor([[1, 1, 1, 1], [0, 0, 0, 0]]), labels=short)
    with pytest.raises(ValueError, match="input_ids holds id 40, outside the vocabulary"):
        model(input_ids=torch.tensor([[5, 40]]), decoder_input_ids=torch.full((1, 1), 2))
    with pytest.raises(ValueError, match="labels holds id -3"):
        model(input_ids=short, labels=torch.tensor([[5, -3]] * 2))
    with pytest.raises(ValueError, match="right-padded"):
        model(input_ids=short, attention_mask=torch.tensor([[0, 1, 1, 1]] * 2), labels=short)


# ---------------------------------------------------------------- save, load, Auto classes


def test_save_and_load_through_auto_classes(tmp_path):
    model = tiny_model(cell_type="gru", num_layers=2)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_session_rnn.SessionRnnConfig",
        "AutoModel": "modeling_session_rnn.SessionRnnModel",
        "AutoModelForSeq2SeqLM": "modeling_session_rnn.SessionRnnForConditionalGeneration",
        "AutoModelForSequenceClassification": "modeling_session_rnn.SessionRnnForSequenceClassification",
    }
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is SessionRnnForConditionalGeneration
    for (name, param), (_, other) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(param, other), name
    assert loaded.lm_head.weight.data_ptr() == loaded.model.encoder.embed_tokens.weight.data_ptr()
    input_ids, attention_mask = source_batch()
    assert torch.equal(
        model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=6, num_beams=3),
        loaded.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=6, num_beams=3),
    )
    base = AutoModel.from_pretrained(tmp_path)
    assert type(base) is SessionRnnModel
    assert torch.equal(base.decoder.rnn.weight_hh_l1, model.model.decoder.rnn.weight_hh_l1)


def test_gru_weights_missing_from_the_checkpoint_get_our_initialisation(tmp_path):
    """A classifier checkpoint holds no decoder: loading it as the seq2seq base model keeps its encoder and
    must initialise the decoder GRU (which transformers' default init skips) with finite, orthogonal weights."""
    torch.manual_seed(0)
    classifier = SessionRnnForSequenceClassification(tiny_config(num_labels=3))
    classifier.save_pretrained(tmp_path)
    model = AutoModel.from_pretrained(tmp_path)
    assert type(model) is SessionRnnModel
    assert torch.equal(model.encoder.rnn.weight_hh_l0, classifier.encoder.rnn.weight_hh_l0)
    for name, param in model.named_parameters():
        assert torch.isfinite(param).all(), name
        assert param.abs().max() < 10, name
    weight_hh = model.decoder.rnn.weight_hh_l0.detach()  # (3 * hidden, hidden): orthonormal columns
    torch.testing.assert_close(weight_hh.T @ weight_hh, torch.eye(12), atol=1e-5, rtol=0)
    assert model.decoder.rnn.bias_ih_l0.abs().max() == 0


def test_trust_remote_code_loads_without_hf_session(tmp_path):
    folder = tmp_path / "checkpoint"
    model = tiny_model(cell_type="lstm")
    model.save_pretrained(folder)
    input_ids, attention_mask = source_batch()
    expected = model.generate(
        input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=6, num_beams=2
    )
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["hf_session"] = None
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoModelForSequenceClassification
        model = AutoModelForSeq2SeqLM.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        assert "hf_session" not in type(model).__module__, type(model).__module__
        input_ids = torch.tensor({input_ids.tolist()})
        attention_mask = torch.tensor({attention_mask.tolist()})
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=6, num_beams=2)
        print(out.tolist())
        classifier = AutoModelForSequenceClassification.from_pretrained({str(folder)!r}, trust_remote_code=True)
        print(type(classifier).__name__)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-2] == str(expected.tolist())
    assert lines[-1] == "SessionRnnForSequenceClassification"


def test_package_exports():
    assert hf_session.SessionRnnForConditionalGeneration is SessionRnnForConditionalGeneration
    assert hf_session.SessionRnnConfig is SessionRnnConfig


# ---------------------------------------------------------------- classifier


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_classifier_pooling_and_padding(pooling):
    torch.manual_seed(0)
    model = SessionRnnForSequenceClassification(tiny_config(classifier_pooling=pooling, num_labels=3)).eval()
    input_ids, attention_mask = source_batch()
    token_type_ids = torch.zeros_like(input_ids)
    batch = model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
    alone = model(input_ids=input_ids[1:, :4]).logits
    torch.testing.assert_close(alone, batch[1:], atol=1e-6, rtol=1e-5)
    encoded = model.encoder(input_ids, attention_mask=attention_mask)
    states = encoded.last_hidden_state[1, :4]
    pooled = {"last": encoded.pooler_output[1], "mean": states.mean(0), "max": states.max(0).values}[pooling]
    torch.testing.assert_close(batch[1], model.classifier(pooled))


def test_classifier_problem_types():
    input_ids, attention_mask = source_batch()
    torch.manual_seed(0)
    single = SessionRnnForSequenceClassification(tiny_config(num_labels=3))
    out = single(input_ids=input_ids, attention_mask=attention_mask, labels=torch.tensor([0, 2]))
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, torch.tensor([0, 2])))
    assert single.config.problem_type == "single_label_classification"
    multi = SessionRnnForSequenceClassification(tiny_config(num_labels=2))
    targets = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    out = multi(input_ids=input_ids, attention_mask=attention_mask, labels=targets)
    torch.testing.assert_close(out.loss, F.binary_cross_entropy_with_logits(out.logits, targets))
    assert multi.config.problem_type == "multi_label_classification"
    regression = SessionRnnForSequenceClassification(tiny_config(num_labels=1))
    out = regression(input_ids=input_ids, attention_mask=attention_mask, labels=torch.tensor([0.5, -1.0]))
    torch.testing.assert_close(out.loss, F.mse_loss(out.logits.squeeze(-1), torch.tensor([0.5, -1.0])))


def test_bare_model_defaults_and_hidden_states_from_the_config():
    """As transformers' seq2seq base models: no decoder inputs → the source shifted right; the config's
    output_hidden_states applies when the argument is not given."""
    torch.manual_seed(0)
    config = tiny_config(output_hidden_states=True)
    model = SessionRnnModel(config).eval()
    input_ids, attention_mask = source_batch()
    out = model(input_ids=input_ids, attention_mask=attention_mask)
    shifted = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        decoder_input_ids=shift_tokens_right(input_ids, 0, 2),
    )
    torch.testing.assert_close(out.last_hidden_state, shifted.last_hidden_state)
    embeddings, attentional = out.decoder_hidden_states
    assert embeddings.shape == (2, 7, 12) and torch.equal(attentional, out.last_hidden_state)
    assert [h.shape for h in out.encoder_hidden_states] == [(2, 7, 12), (2, 7, 24)]
    assert model(input_ids=input_ids, output_hidden_states=False).decoder_hidden_states is None


def test_prefix_slices_sum_their_gradients_into_one_buffer():
    """The input-feeding loop's per-count slices of the encoder states: same values and gradient as slicing."""
    tensor = torch.randn(5, 3, 2, requires_grad=True)
    counts = (5, 3, 2)
    weights = [torch.randn(n, 3, 2) for n in counts]
    views = _Prefixes.apply(tensor, counts)
    for view, n in zip(views, counts, strict=True):
        assert torch.equal(view, tensor[:n])
    # The middle prefix takes no part in the loss: its gradient arrives as None.
    (grad,) = torch.autograd.grad(
        sum((v * w).sum() for v, w in zip(views[::2], weights[::2], strict=True)), tensor
    )
    (expected,) = torch.autograd.grad(
        sum((tensor[:n] * w).sum() for n, w in zip(counts[::2], weights[::2], strict=True)), tensor
    )
    torch.testing.assert_close(grad, expected)
    assert grad[2:].abs().max() > 0 and torch.equal(grad[4], weights[0][4])
