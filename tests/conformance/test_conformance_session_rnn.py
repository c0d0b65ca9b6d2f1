"""transformers' own common model tests on session_rnn: GRU and LSTM, seq2seq and classifier.

Five test classes: {GRU, LSTM} × {seq2seq (`SessionRnnModel` + `SessionRnnForConditionalGeneration`,
`is_encoder_decoder=True`), classifier (`SessionRnnForSequenceClassification`)}, and the seq2seq's other
decoder path (Luong "dot" attention, no input feeding). The RNN has attention only from the decoder to the
source (no self-attention layers whose weights the common tests inspect), so `has_attentions = False`;
the cross-attention weights are checked by `tests/test_session_rnn.py`.
"""

import unittest

import conformance_harness
import torch

from hf_session.models.session_rnn import (
    SessionRnnConfig,
    SessionRnnForConditionalGeneration,
    SessionRnnForSequenceClassification,
    SessionRnnModel,
)

upstream = conformance_harness.upstream_or_skip()
ids_tensor = upstream.modeling.ids_tensor

# Ids below this are the special tokens ([PAD]=0 [UNK]=1 [CLS]/bos=2 [SEP]/eos=3 [MASK]=4): random inputs
# stay clear of them so that `input_ids != pad_token_id` (the model's default mask) matches the real one.
FIRST_ORDINARY_ID = 5

NOT_APPLICABLE_SEQ2SEQ = {
    "test_generation_tester_mixin_inheritance": (
        "upstream's GenerationTesterMixin is not in the sdist; our generate() checks (cached == uncached "
        "greedy, beams == greedy, beam scores == teacher-forced log-probabilities) are in tests/test_session_rnn.py"
    ),
    "test_training_overfit": (
        "its final check prompts generate() with the first training token and expects the training sequence "
        "back, which assumes a decoder-only model: a seq2seq model reads the prompt as its source and starts "
        "its output with decoder_start_token_id"
    ),
}


class SessionRnnModelTester:
    """A tiny GRU/LSTM config and right-padded inputs (batch 13, seq 7, vocab 99, hidden 32, 2 layers)."""

    def __init__(
        self,
        parent,
        cell_type,
        is_encoder_decoder,
        batch_size=13,
        seq_length=7,
        is_training=True,
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        dropout=0.1,
        num_labels=3,
        config_overrides=None,
    ):
        self.parent = parent
        self.cell_type = cell_type
        self.is_encoder_decoder = is_encoder_decoder
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.is_training = is_training
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.dropout = dropout
        self.num_labels = num_labels
        self.config_overrides = config_overrides or {}
        # A stacked nn.GRU/nn.LSTM exposes only its top layer's outputs: hidden_states = (embeddings, top layer).
        self.expected_num_hidden_layers = 2

    def get_config(self):
        return SessionRnnConfig(
            vocab_size=self.vocab_size,
            embedding_size=self.hidden_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_hidden_layers,
            cell_type=self.cell_type,
            dropout=self.dropout,
            is_encoder_decoder=self.is_encoder_decoder,
            num_labels=self.num_labels,
            **self.config_overrides,
        )

    def prepare_config_and_inputs_for_common(self):
        """input_ids, attention_mask (B, S) right-padded with at least one token per row; for the seq2seq
        also decoder_input_ids (B, T) starting with decoder_start_token_id, T = S."""
        config = self.get_config()
        shape = [self.batch_size, self.seq_length]
        input_ids = ids_tensor(shape, self.vocab_size - FIRST_ORDINARY_ID) + FIRST_ORDINARY_ID
        lengths = ids_tensor([self.batch_size], self.seq_length) + 1
        # One full-length row, so the padded batch is exactly seq_length wide.
        lengths[0] = self.seq_length
        attention_mask = (torch.arange(self.seq_length)[None, :] < lengths[:, None]).long()
        inputs = {
            "input_ids": input_ids.masked_fill(attention_mask == 0, config.pad_token_id),
            "attention_mask": attention_mask,
        }
        if self.is_encoder_decoder:
            decoder_input_ids = ids_tensor(shape, self.vocab_size - FIRST_ORDINARY_ID) + FIRST_ORDINARY_ID
            decoder_input_ids[:, 0] = config.decoder_start_token_id
            inputs["decoder_input_ids"] = decoder_input_ids
        return config, inputs


class SessionRnnConformance(
    conformance_harness.ConformanceFixtures,
    upstream.modeling.ModelTesterMixin,
    upstream.training.TrainingTesterMixin,
):
    """The common tests for one cell type and one kind of model; the concrete classes below pick them."""

    cell_type = "gru"
    config_overrides: dict = {}
    is_encoder_decoder = True
    has_attentions = False
    # Upstream runs this only for models added since 2023 (by the copyright year of the config file); it is
    # the test that catches GRU weights left uninitialised by from_pretrained.
    test_can_init_all_missing_weights_before_2023 = True

    mapping_model_type = SessionRnnConfig.model_type
    mapping_names = {
        "MODEL_MAPPING_NAMES": "SessionRnnModel",
        "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES": "SessionRnnForConditionalGeneration",
        "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES": "SessionRnnForSequenceClassification",
    }

    def setUp(self):
        self.model_tester = SessionRnnModelTester(
            self, self.cell_type, self.is_encoder_decoder, config_overrides=self.config_overrides
        )
        # The common properties ConfigTester checks, under the names our config uses.
        self.config_tester = upstream.configuration.ConfigTester(
            self,
            config_class=SessionRnnConfig,
            common_properties=["hidden_size", "embedding_size", "num_layers"],
            hidden_size=37,
            embedding_size=37,  # tied output layer: must equal hidden_size
            cell_type=self.cell_type,
        )

    def test_config(self):
        self.config_tester.run_common_tests()


@conformance_harness.not_applicable(NOT_APPLICABLE_SEQ2SEQ)
class SessionRnnGruSeq2SeqConformanceTest(SessionRnnConformance, unittest.TestCase):
    all_model_classes = (SessionRnnModel, SessionRnnForConditionalGeneration)


@conformance_harness.not_applicable(NOT_APPLICABLE_SEQ2SEQ)
class SessionRnnLstmSeq2SeqConformanceTest(SessionRnnConformance, unittest.TestCase):
    all_model_classes = (SessionRnnModel, SessionRnnForConditionalGeneration)
    cell_type = "lstm"


@conformance_harness.not_applicable(NOT_APPLICABLE_SEQ2SEQ)
class SessionRnnLuongSeq2SeqConformanceTest(SessionRnnConformance, unittest.TestCase):
    """The other decoder path: Luong "dot" attention over a unidirectional encoder, no input feeding (the
    whole target in one RNN call), decoder started from zeros."""

    all_model_classes = (SessionRnnModel, SessionRnnForConditionalGeneration)
    config_overrides = {
        "attention_type": "dot",
        "bidirectional": False,
        "input_feeding": False,
        "init_decoder": "zeros",
    }


class SessionRnnClassifierConformance(SessionRnnConformance):
    all_model_classes = (SessionRnnForSequenceClassification,)
    is_encoder_decoder = False
    # Upstream's 64 tokens cost 27 s for the GRU (torch's CPU GRU backward is ~10x slower than its LSTM);
    # 16 tokens still leave 300 steps of a real overfit to check, in a quarter of the time.
    training_overfit_seq_length = 16

    def _create_text_training_batch(self, batch_size, seq_length, vocab_size):
        # Upstream's batch is a language-modelling one (labels = input_ids). A classifier needs one label
        # per sequence: row i is the training pattern shifted by i tokens, with label i.
        pattern = torch.arange(seq_length) % (vocab_size - FIRST_ORDINARY_ID) + FIRST_ORDINARY_ID
        input_ids = torch.stack([pattern.roll(row) for row in range(batch_size)])
        return {"input_ids": input_ids, "labels": torch.arange(batch_size) % self.model_tester.num_labels}


class SessionRnnGruClassifierConformanceTest(SessionRnnClassifierConformance, unittest.TestCase):
    pass


class SessionRnnLstmClassifierConformanceTest(SessionRnnClassifierConformance, unittest.TestCase):
    cell_type = "lstm"
