"""BERT written from scratch in torch, as a transformers model.

Read top to bottom: embeddings → self-attention → encoder layer (post-LayerNorm) → encoder → pooler → the
`SessionBertModel` → the heads. Parameter names follow transformers' BERT (`bert.encoder.layer.0.attention.self.query`,
`cls.predictions.transform.dense`, ...) so a stock BERT checkpoint maps onto this model name for name.

Two speed features, both switched by the config (see `SessionBertConfig`):

* unpadding: the dense layers work on a `(num_tokens, hidden)` matrix of the real tokens only; attention scatters
  queries, keys and values back into `(batch, seq_len)` just for the attention call, so each sequence still
  attends only to itself. Without padding (or with `unpad_inputs=False`) `num_tokens = batch * seq_len`.
* sparse MLM head: with labels in training, the vocabulary projection runs only at the labelled positions.
* sparse last layer: then the last encoder layer too computes its queries, output projection and feed-forward
  block only at those positions (and [CLS] for NSP); its keys and values still cover every token, and its
  queries are packed per sequence, so its attention scores are (batch, most queries, seq_len).

This file imports only torch, transformers and its sibling configuration file, so that a saved checkpoint
loads with `trust_remote_code=True` where hf_session is not installed.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable
from transformers import PreTrainedModel
from transformers.activations import ACT2FN
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPoolingAndCrossAttentions,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    NextSentencePredictorOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_session_bert import SessionBertConfig


@dataclass
class SessionBertForPreTrainingOutput(ModelOutput):
    """Output of `SessionBertForPreTraining`, field for field transformers' `BertForPreTrainingOutput`.

    loss: (), MLM loss + NSP loss, when both label sets are given.
    prediction_logits: (batch, seq_len, vocab_size), or (num_labelled, vocab_size) with the sparse head.
    seq_relationship_logits: (batch, 2), NSP scores (0 = B follows A, 1 = B is random).
    hidden_states, attentions: as in `SessionBertModel`, when asked for.
    """

    loss: torch.Tensor | None = None
    prediction_logits: torch.Tensor | None = None
    seq_relationship_logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class TokenLayout(NamedTuple):
    """Where the rows of a packed (num_tokens, hidden) matrix sit in the (batch, seq_len) grid.

    token_indices: (num_tokens,) flat positions in (batch * seq_len) of the rows, or None: every position is a row.
    queries: for a layer that computes only some tokens, (rows, positions): (num_queries,) row indices into the
    matrix and their flat positions; None: every row.
    """

    token_indices: torch.Tensor | None
    batch_size: int
    seq_len: int
    queries: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def output_indices(self) -> torch.Tensor | None:
        """Flat positions of the rows a layer with this layout outputs: the queries' if any, else the tokens'."""
        return self.token_indices if self.queries is None else self.queries[1]

    def pad(self, tokens: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
        """(rows, *rest) → (batch, seq_len, *rest); rows at `indices` (default: the layout's token_indices)."""
        return pad_tokens(
            tokens, self.token_indices if indices is None else indices, self.batch_size, self.seq_len
        )


def pad_tokens(tokens: torch.Tensor, token_indices: torch.Tensor | None, batch_size: int, seq_len: int):
    """(num_tokens, *rest) → (batch, seq_len, *rest), zeros at the padded positions."""
    rest = tokens.shape[1:]
    if token_indices is None:
        return tokens.view(batch_size, seq_len, *rest)
    padded = tokens.new_zeros(batch_size * seq_len, *rest).index_put((token_indices,), tokens)
    return padded.view(batch_size, seq_len, *rest)


def unpad_tokens(padded: torch.Tensor, token_indices: torch.Tensor | None) -> torch.Tensor:
    """(batch, seq_len, *rest) → (num_tokens, *rest): the real tokens, in row-major order."""
    flat = padded.reshape(-1, *padded.shape[2:])
    return flat if token_indices is None else flat.index_select(0, token_indices)


def split_heads(
    rows: torch.Tensor,
    indices: torch.Tensor | None,
    batch_size: int,
    seq_len: int,
    num_heads: int,
    head_dim: int,
) -> tuple[torch.Tensor, ...]:
    """(num_rows, parts · num_heads · head_dim) projections of the rows at flat `indices` of the (batch · seq_len)
    grid (None: every position, in order) → `parts` tensors (batch, heads, seq_len, head_dim), zero where no row
    sits.

    They are views of contiguous (heads, batch, seq_len, head_dim) tensors, which attention reads without copies:
    one scatter in (one gather for the gradient) instead of a scatter into (batch, seq_len) and a copy per part.
    """
    per_head = rows.view(rows.shape[0], -1, head_dim).transpose(0, 1)  # (parts · heads, rows, head_dim)
    if indices is None:
        grid = per_head.contiguous()
    else:
        grid = per_head.new_zeros(per_head.shape[0], batch_size * seq_len, head_dim).index_copy_(
            1, indices, per_head
        )
    # Unbound before the transpose, so that the gradients stack back in this memory order (no copy for the view).
    parts = grid.view(-1, num_heads, batch_size, seq_len, head_dim).unbind(0)
    return tuple(part.transpose(0, 1) for part in parts)


def packed_query_slots(positions: torch.Tensor, batch_size: int, seq_len: int) -> tuple[torch.Tensor, int]:
    """Flat positions (n,) in the (batch · seq_len) grid, in row-major order → their flat positions in a
    (batch, q_len) grid where each sequence's positions sit side by side from slot 0, and q_len (the most
    positions one sequence has, at least 1)."""
    sequence = torch.div(positions, seq_len, rounding_mode="floor")
    counts = torch.bincount(sequence, minlength=batch_size)
    q_len = max(int(counts.max()), 1) if positions.numel() else 1
    first = counts.cumsum(0) - counts  # index in `positions` of each sequence's first one
    slot = torch.arange(positions.numel(), device=positions.device) - first[sequence]
    return sequence * q_len + slot, q_len


def dropout_keep_mask(shape: torch.Size, p: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A scaled keep-mask of `shape` for inverted dropout: 0 with probability p, else 1 / (1 - p).

    torch's CPU dropout draws one 32-bit random number per element, and that cost ~10% of a pretraining step
    (`benchmarks/bert_pretraining.py`); here each 64-bit draw gives four 16-bit numbers. p is rounded to a
    multiple of 1/65536 (0.1 → 0.100006; at most 65535/65536) and the scale follows it, so the mask's mean
    stays exactly 1.
    """
    # Drop where a uniform 16-bit number (−32768..32767) is below −32768 + threshold.
    threshold = min(round(p * 65536), 65535)
    numel = shape.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((numel + 3) // 4,), device=device)
    keep = words.view(torch.int16)[:numel].view(shape) >= threshold - 32768
    return keep.to(dtype).mul_(65536 / (65536 - threshold))


def apply_dropout(hidden_states: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """`F.dropout` with the cheaper CPU keep-mask of `dropout_keep_mask`; other devices keep torch's kernels."""
    if not training or p == 0.0 or p >= 1.0 or hidden_states.device.type != "cpu":
        return F.dropout(hidden_states, p, training)
    return hidden_states * dropout_keep_mask(
        hidden_states.shape, p, hidden_states.dtype, hidden_states.device
    )


class Dropout(nn.Dropout):
    """nn.Dropout through `apply_dropout` (same module name and repr, so nothing else changes)."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return apply_dropout(hidden_states, self.p, self.training)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
):
    """softmax(q kᵀ · scaling + mask) v, the textbook attention.

    query, key, value: (batch, heads, seq_len, head_dim); attention_mask: additive float or boolean (True = keep),
    broadcastable to (batch, heads, seq_len, seq_len). Returns (batch, seq_len, heads, head_dim) and the
    attention probabilities (batch, heads, seq_len, seq_len).

    The mask and the scaling ride on one `baddbmm` (scores = mask + scaling · q kᵀ) instead of three passes
    over the (batch, heads, seq_len, seq_len) scores (matmul, scale, mask). Query, key and value laid out heads
    first in memory (views of contiguous (heads, batch, seq_len, head_dim) tensors, as `split_heads` gives) are
    read in that order, without copies.
    """
    batch_size, num_heads, q_len, head_dim = query.shape
    k_len = key.shape[2]
    heads_first = batch_size > 1 and all(t.transpose(0, 1).is_contiguous() for t in (query, key, value))
    if heads_first:  # bmm's batch is (heads, batch); everything below is arranged alike and turned at the end
        query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if attention_mask is not None:
            attention_mask = attention_mask.transpose(0, 1)
    shape = (query.shape[0], query.shape[1], q_len, k_len)
    q = query.reshape(batch_size * num_heads, q_len, head_dim)
    k_t = key.reshape(batch_size * num_heads, k_len, head_dim).transpose(1, 2)
    if attention_mask is None:
        scores = torch.baddbmm(
            q.new_empty(()).expand(q.shape[0], q_len, k_len), q, k_t, beta=0.0, alpha=scaling
        )
    else:
        if attention_mask.dtype == torch.bool:
            attention_mask = torch.zeros((), dtype=query.dtype, device=query.device).masked_fill(
                ~attention_mask, torch.finfo(query.dtype).min
            )
        # A fresh (batch · heads, q_len, k_len) buffer holding the mask; the matmul adds into it in place (into
        # the buffer itself, not a view of it, which autograd would have to copy back in the backward).
        scores = q.new_empty(q.shape[0], q_len, k_len)
        scores.view(shape).copy_(attention_mask.expand(shape))
        scores = scores.baddbmm_(q, k_t, alpha=scaling)
    # The returned (batch, heads, q_len, k_len) probabilities are on the path to the output, so that gradients
    # reach them (`retain_grad`).
    probs = apply_dropout(F.softmax(scores.view(shape), dim=-1), dropout, module.training)
    weights = probs
    if heads_first:
        # Returned as (batch, heads, ...); the output reads that view turned back, so it is on the path.
        probs = probs.transpose(0, 1)
        weights = probs.transpose(0, 1)
    output = torch.bmm(
        weights.reshape(-1, q_len, k_len), value.reshape(batch_size * num_heads, k_len, head_dim)
    )
    output = output.view(*shape[:2], q_len, head_dim)
    output = output.permute(1, 2, 0, 3) if heads_first else output.transpose(1, 2)
    return output.contiguous(), probs


class TiedGradient:
    """Hands the MLM decoder's weight gradient to the word-embedding lookup's backward (tied weights).

    With the decoder and the lookup sharing one (vocab, hidden) matrix, autograd gives it two full-size gradients
    and adds them: the lookup's is a zero-filled matrix with a few thousand rows written, and the sum a third
    matrix (together ~4% of a pretraining step at BERT's vocabulary). Through this carrier the decoder's backward
    (which always runs first: its input depends on the lookup's output) leaves its gradient here and the
    lookup's backward adds its rows into it in place, so the matrix gets one gradient, equal to the sum.
    """

    __slots__ = ("grad",)

    def __init__(self):
        self.grad: torch.Tensor | None = None


class _TiedEmbeddingLookup(torch.autograd.Function):
    """`F.embedding(input_ids, weight, padding_idx)` whose weight gradient is the carrier's, plus its rows."""

    @staticmethod
    def forward(ctx, input_ids, weight, padding_idx, carrier: TiedGradient):
        ctx.save_for_backward(input_ids)
        ctx.weight_shape, ctx.padding_idx, ctx.carrier = weight.shape, padding_idx, carrier
        return F.embedding(input_ids, weight, padding_idx)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (input_ids,) = ctx.saved_tensors
        grad_weight, ctx.carrier.grad = ctx.carrier.grad, None
        if grad_weight is None:  # the decoder was not part of this backward (e.g. only the NSP loss)
            grad_weight = grad_output.new_zeros(ctx.weight_shape)
        ids, rows = input_ids.reshape(-1), grad_output.reshape(-1, grad_output.shape[-1])
        if ctx.padding_idx is not None:  # nn.Embedding gives the padding row no gradient
            keep = ids != ctx.padding_idx
            ids, rows = ids[keep], rows[keep]
        return None, grad_weight.index_add_(0, ids, rows.to(grad_weight.dtype)), None, None


def vocab_slab(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> int | None:
    """Vocabulary columns per slab for `vocab_linear`, or None where it is plain `F.linear`."""
    slab = max(256, (196_608 // max(hidden.shape[0], 1)) // 64 * 64)  # ~0.75 MB of float32 output per slab
    if (
        hidden.device.type != "cpu"
        or hidden.dim() != 2
        or weight.shape[0] < 4 * slab
        or torch.is_autocast_enabled("cpu")
        or not (
            hidden.dtype == weight.dtype == torch.float32 and (bias is None or bias.dtype == torch.float32)
        )
    ):
        return None
    return slab


def vocab_linear(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`F.linear(hidden, weight, bias)` for a projection onto a large vocabulary: (n, hidden) → (n, vocab).

    On CPU, torch's matrix product (MKL) is ~1.6× slower when its output is much larger than the caches, as the
    (n, vocab) logits of the sparse MLM head are (230 × 30,522 floats, 28 MB: 72 ms, against 43 ms for the same
    product written in column slabs of ~0.75 MB, on 2 cores). So on CPU, in float32 without autocast, a large
    output is written slab by slab (the same dot products); elsewhere this is `F.linear`.
    """
    slab = vocab_slab(hidden, weight, bias)
    if slab is None:
        return F.linear(hidden, weight, bias)
    vocab = weight.shape[0]
    out = hidden.new_empty(hidden.shape[0], vocab)
    for start in range(0, vocab, slab):
        stop = min(start + slab, vocab)
        if bias is None:
            torch.mm(hidden, weight[start:stop].t(), out=out[:, start:stop])
        else:
            torch.addmm(bias[start:stop], hidden, weight[start:stop].t(), out=out[:, start:stop])
    return out


class _TiedDecoder(torch.autograd.Function):
    """`F.linear(hidden, weight, bias)` for hidden (n, hidden_size) that leaves its weight gradient in the carrier."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, carrier: TiedGradient):
        ctx.save_for_backward(hidden, weight)
        ctx.carrier = carrier
        return vocab_linear(hidden, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_logits):
        hidden, weight = ctx.saved_tensors
        # Under autocast the logits (and so this gradient) may be half precision: compute in their dtype, as
        # autocast's own linear does, and hand each gradient back in its input's dtype.
        grad_hidden = (grad_logits @ weight.to(grad_logits.dtype)).to(hidden.dtype)
        slab = vocab_slab(hidden, weight, None) if grad_logits.dtype == torch.float32 else None
        if slab is None:
            grad_weight = (grad_logits.t() @ hidden.to(grad_logits.dtype)).to(weight.dtype)
        else:  # the (vocab, hidden) gradient row slab by row slab, for the reason given in `vocab_linear`
            grad_weight = weight.new_empty(weight.shape)
            for start in range(0, weight.shape[0], slab):
                stop = min(start + slab, weight.shape[0])
                torch.mm(grad_logits[:, start:stop].t(), hidden, out=grad_weight[start:stop])
        # This backward pass's gradient; one left by an earlier pass that never reached the lookup (e.g.
        # `autograd.grad` for the bias only) is stale and replaced, not added to.
        ctx.carrier.grad = grad_weight
        grad_bias = grad_logits.sum(0) if ctx.needs_input_grad[2] else None
        return grad_hidden, None, grad_bias, None


class SessionBertEmbeddings(nn.Module):
    """Word + position + token type embeddings, then LayerNorm and dropout."""

    def __init__(self, config: SessionBertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        input_ids,
        token_type_ids,
        position_ids,
        inputs_embeds,
        tied_gradient: TiedGradient | None = None,
    ) -> torch.Tensor:
        """ids: (batch, seq_len) each (token_type_ids/position_ids may be None); returns (batch, seq_len, hidden).
        tied_gradient: see `TiedGradient` (the lookup then takes the decoder's weight gradient)."""
        if inputs_embeds is None and tied_gradient is not None:
            embedding = self.word_embeddings
            inputs_embeds = _TiedEmbeddingLookup.apply(
                input_ids, embedding.weight, embedding.padding_idx, tied_gradient
            )
        elif inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        batch_size, seq_len = inputs_embeds.shape[:2]
        if position_ids is None:
            position_ids = torch.arange(seq_len, device=inputs_embeds.device).expand(batch_size, seq_len)
        if token_type_ids is None:
            token_type_ids = torch.zeros(batch_size, seq_len, dtype=torch.long, device=inputs_embeds.device)
        embeddings = (
            inputs_embeds
            + self.position_embeddings(position_ids)
            + self.token_type_embeddings(token_type_ids)
        )
        return self.dropout(self.LayerNorm(embeddings))


class SessionBertSelfAttention(nn.Module):
    """Multi-head self-attention over the packed tokens; the attention call itself sees (batch, seq_len)."""

    def __init__(self, config: SessionBertConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_prob = config.attention_probs_dropout_prob
        # An encoder: without this flag sdpa is causal whenever no mask is passed (a batch without padding).
        self.is_causal = False

    def forward(self, hidden_states, attention_mask, layout: TokenLayout, output_attentions=False):
        """hidden_states: (num_tokens, hidden) → (num_tokens, hidden), attention probabilities or None.

        With `layout.queries` only those tokens ask queries; the output is then (num_queries, hidden). With a key
        mask (or none) they sit packed per sequence in a (batch, q_len) grid, q_len the most one sequence has.
        """
        batch_size, seq_len = layout.batch_size, layout.seq_len
        # The output rows' flat positions in a (batch, q_len) grid: the layout's, or the packed query slots below.
        q_len, output_slots = seq_len, layout.output_indices
        sizes = (batch_size, seq_len, self.num_heads, self.head_dim)
        # One matmul for the three projections (and one scatter back to (batch, seq_len)) instead of three;
        # the weights stay three BERT-named Linear layers, so checkpoints map name for name.
        if layout.queries is None:
            qkv_weight = torch.cat([self.query.weight, self.key.weight, self.value.weight])
            qkv_bias = torch.cat([self.query.bias, self.key.bias, self.value.bias])
            query, key, value = split_heads(  # 3 × (batch, heads, seq_len, head_dim)
                F.linear(hidden_states, qkv_weight, qkv_bias), layout.token_indices, *sizes
            )
        else:
            kv_weight = torch.cat([self.key.weight, self.value.weight])
            kv_bias = torch.cat([self.key.bias, self.value.bias])
            key, value = split_heads(
                F.linear(hidden_states, kv_weight, kv_bias), layout.token_indices, *sizes
            )
            rows, output_slots = layout.queries
            if attention_mask is None or (attention_mask.dim() == 4 and attention_mask.shape[-2] == 1):
                # A (batch, 1, 1, seq_len) key mask (or none) fits any number of queries: each sequence's queries
                # sit side by side in a (batch, q_len) grid, q_len = the most any sequence has (~15% of seq_len
                # in pretraining). Other masks (flash attention's 2-D one, 4-D query × key ones) keep seq_len.
                output_slots, q_len = packed_query_slots(output_slots, batch_size, seq_len)
            # Slots without a query stay zero: they attend uniformly and their outputs are dropped below.
            (query,) = split_heads(
                self.query(hidden_states[rows]),
                output_slots,
                batch_size,
                q_len,
                self.num_heads,
                self.head_dim,
            )

        implementation = self.config._attn_implementation
        cpu_dropout = self.training and self.dropout_prob > 0 and query.device.type == "cpu"
        if output_attentions or (implementation == "sdpa" and cpu_dropout):
            # Only eager computes the probabilities; transformers' BERT falls back to it the same way. sdpa
            # with dropout on CPU has no fused kernel: it runs this same math with torch's slower dropout.
            attention_interface: Callable = eager_attention_forward
        else:
            attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(
                implementation, eager_attention_forward
            )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.dropout_prob if self.training else 0.0,
            scaling=self.scaling,
        )
        attn_output = attn_output.reshape(batch_size, q_len, -1)
        return unpad_tokens(attn_output, output_slots), attn_weights


class SessionBertSelfOutput(nn.Module):
    """Output projection of the attention block, dropout, residual, LayerNorm (post-LN)."""

    def __init__(self, config: SessionBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class SessionBertAttention(nn.Module):
    def __init__(self, config: SessionBertConfig):
        super().__init__()
        self.self = SessionBertSelfAttention(config)
        self.output = SessionBertSelfOutput(config)

    def forward(self, hidden_states, attention_mask, layout: TokenLayout, output_attentions=False):
        attn_output, attn_weights = self.self(hidden_states, attention_mask, layout, output_attentions)
        residual = hidden_states if layout.queries is None else hidden_states[layout.queries[0]]
        return self.output(attn_output, residual), attn_weights


class SessionBertIntermediate(nn.Module):
    def __init__(self, config: SessionBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = ACT2FN[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(hidden_states))


class SessionBertOutput(nn.Module):
    """Second feed-forward projection, dropout, residual, LayerNorm (post-LN)."""

    def __init__(self, config: SessionBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + residual)


class SessionBertLayer(GradientCheckpointingLayer):
    """One encoder layer: self-attention block, then feed-forward block, each with residual + LayerNorm."""

    def __init__(self, config: SessionBertConfig):
        super().__init__()
        self.attention = SessionBertAttention(config)
        self.intermediate = SessionBertIntermediate(config)
        self.output = SessionBertOutput(config)

    def forward(self, hidden_states, attention_mask, layout: TokenLayout, output_attentions=False):
        """hidden_states: (num_tokens, hidden) → (num_tokens, hidden), attention probabilities or None; with
        `layout.queries` only those rows: (num_queries, hidden)."""
        attention_output, attn_weights = self.attention(
            hidden_states, attention_mask, layout, output_attentions
        )
        return self.output(self.intermediate(attention_output), attention_output), attn_weights


class SessionBertEncoder(nn.Module):
    def __init__(self, config: SessionBertConfig):
        super().__init__()
        self.layer = nn.ModuleList([SessionBertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(
        self, hidden_states, attention_mask, layout: TokenLayout, output_attentions, output_hidden_states
    ):
        """hidden_states: (num_tokens, hidden). Returns the last hidden state (batch, seq_len, hidden), then the
        per-layer hidden states (batch, seq_len, hidden) and attention probabilities as tuples when asked for.

        With `layout.queries` the last layer computes only those tokens; the last hidden state is zero at every
        other position."""
        all_hidden_states = () if output_hidden_states else None
        all_attentions = () if output_attentions else None
        full_layout = layout._replace(queries=None)
        for index, layer in enumerate(self.layer):
            if output_hidden_states:
                # Record the tensor the layer then reads, so gradients w.r.t. hidden states reach it.
                padded = full_layout.pad(hidden_states)
                all_hidden_states += (padded,)
                hidden_states = unpad_tokens(padded, layout.token_indices)
            last = index == len(self.layer) - 1
            hidden_states, attn_weights = layer(
                hidden_states, attention_mask, layout if last else full_layout, output_attentions
            )
            if output_attentions:
                all_attentions += (attn_weights,)
        last_hidden_state = layout.pad(hidden_states, layout.output_indices)
        if output_hidden_states:
            all_hidden_states += (last_hidden_state,)
        return last_hidden_state, all_hidden_states, all_attentions


class SessionBertPooler(nn.Module):
    """tanh(dense(hidden state of [CLS])): the sentence representation the NSP and classification heads use."""

    def __init__(self, config: SessionBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """(batch, seq_len, hidden) → (batch, hidden)."""
        return self.activation(self.dense(hidden_states[:, 0]))


class SessionBertPredictionHeadTransform(nn.Module):
    def __init__(self, config: SessionBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class SessionBertLMPredictionHead(nn.Module):
    """Transform, then the vocabulary projection; its weight is tied to the word embeddings."""

    def __init__(self, config: SessionBertConfig):
        super().__init__()
        self.transform = SessionBertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden_states: torch.Tensor, tied_gradient: TiedGradient | None = None) -> torch.Tensor:
        """(..., hidden) → (..., vocab_size); with `tied_gradient` (see `TiedGradient`) hidden_states is
        (n, hidden)."""
        if tied_gradient is not None:
            decoder = self.decoder
            return _TiedDecoder.apply(
                self.transform(hidden_states), decoder.weight, decoder.bias, tied_gradient
            )
        return self.decoder(self.transform(hidden_states))


class SessionBertOnlyMLMHead(nn.Module):
    def __init__(self, config: SessionBertConfig):
        super().__init__()
        self.predictions = SessionBertLMPredictionHead(config)

    def forward(self, sequence_output: torch.Tensor) -> torch.Tensor:
        return self.predictions(sequence_output)


class SessionBertOnlyNSPHead(nn.Module):
    def __init__(self, config: SessionBertConfig):
        super().__init__()
        self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, pooled_output: torch.Tensor) -> torch.Tensor:
        return self.seq_relationship(pooled_output)


class SessionBertPreTrainingHeads(nn.Module):
    def __init__(self, config: SessionBertConfig):
        super().__init__()
        self.predictions = SessionBertLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """Mean cross-entropy over labels ≠ -100; with `num_items_in_batch` (the label count over all gradient
    accumulation steps, from Trainer) it is sum / num_items_in_batch, so accumulated gradients are exact."""
    logits, labels = logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1)
    if num_items_in_batch is None:
        return F.cross_entropy(logits, labels, ignore_index=-100)
    return F.cross_entropy(logits, labels, ignore_index=-100, reduction="sum") / num_items_in_batch


class _LabelledCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy of rows that all have a valid label: logits (n, vocab), labels (n,) → scalar.

    Same value and gradient as `F.cross_entropy(..., reduction="sum", label_smoothing=...)`, but the backward
    turns the forward's saved log-probabilities into the gradient (softmax − target distribution) in place: that
    saves two (n, vocab) buffers per step (NLL's zero-filled gradient and log-softmax's backward output), each
    ~35 MB for BERT's MLM head. A second backward through the same graph fails with autograd's in-place error.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float) -> torch.Tensor:
        log_probs = torch.log_softmax(logits, dim=-1, dtype=torch.float32)
        ctx.save_for_backward(log_probs, labels)
        ctx.logits_dtype, ctx.label_smoothing = logits.dtype, label_smoothing
        # Target distribution (1 − ε) one-hot + ε / vocab, as torch's label smoothing.
        loss = -log_probs.gather(1, labels[:, None]).sum() * (1.0 - label_smoothing)
        if label_smoothing:
            loss = loss - log_probs.sum() * (label_smoothing / log_probs.shape[-1])
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss: torch.Tensor):
        log_probs, labels = ctx.saved_tensors
        grad = log_probs.exp_()
        if ctx.label_smoothing:
            grad.sub_(ctx.label_smoothing / grad.shape[-1])
        grad[torch.arange(labels.shape[0], device=labels.device), labels] -= 1.0 - ctx.label_smoothing
        return grad.mul_(grad_loss).to(ctx.logits_dtype), None, None


def labelled_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch=None, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Mean cross-entropy of (n, vocab) logits whose (n,) labels are all real targets (no -100), or
    sum / num_items_in_batch; NaN when n = 0, as `F.cross_entropy` gives."""
    vocab_size = logits.shape[-1]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= vocab_size):
        raise ValueError(f"labels must be token ids below vocab_size={vocab_size} (or -100 to ignore)")
    total = _LabelledCrossEntropy.apply(logits, labels, float(label_smoothing))
    return total / (labels.numel() if num_items_in_batch is None else num_items_in_batch)


def masked_lm_loss_and_logits(
    head, sequence_output, labels, sparse: bool, num_items_in_batch=None, tied_gradient=None
):
    """Prediction logits and (with labels) the MLM loss.

    sequence_output: (batch, seq_len, hidden); labels: (batch, seq_len), -100 where unlabelled. Dense: logits are
    (batch, seq_len, vocab). Sparse: only the labelled rows, (num_labelled, vocab), in row-major order, so their
    targets are `labels[labels != -100]`.
    """
    if labels is None:
        return head(sequence_output), None
    if sparse:
        labelled = labels != -100
        logits = head(sequence_output[labelled], tied_gradient)
        return logits, labelled_cross_entropy(logits, labels[labelled], num_items_in_batch)
    logits = head(sequence_output)
    return logits, cross_entropy(logits, labels, num_items_in_batch)


class SessionBertPreTrainedModel(PreTrainedModel):
    config: SessionBertConfig
    config_class = SessionBertConfig
    base_model_prefix = "bert"
    supports_gradient_checkpointing = True
    _no_split_modules = ["SessionBertEmbeddings", "SessionBertLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    # Every head, so that a checkpoint of any one of them loads into any other with trust_remote_code.
    _auto_heads = {
        "AutoModel": "SessionBertModel",
        "AutoModelForPreTraining": "SessionBertForPreTraining",
        "AutoModelForMaskedLM": "SessionBertForMaskedLM",
        "AutoModelForNextSentencePrediction": "SessionBertForNextSentencePrediction",
        "AutoModelForSequenceClassification": "SessionBertForSequenceClassification",
        "AutoModelForTokenClassification": "SessionBertForTokenClassification",
        "AutoModelForQuestionAnswering": "SessionBertForQuestionAnswering",
        "AutoModelForMultipleChoice": "SessionBertForMultipleChoice",
    }

    def __init__(self, config: SessionBertConfig, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        module = type(self).__module__.rsplit(".", 1)[-1]
        heads = {auto: f"{module}.{name}" for auto, name in self._auto_heads.items()}
        self.config.auto_map = {**heads, **(getattr(self.config, "auto_map", None) or {})}

    def _tied_gradient(self, input_ids, labels, sparse: bool) -> TiedGradient | None:
        """A `TiedGradient` carrier when the sparse MLM head trains a decoder tied to the word embeddings that this
        forward looks up, else None (the usual autograd path)."""
        if not (sparse and labels is not None and input_ids is not None and torch.is_grad_enabled()):
            return None
        weight = self.get_input_embeddings().weight
        decoder = self.get_output_embeddings()
        if decoder.weight is not weight or not weight.requires_grad:
            return None
        return TiedGradient()

    def _sparse_positions(self, labels, sparse, with_cls):
        """The (batch, seq_len) positions the training heads read (labelled tokens, and [CLS] for NSP) when the
        last layer may compute only those (`config.sparse_last_layer`), else None: every position."""
        if not (sparse and self.config.sparse_last_layer and labels is not None):
            return None
        positions = labels != -100
        if with_cls:
            positions[:, 0] = True
        return positions


class SessionBertModel(SessionBertPreTrainedModel):
    """The bare encoder: embeddings, `num_hidden_layers` layers and (optionally) the pooler."""

    def __init__(self, config: SessionBertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = SessionBertEmbeddings(config)
        self.encoder = SessionBertEncoder(config)
        self.pooler = SessionBertPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def _check_inputs(self, input_ids, token_type_ids, position_ids, seq_len):
        """Out-of-range ids raise one clear ValueError here instead of an index error deep inside torch."""
        config = self.config
        if seq_len > config.max_position_embeddings and position_ids is None:
            raise ValueError(
                f"sequence length {seq_len} exceeds max_position_embeddings={config.max_position_embeddings}; "
                "truncate the input (tokenizer(..., truncation=True, max_length=...))"
            )
        for name, ids, limit, limit_name in (
            ("input_ids", input_ids, config.vocab_size, "vocab_size"),
            ("token_type_ids", token_type_ids, config.type_vocab_size, "type_vocab_size"),
            ("position_ids", position_ids, config.max_position_embeddings, "max_position_embeddings"),
        ):
            if ids is not None and ids.numel() and (ids.min() < 0 or ids.max() >= limit):
                hint = (
                    " (is the tokenizer's vocabulary larger than the model's?)" if name == "input_ids" else ""
                )
                raise ValueError(
                    f"{name} must be in [0, {limit_name}={limit}), got values in "
                    f"[{int(ids.min())}, {int(ids.max())}]{hint}"
                )

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        output_positions: torch.Tensor | None = None,
        tied_gradient: TiedGradient | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPoolingAndCrossAttentions:
        """input_ids, attention_mask (1 = real token), token_type_ids, position_ids: (batch, seq_len);
        inputs_embeds: (batch, seq_len, hidden) instead of input_ids.

        Returns last_hidden_state (batch, seq_len, hidden), pooler_output (batch, hidden), and when asked for
        hidden_states (num_layers + 1 × (batch, seq_len, hidden)) and attentions (num_layers × (batch, heads,
        seq_len, seq_len)).

        output_positions: (batch, seq_len) bool, for the heads' training: the last layer computes only these
        positions (its keys and values still cover all tokens), and last_hidden_state is zero elsewhere.
        Include position 0 when the pooler output is used. Ignored when hidden states or attentions are asked
        for, so that those stay complete.

        tied_gradient: for the MLM heads' training, see `TiedGradient`.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        output_attentions = (
            output_attentions if output_attentions is not None else self.config.output_attentions
        )
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        source = input_ids if input_ids is not None else inputs_embeds
        if source.dim() != (2 if input_ids is not None else 3):
            raise ValueError(
                "input_ids must have shape (batch, seq_len) and inputs_embeds (batch, seq_len, hidden); got "
                f"{tuple(source.shape)}"
            )
        batch_size, seq_len = source.shape[:2]
        if attention_mask is not None and attention_mask.shape != (batch_size, seq_len):
            raise ValueError(
                f"attention_mask must have shape (batch, seq_len) = {(batch_size, seq_len)}, "
                f"got {tuple(attention_mask.shape)}"
            )
        self._check_inputs(input_ids, token_type_ids, position_ids, seq_len)

        embedding_output = self.embeddings(
            input_ids, token_type_ids, position_ids, inputs_embeds, tied_gradient
        )
        has_padding = attention_mask is not None and not bool(attention_mask.all())
        token_indices = None
        if self.config.unpad_inputs and has_padding:
            token_indices = attention_mask.flatten().nonzero().squeeze(1)
        queries = None
        if output_positions is not None and not (output_attentions or output_hidden_states):
            if output_positions.shape != (batch_size, seq_len):
                raise ValueError(
                    f"output_positions must have shape (batch, seq_len) = {(batch_size, seq_len)}, "
                    f"got {tuple(output_positions.shape)}"
                )
            wanted = output_positions.flatten().bool()
            if token_indices is None:
                positions = wanted.nonzero().squeeze(1)
                queries = (positions, positions)
            else:
                real = attention_mask.flatten().bool()
                positions = (wanted & real).nonzero().squeeze(1)
                queries = ((real.cumsum(0) - 1)[positions], positions)
        if output_attentions or self.config._attn_implementation in ("eager", "sdpa"):
            # Eager (also the fallback for attention weights) and sdpa take a plain boolean (batch, 1, 1, seq_len)
            # key mask, or none: 16× smaller than the (batch, 1, seq_len, seq_len) one and cheaper to apply.
            mask = attention_mask[:, None, None, :].bool() if has_padding else None
        else:
            mask = create_bidirectional_mask(
                config=self.config, inputs_embeds=embedding_output, attention_mask=attention_mask
            )

        sequence_output, hidden_states, attentions = self.encoder(
            unpad_tokens(embedding_output, token_indices),
            mask,
            TokenLayout(token_indices, batch_size, seq_len, queries),
            output_attentions,
            output_hidden_states,
        )
        return BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=sequence_output,
            pooler_output=self.pooler(sequence_output) if self.pooler is not None else None,
            hidden_states=hidden_states,
            attentions=attentions,
        )


class SessionBertForPreTraining(SessionBertPreTrainedModel):
    """MLM + NSP, BERT's pretraining objective; loss = MLM loss + NSP loss."""

    _tied_weights_keys = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}

    def __init__(self, config: SessionBertConfig):
        super().__init__(config)
        self.bert = SessionBertModel(config)
        self.cls = SessionBertPreTrainingHeads(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        next_sentence_label: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        **kwargs,
    ) -> SessionBertForPreTrainingOutput:
        """labels: (batch, seq_len) token ids at masked positions, -100 elsewhere; next_sentence_label: (batch,),
        0 = B follows A, 1 = B is random. loss: MLM + NSP, or the one of them whose labels are given.

        prediction_logits: (batch, seq_len, vocab), or only the labelled rows (num_labelled, vocab) when training
        with labels and `config.sparse_mlm_head`. seq_relationship_logits: (batch, 2).

        With `num_items_in_batch` (the masked-token count over all accumulation steps) the MLM part is
        sum / num_items_in_batch, exact under gradient accumulation; the NSP mean of this micro-batch is weighted
        by its share of those masked tokens (exact when micro-batches have the same masked-token ratio).
        """
        sparse = self.config.sparse_mlm_head and self.training
        tied_gradient = self._tied_gradient(input_ids, labels, sparse)
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            output_positions=self._sparse_positions(labels, sparse, with_cls=True),
            tied_gradient=tied_gradient,
        )
        prediction_logits, mlm_loss = masked_lm_loss_and_logits(
            self.cls.predictions, outputs.last_hidden_state, labels, sparse, num_items_in_batch, tied_gradient
        )
        seq_relationship_logits = self.cls.seq_relationship(outputs.pooler_output)

        # The loss of whichever objectives have labels, so MLM-only data (no NSP pairs) trains this head too.
        loss = mlm_loss
        if next_sentence_label is not None:
            nsp_loss = cross_entropy(seq_relationship_logits, next_sentence_label)
            if num_items_in_batch is not None and labels is not None:
                nsp_loss = nsp_loss * (labels != -100).sum() / num_items_in_batch
            loss = nsp_loss if loss is None else loss + nsp_loss
        return SessionBertForPreTrainingOutput(
            loss=loss,
            prediction_logits=prediction_logits,
            seq_relationship_logits=seq_relationship_logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


class SessionBertForMaskedLM(SessionBertPreTrainedModel):
    _tied_weights_keys = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}

    def __init__(self, config: SessionBertConfig):
        super().__init__(config)
        self.bert = SessionBertModel(config, add_pooling_layer=False)
        self.cls = SessionBertOnlyMLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        """labels: (batch, seq_len), -100 at unmasked positions. logits: (batch, seq_len, vocab), or
        (num_labelled, vocab) when training with labels and `config.sparse_mlm_head`."""
        sparse = self.config.sparse_mlm_head and self.training
        tied_gradient = self._tied_gradient(input_ids, labels, sparse)
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            output_positions=self._sparse_positions(labels, sparse, with_cls=False),
            tied_gradient=tied_gradient,
        )
        logits, loss = masked_lm_loss_and_logits(
            self.cls.predictions, outputs.last_hidden_state, labels, sparse, num_items_in_batch, tied_gradient
        )
        return MaskedLMOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class SessionBertForNextSentencePrediction(SessionBertPreTrainedModel):
    def __init__(self, config: SessionBertConfig):
        super().__init__(config)
        self.bert = SessionBertModel(config)
        self.cls = SessionBertOnlyNSPHead(config)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        **kwargs,
    ) -> NextSentencePredictorOutput:
        """labels: (batch,), 0 = B follows A, 1 = B is random. logits: (batch, 2)."""
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        logits = self.cls(outputs.pooler_output)
        loss = cross_entropy(logits, labels, num_items_in_batch) if labels is not None else None
        return NextSentencePredictorOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class SessionBertForSequenceClassification(SessionBertPreTrainedModel):
    """Pooled [CLS] → dropout → linear. `config.problem_type`: "regression" (num_labels == 1),
    "single_label_classification" (integer labels) or "multi_label_classification" (float 0/1 labels)."""

    def __init__(self, config: SessionBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = SessionBertModel(config)
        dropout = config.classifier_dropout
        self.dropout = Dropout(dropout if dropout is not None else config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """labels: (batch,) class ids or regression targets, or (batch, num_labels) multi-hot. logits:
        (batch, num_labels)."""
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        logits = self.classifier(self.dropout(outputs.pooler_output))

        loss = None
        if labels is not None:
            if self.config.problem_type is None:
                if self.num_labels == 1:
                    self.config.problem_type = "regression"
                elif labels.dtype in (torch.long, torch.int):
                    self.config.problem_type = "single_label_classification"
                else:
                    self.config.problem_type = "multi_label_classification"
            # Summed when Trainer gives the label count over all accumulation steps, so the division is exact.
            reduction = "mean" if num_items_in_batch is None else "sum"
            if self.config.problem_type == "regression":
                predictions = logits.squeeze(-1) if self.num_labels == 1 else logits
                loss = F.mse_loss(
                    predictions.float(), labels.float().view_as(predictions), reduction=reduction
                )
            elif self.config.problem_type == "single_label_classification":
                loss = F.cross_entropy(logits.float(), labels.view(-1), reduction=reduction)
            else:
                loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction=reduction)
            if num_items_in_batch is not None:
                loss = loss / num_items_in_batch
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class SessionBertForTokenClassification(SessionBertPreTrainedModel):
    def __init__(self, config: SessionBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = SessionBertModel(config, add_pooling_layer=False)
        dropout = config.classifier_dropout
        self.dropout = Dropout(dropout if dropout is not None else config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        **kwargs,
    ) -> TokenClassifierOutput:
        """labels: (batch, seq_len) tag ids, -100 where ignored. logits: (batch, seq_len, num_labels)."""
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        logits = self.classifier(self.dropout(outputs.last_hidden_state))
        loss = cross_entropy(logits, labels, num_items_in_batch) if labels is not None else None
        return TokenClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class SessionBertForQuestionAnswering(SessionBertPreTrainedModel):
    """Extractive QA: a start and an end logit per token (see `hf_session.qa.answer_question`)."""

    def __init__(self, config: SessionBertConfig):
        super().__init__(config)
        self.bert = SessionBertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> QuestionAnsweringModelOutput:
        """start_positions, end_positions: (batch,) token indices of the answer span; positions outside the
        sequence are ignored. start_logits, end_logits: (batch, seq_len)."""
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        start_logits, end_logits = self.qa_outputs(outputs.last_hidden_state).unbind(dim=-1)

        loss = None
        if start_positions is not None and end_positions is not None:
            # Positions past the end (truncated answers) become one ignored index, as in the BERT paper's code.
            ignored_index = start_logits.size(1)
            start_positions = start_positions.view(-1).clamp(0, ignored_index)
            end_positions = end_positions.view(-1).clamp(0, ignored_index)
            start_loss = F.cross_entropy(start_logits.float(), start_positions, ignore_index=ignored_index)
            end_loss = F.cross_entropy(end_logits.float(), end_positions, ignore_index=ignored_index)
            loss = (start_loss + end_loss) / 2
        return QuestionAnsweringModelOutput(
            loss=loss,
            start_logits=start_logits,
            end_logits=end_logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


class SessionBertForMultipleChoice(SessionBertPreTrainedModel):
    """Each (context, choice) pair is scored from its pooled [CLS]; softmax over the choices."""

    def __init__(self, config: SessionBertConfig):
        super().__init__(config)
        self.bert = SessionBertModel(config)
        dropout = config.classifier_dropout
        self.dropout = Dropout(dropout if dropout is not None else config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        **kwargs,
    ) -> MultipleChoiceModelOutput:
        """input_ids etc.: (batch, num_choices, seq_len); labels: (batch,) index of the right choice.
        logits: (batch, num_choices)."""
        source = input_ids if input_ids is not None else inputs_embeds
        num_choices = source.shape[1]

        def flat(tensor):
            return None if tensor is None else tensor.reshape(-1, *tensor.shape[2:])

        outputs = self.bert(
            flat(input_ids),
            attention_mask=flat(attention_mask),
            token_type_ids=flat(token_type_ids),
            position_ids=flat(position_ids),
            inputs_embeds=flat(inputs_embeds),
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        logits = self.classifier(self.dropout(outputs.pooler_output)).view(-1, num_choices)
        loss = cross_entropy(logits, labels, num_items_in_batch) if labels is not None else None
        return MultipleChoiceModelOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


__all__ = [
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
