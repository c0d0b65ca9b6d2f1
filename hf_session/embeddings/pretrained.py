"""Pretrained word vectors as the starting point of another model's embedding layer.

What JoeyNMT's `Embeddings.load_from_file` does for its RNNs, for any transformers model: every token
that the model's vocabulary and the vectors' vocabulary share (same string) gets the pretrained vector;
the other rows keep their initialisation.
"""

import torch

from .vectors import WordVectors


@torch.no_grad()
def load_pretrained_embeddings(model, vectors: WordVectors, tokenizer, freeze: bool = False) -> dict:
    """Copy `vectors` into `model.get_input_embeddings()` for the tokens both vocabularies share.

    Args:
        model: a `PreTrainedModel` (e.g. a session_rnn model) whose input embedding width is `vectors.dim`.
        vectors: the pretrained vectors (`train_ppmi_svd`, `load_word_vectors`, ...).
        tokenizer: the model's tokenizer, which names the rows of its embedding matrix.
        freeze: stop gradients to the embedding matrix afterwards.

    Returns:
        ``{"copied": n, "vocab_size": len(tokenizer), "missing": [tokens without a vector]}``; special
        tokens are never copied (their pretrained rows, if any, were never trained as words).
    """
    embedding = model.get_input_embeddings()
    if embedding.weight.shape[1] != vectors.dim:
        raise ValueError(
            f"the model's input embeddings are {embedding.weight.shape[1]}-dimensional but the vectors are "
            f"{vectors.dim}-dimensional; build the model with that size or train vectors of the model's size"
        )
    if embedding.weight.shape[0] < len(tokenizer):
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the model embeds only {embedding.weight.shape[0]}"
        )
    source = vectors.tokenizer.get_vocab()
    skip = set(tokenizer.all_special_tokens) | set(vectors.tokenizer.all_special_tokens)
    rows, sources, missing = [], [], []
    for token, row in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1]):
        if token in skip:
            continue
        if token in source and source[token] < len(vectors):
            rows.append(row)
            sources.append(source[token])
        else:
            missing.append(token)
    if not rows:
        raise ValueError("the model's vocabulary and the vectors' vocabulary share no token")
    weight = embedding.weight
    weight[torch.tensor(rows)] = (
        vectors.vectors[torch.tensor(sources)].to(weight.dtype, copy=True).to(weight.device)
    )
    if freeze:
        weight.requires_grad_(False)
    return {"copied": len(rows), "vocab_size": len(tokenizer), "missing": missing}
