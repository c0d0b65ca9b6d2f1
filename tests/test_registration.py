import pytest
import transformers

from hf_session import (
    SessionBertConfig,
    SessionBertPreTrainedModel,
    SessionRnnConfig,
    SessionRnnPreTrainedModel,
)
from hf_session.registration import declared_heads


@pytest.mark.parametrize(
    "base, config_class, expected",
    [(SessionBertPreTrainedModel, SessionBertConfig, 8), (SessionRnnPreTrainedModel, SessionRnnConfig, 3)],
)
def test_every_declared_head_is_registered_with_its_auto_class(base, config_class, expected):
    heads = declared_heads(base)
    assert len(heads) == expected
    assert transformers.AutoConfig.for_model(config_class.model_type).__class__ is config_class
    for auto_name, model_class in heads.items():
        assert issubclass(model_class, base)
        assert getattr(transformers, auto_name)._model_mapping[config_class] is model_class
        assert model_class._auto_class == auto_name  # save_pretrained copies the code and writes auto_map
