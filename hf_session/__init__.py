"""hf-session: the classic NLP stack, from WordPiece to BERT, as Hugging Face models.

``import hf_session`` registers every hf-session config and model with transformers' Auto classes, so
``AutoModel.from_pretrained(path)`` and ``pipeline(...)`` work on our checkpoints.
"""

from . import models  # noqa: F401  (registers the Auto classes)
from .tokenization import load_tokenizer, train_wordpiece

__version__ = "0.1.0"

__all__ = ["load_tokenizer", "train_wordpiece", "__version__"]
