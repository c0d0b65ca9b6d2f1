"""Pretraining data: NSP pairs as Google's recipe builds them, full-length segments, masking, caching."""

import collections
import random
from unittest import mock

import pytest
import torch

from hf_session.pretraining import data
from hf_session.pretraining.data import (
    PretrainingCollator,
    create_full_instances,
    create_nsp_instances,
    group_documents,
    instances_to_dataset,
    read_corpus,
    split_documents,
    tokenize_corpus,
)
from hf_session.tokenization import train_wordpiece
from hf_session.utils import data_path

CLS, SEP = 2, 3


def synthetic_documents(n_docs=12, n_sentences=30, seed=0):
    """Sentence s of document d is three copies of one id, so any token says where it came from."""
    rng = random.Random(seed)
    docs = []
    for d in range(n_docs):
        docs.append([[1000 + 100 * d + s] * rng.randint(2, 6) for s in range(n_sentences)])
    return docs


def _segments(instance):
    ids = instance["input_ids"]
    first_sep = ids.index(SEP)
    return ids[1:first_sep], ids[first_sep + 1 : -1]


def test_nsp_instances_structure_labels_and_lengths():
    docs = synthetic_documents()
    instances = create_nsp_instances(docs, max_seq_length=40, cls_token_id=CLS, sep_token_id=SEP, seed=3)
    labels = collections.Counter(inst["next_sentence_label"] for inst in instances)
    assert 0.4 < labels[1] / len(instances) < 0.6, labels
    for inst in instances:
        ids = inst["input_ids"]
        assert len(ids) <= 40
        assert ids[0] == CLS and ids[-1] == SEP and ids.count(SEP) == 2
        a, b = _segments(inst)
        assert a and b
        assert inst["token_type_ids"] == [0] * (len(a) + 2) + [1] * (len(b) + 1)
        assert inst["special_tokens_mask"] == [1] + [0] * len(a) + [1] + [0] * len(b) + [1]
        doc_a, doc_b = {t // 100 for t in a}, {t // 100 for t in b}
        assert len(doc_a) == 1
        if inst["next_sentence_label"] == 0:
            # B is the continuation of A in the same document: sentence ids carry on without a gap.
            assert doc_b == doc_a
            assert b[0] % 100 in (a[-1] % 100, a[-1] % 100 + 1)
        else:
            assert doc_b != doc_a


def test_nsp_instances_are_deterministic_for_a_seed_and_use_all_text():
    docs = synthetic_documents()
    first = create_nsp_instances(docs, 64, CLS, SEP, short_seq_prob=0.2, seed=7)
    again = create_nsp_instances(docs, 64, CLS, SEP, short_seq_prob=0.2, seed=7)
    other = create_nsp_instances(docs, 64, CLS, SEP, short_seq_prob=0.2, seed=8)
    assert first == again
    assert first != other
    # Sentences of a chunk not used when B is random are put back: almost all text is used (truncation
    # may trim a few short sentences away).
    seen = set()
    for inst in first:
        a, b = _segments(inst)
        seen.update(a + (b if inst["next_sentence_label"] == 0 else []))
    sentences = {s[0] for d in docs for s in d}
    assert len(seen & sentences) > 0.95 * len(sentences)
    # short_seq_prob gives some instances well below the target length.
    lengths = [len(inst["input_ids"]) for inst in first]
    assert max(lengths) == 64 and sum(n < 32 for n in lengths) >= 1


def test_dupe_factor_makes_new_pairs_from_the_same_text():
    docs = synthetic_documents()
    once = create_nsp_instances(docs, 64, CLS, SEP, seed=7)
    three = create_nsp_instances(docs, 64, CLS, SEP, seed=7, dupe_factor=3)
    # The first pass is the dupe_factor=1 set; the later passes hold the same text cut differently.
    assert three[: len(once)] == once
    assert 2.5 * len(once) < len(three) < 3.5 * len(once)
    pairs = [tuple(inst["input_ids"]) for inst in three]
    assert len(set(pairs)) > 0.9 * len(pairs)
    labels = [inst["next_sentence_label"] for inst in three]
    assert 0.4 < sum(labels) / len(labels) < 0.6
    with pytest.raises(ValueError, match="dupe_factor"):
        create_nsp_instances(docs, 64, CLS, SEP, dupe_factor=0)


def test_nsp_instances_reject_impossible_lengths():
    with pytest.raises(ValueError, match="max_seq_length"):
        create_nsp_instances(synthetic_documents(), 4, CLS, SEP)
    with pytest.raises(ValueError, match="short_seq_prob"):
        create_nsp_instances(synthetic_documents(), 32, CLS, SEP, short_seq_prob=1.5)


def test_full_instances_pack_whole_sentences_across_documents():
    docs = synthetic_documents(n_docs=3, n_sentences=20)
    docs[1][3] = list(range(5000, 5050))  # longer than a segment: cut into pieces
    instances = create_full_instances(docs, max_seq_length=32, cls_token_id=CLS, sep_token_id=SEP)
    body = []
    for inst in instances:
        ids = inst["input_ids"]
        assert len(ids) <= 32 and ids[0] == CLS and ids[-1] == SEP
        assert inst["token_type_ids"] == [0] * len(ids)
        assert inst["special_tokens_mask"] == [int(t == SEP or t == CLS) for t in ids]
        body += [t for t in ids[1:-1] if t != SEP]
    # All text, in order; the document separators are the only extra tokens.
    assert body == [t for d in docs for s in d for t in s]
    assert sum(inst["input_ids"][1:-1].count(SEP) for inst in instances) <= len(docs) - 1
    # Full length but for the last sentence that did not fit (at most 6 tokens here); the exceptions are
    # the end of the text and the segment before the cut sentence.
    assert sum(len(inst["input_ids"]) < 32 - 6 for inst in instances) <= 2


def test_split_documents_holds_out_whole_documents():
    docs = synthetic_documents(n_docs=10)
    train, held = split_documents(docs, 20, seed=0)
    assert len(held) == 2 and len(train) == 8
    assert sorted(map(str, train + held)) == sorted(map(str, docs))
    assert split_documents(docs, 0, seed=0) == (docs, [])
    with pytest.raises(ValueError, match="two documents"):
        split_documents(docs[:1], 10, seed=0)


@pytest.fixture(scope="module")
def wiki_tokenizer():
    return train_wordpiece(files=[data_path("wikitext2", "wiki.sample.raw")], vocab_size=1500)


def _documents(tmp_path, tokenizer, text: str) -> list[list[str]]:
    tmp_path.mkdir()
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    tokenized = tokenize_corpus(read_corpus(files=[path], cache_dir=str(tmp_path / "cache")), tokenizer)
    return [[tokenizer.decode(s) for s in d] for d in group_documents(tokenized)]


def test_documents_start_at_wikitext_titles_or_else_at_blank_lines(tmp_path, wiki_tokenizer):
    wikitext = (
        " = First = \n \n Robert is an actor . He starred in a play .\n \n = = Career = = \n He won .\n"
        " = Second = \n The poet wrote .\n\n A paragraph of the same article .\n"
    )
    assert _documents(tmp_path / "a", wiki_tokenizer, wikitext) == [
        ["robert is an actor.", "he starred in a play.", "he won."],
        ["the poet wrote.", "a paragraph of the same article."],
    ]
    plain = "One story . It ends .\n\n\nAnother story !\nStill another ?\n  \nThe last one .\n"
    assert _documents(tmp_path / "b", wiki_tokenizer, plain) == [
        ["one story.", "it ends."],
        ["another story!", "still another?"],
        ["the last one."],
    ]
    assert _documents(tmp_path / "c", wiki_tokenizer, "A first . A second .\n") == [["a first.", "a second."]]


def test_tokenization_cache_is_reused_on_a_second_run(tmp_path, wiki_tokenizer):
    cache = str(tmp_path / "cache")
    files = [data_path("wikitext2", "wiki.sample.raw")]
    first = tokenize_corpus(read_corpus(files=files, cache_dir=cache), wiki_tokenizer)
    with mock.patch.object(data, "_tokenize_batch", side_effect=AssertionError("tokenized again")):
        second = tokenize_corpus(read_corpus(files=files, cache_dir=cache), wiki_tokenizer)
    assert second.cache_files == first.cache_files
    assert second["sentences"][:20] == first["sentences"][:20]
    # Another tokenizer is another cache entry.
    other = train_wordpiece(files=files, vocab_size=1200)
    assert tokenize_corpus(read_corpus(files=files, cache_dir=cache), other).cache_files != first.cache_files


def test_bad_corpora_give_one_clear_error(tmp_path, wiki_tokenizer):
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        read_corpus(files=[blank])
    headings = tmp_path / "headings.txt"
    headings.write_text(" = Only a title = \n\n", encoding="utf-8")
    tokenized = tokenize_corpus(read_corpus(files=[headings], cache_dir=str(tmp_path / "c")), wiki_tokenizer)
    with pytest.raises(ValueError, match="corpus is empty"):
        group_documents(tokenized)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00 not text")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_corpus(files=[binary])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_corpus(files=[tmp_path / "missing.txt"])
    with pytest.raises(ValueError, match="not a file"):
        read_corpus(files=[tmp_path])
    with pytest.raises(ValueError, match="no training instance"):
        instances_to_dataset([])


def _dataset(tokenizer, max_seq_length=64):
    corpus = read_corpus(files=[data_path("wikitext2", "wiki.sample.raw")])
    docs = group_documents(tokenize_corpus(corpus, tokenizer))
    return instances_to_dataset(
        create_nsp_instances(docs, max_seq_length, tokenizer.cls_token_id, tokenizer.sep_token_id, seed=0)
    )


def test_masking_statistics(wiki_tokenizer):
    dataset = _dataset(wiki_tokenizer)
    collator = PretrainingCollator(wiki_tokenizer, pad_to_multiple_of=8, seed=1)
    examples = [dataset[i] for i in range(len(dataset))]
    original = torch.zeros(0, dtype=torch.long)
    masked_input = torch.zeros(0, dtype=torch.long)
    candidates = 0
    for start in range(0, len(examples), 37):  # odd batch size: various paddings
        chunk = examples[start : start + 37]
        batch = collator(chunk)
        assert batch["input_ids"].shape[1] % 8 == 0
        assert set(batch) == {
            "input_ids",
            "token_type_ids",
            "attention_mask",
            "labels",
            "next_sentence_label",
        }
        for row, example in enumerate(chunk):
            n = len(example["input_ids"])
            special = torch.tensor(example["special_tokens_mask"], dtype=torch.bool)
            labels = batch["labels"][row]
            # Padding and special tokens are never masked, and keep their ids.
            assert (labels[n:] == -100).all() and (labels[:n][special] == -100).all()
            assert (batch["input_ids"][row, n:] == wiki_tokenizer.pad_token_id).all()
            assert (batch["attention_mask"][row, n:] == 0).all() and (
                batch["attention_mask"][row, :n] == 1
            ).all()
            ids = torch.tensor(example["input_ids"])
            assert torch.equal(batch["input_ids"][row, :n][special], ids[special])
            chosen = labels[:n] != -100
            assert torch.equal(labels[:n][chosen], ids[chosen])
            original = torch.cat([original, ids[chosen]])
            masked_input = torch.cat([masked_input, batch["input_ids"][row, :n][chosen]])
            candidates += int((~special).sum())
    rate = len(original) / candidates
    as_mask = (masked_input == wiki_tokenizer.mask_token_id).float().mean().item()
    unchanged = (masked_input == original).float().mean().item()
    random_ = 1 - as_mask - unchanged
    assert 0.14 < rate < 0.16, rate
    assert 0.78 < as_mask < 0.82, as_mask
    assert 0.085 < unchanged < 0.115, unchanged
    assert 0.085 < random_ < 0.115, random_


def test_masks_do_not_depend_on_the_batch_but_on_seed_and_epoch(wiki_tokenizer):
    dataset = _dataset(wiki_tokenizer)
    collator = PretrainingCollator(wiki_tokenizer, pad_to_multiple_of=8, seed=5)
    alone = collator([dataset[3]])
    together = collator([dataset[10], dataset[3], dataset[0]])
    n = len(dataset[3]["input_ids"])
    assert torch.equal(alone["input_ids"][0, :n], together["input_ids"][1, :n])
    assert torch.equal(alone["labels"][0, :n], together["labels"][1, :n])
    collator.epoch = 1
    assert not torch.equal(collator([dataset[3]])["labels"], alone["labels"])
    other_seed = PretrainingCollator(wiki_tokenizer, pad_to_multiple_of=8, seed=6)([dataset[3]])
    assert not torch.equal(other_seed["labels"], alone["labels"])


def test_whole_word_masking_masks_every_piece_of_a_word(wiki_tokenizer):
    dataset = _dataset(wiki_tokenizer)
    with pytest.warns(UserWarning, match="mask_replace_prob to 1"):
        collator = PretrainingCollator(wiki_tokenizer, whole_word_mask=True, seed=0)
    batch = collator([dataset[i] for i in range(60)])
    words_checked = 0
    for row in range(60):
        ids = dataset[row]["input_ids"]
        tokens = wiki_tokenizer.convert_ids_to_tokens(ids)
        masked = (batch["labels"][row, : len(ids)] != -100).tolist()
        word = []
        for i, token in enumerate(tokens + ["[SEP]"]):
            if word and not token.startswith("##"):
                assert len({masked[j] for j in word}) == 1, [tokens[j] for j in word]
                words_checked += len(word) > 1 and masked[word[0]]
                word = []
            if token not in ("[CLS]", "[SEP]"):
                word.append(i)
    assert words_checked > 10
    # Masked pieces all became [MASK].
    chosen = batch["labels"] != -100
    assert (batch["input_ids"][chosen] == wiki_tokenizer.mask_token_id).all()


def test_tokenization_in_several_processes_gives_the_same_documents(tmp_path, wiki_tokenizer):
    files = [data_path("wikitext2", "wiki.sample.raw")]
    one = tokenize_corpus(read_corpus(files=files, cache_dir=str(tmp_path / "a")), wiki_tokenizer)
    two = tokenize_corpus(read_corpus(files=files, cache_dir=str(tmp_path / "b")), wiki_tokenizer, num_proc=2)
    assert len(two.cache_files) == 2  # one shard per process
    assert group_documents(one) == group_documents(two)
