"""The word-embedding lesson: from counting to learning.

- count-based: `cooccurrence_matrix` → `ppmi` → `truncated_svd`, or all three with `train_ppmi_svd`;
- learned: word2vec (`hf_session.models.session_word2vec`), trained with `Trainer` by `train_word2vec`;
- the explorer over any of them, or over a BERT/RNN checkpoint's input embeddings: `load_word_vectors`
  → `WordVectors.neighbors / analogy / plot`;
- `load_pretrained_embeddings`: pretrained vectors as another model's starting embeddings.
"""

from .corpus import encode_lines, read_lines, token_counts, train_word_tokenizer
from .counting import cooccurrence_matrix, ppmi, train_ppmi_svd, truncated_svd
from .pretrained import load_pretrained_embeddings
from .vectors import WordVectors, load_word_vectors
from .word2vec import (
    Word2VecDataArguments,
    Word2VecModelArguments,
    build_word2vec_dataset,
    parse_word2vec_recipe,
    subsample,
    train_word2vec,
    word2vec_examples,
)

__all__ = [
    "WordVectors",
    "Word2VecDataArguments",
    "Word2VecModelArguments",
    "build_word2vec_dataset",
    "cooccurrence_matrix",
    "encode_lines",
    "load_pretrained_embeddings",
    "load_word_vectors",
    "parse_word2vec_recipe",
    "ppmi",
    "read_lines",
    "subsample",
    "token_counts",
    "train_ppmi_svd",
    "train_word2vec",
    "train_word_tokenizer",
    "truncated_svd",
    "word2vec_examples",
]
