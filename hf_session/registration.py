"""Registration of our configs and models with transformers' Auto classes."""

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
