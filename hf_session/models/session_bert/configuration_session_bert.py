"""Configuration of the from-scratch BERT (`model_type = "session_bert"`).

The hyper-parameters are the BERT paper's, with BERT-base defaults, plus three speed options used when training:
`unpad_inputs` (dense layers skip padding), `sparse_mlm_head` (the MLM head runs only at labelled positions) and
`sparse_last_layer` (so does most of the last encoder layer).
"""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.activations import ACT2FN


@strict
class SessionBertConfig(PreTrainedConfig):
    r"""
    Args:
        vocab_size: number of token ids the embeddings (and the tied MLM decoder) cover.
        hidden_size: width of the embeddings, of every layer and of the pooler.
        num_hidden_layers: number of post-LayerNorm Transformer encoder layers.
        num_attention_heads: heads per layer; must divide `hidden_size`.
        intermediate_size: width of the feed-forward block.
        hidden_act: activation of the feed-forward block and of the MLM transform (a key of `ACT2FN`).
        hidden_dropout_prob: dropout after the embeddings, the attention output and the feed-forward block.
        attention_probs_dropout_prob: dropout on the attention probabilities.
        max_position_embeddings: longest sequence the learned position embeddings cover.
        type_vocab_size: number of segment ids (2 for sentence pairs).
        initializer_range: standard deviation of the normal initialisation of all weight matrices.
        layer_norm_eps: epsilon of every LayerNorm.
        pad_token_id: id of [PAD]; its embedding starts at zero.
        classifier_dropout: dropout before the classification heads (`hidden_dropout_prob` when None).
        unpad_inputs: when a batch has padding, gather the real tokens so that the projections and the
            feed-forward blocks skip the padding; attention still runs per sequence. Outputs at real positions
            are unchanged; hidden states at padded positions are zero.
        sparse_mlm_head: when training with MLM labels, run the prediction head only at the labelled positions
            (about 15%); the loss is the same, and `prediction_logits` then holds only those rows.
        sparse_last_layer: with the sparse MLM head, the last encoder layer also computes its queries, output
            projection and feed-forward block only at the labelled positions (and [CLS] for NSP); keys and
            values still cover every token, so the loss is the same. Off when hidden states or attentions are
            asked for.
        tie_word_embeddings: share the MLM decoder weight with the word embeddings.

    Example:
        ```python
        >>> from hf_session import SessionBertConfig, SessionBertForMaskedLM
        >>> config = SessionBertConfig(vocab_size=8000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
        ...                            intermediate_size=1024)
        >>> model = SessionBertForMaskedLM(config)
        ```
    """

    model_type = "session_bert"

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    classifier_dropout: float | int | None = None
    unpad_inputs: bool = True
    sparse_mlm_head: bool = True
    sparse_last_layer: bool = True
    tie_word_embeddings: bool = True

    def validate_sizes(self):
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )

    def validate_probabilities(self):
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if self.initializer_range <= 0:
            raise ValueError(f"initializer_range must be positive, got {self.initializer_range}")
        if self.layer_norm_eps <= 0:
            raise ValueError(f"layer_norm_eps must be positive, got {self.layer_norm_eps}")

    def validate_tokens(self):
        if self.hidden_act not in ACT2FN:
            raise ValueError(f"hidden_act {self.hidden_act!r} is not one of {sorted(ACT2FN)}")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(
                f"pad_token_id ({self.pad_token_id}) must be in [0, vocab_size={self.vocab_size})"
            )


__all__ = ["SessionBertConfig"]
