"""Stock transformers BERT checkpoints ↔ session_bert checkpoints.

Our parameter names are BERT's, so converting is: translate the config, move the MLM output bias (BERT keeps it
twice, as `cls.predictions.bias` tied to `cls.predictions.decoder.bias`; we keep the decoder's), load with every
key accounted for, save, and carry the tokenizer files along. Not part of the model folder: this module may
import the rest of hf_session.
"""

import json
import shutil
from pathlib import Path

import transformers
from transformers import BertConfig

from ...utils import atomic_output_dir
from . import modeling_session_bert
from .configuration_session_bert import SessionBertConfig

BERT_TO_SESSION = {
    "BertModel": "SessionBertModel",
    "BertForPreTraining": "SessionBertForPreTraining",
    "BertForMaskedLM": "SessionBertForMaskedLM",
    "BertForNextSentencePrediction": "SessionBertForNextSentencePrediction",
    "BertForSequenceClassification": "SessionBertForSequenceClassification",
    "BertForTokenClassification": "SessionBertForTokenClassification",
    "BertForQuestionAnswering": "SessionBertForQuestionAnswering",
    "BertForMultipleChoice": "SessionBertForMultipleChoice",
}
SESSION_TO_BERT = {session: bert for bert, session in BERT_TO_SESSION.items()}

# Hyper-parameters both configs share, under the same names.
SHARED_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "initializer_range",
    "layer_norm_eps",
    "pad_token_id",
    "classifier_dropout",
    "tie_word_embeddings",
)
LABEL_FIELDS = ("id2label", "label2id", "problem_type")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
)


def check_tokenizer_fits(tokenizer, config) -> None:
    """Raise ValueError if `tokenizer` can produce ids the model's embeddings (`config.vocab_size`) lack."""
    if len(tokenizer) > config.vocab_size:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's vocab_size is {config.vocab_size}: "
            f"ids ≥ {config.vocab_size} have no embedding; use the tokenizer the model was trained with "
            f"or a config with vocab_size ≥ {len(tokenizer)}"
        )


def session_config_from_bert(bert_config: BertConfig) -> SessionBertConfig:
    """The SessionBertConfig of a transformers BertConfig; BERT variants we do not implement are refused."""
    if getattr(bert_config, "is_decoder", False) or getattr(bert_config, "add_cross_attention", False):
        raise ValueError("decoder BERTs (is_decoder / add_cross_attention) are not supported; only encoders")
    position_type = getattr(bert_config, "position_embedding_type", "absolute")
    if position_type != "absolute":
        raise ValueError(f"only absolute position embeddings are supported, got {position_type!r}")
    fields = {name: getattr(bert_config, name) for name in SHARED_FIELDS + LABEL_FIELDS}
    return SessionBertConfig(**fields)


def bert_config_from_session(config: SessionBertConfig) -> BertConfig:
    """The transformers BertConfig of a SessionBertConfig (the speed options have no BERT counterpart)."""
    return BertConfig(**{name: getattr(config, name) for name in SHARED_FIELDS + LABEL_FIELDS})


def state_dict_to_session(state_dict: dict) -> dict:
    """BERT names → ours: the MLM output bias lives only in the decoder."""
    state_dict = dict(state_dict)
    if "cls.predictions.bias" in state_dict:
        state_dict["cls.predictions.decoder.bias"] = state_dict.pop("cls.predictions.bias")
    return state_dict


def state_dict_to_bert(state_dict: dict) -> dict:
    """Our names → BERT's: the MLM output bias is both `cls.predictions.bias` and the decoder's bias."""
    state_dict = dict(state_dict)
    if "cls.predictions.decoder.bias" in state_dict:
        state_dict["cls.predictions.bias"] = state_dict["cls.predictions.decoder.bias"]
    return state_dict


def _load_complete(model_class, path):
    """from_pretrained, refusing a checkpoint that lacks weights the class needs (they would be random)."""
    model, info = model_class.from_pretrained(path, output_loading_info=True)
    if info["missing_keys"]:
        raise ValueError(
            f"{path} has no weights for {sorted(info['missing_keys'])[:5]} "
            f"({len(info['missing_keys'])} missing) needed by {model_class.__name__}"
        )
    return model


def _architecture(config, known: dict, path) -> str:
    architectures = getattr(config, "architectures", None) or []
    if len(architectures) != 1 or architectures[0] not in known:
        raise ValueError(
            f"{path}: config.json names architectures {architectures}; expected one of {sorted(known)}"
        )
    return architectures[0]


def _copy_tokenizer_files(src: Path, out: Path) -> None:
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, out / name)


def _check_source(src, model_type: str) -> Path:
    """Read config.json first: `XConfig.from_pretrained` would silently relabel another model type as X."""
    src = Path(src)
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"{str(src)!r} is not a checkpoint folder (no config.json)")
    found = json.loads((src / "config.json").read_text(encoding="utf-8")).get("model_type")
    if found != model_type:
        raise ValueError(f"{str(src)!r}: expected model_type {model_type!r} in config.json, got {found!r}")
    return src


def convert_from_bert(src, out, overwrite: bool = False) -> Path:
    """Turn a transformers BERT checkpoint folder (BertModel, BertForPreTraining, BertForMaskedLM, ... layout)
    into a session_bert checkpoint with the matching head, tokenizer files included. Returns `out`."""
    src = _check_source(src, "bert")
    bert_config = BertConfig.from_pretrained(src)
    architecture = _architecture(bert_config, BERT_TO_SESSION, src)
    config = session_config_from_bert(bert_config)
    bert_model = _load_complete(getattr(transformers, architecture), src)
    model = getattr(modeling_session_bert, BERT_TO_SESSION[architecture])(config)
    model.load_state_dict(state_dict_to_session(bert_model.state_dict()), strict=True)
    return _save(model, src, out, overwrite)


def convert_to_bert(src, out, overwrite: bool = False) -> Path:
    """Turn a session_bert checkpoint into a stock transformers BERT one (no remote code needed to load it)."""
    src = _check_source(src, SessionBertConfig.model_type)
    config = SessionBertConfig.from_pretrained(src)
    architecture = _architecture(config, SESSION_TO_BERT, src)
    model = _load_complete(getattr(modeling_session_bert, architecture), src)
    bert_model = getattr(transformers, SESSION_TO_BERT[architecture])(bert_config_from_session(config))
    bert_model.load_state_dict(state_dict_to_bert(model.state_dict()), strict=True)
    return _save(bert_model, src, out, overwrite)


def _save(model, src: Path, out, overwrite: bool) -> Path:
    if (src / "tokenizer_config.json").is_file():
        check_tokenizer_fits(transformers.AutoTokenizer.from_pretrained(src), model.config)
    with atomic_output_dir(out, overwrite) as tmp:
        model.save_pretrained(tmp)
        _copy_tokenizer_files(src, tmp)
    return Path(out)
