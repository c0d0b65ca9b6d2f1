"""Attention heat maps: the PNG is valid, sized as drawn, labelled with the tokens, and shows the model's weights."""

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from hf_session import cli, train_wordpiece
from hf_session.models.session_bert import SessionBertConfig, SessionBertModel
from hf_session.models.session_rnn import SessionRnnConfig, SessionRnnForConditionalGeneration
from hf_session.plotting import DPI, plot_attention, plot_attention_map
from hf_session.translation import translation_special_ids
from hf_session.utils import data_path

SENTENCE = "A man in an orange hat."
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tokenizer():
    sample = data_path("multi30k")
    return train_wordpiece(files=[sample / "train.en", sample / "train.de"], vocab_size=400, lowercase=False)


@pytest.fixture(scope="module")
def translator_dir(tokenizer, tmp_path_factory):
    torch.manual_seed(0)
    config = SessionRnnConfig(
        vocab_size=len(tokenizer), embedding_size=16, hidden_size=16, **translation_special_ids(tokenizer)
    )
    model = SessionRnnForConditionalGeneration(config)
    with torch.no_grad():  # sharper attention than the near-uniform random one
        model.model.decoder.attention.energy.weight.mul_(20)
    folder = tmp_path_factory.mktemp("translator")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def bert_dir(tokenizer, tmp_path_factory):
    torch.manual_seed(0)
    config = SessionBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
    )
    folder = tmp_path_factory.mktemp("bert")
    SessionBertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def check_png(path, x_tokens, y_tokens):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width = imread(path).shape[:2]
    assert width == round((2.0 + 0.35 * len(x_tokens)) * DPI)
    assert height == round((1.5 + 0.35 * len(y_tokens)) * DPI)


def drawn(result):
    """The matrix in the picture and its tick labels."""
    axes = result["figure"].axes[0]
    return (
        np.asarray(axes.images[0].get_array()),
        [tick.get_text() for tick in axes.get_xticklabels()],
        [tick.get_text() for tick in axes.get_yticklabels()],
    )


def test_seq2seq_alignment_equals_the_attention_of_the_decoding_steps(translator_dir, tokenizer, tmp_path):
    output = tmp_path / "alignment.png"
    result = plot_attention(translator_dir, SENTENCE, output)
    check_png(output, result["x_tokens"], result["y_tokens"])
    matrix, x_labels, y_labels = drawn(result)
    np.testing.assert_array_equal(matrix, result["weights"])
    assert x_labels == tokenizer.tokenize(SENTENCE, add_special_tokens=True)
    assert y_labels == result["y_tokens"]
    # Independently: the cross-attention generate() returned at each greedy step.
    model = SessionRnnForConditionalGeneration.from_pretrained(translator_dir).eval()
    batch = tokenizer([SENTENCE], return_tensors="pt", return_token_type_ids=False)
    out = model.generate(
        **batch, max_new_tokens=len(result["y_tokens"]), output_attentions=True, return_dict_in_generate=True
    )
    steps = torch.cat([step[-1][0, 0] for step in out.cross_attentions])  # (generated, source)
    assert tokenizer.convert_ids_to_tokens(out.sequences[0, 1:].tolist()) == result["y_tokens"]
    np.testing.assert_allclose(result["weights"], steps.numpy(), atol=1e-6)
    np.testing.assert_allclose(result["weights"].sum(1), 1.0, atol=1e-5)
    assert result["weights"].max() > 2 / len(result["x_tokens"])  # a peaked map, not a uniform one


def test_bert_layer_and_head(bert_dir, tokenizer, tmp_path):
    output = tmp_path / "head.png"
    result = plot_attention(bert_dir, SENTENCE, output, layer=1, head=1)
    tokens = tokenizer.tokenize(SENTENCE, add_special_tokens=True)
    assert result["x_tokens"] == result["y_tokens"] == tokens
    check_png(output, tokens, tokens)
    model = SessionBertModel.from_pretrained(bert_dir).eval()
    with torch.no_grad():
        attentions = model(**tokenizer([SENTENCE], return_tensors="pt"), output_attentions=True).attentions
    matrix, _, _ = drawn(result)
    np.testing.assert_array_equal(matrix, result["weights"])
    np.testing.assert_allclose(result["weights"], attentions[1][0, 1].numpy(), atol=1e-6)
    assert not np.allclose(result["weights"], attentions[1][0, 0].numpy())
    with pytest.raises(ValueError, match="layer 2 does not exist: the model has 2 layers"):
        plot_attention(bert_dir, SENTENCE, tmp_path / "bad.png", layer=2)
    with pytest.raises(ValueError, match="head 5 does not exist: each layer has 2 heads"):
        plot_attention(bert_dir, SENTENCE, tmp_path / "bad.png", head=5)
    assert not (tmp_path / "bad.png").exists()


def test_plot_attention_map_checks_its_input(tmp_path):
    with pytest.raises(ValueError, match="do not match 2 × 3 labels"):
        plot_attention_map(np.ones((3, 2)), ["a", "b", "c"], ["x", "y"], tmp_path / "m.png")
    with pytest.raises(ValueError, match="must end in .png"):
        plot_attention_map(np.ones((1, 1)), ["a"], ["x"], tmp_path / "m.jpg")
    plot_attention_map(np.eye(2), ["a", "b"], ["x", "y"], tmp_path / "m.png")
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]  # no temporary file left behind


def test_plot_attention_command(translator_dir, bert_dir, tmp_path, capsys):
    output = tmp_path / "cli.png"
    assert (
        cli.main(
            ["plot-attention", str(translator_dir), SENTENCE, "--output", str(output), "--num-beams", "3"]
        )
        == 0
    )
    assert output.read_bytes()[:8] == PNG_SIGNATURE
    assert "translation:" in capsys.readouterr().out
    assert (
        cli.main(
            ["plot-attention", str(bert_dir), SENTENCE, "--output", str(tmp_path / "b.png"), "--layer", "0"]
        )
        == 0
    )
    assert (tmp_path / "b.png").exists()
    assert (
        cli.main(
            [
                "plot-attention",
                str(translator_dir),
                SENTENCE,
                "--output",
                str(tmp_path / "x.png"),
                "--head",
                "1",
            ]
        )
        == 2
    )
    assert "--layer/--head are for BERT models" in capsys.readouterr().err
    assert cli.main(["plot-attention", str(translator_dir), " ", "--output", str(tmp_path / "x.png")]) == 2
    assert "the source sentence is empty" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_model_without_attention_is_refused(tokenizer, tmp_path):
    config = SessionRnnConfig(
        vocab_size=len(tokenizer),
        embedding_size=8,
        hidden_size=8,
        attention_type="none",
        **translation_special_ids(tokenizer),
    )
    SessionRnnForConditionalGeneration(config).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match="this model has no attention"):
        plot_attention(tmp_path / "model", SENTENCE, tmp_path / "none.png")
