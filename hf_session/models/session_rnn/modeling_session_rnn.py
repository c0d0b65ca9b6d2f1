"""GRU/LSTM encoder-decoder with attention (Bahdanau et al. 2015; Luong et al. 2015) and an RNN classifier.

Reading order: `SessionRnnEncoder` (embeddings → packed bidirectional RNN), `SessionRnnAttention` (scores a
decoder state against every source position), `SessionRnnDecoder` (one RNN step per target token, with
attention and input feeding), then the models: `SessionRnnModel` (encoder + decoder),
`SessionRnnForConditionalGeneration` (+ tied output layer, loss, `generate()`) and
`SessionRnnForSequenceClassification` (encoder + pooling + linear classifier).

Shapes: B batch, S source length, T target length, E embedding size, H hidden size, K encoder output size
(`2 * H` when bidirectional), L layers, V vocabulary.
"""

from typing import NamedTuple

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import (
    BaseModelOutputWithPooling,
    Seq2SeqLMOutput,
    Seq2SeqModelOutput,
    SequenceClassifierOutput,
)

from .configuration_session_rnn import SessionRnnConfig


class SessionRnnState(NamedTuple):
    """The decoder's recurrent state, carried between `generate()` steps as `cache`.

    Every tensor is batch-first so that beam search can reorder them all on dim 0.
    """

    hidden: torch.Tensor  # (B, L, H)
    cell: torch.Tensor | None  # (B, L, H), LSTM only
    attentional: torch.Tensor  # (B, H), the previous attentional vector (input feeding)
    keys: torch.Tensor | None  # (B, S, H or K), the source projected once for scoring


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """Teacher-forcing inputs: `labels` (B, T) shifted one step right after `decoder_start_token_id`;
    the -100 of ignored positions become `pad_token_id`."""
    shifted = labels.new_full(labels.shape, pad_token_id)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


def _check_ids(ids: torch.Tensor, name: str, vocab_size: int) -> None:
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        bad = ids[(ids < 0) | (ids >= vocab_size)][0].item()
        raise ValueError(
            f"{name} holds id {bad}, outside the vocabulary (vocab_size={vocab_size}); does the tokenizer "
            "match the model?"
        )


def _prefix_lengths(mask: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Row lengths (B,) of a (B, L) mask, and whether every row is right-padded: ones, then zeros."""
    lengths = mask.sum(dim=1)
    positions = torch.arange(mask.shape[1], device=mask.device)
    return lengths, torch.equal(mask.bool(), positions < lengths[:, None])


def _source_lengths(attention_mask: torch.Tensor, max_source_length: int) -> torch.Tensor:
    """Lengths (B,) of right-padded sources; refuse empty, too long or left-padded ones."""
    lengths, right_padded = _prefix_lengths(attention_mask)
    if (lengths == 0).any():
        raise ValueError(
            f"empty source: sentence {int((lengths == 0).nonzero()[0])} of the batch has no token"
        )
    if lengths.max() > max_source_length:
        raise ValueError(
            f"source of {int(lengths.max())} tokens is longer than the configured maximum "
            f"max_source_length={max_source_length}; truncate it (tokenizer truncation=True, max_length=...)"
        )
    if not right_padded:
        raise ValueError(
            "attention_mask must be right-padded (ones, then zeros): set tokenizer.padding_side='right'"
        )
    return lengths


def dropout_keep_mask(shape: torch.Size, p: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A scaled keep-mask of `shape` for inverted dropout: 0 with probability p, else 1 / (1 - p).

    torch's CPU dropout draws one 32-bit random number per element; here each 64-bit draw gives four 16-bit
    numbers (copied from modeling_session_bert.py, where it saves ~10% of a pretraining step: each model folder
    imports only torch, transformers and its own files, so that remote code loads). p is rounded to a
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


# Copied from session_bert's modeling file (each model folder stands alone for remote code); tests/
# test_session_bert.py checks both copies. Labels are checked by `_check_ids` before it is called.
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


class _Prefixes(torch.autograd.Function):
    """tensor (B, ...) → its first n rows for each n in `counts`, as views.

    Autograd's backward of each slice would write a zero-filled (B, ...) gradient and add it to the others; the
    input-feeding loop slices the encoder states and keys once per distinct number of running sequences (up to
    one per target step), so this backward sums the prefixes' gradients into a single buffer instead."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, counts: tuple[int, ...]):
        ctx.shape, ctx.counts = tensor.shape, counts
        return tuple(tensor[:n] for n in counts)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):
        total = None
        for n, grad in zip(ctx.counts, grads, strict=True):
            if grad is None:
                continue
            if total is None:
                total = grad.new_zeros(ctx.shape)
            total[:n] += grad
        return total, None


class SessionRnnPreTrainedModel(PreTrainedModel):
    config_class = SessionRnnConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _auto_heads = {
        "AutoModel": "SessionRnnModel",
        "AutoModelForSeq2SeqLM": "SessionRnnForConditionalGeneration",
        "AutoModelForSequenceClassification": "SessionRnnForSequenceClassification",
    }

    def __init__(self, config: SessionRnnConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        # save_pretrained lists only the saved class in auto_map; list every head, so that any checkpoint
        # loads as any head with trust_remote_code=True.
        module = type(self).__module__.rsplit(".", 1)[-1]
        heads = {auto: f"{module}.{name}" for auto, name in self._auto_heads.items()}
        self.config.auto_map = {**heads, **(getattr(self.config, "auto_map", None) or {})}

    @torch.no_grad()
    def _init_weights(self, module):
        # transformers' default initialises LSTM but not GRU (GRU weights would stay uninitialised memory
        # after from_pretrained); Xavier inputs and orthogonal recurrences are the usual RNN choice. The
        # `init` functions skip weights that were loaded from a checkpoint.
        if isinstance(module, (nn.GRU, nn.LSTM)):
            for name, param in module.named_parameters():
                if name.startswith("weight_ih"):
                    init.xavier_uniform_(param)
                elif name.startswith("weight_hh"):
                    init.orthogonal_(param)
                else:
                    init.zeros_(param)
        elif isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        else:
            super()._init_weights(module)


def _rnn(config: SessionRnnConfig, input_size: int, bidirectional: bool) -> nn.RNNBase:
    rnn_class = nn.GRU if config.cell_type == "gru" else nn.LSTM
    return rnn_class(
        input_size,
        config.hidden_size,
        num_layers=config.num_layers,
        batch_first=True,
        bidirectional=bidirectional,
        dropout=config.dropout if config.num_layers > 1 else 0.0,
    )


class SessionRnnEncoder(nn.Module):
    """Embeddings and a (bi)directional GRU/LSTM over packed sequences, so padding never changes a result."""

    main_input_name = "input_ids"

    def __init__(self, config: SessionRnnConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(
            config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id
        )
        self.dropout = Dropout(config.dropout)
        self.rnn = _rnn(config, config.embedding_size, config.bidirectional)

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        """
        input_ids: (B, S), right-padded; attention_mask: (B, S), 1 for tokens (default: all ones, as in
        transformers: give the mask with a padded batch).

        Returns `last_hidden_state` (B, S, K), zero at padded positions, and `pooler_output` (B, K): the final
        states of the last layer, forward and backward directions concatenated. `hidden_states`, if asked,
        is (embeddings (B, S, E), last_hidden_state).
        """
        _check_ids(input_ids, "input_ids", self.config.vocab_size)
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        lengths = _source_lengths(attention_mask, self.config.max_source_length)
        embeds = self.dropout(self.embed_tokens(input_ids))
        packed = pack_padded_sequence(embeds, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_outputs, state = self.rnn(packed)
        outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=input_ids.shape[1])
        final = state[0] if self.config.cell_type == "lstm" else state  # (L * directions, B, H)
        directions = 2 if self.config.bidirectional else 1
        final = final.view(self.config.num_layers, directions, *final.shape[1:])[-1]  # (directions, B, H)
        pooled = final.transpose(0, 1).reshape(final.shape[1], -1)
        output = BaseModelOutputWithPooling(
            last_hidden_state=outputs,
            pooler_output=pooled,
            hidden_states=(embeds, outputs) if output_hidden_states else None,
        )
        return output if return_dict is not False else output.to_tuple()


class SessionRnnAttention(nn.Module):
    """Scores decoder states against the encoder outputs: "dot" q·k, "general" q·Wk (Luong et al. 2015),
    "bahdanau" v·tanh(Wq + Uk) (Bahdanau et al. 2015)."""

    def __init__(self, config: SessionRnnConfig):
        super().__init__()
        self.attention_type = config.attention_type
        if self.attention_type in ("general", "bahdanau"):
            self.key_proj = nn.Linear(config.encoder_output_size, config.hidden_size, bias=False)
        if self.attention_type == "bahdanau":
            self.query_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
            self.energy = nn.Linear(config.hidden_size, 1, bias=False)

    def project_keys(self, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        """(B, S, K) → keys (B, S, H), or the states themselves for "dot"; computed once per source."""
        if self.attention_type == "dot":
            return encoder_hidden_states
        return self.key_proj(encoder_hidden_states)

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, T, H), keys (B, S, H|K), values (B, S, K), mask (B, S) → context (B, T, K), weights (B, T, S)."""
        if self.attention_type == "bahdanau":
            scores = self.energy(torch.tanh(self.query_proj(query)[:, :, None] + keys[:, None])).squeeze(-1)
        else:
            scores = query @ keys.transpose(1, 2)
        scores = scores.masked_fill(~mask.bool()[:, None, :], torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1)
        return weights @ values, weights


class SessionRnnDecoder(nn.Module):
    """A GRU/LSTM decoder; each step attends to the source and makes Luong's attentional vector
    tanh(W [state; context]), which feeds the output layer and, with input feeding, the next step."""

    def __init__(self, config: SessionRnnConfig):
        super().__init__()
        self.config = config
        rnn_input = config.embedding_size + (config.hidden_size if config.input_feeding else 0)
        self.rnn = _rnn(config, rnn_input, bidirectional=False)
        self.attention = SessionRnnAttention(config) if config.attention_type != "none" else None
        context = config.encoder_output_size if self.attention is not None else 0
        self.attention_layer = nn.Linear(config.hidden_size + context, config.hidden_size)
        if config.init_decoder == "bridge":
            self.bridge = nn.Linear(config.encoder_output_size, config.hidden_size)
        self.dropout = Dropout(config.dropout)

    def initial_state(
        self, encoder_hidden_states: torch.Tensor, encoder_pooled: torch.Tensor
    ) -> SessionRnnState:
        batch = encoder_pooled.shape[0]
        if self.config.init_decoder == "bridge":
            first = torch.tanh(self.bridge(encoder_pooled))
        else:
            first = encoder_pooled.new_zeros(batch, self.config.hidden_size)
        hidden = first[:, None].expand(batch, self.config.num_layers, -1).contiguous()
        return SessionRnnState(
            hidden=hidden,
            # As JoeyNMT: the LSTM memory cell starts from the same bridge output as the hidden state.
            cell=hidden if self.config.cell_type == "lstm" else None,
            attentional=encoder_pooled.new_zeros(batch, self.config.hidden_size),
            keys=self.attention.project_keys(encoder_hidden_states) if self.attention is not None else None,
        )

    def _attentional(
        self, rnn_outputs, keys, encoder_hidden_states, encoder_attention_mask, dropout_mask=None
    ):
        """rnn_outputs (B, T, H) → attentional vectors (B, T, H), attention weights (B, T, S) or None.

        keys: the projected keys (`state.keys`, (B, S, H|K)).

        dropout_mask: (B, T, H [+ K]) scaled keep-mask drawn in advance (the input-feeding loop draws one for
        all steps), or None for `self.dropout`."""
        if self.attention is None:
            features, weights = rnn_outputs, None
        else:
            context, weights = self.attention(
                rnn_outputs, keys, encoder_hidden_states, encoder_attention_mask
            )
            features = torch.cat([rnn_outputs, context], dim=-1)
        features = self.dropout(features) if dropout_mask is None else features * dropout_mask
        return torch.tanh(self.attention_layer(features)), weights

    def _step_dropout_masks(self, reference: torch.Tensor, steps: int) -> torch.Tensor | None:
        """Scaled dropout keep-masks for every step of the input-feeding loop, (B, T, width), drawn at once
        (one random call instead of one per step); None when dropout is off."""
        p = self.dropout.p
        if not self.training or p == 0:
            return None
        shape = (reference.shape[0], steps, self.attention_layer.in_features)
        return dropout_keep_mask(torch.Size(shape), p, reference.dtype, reference.device)

    def _input_feeding_loop(
        self, inputs_embeds, encoder_hidden_states, encoder_attention_mask, state, hx, lengths
    ):
        """One RNN step per target token, each fed the previous attentional vector.

        With `lengths` ((B,) steps that matter per sequence), the batch is sorted by length and step t runs
        only the sequences longer than t, as a packed sequence does; attentional vectors and attention weights
        are zero beyond a sequence's length, and its state is the one after its own last step. Returns
        (B, T, H), (B, T, S) or None, the last attentional vectors (B, H) and the RNN state."""
        batch, steps = inputs_embeds.shape[:2]
        lstm = self.config.cell_type == "lstm"
        masks = self._step_dropout_masks(inputs_embeds, steps)
        last, keys = state.attentional, state.keys
        if lengths is None:
            active = [batch] * steps
        else:
            lengths, order = lengths.clamp(min=1).sort(descending=True)  # every step runs at least one row
            valid = lengths[:, None] > torch.arange(steps, device=lengths.device)  # (B sorted, T)
            active = valid.sum(dim=0).tolist()  # sequences still running at each step

            def rows(tensor, dim=0):
                return None if tensor is None else tensor.index_select(dim, order)

            inputs_embeds, encoder_hidden_states, encoder_attention_mask, keys, last, masks = (
                rows(t)
                for t in (inputs_embeds, encoder_hidden_states, encoder_attention_mask, keys, last, masks)
            )
            hx = tuple(rows(h, 1) for h in hx) if lstm else rows(hx, 1)

        def first_rows(h, n):  # (layers, B, H) → its first n sequences
            return tuple(part[:, :n].contiguous() for part in h) if lstm else h[:, :n].contiguous()

        # split, not a slice per step: the backward of T slices would write T full-size gradients.
        step_inputs = inputs_embeds.split(1, dim=1)  # T × (B, 1, E)
        step_masks = masks.split(1, dim=1) if masks is not None else [None] * steps
        # Keys, encoder states and mask for each number of running sequences, sliced once per count.
        counts = tuple(sorted(set(active), reverse=True))
        prefixes = [
            [None] * len(counts) if t is None else _Prefixes.apply(t, counts)
            for t in (keys, encoder_hidden_states, encoder_attention_mask)
        ]
        sources = dict(zip(counts, zip(*prefixes, strict=True), strict=True))
        outputs, step_weights, finished, running = [], [], [], batch
        for step_input, step_mask, n in zip(step_inputs, step_masks, active, strict=True):
            if n < running:  # sequences n..running-1 are done: keep their state, run the others on
                finished.append(
                    (tuple(part[:, n:running] for part in hx) if lstm else hx[:, n:running], last[n:])
                )
                hx, last, running = first_rows(hx, n), last[:n], n
            rnn_input = torch.cat([step_input[:n], last[:, None]], dim=-1)
            rnn_output, hx = self.rnn(rnn_input, hx)
            step, step_weight = self._attentional(
                rnn_output, *sources[n], None if step_mask is None else step_mask[:n]
            )
            last = step[:, 0]
            outputs.append(last)
            if step_weight is not None:
                step_weights.append(step_weight[:, 0])
        if lengths is None:
            attentional = torch.stack(outputs, dim=1)
            weights = torch.stack(step_weights, dim=1) if self.attention is not None else None
            return attentional, weights, last, hx
        # Packed (time-major) outputs → their (row, step) places in a zero (B, T, ·) grid, in one write.
        step_index, row_index = valid.t().nonzero(as_tuple=True)
        flat = order[row_index] * steps + step_index

        def scatter(packed: list) -> torch.Tensor:
            values = torch.cat(packed)
            grid = values.new_zeros(batch * steps, values.shape[-1]).index_put((flat,), values)
            return grid.view(batch, steps, -1)

        attentional = scatter(outputs)
        weights = scatter(step_weights) if self.attention is not None else None
        # Final states: the running sequences, then those that finished, latest first (sorted order).
        inverse = order.argsort()
        last = torch.cat([last, *[piece for _, piece in reversed(finished)]]).index_select(0, inverse)
        if lstm:
            hx = tuple(
                torch.cat([hx[i], *[h[i] for h, _ in reversed(finished)]], dim=1).index_select(1, inverse)
                for i in range(2)
            )
        else:
            hx = torch.cat([hx, *[h for h, _ in reversed(finished)]], dim=1).index_select(1, inverse)
        return attentional, weights, last, hx

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        state: SessionRnnState,
        lengths: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, SessionRnnState]:
        """
        inputs_embeds: (B, T, E) target embeddings; encoder_hidden_states: (B, S, K); encoder_attention_mask:
        (B, S); state: from `initial_state` or the previous call; lengths: (B,) number of leading steps
        whose outputs are used (with input feeding, later steps of a sequence are skipped and give zeros;
        the returned state is then each sequence's after its own last step).

        Returns attentional vectors (B, T, H), attention weights (B, T, S) (None without attention) and the
        state after the last step.
        """
        inputs_embeds = self.dropout(inputs_embeds)
        lstm = self.config.cell_type == "lstm"
        hx = state.hidden.transpose(0, 1).contiguous()
        if lstm:
            hx = (hx, state.cell.transpose(0, 1).contiguous())
        if not self.config.input_feeding:
            # No step depends on the previous attentional vector: one RNN call for the whole target.
            rnn_outputs, hx = self.rnn(inputs_embeds, hx)
            attentional, weights = self._attentional(
                rnn_outputs, state.keys, encoder_hidden_states, encoder_attention_mask
            )
            last = attentional[:, -1]
        else:
            attentional, weights, last, hx = self._input_feeding_loop(
                inputs_embeds, encoder_hidden_states, encoder_attention_mask, state, hx, lengths
            )
        hidden, cell = (hx[0], hx[1]) if lstm else (hx, None)
        new_state = SessionRnnState(
            hidden=hidden.transpose(0, 1),
            cell=cell.transpose(0, 1) if lstm else None,
            attentional=last,
            keys=state.keys,
        )
        return attentional, weights, new_state


def _encoder_outputs(encoder_outputs) -> BaseModelOutputWithPooling:
    if isinstance(encoder_outputs, BaseModelOutputWithPooling):
        return encoder_outputs
    return BaseModelOutputWithPooling(last_hidden_state=encoder_outputs[0], pooler_output=encoder_outputs[1])


class SessionRnnModel(SessionRnnPreTrainedModel):
    """Encoder + attentional decoder; returns the decoder's attentional vectors as `last_hidden_state`.
    Source and target share one vocabulary and one embedding matrix (`encoder.embed_tokens`)."""

    def __init__(self, config: SessionRnnConfig):
        super().__init__(config)
        self.encoder = SessionRnnEncoder(config)
        self.decoder = SessionRnnDecoder(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.encoder.embed_tokens

    def set_input_embeddings(self, value):
        self.encoder.embed_tokens = value

    def get_encoder(self, modality=None):
        return self.encoder

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        encoder_outputs: BaseModelOutputWithPooling | tuple | None = None,
        cache: SessionRnnState | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        decoder_lengths: torch.Tensor | None = None,
        **kwargs,
    ) -> Seq2SeqModelOutput:
        """
        input_ids, attention_mask: (B, S) source; decoder_input_ids: (B, T) target inputs, starting with
        `decoder_start_token_id` (or only the newest token when `cache` is given, as `generate()` does);
        encoder_outputs: reuse an encoding; cache: the decoder state returned with `use_cache=True`;
        decoder_lengths: (B,) target steps whose outputs are used (the training head passes them): with input
        feeding, each sequence's later steps are skipped and `last_hidden_state` is zero there.

        Without `decoder_input_ids`, the source shifted right is used (as BART does), so the bare model runs
        on `input_ids` alone.

        Returns `last_hidden_state` (B, T, H), `cache`, with `output_attentions=True` `cross_attentions` =
        ((B, 1, T, S),): one "head" of source-attention weights per target token, and with
        `output_hidden_states=True` `decoder_hidden_states` = (target embeddings (B, T, E),
        last_hidden_state).
        """
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if encoder_outputs is None:
            if input_ids is None:
                raise ValueError("give input_ids (the source) or encoder_outputs")
            encoder_outputs = self.encoder(
                input_ids, attention_mask=attention_mask, output_hidden_states=output_hidden_states
            )
        encoder_outputs = _encoder_outputs(encoder_outputs)
        source_states = encoder_outputs.last_hidden_state
        if attention_mask is None:
            attention_mask = torch.ones(
                source_states.shape[:2], dtype=torch.long, device=source_states.device
            )
        if decoder_input_ids is None:
            if input_ids is None:
                raise ValueError("give decoder_input_ids (or labels to the ForConditionalGeneration head)")
            decoder_input_ids = shift_tokens_right(
                input_ids, self.config.pad_token_id, self.config.decoder_start_token_id
            )
        _check_ids(decoder_input_ids, "decoder_input_ids", self.config.vocab_size)
        if cache is None:
            cache = self.decoder.initial_state(source_states, encoder_outputs.pooler_output)
        decoder_embeds = self.encoder.embed_tokens(decoder_input_ids)
        attentional, weights, new_state = self.decoder(
            decoder_embeds, source_states, attention_mask, cache, lengths=decoder_lengths
        )
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        output = Seq2SeqModelOutput(
            last_hidden_state=attentional,
            cache=new_state if use_cache else None,
            decoder_hidden_states=(decoder_embeds, attentional) if output_hidden_states else None,
            cross_attentions=(weights[:, None],) if output_attentions and weights is not None else None,
            encoder_last_hidden_state=source_states,
            encoder_hidden_states=encoder_outputs.hidden_states,
        )
        return output if return_dict is not False else output.to_tuple()


class SessionRnnForConditionalGeneration(SessionRnnPreTrainedModel, GenerationMixin):
    """`SessionRnnModel` + an output layer tied to the embeddings; `labels` → loss; works with `generate()`
    (greedy, beam search, sampling) and `Seq2SeqTrainer`."""

    _tied_weights_keys = {"lm_head.weight": "model.encoder.embed_tokens.weight"}

    def __init__(self, config: SessionRnnConfig):
        super().__init__(config)
        self.model = SessionRnnModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # The cache is our own recurrent state, not a key/value cache: generate must not build a DynamicCache.
        return False

    def _reorder_cache(self, cache: SessionRnnState, beam_idx: torch.LongTensor) -> SessionRnnState:
        """Follow the beams that survived this step: pick their states (all batch-first) by `beam_idx`."""
        return SessionRnnState(*(None if t is None else t.index_select(0, beam_idx) for t in cache))

    def get_encoder(self, modality=None):
        return self.model.encoder

    def get_input_embeddings(self):
        return self.model.encoder.embed_tokens

    def set_input_embeddings(self, value):
        self.model.encoder.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        encoder_outputs: BaseModelOutputWithPooling | tuple | None = None,
        cache: SessionRnnState | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        num_items_in_batch: int | torch.Tensor | None = None,
        **kwargs,
    ) -> Seq2SeqLMOutput:
        """
        As `SessionRnnModel.forward`, plus labels: (B, T) target ids, -100 where ignored. Without
        `decoder_input_ids`, they are the labels shifted right. The loss is the token-level cross-entropy
        (label smoothing from the config), summed and divided by `num_items_in_batch` when Trainer gives it
        (exact under gradient accumulation), else by the number of target tokens.

        Returns `logits` (B, T, V), `loss`, `cache`, `cross_attentions`. In training mode with labels and
        `config.sparse_output_layer`, `logits` are only the labelled positions: (num_labelled, V), row-major.
        """
        sparse = labels is not None and self.training and self.config.sparse_output_layer
        decoder_lengths = None
        if labels is not None:
            labelled = labels != -100
            _check_ids(labels[labelled], "labels", self.config.vocab_size)
            if decoder_input_ids is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
            use_cache = False
            if sparse and self.config.input_feeding:
                # Labels padded at the end (the usual case): the decoder stops each sequence at its last label.
                lengths, right_padded = _prefix_lengths(labelled)
                decoder_lengths = lengths if right_padded else None
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            encoder_outputs=encoder_outputs,
            cache=cache,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            decoder_lengths=decoder_lengths,
        )
        decoder_states, targets = outputs.last_hidden_state, None
        if sparse:
            # Padded target positions carry no loss: skip them in the output layer, the largest matmul.
            decoder_states, targets = decoder_states[labelled], labels[labelled]
        elif labels is not None:
            targets = labels.flatten()
        logits = self.lm_head(decoder_states)  # (B, T, V), or (num_labelled, V) when sparse
        loss = None
        if labels is not None:
            denominator = num_items_in_batch if num_items_in_batch is not None else (labels != -100).sum()
            if sparse:  # every row labelled (checked above): the cross-entropy that reuses its buffers
                loss = _LabelledCrossEntropy.apply(logits, targets, float(self.config.label_smoothing))
            else:
                loss = F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]).float(),
                    targets,
                    ignore_index=-100,
                    reduction="sum",
                    label_smoothing=float(self.config.label_smoothing),
                )
            loss = loss / denominator
        output = Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            decoder_hidden_states=outputs.decoder_hidden_states,
            cross_attentions=outputs.cross_attentions,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_hidden_states=outputs.encoder_hidden_states,
        )
        return output if return_dict is not False else output.to_tuple()


class SessionRnnForSequenceClassification(SessionRnnPreTrainedModel):
    """The encoder, pooled ("last" final states, "mean" or "max"), dropout and a linear classifier.

    Takes the same inputs as BERT's classification head (`token_type_ids` is accepted and ignored), and
    `problem_type` ("regression", "single_label_classification", "multi_label_classification") as BERT does.
    """

    def __init__(self, config: SessionRnnConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.encoder = SessionRnnEncoder(config)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.dropout
        self.dropout = Dropout(dropout)
        self.classifier = nn.Linear(config.encoder_output_size, config.num_labels)
        self.post_init()

    def get_input_embeddings(self):
        return self.encoder.embed_tokens

    def set_input_embeddings(self, value):
        self.encoder.embed_tokens = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """input_ids, attention_mask: (B, S); labels: (B,) class ids or (B, num_labels) floats.
        Returns `logits` (B, num_labels) and `loss`."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        encoded = self.encoder(
            input_ids, attention_mask=attention_mask, output_hidden_states=output_hidden_states
        )
        mask = attention_mask.bool()[:, :, None]
        if self.config.classifier_pooling == "last":
            pooled = encoded.pooler_output
        elif self.config.classifier_pooling == "mean":
            pooled = (encoded.last_hidden_state * mask).sum(1) / mask.sum(1)
        else:
            pooled = encoded.last_hidden_state.masked_fill(
                ~mask, torch.finfo(encoded.last_hidden_state.dtype).min
            )
            pooled = pooled.max(dim=1).values
        logits = self.classifier(self.dropout(pooled))

        loss = None
        if labels is not None:
            if self.config.problem_type is None:
                if self.num_labels == 1:
                    self.config.problem_type = "regression"
                elif labels.dtype in (torch.long, torch.int):
                    self.config.problem_type = "single_label_classification"
                else:
                    self.config.problem_type = "multi_label_classification"
            if self.config.problem_type == "regression":
                loss = F.mse_loss(logits.squeeze(-1), labels.squeeze(-1).to(logits.dtype))
            elif self.config.problem_type == "single_label_classification":
                loss = F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
            else:
                loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        output = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=encoded.hidden_states)
        return output if return_dict is not False else output.to_tuple()


__all__ = [
    "SessionRnnPreTrainedModel",
    "SessionRnnModel",
    "SessionRnnForConditionalGeneration",
    "SessionRnnForSequenceClassification",
]
