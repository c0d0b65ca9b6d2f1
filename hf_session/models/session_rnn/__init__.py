"""The GRU/LSTM family: seq2seq with attention, and an RNN classifier (registered with the Auto classes)."""

from ...registration import declared_heads, register_family
from .configuration_session_rnn import SessionRnnConfig
from .modeling_session_rnn import (
    SessionRnnForConditionalGeneration,
    SessionRnnForSequenceClassification,
    SessionRnnModel,
    SessionRnnPreTrainedModel,
)

register_family(SessionRnnConfig, declared_heads(SessionRnnPreTrainedModel))

__all__ = [
    "SessionRnnConfig",
    "SessionRnnModel",
    "SessionRnnForConditionalGeneration",
    "SessionRnnForSequenceClassification",
    "SessionRnnPreTrainedModel",
]
