"""Translation end to end on the bundled Multi30k sample: features, Seq2SeqTrainer, translate(), the CLI."""

import io

import pytest
import torch
from datasets import Dataset
from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments

from hf_session import cli, train_wordpiece
from hf_session.models.session_rnn import SessionRnnConfig, SessionRnnForConditionalGeneration
from hf_session.translation import (
    check_tokenizer,
    load_translator,
    preprocess_translation,
    translate,
    translation_special_ids,
)
from hf_session.utils import data_path

PAIRS = [
    ("A dog runs.", "Ein Hund rennt."),
    ("Two men are sitting on a bench.", "Zwei Männer sitzen auf einer Bank."),
    ("A girl is playing in the water.", "Ein Mädchen spielt im Wasser."),
    ("The man is riding a bike.", "Der Mann fährt Fahrrad."),
]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tokenizer():
    sample = data_path("multi30k")
    return train_wordpiece(files=[sample / "train.en", sample / "train.de"], vocab_size=1200, lowercase=False)


@pytest.fixture(scope="module")
def trained(tokenizer, tmp_path_factory):
    """A tiny GRU translator that memorised PAIRS with Seq2SeqTrainer, saved with its tokenizer."""
    torch.manual_seed(0)
    config = SessionRnnConfig(
        vocab_size=len(tokenizer),
        embedding_size=32,
        hidden_size=32,
        dropout=0.0,
        **translation_special_ids(tokenizer),
    )
    model = SessionRnnForConditionalGeneration(config)
    features = preprocess_translation(tokenizer, [s for s, _ in PAIRS], [t for _, t in PAIRS])
    dataset = Dataset.from_dict(features)
    workdir = tmp_path_factory.mktemp("translator")
    args = Seq2SeqTrainingArguments(
        output_dir=str(workdir / "trainer"),
        per_device_train_batch_size=4,
        learning_rate=3e-2,
        max_steps=250,
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        predict_with_generate=True,
        generation_max_length=20,
        use_cpu=True,
        seed=0,
    )
    trainer = Seq2SeqTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        eval_dataset=dataset,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
        processing_class=tokenizer,
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    prediction = trainer.predict(dataset, num_beams=3)
    model.save_pretrained(workdir / "model")
    tokenizer.save_pretrained(workdir / "model")
    return {"model": model.eval(), "losses": losses, "prediction": prediction, "dir": workdir / "model"}


def test_preprocess_translation_follows_the_special_token_conventions(tokenizer):
    features = preprocess_translation(tokenizer, ["A dog runs."], ["Ein Hund rennt."], max_target_length=4)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert features["input_ids"][0][0] == cls and features["input_ids"][0][-1] == sep
    assert "token_type_ids" not in features
    labels = features["labels"][0]
    assert len(labels) == 4 and labels[-1] == sep and cls not in labels
    assert labels[:3] == tokenizer("Ein Hund rennt.", add_special_tokens=False)["input_ids"][:3]
    assert translation_special_ids(tokenizer) == {
        "pad_token_id": 0,
        "bos_token_id": 2,
        "eos_token_id": 3,
        "decoder_start_token_id": 2,
    }


def test_seq2seq_trainer_learns_and_translate_reproduces_the_targets(trained, tokenizer):
    losses = trained["losses"]
    assert losses[-1] < 0.1 * losses[0]
    # predict_with_generate: the generated ids decode to the memorised targets.
    ids = trained["prediction"].predictions
    ids[ids == -100] = tokenizer.pad_token_id
    assert tokenizer.batch_decode(ids, skip_special_tokens=True) == [t for _, t in PAIRS]
    sources = [s for s, _ in PAIRS]
    assert translate(trained["model"], sources, tokenizer, num_beams=4) == [t for _, t in PAIRS]
    assert translate(trained["model"], sources[0], tokenizer) == PAIRS[0][1]


def test_translate_from_a_folder_passes_generate_options_through(trained):
    sources = [s for s, _ in PAIRS]
    greedy = translate(trained["model"], sources, load_translator(trained["dir"])[1], num_beams=1)
    assert translate(trained["dir"], sources, batch_size=3, num_beams=1) == greedy
    # max_new_tokens reaches generate(): two tokens give at most two word pieces.
    short = translate(trained["dir"], sources[1], max_new_tokens=2)
    assert len(short.split()) <= 2 and PAIRS[1][1].startswith(short)
    several = translate(trained["dir"], sources[:2], num_beams=4, num_return_sequences=2)
    assert [len(group) for group in several] == [2, 2]
    assert several[0][0] == PAIRS[0][1]


def test_translate_bad_input(trained, tokenizer):
    with pytest.raises(ValueError, match="text 1 is empty"):
        translate(trained["model"], ["A dog.", "  "], tokenizer)
    with pytest.raises(ValueError, match="more than the model's max_source_length=512"):
        translate(trained["model"], ["dog " * 600], tokenizer)
    with pytest.raises(ValueError, match="give the tokenizer"):
        translate(trained["model"], ["A dog."])
    config = SessionRnnConfig(**{**trained["model"].config.to_diff_dict(), "eos_token_id": 4})
    with pytest.raises(
        ValueError, match="special ids do not match the model config .eos_token_id: tokenizer 3"
    ):
        check_tokenizer(config, tokenizer)
    small = SessionRnnConfig(vocab_size=100)
    with pytest.raises(ValueError, match="the tokenizer has 1200 tokens but the model's vocab_size is 100"):
        check_tokenizer(small, tokenizer)


def test_translate_command(trained, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(s + "\n" for s, _ in PAIRS)))
    assert cli.main(["translate", str(trained["dir"]), "--num-beams", "3"]) == 0
    assert capsys.readouterr().out.splitlines() == [t for _, t in PAIRS]
    monkeypatch.setattr("sys.stdin", io.StringIO("A dog runs.\n\n"))
    assert cli.main(["translate", str(trained["dir"])]) == 2
    assert "line 2 of the input is empty" in capsys.readouterr().err
    assert cli.main(["translate", str(trained["dir"] / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
