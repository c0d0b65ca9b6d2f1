"""Calibration: transformers' own eight BERT classes under transformers' own common tests.

The harness is right only if these pass clean: every skip here is the upstream suite's own (GPU,
flash-attention, DeepSpeed, features BERT lacks). The session_bert tests run the same tester on our classes.
"""

import unittest

import conformance_harness
from bert_style_tester import BertStyleModelTester, BertStyleTestMixin
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForMultipleChoice,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)

upstream = conformance_harness.upstream_or_skip()

HEAD_CLASSES = {
    "model": BertModel,
    "pretraining": BertForPreTraining,
    "masked_lm": BertForMaskedLM,
    "next_sentence": BertForNextSentencePrediction,
    "sequence_classification": BertForSequenceClassification,
    "token_classification": BertForTokenClassification,
    "question_answering": BertForQuestionAnswering,
    "multiple_choice": BertForMultipleChoice,
}


class ReferenceBertConformanceTest(
    conformance_harness.ConformanceFixtures,
    BertStyleTestMixin,
    upstream.modeling.ModelTesterMixin,
    upstream.training.TrainingTesterMixin,
    unittest.TestCase,
):
    all_model_classes = tuple(HEAD_CLASSES.values())
    head_classes = HEAD_CLASSES

    def setUp(self):
        self.model_tester = BertStyleModelTester(self, BertConfig)
        self.config_tester = upstream.configuration.ConfigTester(
            self, config_class=BertConfig, hidden_size=37
        )

    def test_config(self):
        self.config_tester.run_common_tests()
