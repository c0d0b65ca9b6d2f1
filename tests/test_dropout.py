"""The CPU dropout of both model families (each modeling file holds its own copy, for remote code): the rate,
the scale, the four 16-bit lanes of every 64-bit draw, determinism, gradients, and the sdpa-in-training path
of session_bert that uses it."""

import pytest
import torch
from torch import nn

from hf_session import SessionBertConfig, SessionBertModel
from hf_session.models.session_bert import modeling_session_bert
from hf_session.models.session_rnn import modeling_session_rnn

MODULES = [modeling_session_bert, modeling_session_rnn]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("p", [0.1, 0.3])
def test_cpu_dropout_rate_scale_and_lanes(module, p):
    torch.manual_seed(0)
    x = torch.ones(1_000_003, requires_grad=True)  # not a multiple of 4: the last draw is cut
    y = module.apply_dropout(x, p, training=True)
    threshold = round(p * 65536)
    kept = y != 0
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 65536 / (65536 - threshold)))
    # ~1M draws: the standard error of a rate is < 0.0005; each lane of the 64-bit words has 250k.
    assert abs(1 - kept.float().mean().item() - p) < 0.003
    for lane in range(4):
        assert abs(1 - kept[lane::4].float().mean().item() - p) < 0.005, f"16-bit lane {lane}"
    assert abs(y.mean().item() - 1) < 0.005
    y.backward(torch.ones_like(y))
    torch.testing.assert_close(x.grad, y.detach())  # the gradient is the same scaled mask
    torch.manual_seed(0)
    torch.testing.assert_close(module.apply_dropout(x.detach(), p, training=True), y.detach())


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_dropout_module_off_cases(module):
    x = torch.randn(3, 5)
    layer = module.Dropout(0.4)
    assert isinstance(layer, nn.Dropout) and repr(layer) == repr(nn.Dropout(0.4))
    assert layer.eval()(x) is x
    assert module.apply_dropout(x, 0.0, training=True) is x
    assert torch.equal(module.apply_dropout(x, 1.0, training=True), torch.zeros_like(x))
    # Just below 1 (a valid config value) p rounds to 65535/65536, never to 1 (an infinite scale).
    assert torch.isfinite(module.apply_dropout(torch.ones(10_000), 0.999995, training=True)).all()


def test_sdpa_training_with_dropout_on_cpu_runs_the_eager_math():
    """sdpa has no fused dropout kernel on CPU: in training with attention dropout the layer runs eager's
    math (with the cheaper dropout), so both backends give the same result for the same seed."""
    config = dict(
        vocab_size=40,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=16,
        attention_probs_dropout_prob=0.3,
        hidden_dropout_prob=0.2,
    )
    torch.manual_seed(0)
    eager = SessionBertModel._from_config(SessionBertConfig(**config), attn_implementation="eager").train()
    sdpa = SessionBertModel._from_config(SessionBertConfig(**config), attn_implementation="sdpa").train()
    sdpa.load_state_dict(eager.state_dict())
    input_ids = torch.randint(5, 40, (2, 10))
    attention_mask = torch.tensor([[1] * 10, [1] * 6 + [0] * 4])
    outputs = []
    for model in (eager, sdpa):
        torch.manual_seed(1)
        outputs.append(model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state)
    torch.testing.assert_close(outputs[0], outputs[1])
    torch.manual_seed(2)
    other_seed = eager(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    assert not torch.allclose(other_seed, outputs[0])  # dropout is really on
