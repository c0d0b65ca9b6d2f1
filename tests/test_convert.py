"""Stock transformers BERT ↔ session_bert: parity of every output, exact round trip, CLI, refusals."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoModelForMaskedLM,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
)

from hf_session import SessionBertForPreTraining, SessionBertModel, train_wordpiece
from hf_session.cli import main as cli_main
from hf_session.models.session_bert.convert import (
    check_tokenizer_fits,
    convert_from_bert,
    convert_to_bert,
)
from hf_session.utils import OutputExistsError, data_path

CONFIGS = [
    dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37),
    dict(vocab_size=120, hidden_size=48, num_hidden_layers=3, num_attention_heads=6, intermediate_size=64,
         hidden_act="gelu_new", type_vocab_size=3, layer_norm_eps=1e-7),
    dict(vocab_size=64, hidden_size=24, num_hidden_layers=1, num_attention_heads=2, intermediate_size=96,
         hidden_act="relu", max_position_embeddings=40, initializer_range=0.2),
]  # fmt: skip


def bert_config(settings, attn_implementation="eager") -> BertConfig:
    config = BertConfig(**{"max_position_embeddings": 32, **settings})
    config._attn_implementation = attn_implementation
    return config


def random_batch(config: BertConfig, seed=0):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, config.vocab_size, (4, 16), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 10:] = 0
    attention_mask[3, 5:] = 0
    token_type_ids = torch.randint(0, config.type_vocab_size, (4, 16), generator=generator)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def save_random_bert(model_class, settings, path, seed=0):
    torch.manual_seed(seed)
    model = model_class(bert_config(settings)).eval()
    model.save_pretrained(path)
    return model


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("settings", CONFIGS, ids=["small", "gelu_new-3types", "relu-1layer"])
@pytest.mark.parametrize("unpad_inputs", [True, False], ids=["unpadded", "padded"])
def test_converted_pretraining_model_matches_transformers(
    tmp_path, settings, attn_implementation, unpad_inputs
):
    reference = save_random_bert(BertForPreTraining, settings, tmp_path / "bert")
    reference.set_attn_implementation(attn_implementation)
    convert_from_bert(tmp_path / "bert", tmp_path / "ours")
    ours = SessionBertForPreTraining.from_pretrained(
        tmp_path / "ours", attn_implementation=attn_implementation, unpad_inputs=unpad_inputs
    ).eval()
    batch = random_batch(reference.config)
    # Padded positions are compared only when ours computes them too (unpad_inputs=False).
    keep = (
        torch.ones_like(batch["attention_mask"]).bool()
        if not unpad_inputs
        else batch["attention_mask"].bool()
    )
    with torch.no_grad():
        expected = reference(**batch, output_hidden_states=True)
        expected_base = reference.bert(**batch)
        got = ours(**batch, output_hidden_states=True)
        got_base = ours.bert(**batch)
    for e, g in zip(expected.hidden_states, got.hidden_states, strict=True):
        torch.testing.assert_close(g[keep], e[keep], atol=1e-5, rtol=0)
    torch.testing.assert_close(got_base.pooler_output, expected_base.pooler_output, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        got.prediction_logits[keep], expected.prediction_logits[keep], atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        got.seq_relationship_logits, expected.seq_relationship_logits, atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("settings", CONFIGS[:2], ids=["small", "gelu_new-3types"])
def test_converted_bare_model_matches_transformers_bert_model(tmp_path, settings):
    reference = save_random_bert(BertModel, settings, tmp_path / "bert")
    convert_from_bert(tmp_path / "bert", tmp_path / "ours")
    assert json.loads((tmp_path / "ours" / "config.json").read_text())["architectures"] == [
        "SessionBertModel"
    ]
    ours = SessionBertModel.from_pretrained(tmp_path / "ours").eval()
    batch = random_batch(reference.config)
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        expected, got = reference(**batch), ours(**batch)
    torch.testing.assert_close(
        got.last_hidden_state[real], expected.last_hidden_state[real], atol=1e-5, rtol=0
    )
    torch.testing.assert_close(got.pooler_output, expected.pooler_output, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "model_class", [BertForPreTraining, BertForMaskedLM, BertModel, BertForSequenceClassification]
)
def test_round_trip_reproduces_the_weights_exactly(tmp_path, model_class):
    save_random_bert(model_class, CONFIGS[1], tmp_path / "bert", seed=3)
    convert_from_bert(tmp_path / "bert", tmp_path / "ours")
    convert_to_bert(tmp_path / "ours", tmp_path / "back")
    original = load_file(tmp_path / "bert" / "model.safetensors")
    back = load_file(tmp_path / "back" / "model.safetensors")
    assert original.keys() == back.keys()
    for name, tensor in original.items():
        assert torch.equal(back[name], tensor), name
    config = json.loads((tmp_path / "back" / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == [model_class.__name__]
    assert "auto_map" not in config  # loads with no remote code
    reloaded = BertForPreTraining.from_pretrained(tmp_path / "back")
    assert reloaded.bert.embeddings.word_embeddings.weight.shape == (CONFIGS[1]["vocab_size"], 48)


def test_cli_converts_both_ways_and_carries_the_tokenizer(tmp_path, capsys):
    tokenizer = train_wordpiece(files=[data_path("wikitext2", "wiki.sample.raw")], vocab_size=300)
    settings = {**CONFIGS[0], "vocab_size": len(tokenizer)}
    reference = save_random_bert(BertForMaskedLM, settings, tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")
    assert cli_main(["convert", "from-bert", str(tmp_path / "bert"), str(tmp_path / "ours")]) == 0
    assert "wrote" in capsys.readouterr().out
    ours = AutoModelForMaskedLM.from_pretrained(tmp_path / "ours").eval()
    assert type(ours).__name__ == "SessionBertForMaskedLM"
    loaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path / "ours")
    assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab()
    batch = dict(
        loaded_tokenizer(["The film was released .", "He starred"], padding=True, return_tensors="pt")
    )
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(ours(**batch).logits[real], reference(**batch).logits[real], atol=1e-5, rtol=0)

    assert cli_main(["convert", "to-bert", str(tmp_path / "ours"), str(tmp_path / "back")]) == 0
    assert (tmp_path / "back" / "tokenizer.json").is_file()
    assert type(AutoModelForMaskedLM.from_pretrained(tmp_path / "back")) is BertForMaskedLM


def test_refusals_are_one_line_errors_and_write_nothing(tmp_path, capsys):
    save_random_bert(BertForPreTraining, CONFIGS[0], tmp_path / "bert")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    assert cli_main(["convert", "from-bert", str(tmp_path / "bert"), str(tmp_path / "taken")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
    with pytest.raises(OutputExistsError):
        convert_from_bert(tmp_path / "bert", tmp_path / "taken")

    assert cli_main(["convert", "from-bert", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "no config.json" in capsys.readouterr().err

    # A session checkpoint is not a BERT one, and the other way round.
    convert_from_bert(tmp_path / "bert", tmp_path / "ours")
    with pytest.raises(ValueError, match="expected model_type 'bert' in config.json, got 'session_bert'"):
        convert_from_bert(tmp_path / "ours", tmp_path / "again")
    with pytest.raises(ValueError, match="expected model_type 'session_bert' in config.json, got 'bert'"):
        convert_to_bert(tmp_path / "bert", tmp_path / "again")

    # A decoder BERT has no session_bert counterpart.
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(**CONFIGS[0], is_decoder=False)).save_pretrained(tmp_path / "plain")
    decoder_config = json.loads((tmp_path / "plain" / "config.json").read_text())
    decoder_config["is_decoder"] = True
    (tmp_path / "plain" / "config.json").write_text(json.dumps(decoder_config))
    with pytest.raises(ValueError, match="decoder"):
        convert_from_bert(tmp_path / "plain", tmp_path / "again")
    assert not (tmp_path / "again").exists() and not (tmp_path / "out").exists()


def test_checkpoint_missing_weights_is_refused(tmp_path):
    # A bare BertModel saved under the BertForPreTraining name lacks the heads: they would be random.
    save_random_bert(BertModel, CONFIGS[0], tmp_path / "bert")
    config = json.loads((tmp_path / "bert" / "config.json").read_text())
    config["architectures"] = ["BertForPreTraining"]
    (tmp_path / "bert" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="no weights for"):
        convert_from_bert(tmp_path / "bert", tmp_path / "ours")


def test_tokenizer_larger_than_the_vocabulary_is_refused(tmp_path):
    tokenizer = train_wordpiece(files=[data_path("wikitext2", "wiki.sample.raw")], vocab_size=300)
    config = BertConfig(**{**CONFIGS[0], "vocab_size": 200})
    with pytest.raises(ValueError, match=r"tokenizer has 300 tokens but the model's vocab_size is 200"):
        check_tokenizer_fits(tokenizer, config)
    check_tokenizer_fits(tokenizer, BertConfig(**{**CONFIGS[0], "vocab_size": 300}))
    save_random_bert(BertForMaskedLM, {**CONFIGS[0], "vocab_size": 200}, tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")
    with pytest.raises(ValueError, match="vocab_size is 200"):
        convert_from_bert(tmp_path / "bert", tmp_path / "ours")
    assert not (tmp_path / "ours").exists()


def test_unknown_architecture_is_refused(tmp_path):
    save_random_bert(BertForPreTraining, CONFIGS[0], tmp_path / "bert")
    config = json.loads((tmp_path / "bert" / "config.json").read_text())
    config["architectures"] = ["BertLMHeadModel"]
    (tmp_path / "bert" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"names architectures \['BertLMHeadModel'\]; expected one of"):
        convert_from_bert(tmp_path / "bert", tmp_path / "ours")
