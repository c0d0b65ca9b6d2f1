"""Translation in one line, since transformers 5.x has no `translation` pipeline any more.

    >>> translate("my-translator", ["A man is riding a bike ."], num_beams=5)
    ['Ein Mann fährt Fahrrad .']

Conventions for our WordPiece vocabularies (`hf_session.tokenization`): a source is `[CLS] tokens [SEP]`;
the decoder starts from `[CLS]` and stops at `[SEP]`, so `[CLS]` is `bos`/`decoder_start` and `[SEP]` is `eos`.
`preprocess_translation` makes Seq2SeqTrainer features that follow them; `translation_special_ids` gives
the ids to put in a `SessionRnnConfig`.
"""

import os
from collections.abc import Sequence

import torch
from transformers import AutoModelForSeq2SeqLM, PreTrainedModel

from .tokenization import load_tokenizer


def translation_special_ids(tokenizer) -> dict:
    """The config's special ids for `tokenizer`: pad, bos = decoder start = [CLS], eos = [SEP]."""
    if None in (tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id):
        raise ValueError("the tokenizer needs pad, cls and sep tokens (use hf_session.train_wordpiece)")
    return {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.cls_token_id,
        "eos_token_id": tokenizer.sep_token_id,
        "decoder_start_token_id": tokenizer.cls_token_id,
    }


def check_tokenizer(config, tokenizer) -> None:
    """Refuse a tokenizer whose special ids or size do not match the model config."""
    expected = translation_special_ids(tokenizer)
    wrong = [
        f"{name}: tokenizer {value}, config {getattr(config, name)}"
        for name, value in expected.items()
        if getattr(config, name) != value
    ]
    if wrong:
        raise ValueError(
            "the tokenizer's special ids do not match the model config (" + "; ".join(wrong) + ")"
        )
    if len(tokenizer) > config.vocab_size:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's vocab_size is {config.vocab_size}"
        )


def preprocess_translation(
    tokenizer,
    sources: Sequence[str],
    targets: Sequence[str] | None = None,
    *,
    max_source_length: int = 128,
    max_target_length: int = 128,
) -> dict:
    """Tokenize sentence pairs into `input_ids`, `attention_mask` and `labels` (lists, unpadded).

    Sources are `[CLS] tokens [SEP]`; labels are `tokens [SEP]`, which the model shifts right after
    `[CLS]` to make its decoder inputs. Use with `datasets.Dataset.map(batched=True)` and
    `DataCollatorForSeq2Seq`.
    """
    features = tokenizer(
        list(sources), truncation=True, max_length=max_source_length, return_token_type_ids=False
    )
    if targets is not None:
        pieces = tokenizer(
            list(targets), add_special_tokens=False, truncation=True, max_length=max_target_length - 1
        )
        features["labels"] = [ids + [tokenizer.sep_token_id] for ids in pieces["input_ids"]]
    return dict(features)


def load_translator(path: str | os.PathLike):
    """`(model, tokenizer)` from a folder holding both (what `save_pretrained` of each wrote)."""
    tokenizer = load_tokenizer(path)
    model = AutoModelForSeq2SeqLM.from_pretrained(path)
    check_tokenizer(model.config, tokenizer)
    return model.eval(), tokenizer


def translate(
    model: PreTrainedModel | str | os.PathLike,
    texts: str | Sequence[str],
    tokenizer=None,
    *,
    batch_size: int = 32,
    **generate_kwargs,
) -> str | list[str]:
    """Translate `texts` (one string or a list) with `model.generate(**generate_kwargs)`.

    `model` is a seq2seq model (then give `tokenizer`) or a folder holding both. Any generate() option
    passes through: `num_beams`, `length_penalty`, `do_sample`, `top_p`, `max_new_tokens`, ... Without a
    length limit, a translation may be up to 1.5 × the longest source + 10 tokens. Sentences are batched
    by length; the result keeps the input order.
    """
    if isinstance(model, (str, os.PathLike)):
        model, tokenizer = load_translator(model)
    elif tokenizer is None:
        raise ValueError("give the tokenizer with the model (or a folder that holds both)")
    else:
        check_tokenizer(model.config, tokenizer)
    single = isinstance(texts, str)
    texts = [texts] if single else list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text {i} is empty: nothing to translate")
    encoded = tokenizer(texts, add_special_tokens=True, return_token_type_ids=False)["input_ids"]
    limit = model.config.max_source_length
    for i, ids in enumerate(encoded):
        if len(ids) > limit:
            raise ValueError(
                f"text {i} is {len(ids)} tokens long, more than the model's max_source_length={limit}"
            )
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
    translations = [""] * len(texts)
    model.eval()
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = tokenizer.pad({"input_ids": [encoded[i] for i in chunk]}, return_tensors="pt").to(
            model.device
        )
        kwargs = dict(generate_kwargs)
        if "max_new_tokens" not in kwargs and "max_length" not in kwargs:
            # As max_length (the decoder start token + new tokens): max_new_tokens would clash with the
            # max_length that Seq2SeqTrainer's evaluation writes into the model's generation config.
            kwargs["max_length"] = int(1.5 * batch["input_ids"].shape[1]) + 11
        with torch.no_grad():
            generated = model.generate(**batch, **kwargs)
        decoded = tokenizer.batch_decode(generated, skip_special_tokens=True)
        per_text = len(decoded) // len(chunk)  # num_return_sequences > 1 gives several per text
        for j, i in enumerate(chunk):
            translations[i] = decoded[j] if per_text == 1 else decoded[j * per_text : (j + 1) * per_text]
    return translations[0] if single else translations
