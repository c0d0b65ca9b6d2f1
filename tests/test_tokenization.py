import pytest
from tokenizers import normalizers
from transformers import AutoTokenizer

from hf_session.tokenization import build_normalizer, train_wordpiece, vocabulary_stats
from hf_session.utils import OutputExistsError, data_path, read_tsv_column

ENGLISH = data_path("wikitext2", "wiki.sample.raw")


def korean_reviews(split="train"):
    return read_tsv_column(data_path("nsmc", f"{split}.tsv"), "document")


@pytest.fixture(scope="module")
def english_tokenizer():
    return train_wordpiece(files=[ENGLISH], vocab_size=3000)


@pytest.fixture(scope="module")
def korean_tokenizer():
    return train_wordpiece(texts=korean_reviews(), vocab_size=4000)


def test_special_tokens_come_first_in_order(english_tokenizer):
    tok = english_tokenizer
    assert [tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id] == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert len(tok) == 3000


def test_pair_encoding_and_token_type_ids(english_tokenizer):
    enc = english_tokenizer("The film was good .", "He starred in it .")
    pieces = english_tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert pieces[0] == "[CLS]" and pieces.count("[SEP]") == 2 and pieces[-1] == "[SEP]"
    first_sep = pieces.index("[SEP]")
    assert enc["token_type_ids"] == [0] * (first_sep + 1) + [1] * (len(pieces) - first_sep - 1)
    assert enc["attention_mask"] == [1] * len(pieces)


def test_round_trip_through_auto_tokenizer(english_tokenizer, tmp_path):
    english_tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    texts = ENGLISH.read_text(encoding="utf-8").splitlines()[:50]
    pairs = list(zip(texts[:25], texts[25:], strict=True))
    for kwargs in ({}, {"padding": True}, {"truncation": True, "max_length": 16, "padding": "max_length"}):
        assert reloaded(texts, **kwargs) == english_tokenizer(texts, **kwargs)
        assert reloaded([a for a, _ in pairs], [b for _, b in pairs], **kwargs) == english_tokenizer(
            [a for a, _ in pairs], [b for _, b in pairs], **kwargs
        )
    assert reloaded.all_special_tokens == english_tokenizer.all_special_tokens
    assert reloaded.model_max_length == 512
    ids = reloaded("unbelievably boulter")["input_ids"]
    assert any(p.startswith("##") for p in reloaded.convert_ids_to_tokens(ids))
    assert reloaded.decode(ids, skip_special_tokens=True) == "unbelievably boulter"


def test_truncation_respects_max_length(english_tokenizer):
    enc = english_tokenizer("word " * 100, truncation=True, max_length=10)
    assert len(enc["input_ids"]) == 10 and enc["input_ids"][-1] == english_tokenizer.sep_token_id


def test_hangul_syllables_survive_accent_stripping(korean_tokenizer):
    # Our normalizer strips Latin accents but recomposes Hangul.
    normalizer = build_normalizer(lowercase=True)
    assert normalizer.normalize_str("안녕하세요 Café") == "안녕하세요 cafe"
    pieces = korean_tokenizer.tokenize("영화 정말 재미있어요")
    assert all("\u1100" > p.lstrip("#")[0] or p.lstrip("#")[0] > "\u11ff" for p in pieces)
    assert "영화" in pieces


def test_stock_bert_normalisation_would_split_hangul_into_jamo():
    # The failure our normalizer avoids: BERT's accent stripping leaves conjoining jamo behind.
    stock = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    assert len(stock.normalize_str("안녕하세요")) == 12
    assert build_normalizer(lowercase=True).normalize_str("안녕하세요") == "안녕하세요"


def test_korean_fewer_pieces_and_unknowns_than_stock_normalisation(korean_tokenizer):
    stock = train_wordpiece(
        texts=korean_reviews(), vocab_size=4000, normalizer=normalizers.BertNormalizer(lowercase=True)
    )
    # Stock pieces are jamo strings (U+1100..U+11FF), ours are syllables (U+AC00..U+D7A3).
    assert all("\u1100" <= c <= "\u11ff" for p in stock.tokenize("안녕하세요") for c in p.lstrip("#"))
    assert all(
        "\uac00" <= c <= "\ud7a3" for p in korean_tokenizer.tokenize("안녕하세요") for c in p.lstrip("#")
    )
    test = korean_reviews("test")
    ours, theirs = vocabulary_stats(korean_tokenizer, test), vocabulary_stats(stock, test)
    assert ours["tokens_per_word"] < theirs["tokens_per_word"]
    assert ours["whole_word_rate"] > theirs["whole_word_rate"]


def test_texts_accepts_a_datasets_column():
    from datasets import Dataset

    ds = Dataset.from_dict({"text": korean_reviews()[:300]})
    tok = train_wordpiece(texts=ds["text"], vocab_size=1500, min_frequency=1)
    assert "영화" in tok.get_vocab()


def test_joint_vocabulary_covers_both_languages():
    tok = train_wordpiece(
        files=[data_path("multi30k", "train.en"), data_path("multi30k", "train.de")], vocab_size=3000
    )
    vocab = tok.get_vocab()
    assert "man" in vocab and "mann" in vocab and "eine" in vocab


def test_lowercase_off_keeps_case():
    tok = train_wordpiece(files=[ENGLISH], vocab_size=3000, lowercase=False)
    assert "The" in tok.tokenize("The film")
    assert tok.tokenize("Café")[0].startswith("C")


def test_output_dir_written_atomically(tmp_path):
    out = tmp_path / "vocab"
    train_wordpiece(files=[ENGLISH], vocab_size=1000, output_dir=out)
    assert (out / "tokenizer.json").exists()
    with pytest.raises(OutputExistsError, match="not empty"):
        train_wordpiece(files=[ENGLISH], vocab_size=1000, output_dir=out)
    before = (out / "tokenizer.json").read_bytes()
    with pytest.raises(ValueError, match="smaller than the alphabet"):
        train_wordpiece(files=[ENGLISH], vocab_size=20, output_dir=out, overwrite=True)
    assert (out / "tokenizer.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vocab"]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"files": ["/nonexistent/corpus.txt"]}, FileNotFoundError, "does not exist"),
        ({"texts": iter([])}, ValueError, "texts is empty"),
        ({"texts": ["", "   "]}, ValueError, "texts is empty"),
        ({"files": [ENGLISH], "vocab_size": 50}, ValueError, "smaller than the alphabet"),
        ({"files": [ENGLISH], "vocab_size": 5}, ValueError, "no room"),
        ({"files": [ENGLISH], "texts": ["x"]}, ValueError, "exactly one"),
    ],
)
def test_bad_input_has_one_clear_error(kwargs, error, message):
    with pytest.raises(error, match=message):
        train_wordpiece(**kwargs)


def test_empty_file_and_output_file_refused(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="is empty"):
        train_wordpiece(files=[empty])
    existing = tmp_path / "afile"
    existing.write_text("keep me", encoding="utf-8")
    with pytest.raises(OutputExistsError, match="existing file"):
        train_wordpiece(files=[ENGLISH], vocab_size=1000, output_dir=existing)
    assert existing.read_text(encoding="utf-8") == "keep me"
