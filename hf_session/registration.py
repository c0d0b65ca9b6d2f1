"""Registration of our configs and models with transformers' Auto classes."""

import sys

import transformers


def register_family(config_class, model_classes: dict) -> None:
    """Register `config_class` and each model class with the named Auto class.

    `model_classes` maps an Auto class name (e.g. ``"AutoModelForMaskedLM"``) to our model class.
    `register_for_auto_class` makes `save_pretrained` copy the code and write `auto_map`, so that the
    checkpoint also loads with `trust_remote_code=True` where hf_session is not installed.
    """
    transformers.AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    config_class.register_for_auto_class()
    for auto_name, model_class in model_classes.items():
        getattr(transformers, auto_name).register(config_class, model_class, exist_ok=True)
        model_class.register_for_auto_class(auto_name)


def declared_heads(pretrained_class) -> dict:
    """Auto class name → model class, read from the `_auto_heads` of a family's `PreTrainedModel` base.

    The modeling file declares its heads once (it writes them into every checkpoint's `auto_map`); the
    registration reads the same declaration instead of listing the heads again.
    """
    module = sys.modules[pretrained_class.__module__]
    return {auto: getattr(module, name) for auto, name in pretrained_class._auto_heads.items()}
