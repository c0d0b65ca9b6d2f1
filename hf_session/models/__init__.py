"""Model families. Importing a family registers it with transformers' Auto classes."""

from . import session_bert, session_rnn, session_word2vec  # noqa: F401
