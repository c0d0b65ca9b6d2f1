"""The GRU/LSTM family: seq2seq with attention, and an RNN classifier (registered with the Auto classes)."""

from ...registration import register_family
from .configuration_session_rnn import SessionRnnConfig
from .modeling_session_rnn import (
    SessionRnnForConditionalGeneration,
    SessionRnnForSequenceClassification,
    SessionRnnModel,
    SessionRnnPreTrainedModel,
)

register_family(
    SessionRnnConfig,
    {
        "AutoModel": SessionRnnModel,
        "AutoModelForSeq2SeqLM": SessionRnnForConditionalGeneration,
        "AutoModelForSequenceClassification": SessionRnnForSequenceClassification,
    },
)

__all__ = [
    "SessionRnnConfig",
    "SessionRnnModel",
    "SessionRnnForConditionalGeneration",
    "SessionRnnForSequenceClassification",
    "SessionRnnPreTrainedModel",
]
