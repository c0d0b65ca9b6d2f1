"""word2vec (Mikolov et al. 2013) as a transformers model: skip-gram and CBOW with negative sampling.

Both architectures are one computation. The *input* words are averaged into one vector h, and each
*target* word t is scored against it: the loss pushes sigma(h . out[t]) up and, for k noise words n
drawn from the unigram distribution^0.75, sigma(h . out[n]) down.

- skip-gram: input = the centre word, targets = the words of its window;
- CBOW: input = the words of the window, target = the centre word.

The word vectors are the input embeddings (`get_input_embeddings()`), as in the original tool.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_session_word2vec import SessionWord2VecConfig


@dataclass
class SessionWord2VecOutput(ModelOutput):
    r"""
    loss: mean negative-sampling loss per target word (given `labels`).
    logits: (batch, num_targets) scores h . out[t] of the true targets (log-odds of "is a real context").
    negative_logits: (batch, num_targets, num_negatives) scores of the noise words.
    pooler_output: (batch, hidden_size) h, the mean of the input words' vectors.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    negative_logits: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None


class SessionWord2VecPreTrainedModel(PreTrainedModel):
    config: SessionWord2VecConfig
    base_model_prefix = "word2vec"
    main_input_name = "input_ids"

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, SessionWord2VecModel):
            # word2vec's own initialisation: small uniform input vectors, zero output vectors.
            bound = 0.5 / self.config.hidden_size
            init.uniform_(module.input_embeddings.weight, -bound, bound)
            init.zeros_(module.output_embeddings.weight)
            init.constant_(module.noise_distribution, 1.0 / self.config.vocab_size)


class SessionWord2VecModel(SessionWord2VecPreTrainedModel):
    """Input and output embedding matrices, plus the noise distribution negatives are drawn from.

    `noise_distribution` (vocab_size,) is a saved buffer, uniform until `set_noise_distribution` gives
    it the corpus's unigram counts; so a checkpoint keeps training with the same noise.
    """

    def __init__(self, config: SessionWord2VecConfig):
        super().__init__(config)
        self.input_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.output_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.register_buffer("noise_distribution", torch.empty(config.vocab_size))
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.input_embeddings

    def set_input_embeddings(self, value: nn.Embedding):
        self.input_embeddings = value

    @torch.no_grad()
    def set_noise_distribution(self, counts) -> None:
        """Noise probabilities from unigram `counts` (vocab_size,): counts^noise_exponent, normalised."""
        counts = torch.as_tensor(counts, dtype=torch.float64)
        if counts.shape != (self.config.vocab_size,) or (counts < 0).any() or counts.sum() <= 0:
            raise ValueError(
                f"counts must be {self.config.vocab_size} non-negative numbers, not all zero; "
                f"got shape {tuple(counts.shape)}"
            )
        weights = counts**self.config.noise_exponent * (counts > 0)
        self.noise_distribution.copy_(weights / weights.sum())

    def sample_negatives(self, shape: tuple[int, ...]) -> torch.LongTensor:
        """Noise word ids of `shape` + (num_negatives,), drawn from `noise_distribution`."""
        count = int(torch.Size(shape).numel()) * self.config.num_negatives
        draws = torch.multinomial(self.noise_distribution, count, replacement=True)
        return draws.view(*shape, self.config.num_negatives)

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        negative_ids: torch.LongTensor | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        **kwargs,
    ) -> SessionWord2VecOutput:
        r"""
        input_ids: (batch, num_inputs) the centre word (skip-gram, num_inputs = 1) or the context words
            (CBOW, num_inputs = 2 * window, padded).
        attention_mask: (batch, num_inputs) 1 for real input words, 0 for padding.
        labels: (batch, num_targets) target ids, -100 where there is none (window cut by a line end).
        negative_ids: (batch, num_targets, num_negatives) noise ids; drawn from `noise_distribution`
            when not given.
        num_items_in_batch: number of targets over all accumulated batches (Trainer passes it): the
            loss is then sum / num_items_in_batch, exact under gradient accumulation.
        """
        vectors = self.input_embeddings(input_ids)  # (batch, num_inputs, hidden)
        if attention_mask is None:
            hidden = vectors.mean(dim=1)
        else:
            mask = attention_mask.to(vectors.dtype).unsqueeze(-1)
            hidden = (vectors * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)  # (batch, hidden)
        if labels is None:
            return SessionWord2VecOutput(pooler_output=hidden)

        valid = labels != -100
        targets = labels.masked_fill(~valid, 0)
        column = hidden.unsqueeze(-1)  # (batch, hidden, 1): one matrix-vector product per example
        logits = (self.output_embeddings(targets) @ column).squeeze(-1)  # (batch, num_targets)
        if negative_ids is None:
            negative_ids = self.sample_negatives(targets.shape)
        # (batch, num_targets * num_negatives, hidden) @ (batch, hidden, 1) -> (batch, num_targets, num_negatives)
        noise = self.output_embeddings(negative_ids).flatten(1, 2)
        negative_logits = (noise @ column).view(negative_ids.shape)
        # -log sigma(true) - sum_k log sigma(-noise_k), per target
        per_target = -nn.functional.logsigmoid(logits) - nn.functional.logsigmoid(-negative_logits).sum(-1)
        total = per_target[valid].sum()
        if num_items_in_batch is not None:
            loss = total / num_items_in_batch
        else:
            loss = total / valid.sum().clamp(min=1)
        return SessionWord2VecOutput(
            loss=loss, logits=logits, negative_logits=negative_logits, pooler_output=hidden
        )


__all__ = ["SessionWord2VecModel", "SessionWord2VecOutput", "SessionWord2VecPreTrainedModel"]
