"""hf-session: the classic NLP stack, from WordPiece to BERT, as Hugging Face models.

``import hf_session`` registers every hf-session config and model with transformers' Auto classes, so
``AutoModel.from_pretrained(path)`` and ``pipeline(...)`` work on our checkpoints.
"""

from . import models  # noqa: F401  (registers the Auto classes)
from .models.session_bert import (
    SessionBertConfig,
    SessionBertForMaskedLM,
    SessionBertForMultipleChoice,
    SessionBertForNextSentencePrediction,
    SessionBertForPreTraining,
    SessionBertForQuestionAnswering,
    SessionBertForSequenceClassification,
    SessionBertForTokenClassification,
    SessionBertModel,
    SessionBertPreTrainedModel,
)
from .models.session_rnn import (
    SessionRnnConfig,
    SessionRnnForConditionalGeneration,
    SessionRnnForSequenceClassification,
    SessionRnnModel,
    SessionRnnPreTrainedModel,
)
from .models.session_word2vec import SessionWord2VecConfig, SessionWord2VecModel
from .tokenization import load_tokenizer, train_wordpiece
from .translation import translate

__version__ = "0.1.0"

__all__ = [
    "load_tokenizer",
    "train_wordpiece",
    "__version__",
    "SessionBertConfig",
    "SessionBertForMaskedLM",
    "SessionBertForMultipleChoice",
    "SessionBertForNextSentencePrediction",
    "SessionBertForPreTraining",
    "SessionBertForQuestionAnswering",
    "SessionBertForSequenceClassification",
    "SessionBertForTokenClassification",
    "SessionBertModel",
    "SessionBertPreTrainedModel",
    "SessionRnnConfig",
    "SessionRnnForConditionalGeneration",
    "SessionRnnForSequenceClassification",
    "SessionRnnModel",
    "SessionRnnPreTrainedModel",
    "SessionWord2VecConfig",
    "SessionWord2VecModel",
    "translate",
]
