"""Attention heat maps: the source × translation alignment of a seq2seq model, or one BERT layer/head.

>>> result = plot_attention("my-translator", "A man is riding a bike .", "alignment.png", num_beams=5)
>>> result["weights"]          # (target tokens, source tokens), what the picture shows
>>> plot_attention("my-bert", "The cat sat on the mat .", "head.png", layer=3, head=7)
"""

import os
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

from .tokenization import load_tokenizer

DPI = 100


def seq2seq_attention(
    model, tokenizer, text: str, **generate_kwargs
) -> tuple[list[str], list[str], np.ndarray]:
    """Translate `text` with `generate(**generate_kwargs)` and return (source tokens, generated tokens,
    weights (len(generated), len(source))): row t is where the decoder looked when it chose token t.

    The weights come from a teacher-forced pass over the generated sequence, which gives the same
    attention as the decoding steps did (the incremental and full decoder passes are equal) and works
    for beam search too.
    """
    if not text.strip():
        raise ValueError("the source sentence is empty")
    batch = tokenizer([text], return_tensors="pt", return_token_type_ids=False).to(model.device)
    generate_kwargs.setdefault("max_new_tokens", int(1.5 * batch["input_ids"].shape[1]) + 10)
    model.eval()
    with torch.no_grad():
        sequence = model.generate(**batch, **generate_kwargs)[:1]
        if model.config.pad_token_id in sequence[0, 1:].tolist():  # drop the padding after eos
            sequence = sequence[:, : 1 + sequence[0, 1:].tolist().index(model.config.pad_token_id)]
        outputs = model(**batch, decoder_input_ids=sequence[:, :-1], output_attentions=True)
    if outputs.cross_attentions is None:
        raise ValueError("this model has no attention (attention_type='none'): there is no alignment to draw")
    weights = outputs.cross_attentions[-1][0].mean(0)  # (T, S); one head for the RNN family
    source = tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())
    target = tokenizer.convert_ids_to_tokens(sequence[0, 1:].tolist())
    return source, target, weights.float().cpu().numpy()


def self_attention(
    model, tokenizer, text: str, layer: int = -1, head: int = 0
) -> tuple[list[str], np.ndarray]:
    """(tokens, weights (S, S)) of one self-attention `layer`/`head` of a BERT-like encoder on `text`."""
    if not text.strip():
        raise ValueError("the sentence is empty")
    batch = tokenizer([text], return_tensors="pt").to(model.device)
    model.eval()
    with torch.no_grad():
        attentions = model(**batch, output_attentions=True).attentions
    if not attentions or attentions[0] is None:
        raise ValueError("the model returned no attention weights (load it with attn_implementation='eager')")
    layers, heads = len(attentions), attentions[0].shape[1]
    if not -layers <= layer < layers:
        raise ValueError(f"layer {layer} does not exist: the model has {layers} layers (0..{layers - 1})")
    if not 0 <= head < heads:
        raise ValueError(f"head {head} does not exist: each layer has {heads} heads (0..{heads - 1})")
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())
    return tokens, attentions[layer][0, head].float().cpu().numpy()


def plot_attention_map(
    weights: np.ndarray,
    x_labels: list[str],
    y_labels: list[str],
    output: str | os.PathLike,
    *,
    x_title: str = "source",
    y_title: str = "output",
    title: str | None = None,
):
    """Draw `weights` (len(y_labels), len(x_labels)) as a labelled heat map and save it as a PNG.

    The file is written to a temporary name and renamed into place, so it is complete or absent.
    Returns the matplotlib `Figure` (its image holds exactly `weights`).
    """
    from matplotlib.figure import Figure

    weights = np.asarray(weights)
    if weights.shape != (len(y_labels), len(x_labels)):
        raise ValueError(
            f"weights of shape {weights.shape} do not match {len(y_labels)} × {len(x_labels)} labels"
        )
    output = Path(output)
    if output.suffix.lower() != ".png":
        raise ValueError(f"the output file must end in .png, got {str(output)!r}")
    if output.is_dir():
        raise ValueError(f"output {str(output)!r} is a folder")
    width = 2.0 + 0.35 * len(x_labels)
    height = 1.5 + 0.35 * len(y_labels)
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(
        weights, cmap="viridis", vmin=0.0, vmax=max(float(weights.max()), 1e-9), aspect="auto"
    )
    axes.set_xticks(range(len(x_labels)), x_labels, rotation=90)
    axes.set_yticks(range(len(y_labels)), y_labels)
    axes.set_xlabel(x_title)
    axes.set_ylabel(y_title)
    if title:
        axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.05)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.tmp-{os.getpid()}.png")
    try:
        figure.savefig(temporary, dpi=DPI)
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)
    return figure


def plot_attention(
    model_dir: str | os.PathLike,
    text: str,
    output: str | os.PathLike,
    *,
    layer: int | None = None,
    head: int | None = None,
    **generate_kwargs,
) -> dict:
    """Load the model saved in `model_dir` (with its tokenizer) and draw its attention on `text`.

    A seq2seq model (`is_encoder_decoder`) gives the alignment of its translation with the source
    (`generate_kwargs` pass through, e.g. `num_beams`); an encoder such as BERT gives `layer`/`head`
    (defaults: last layer, head 0). Returns `weights`, the two token lists, `path` and `figure`.
    """
    config = AutoConfig.from_pretrained(model_dir)
    tokenizer = load_tokenizer(model_dir)
    if getattr(config, "is_encoder_decoder", False):
        if layer is not None or head is not None:
            raise ValueError("--layer/--head are for BERT models; a seq2seq model has one alignment")
        model = AutoModelForSeq2SeqLM.from_pretrained(model_dir)
        source, target, weights = seq2seq_attention(model, tokenizer, text, **generate_kwargs)
        title = "decoder attention over the source"
        x_title, y_title = "source tokens", "generated tokens"
    else:
        layer = -1 if layer is None else layer
        head = 0 if head is None else head
        model = AutoModel.from_pretrained(model_dir, attn_implementation="eager")
        source, weights = self_attention(model, tokenizer, text, layer=layer, head=head)
        target = source
        title = f"layer {layer}, head {head}"
        x_title, y_title = "attended tokens (keys)", "attending tokens (queries)"
    figure = plot_attention_map(
        weights, source, target, output, x_title=x_title, y_title=y_title, title=title
    )
    return {
        "weights": weights,
        "x_tokens": source,
        "y_tokens": target,
        "path": Path(output),
        "figure": figure,
    }
