"""Configuration of SessionWord2Vec: skip-gram or CBOW with negative sampling."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

ARCHITECTURES = ("skip-gram", "cbow")


@strict
class SessionWord2VecConfig(PreTrainedConfig):
    r"""
    Args:
        vocab_size: number of tokens (rows of both embedding matrices).
        hidden_size: dimension of the word vectors.
        architecture: ``"skip-gram"`` (the centre word predicts each context word) or ``"cbow"`` (the
            mean of the context words predicts the centre word).
        window: context words on each side of the centre word.
        num_negatives: noise words drawn per true (input, target) pair.
        noise_exponent: the noise distribution is unigram counts raised to this power (0.75 in word2vec).
        pad_token_id: id that pads the CBOW context.

    Example:

    ```python
    >>> config = SessionWord2VecConfig(vocab_size=5000, hidden_size=100, architecture="cbow")
    >>> model = SessionWord2VecModel(config)
    ```"""

    model_type = "session_word2vec"

    vocab_size: int = 30000
    hidden_size: int = 100
    architecture: str = "skip-gram"
    window: int = 5
    num_negatives: int = 5
    noise_exponent: float | int = 0.75
    pad_token_id: int | None = 0

    def validate_architecture(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")

    def validate_sizes(self):
        for name in ("vocab_size", "hidden_size", "window", "num_negatives"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.noise_exponent < 0:
            raise ValueError(f"noise_exponent must not be negative, got {self.noise_exponent}")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(
                f"pad_token_id={self.pad_token_id} is outside the vocabulary [0, {self.vocab_size})"
            )


__all__ = ["SessionWord2VecConfig"]
