"""The from-scratch BERT family. Importing it registers the config and every head with the Auto classes."""

from ...registration import register_family
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

register_family(
    SessionBertConfig,
    {
        "AutoModel": SessionBertModel,
        "AutoModelForPreTraining": SessionBertForPreTraining,
        "AutoModelForMaskedLM": SessionBertForMaskedLM,
        "AutoModelForNextSentencePrediction": SessionBertForNextSentencePrediction,
        "AutoModelForSequenceClassification": SessionBertForSequenceClassification,
        "AutoModelForTokenClassification": SessionBertForTokenClassification,
        "AutoModelForQuestionAnswering": SessionBertForQuestionAnswering,
        "AutoModelForMultipleChoice": SessionBertForMultipleChoice,
    },
)

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
