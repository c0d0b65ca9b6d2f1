"""A tiny BERT tester in the style of transformers' `BertModelTester`, for any BERT-shaped config class.

The same tester drives transformers' own BERT classes (the calibration of the harness) and ours, so a
difference in results is a difference in the models, not in the test set-up.
"""

import conformance_harness
import torch

upstream = conformance_harness.upstream_or_skip()
ids_tensor = upstream.modeling.ids_tensor
random_attention_mask = upstream.modeling.random_attention_mask


class BertStyleModelTester:
    """Builds a tiny config and random inputs for `ModelTesterMixin` (batch 13, seq 7, vocab 99, hidden 32)."""

    def __init__(
        self,
        parent,
        config_class,
        batch_size=13,
        seq_length=7,
        is_training=True,
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=512,
        type_vocab_size=16,
        type_sequence_label_size=2,
        initializer_range=0.02,
        num_labels=3,
        num_choices=4,
        config_overrides=None,
    ):
        self.parent = parent
        self.config_class = config_class
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.is_training = is_training
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.type_sequence_label_size = type_sequence_label_size
        self.initializer_range = initializer_range
        self.num_labels = num_labels
        self.num_choices = num_choices
        self.config_overrides = config_overrides or {}

    def get_config(self):
        return self.config_class(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            hidden_act=self.hidden_act,
            hidden_dropout_prob=self.hidden_dropout_prob,
            attention_probs_dropout_prob=self.attention_probs_dropout_prob,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            initializer_range=self.initializer_range,
            **self.config_overrides,
        )

    def prepare_config_and_inputs(self):
        """Config, inputs of shape (batch, seq_len), and labels for each kind of head."""
        shape = [self.batch_size, self.seq_length]
        inputs = {
            "input_ids": ids_tensor(shape, self.vocab_size),
            "token_type_ids": ids_tensor(shape, self.type_vocab_size),
            "attention_mask": random_attention_mask(shape),
        }
        labels = {
            "sequence_labels": ids_tensor([self.batch_size], self.type_sequence_label_size),
            "token_labels": ids_tensor(shape, self.num_labels),
            "choice_labels": ids_tensor([self.batch_size], self.num_choices),
        }
        return self.get_config(), inputs, labels

    def prepare_config_and_inputs_for_common(self):
        config, inputs, _ = self.prepare_config_and_inputs()
        return config, inputs


class BertStyleTestMixin:
    """What upstream's BERT test adds to the common tests, for any BERT-shaped family.

    The test class sets `head_classes`: role → class, for the roles "model", "pretraining", "masked_lm",
    "next_sentence", "sequence_classification", "token_classification", "question_answering" and
    "multiple_choice".
    """

    head_classes: dict = {}

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        # The common tests know no labels for a pretraining head (MLM + NSP); BERT's own test adds them.
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels and model_class is self.head_classes["pretraining"]:
            batch, seq = self.model_tester.batch_size, self.model_tester.seq_length
            inputs_dict["labels"] = torch.zeros((batch, seq), dtype=torch.long)
            inputs_dict["next_sentence_label"] = torch.zeros(batch, dtype=torch.long)
        return inputs_dict

    def _get_trainable_model_class(self):
        # The overfit test trains on labels == input_ids: the MLM head has to learn to copy its input.
        return self.head_classes["masked_lm"]

    def _run_head(self, role, num_labels=None, **inputs):
        config = self.model_tester.get_config()
        if num_labels is not None:
            config.num_labels = num_labels
        model = self.head_classes[role](config).eval()
        with torch.no_grad():
            return model(**inputs)

    def test_head_output_shapes_and_losses(self):
        """Each head's output shapes, and a loss wherever labels are given (upstream's `create_and_check_*`)."""
        tester = self.model_tester
        _, inputs, labels = tester.prepare_config_and_inputs()
        batch, seq, vocab, num_labels = (
            tester.batch_size,
            tester.seq_length,
            tester.vocab_size,
            tester.num_labels,
        )

        out = self._run_head("model", **inputs)
        self.assertEqual(out.last_hidden_state.shape, (batch, seq, tester.hidden_size))
        self.assertEqual(out.pooler_output.shape, (batch, tester.hidden_size))

        nsp_labels = labels["sequence_labels"]
        out = self._run_head(
            "pretraining", **inputs, labels=labels["token_labels"], next_sentence_label=nsp_labels
        )
        self.assertEqual(out.prediction_logits.shape, (batch, seq, vocab))
        self.assertEqual(out.seq_relationship_logits.shape, (batch, 2))
        self.assertEqual(out.loss.shape, ())

        out = self._run_head("masked_lm", **inputs, labels=labels["token_labels"])
        self.assertEqual(out.logits.shape, (batch, seq, vocab))
        # Untrained logits are near-uniform: the loss must be close to log(vocab).
        self.assertAlmostEqual(out.loss.item(), torch.log(torch.tensor(float(vocab))).item(), delta=0.5)

        out = self._run_head("next_sentence", **inputs, labels=nsp_labels)
        self.assertEqual(out.logits.shape, (batch, 2))
        self.assertEqual(out.loss.shape, ())

        out = self._run_head(
            "sequence_classification", num_labels, **inputs, labels=labels["sequence_labels"]
        )
        self.assertEqual(out.logits.shape, (batch, num_labels))
        out = self._run_head("token_classification", num_labels, **inputs, labels=labels["token_labels"])
        self.assertEqual(out.logits.shape, (batch, seq, num_labels))

        positions = labels["sequence_labels"]
        out = self._run_head(
            "question_answering", **inputs, start_positions=positions, end_positions=positions
        )
        self.assertEqual(out.start_logits.shape, (batch, seq))
        self.assertEqual(out.end_logits.shape, (batch, seq))
        self.assertEqual(out.loss.shape, ())

        choices = {
            k: v.unsqueeze(1).expand(-1, tester.num_choices, -1).contiguous() for k, v in inputs.items()
        }
        out = self._run_head("multiple_choice", **choices, labels=labels["choice_labels"])
        self.assertEqual(out.logits.shape, (batch, tester.num_choices))
        self.assertEqual(out.loss.shape, ())
