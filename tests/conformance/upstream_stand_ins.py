"""Stand-ins for the three modules that transformers' common test files import but its sdist does not ship.

`conformance_harness.load_upstream` installs them in `sys.modules` under the names the upstream files
import (`.exporters.test_export`, `.generation.test_utils`, `.utils.test_configuration_utils`).
"""

import dataclasses

from transformers import PreTrainedConfig


class ExportTesterMixin:
    """Upstream's `torch.export` tests live here; `ModelTesterMixin` only needs the base class."""


class GenerationTesterMixin:
    """Upstream's generate() tests live here; our generate() checks are in the session_rnn tests.

    `test_generation_tester_mixin_inheritance` asserts a tester does NOT inherit this when no class can
    generate, which stays meaningful with an empty class.
    """


# One non-default value for every field of `PreTrainedConfig` that a user sets (see
# `test_config_common_kwargs_cover_pretrained_config` for the check against the installed transformers),
# plus `output_attentions`, a property there. `check_config_arguments_init` passes these to a config class
# and expects each one back, so a config that swallows or rewrites a common field fails.
config_common_kwargs = {
    "architectures": ["BertModel"],
    "output_hidden_states": True,
    "output_attentions": True,
    "return_dict": False,
    "dtype": "float16",
    "chunk_size_feed_forward": 5,
    "is_encoder_decoder": True,
    "id2label": {0: "label"},
    "label2id": {"label": 0},
    "problem_type": "regression",
}

# `transformers_version` is written by save_pretrained, never set by a user.
NOT_USER_SET_FIELDS = {"transformers_version"}


def pretrained_config_fields() -> dict:
    """Name → default of every dataclass field of the installed `PreTrainedConfig`."""
    return {field.name: field.default for field in dataclasses.fields(PreTrainedConfig)}
