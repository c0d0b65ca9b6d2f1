"""Configuration of the GRU/LSTM family: a recurrent encoder, and a decoder with attention for seq2seq."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

CELL_TYPES = ("gru", "lstm")
ATTENTION_TYPES = ("none", "dot", "general", "bahdanau")
INIT_DECODER = ("bridge", "zeros")
POOLINGS = ("last", "mean", "max")


@strict
class SessionRnnConfig(PreTrainedConfig):
    r"""
    A GRU or LSTM encoder (optionally bidirectional) and, for translation, a recurrent decoder with attention
    over the encoder outputs (Bahdanau's additive score, or Luong's "dot"/"general" scores) and Luong input
    feeding. One vocabulary is shared by source and target; the output projection is tied to it.

    Args:
        vocab_size: size of the shared source/target vocabulary.
        embedding_size: width of the token embeddings.
        hidden_size: width of each RNN direction (the decoder has `hidden_size` units).
        num_layers: stacked RNN layers in the encoder and in the decoder.
        cell_type: "gru" or "lstm".
        bidirectional: read the source in both directions (encoder outputs are `2 * hidden_size` wide).
        dropout: on embeddings, between RNN layers and before the attentional/output layers.
        attention_type: "none", "dot" (needs encoder outputs as wide as the decoder), "general" or "bahdanau".
        input_feeding: feed the previous attentional vector into the next decoder step (Luong et al. 2015).
        init_decoder: "bridge" (tanh layer from the final encoder state) or "zeros".
        max_source_length: longest source (in tokens) the model accepts.
        label_smoothing: label smoothing of the translation loss.
        sparse_output_layer: in training mode with labels, run the output layer (and the loss) only at the
            target positions that have a label, not at the padding of shorter targets (often half of a
            batch); the loss and gradients are the same. `logits` are then only those rows,
            (num_labelled, vocab_size), in row-major order. Evaluation and `generate()` always get full logits.
        classifier_pooling: how `SessionRnnForSequenceClassification` pools the encoder: "last" (final
            states of both directions), "mean" or "max" over the unpadded positions.
        classifier_dropout: dropout before the classifier (default: `dropout`).
        initializer_range: standard deviation of the embedding initialisation.
    """

    model_type = "session_rnn"
    keys_to_ignore_at_inference = ["cache"]

    vocab_size: int = 8000
    embedding_size: int = 256
    hidden_size: int = 256
    num_layers: int = 1
    cell_type: str = "gru"
    bidirectional: bool = True
    dropout: float | int = 0.1
    attention_type: str = "bahdanau"
    input_feeding: bool = True
    init_decoder: str = "bridge"
    max_source_length: int = 512
    label_smoothing: float | int = 0.0
    sparse_output_layer: bool = True
    classifier_pooling: str = "last"
    classifier_dropout: float | int | None = None
    initializer_range: float = 0.1
    tie_word_embeddings: bool = True
    is_encoder_decoder: bool = True
    use_cache: bool = True
    pad_token_id: int | None = 0
    bos_token_id: int | None = 2
    eos_token_id: int | None = 3
    decoder_start_token_id: int | None = 2

    def validate_choices(self):
        for name, allowed in (
            ("cell_type", CELL_TYPES),
            ("attention_type", ATTENTION_TYPES),
            ("init_decoder", INIT_DECODER),
            ("classifier_pooling", POOLINGS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")

    def validate_sizes(self):
        for name in ("vocab_size", "embedding_size", "hidden_size", "num_layers", "max_source_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("dropout", "label_smoothing", "classifier_dropout"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if self.attention_type == "dot" and self.encoder_output_size != self.hidden_size:
            raise ValueError(
                f"attention_type='dot' needs encoder outputs as wide as the decoder ({self.hidden_size}), but the "
                f"bidirectional encoder gives {self.encoder_output_size}: use 'general' or 'bahdanau', or "
                "bidirectional=False"
            )
        if self.tie_word_embeddings and self.embedding_size != self.hidden_size:
            raise ValueError(
                f"tie_word_embeddings=True needs embedding_size == hidden_size (the output layer reads "
                f"{self.hidden_size}-wide vectors), got embedding_size={self.embedding_size}"
            )

    def validate_special_ids(self):
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(f"{name}={value} is outside the vocabulary (vocab_size={self.vocab_size})")
        if self.decoder_start_token_id is None or self.pad_token_id is None:
            raise ValueError("pad_token_id and decoder_start_token_id must be set (decoder inputs need them)")

    @property
    def encoder_output_size(self) -> int:
        return self.hidden_size * (2 if self.bidirectional else 1)


__all__ = ["SessionRnnConfig"]
