"""The from-scratch BERT family. Importing it registers the config and every head with the Auto classes."""

from ...registration import declared_heads, register_family
from .configuration_session_bert import SessionBertConfig
from .modeling_session_bert import (
    SessionBertForMaskedLM,
    SessionBertForMultipleChoice,
    SessionBertForNextSentencePrediction,
    SessionBertForPreTraining,
    SessionBertForPreTrainingOutput,
    SessionBertForQuestionAnswering,
    SessionBertForSequenceClassification,
    SessionBertForTokenClassification,
    SessionBertModel,
    SessionBertPreTrainedModel,
)

register_family(SessionBertConfig, declared_heads(SessionBertPreTrainedModel))

__all__ = [
    "SessionBertConfig",
    "SessionBertForMaskedLM",
    "SessionBertForMultipleChoice",
    "SessionBertForNextSentencePrediction",
    "SessionBertForPreTraining",
    "SessionBertForPreTrainingOutput",
    "SessionBertForQuestionAnswering",
    "SessionBertForSequenceClassification",
    "SessionBertForTokenClassification",
    "SessionBertModel",
    "SessionBertPreTrainedModel",
]
