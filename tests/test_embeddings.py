"""Count-based vectors (co-occurrence, PPMI, SVD), the explorer, and pretrained-embedding loading."""

import math
import os

import numpy as np
import pytest
import scipy.sparse
import torch
from embedding_corpus import ANIMALS, VEHICLES, group_of, planted_corpus
from transformers import AutoTokenizer, BertConfig, BertModel

from hf_session.embeddings import (
    WordVectors,
    cooccurrence_matrix,
    encode_lines,
    load_pretrained_embeddings,
    load_word_vectors,
    ppmi,
    read_lines,
    token_counts,
    train_ppmi_svd,
    train_word_tokenizer,
    truncated_svd,
)
from hf_session.tokenization import train_wordpiece
from hf_session.utils import OutputExistsError, data_path

SAMPLE = data_path("wikitext2", "wiki.sample.raw")


@pytest.fixture(scope="module")
def planted_vectors():
    return train_ppmi_svd(texts=planted_corpus(), dim=6, window=2, min_frequency=1)


@pytest.fixture(scope="module")
def wordpiece():
    return train_wordpiece(files=[SAMPLE], vocab_size=800)


def test_cooccurrence_counts_by_hand():
    # a=0 b=1 c=2; lines "a b a c" and "b c": windows never cross the line end.
    sequences = [np.array([0, 1, 0, 2]), np.array([1, 2])]
    one = cooccurrence_matrix(sequences, 3, window=1).toarray()
    np.testing.assert_array_equal(one, [[0, 2, 1], [2, 0, 1], [1, 1, 0]])
    two = cooccurrence_matrix(sequences, 3, window=2).toarray()
    # distance 2 adds a..a (both directions) and b..c within the first line
    np.testing.assert_array_equal(two, [[2, 2, 1], [2, 0, 2], [1, 2, 0]])
    harmonic = cooccurrence_matrix(sequences, 3, window=2, distance_weighting=True).toarray()
    np.testing.assert_array_equal(harmonic, [[1, 2, 1], [2, 0, 1.5], [1, 1.5, 0]])
    with pytest.raises(ValueError, match="window"):
        cooccurrence_matrix(sequences, 3, window=0)
    with pytest.raises(ValueError, match="token ids"):
        cooccurrence_matrix(sequences, 2)


def test_ppmi_against_a_hand_computed_matrix():
    counts = scipy.sparse.csr_matrix(np.array([[0, 4, 1], [4, 0, 1], [1, 1, 2]], dtype=float))
    # total 14, row and column sums 5, 5, 4
    plain = ppmi(counts, alpha=1.0).toarray()
    expected = np.zeros((3, 3))
    expected[0, 1] = expected[1, 0] = math.log(4 * 14 / (5 * 5))
    expected[2, 2] = math.log(2 * 14 / (4 * 4))
    # log(1 * 14 / (5 * 4)) < 0: the a-c and b-c cells are clipped to zero
    np.testing.assert_allclose(plain, expected, rtol=1e-12)

    smoothed = ppmi(counts, alpha=0.75).toarray()
    p_c = 5**0.75 / (2 * 5**0.75 + 4**0.75)
    np.testing.assert_allclose(smoothed[0, 1], math.log((4 / 14) / ((5 / 14) * p_c)), rtol=1e-12)

    shifted = ppmi(counts, alpha=1.0, shift=2.0).toarray()
    assert shifted[0, 1] == pytest.approx(math.log(4 * 14 / 25) - math.log(2))
    assert shifted[2, 2] == 0  # log(28/16) - log 2 < 0
    with pytest.raises(ValueError, match="alpha"):
        ppmi(counts, alpha=0)
    with pytest.raises(ValueError, match="no counts"):
        ppmi(scipy.sparse.csr_matrix((3, 3)))


def test_svd_reproduces_the_top_singular_values():
    tokenizer = train_word_tokenizer(read_lines(SAMPLE), min_frequency=8)
    counts = cooccurrence_matrix(encode_lines(read_lines(SAMPLE), tokenizer), len(tokenizer), window=2)
    matrix = ppmi(counts)
    vectors, singular = truncated_svd(matrix, dim=8, eigenvalue_weighting=1.0)
    exact = np.linalg.svd(matrix.toarray(), compute_uv=False)[:8]
    np.testing.assert_allclose(singular, exact, rtol=1e-6)
    # with p=1 the vectors are U S: their Gram matrix is S^2, diagonal
    np.testing.assert_allclose(
        vectors.T.astype(np.float64) @ vectors, np.diag(exact**2), atol=1e-3 * exact[0] ** 2
    )
    half, _ = truncated_svd(matrix, dim=8, eigenvalue_weighting=0.5)
    np.testing.assert_allclose(np.linalg.norm(half, axis=0), np.sqrt(exact), rtol=1e-4)
    with pytest.raises(ValueError, match="dim"):
        truncated_svd(matrix, dim=matrix.shape[0])


def test_planted_pattern_neighbours(planted_vectors):
    for word in ANIMALS + VEHICLES:
        found = [token for token, _ in planted_vectors.neighbors(word, k=3)]
        assert sorted(found) == sorted(w for w in group_of(word) if w != word), word
    assert planted_vectors.similarity("cat", "dog") > planted_vectors.similarity("cat", "bus")


def test_config_records_the_run(planted_vectors):
    config = planted_vectors.config
    assert config["method"] == "ppmi-svd" and config["dim"] == 6 and config["window"] == 2
    assert config["vocab_size"] == len(planted_vectors) == 2 + 8 + 11  # pad, unk, 8 nouns, 11 other words
    assert config["corpus_tokens"] == sum(len(line.split()) for line in planted_corpus())
    assert config["singular_values"] == sorted(config["singular_values"], reverse=True)


def test_save_and_load_round_trip(planted_vectors, tmp_path):
    planted_vectors.save_pretrained(tmp_path / "ppmi")
    assert sorted(os.listdir(tmp_path / "ppmi")) == [
        "tokenizer.json",
        "tokenizer_config.json",
        "word_vectors.json",
        "word_vectors.safetensors",
    ]
    loaded = load_word_vectors(tmp_path / "ppmi")
    assert torch.equal(loaded.vectors, planted_vectors.vectors)
    assert loaded.config == planted_vectors.config
    assert loaded.neighbors("cat", 5) == planted_vectors.neighbors("cat", 5)
    # an existing folder is refused and left as it was
    with pytest.raises(OutputExistsError):
        planted_vectors.save_pretrained(tmp_path / "ppmi")
    assert torch.equal(load_word_vectors(tmp_path / "ppmi").vectors, planted_vectors.vectors)


def test_neighbours_and_analogy_on_hand_made_vectors():
    tokenizer = train_word_tokenizer(["king queen man woman apple"])
    vectors = torch.zeros(len(tokenizer), 3)
    rows = {
        "king": [1.0, 1.0, 0.0],
        "man": [1.0, 0.0, 0.0],
        "woman": [0.0, 0.0, 1.0],
        "queen": [0.0, 1.0, 1.0],
        "apple": [1.0, -1.0, -1.0],
    }
    for word, row in rows.items():
        vectors[tokenizer.convert_tokens_to_ids(word)] = torch.tensor(row)
    vectors[tokenizer.pad_token_id] = torch.tensor([1.0, 1.0, 0.0])  # identical to king, but special
    explorer = WordVectors(vectors, tokenizer)
    assert explorer.neighbors("king", k=1)[0][0] in {"man", "queen"}
    assert "[PAD]" not in [t for t, _ in explorer.neighbors("king", k=10)]
    assert len(explorer.neighbors("king", k=10)) == 4  # the other words only
    best, score = explorer.analogy("king", "man", "woman", k=1)[0]
    assert best == "queen"
    # 3CosAdd on unit vectors: the query is king/|king| - man + woman
    query = torch.tensor([1 / math.sqrt(2) - 1, 1 / math.sqrt(2), 1.0])
    assert score == pytest.approx(
        torch.nn.functional.cosine_similarity(query, torch.tensor([0.0, 1, 1]), dim=0).item()
    )
    assert explorer.similarity("king", "man") == pytest.approx(1 / math.sqrt(2))
    with pytest.raises(ValueError, match="'pear' is not in the vocabulary"):
        explorer.neighbors("pear")
    assert "pear" not in explorer and "queen" in explorer
    with pytest.raises(ValueError, match="k must be"):
        explorer.neighbors("king", k=0)
    with pytest.raises(ValueError, match="dim"):
        WordVectors(torch.zeros(len(tokenizer)), tokenizer)
    with pytest.raises(ValueError, match="only 3 vectors"):
        WordVectors(torch.zeros(3, 4), tokenizer)


def test_wordpiece_words_are_the_mean_of_their_pieces(wordpiece):
    explorer = WordVectors(torch.randn(len(wordpiece), 8), wordpiece)
    ids = wordpiece("unbelievably", add_special_tokens=False)["input_ids"]
    assert len(ids) > 1
    assert torch.allclose(explorer.vector("unbelievably"), explorer.vectors[ids].mean(0))
    assert explorer.token_ids("the") == [wordpiece.convert_tokens_to_ids("the")]
    # PPMI-SVD over WordPiece pieces: one row per vocabulary entry, pieces counted as tokens
    pieces = train_ppmi_svd(files=[SAMPLE], tokenizer=wordpiece, dim=4)
    assert len(pieces) == len(wordpiece) and pieces.config["corpus_tokens"] == sum(
        len(wordpiece(line, add_special_tokens=False)["input_ids"]) for line in read_lines(SAMPLE)
    )


def test_pca_matches_scikit_learn_and_plot_writes_a_png(planted_vectors, tmp_path):
    from sklearn.decomposition import PCA

    words = ANIMALS + VEHICLES + ["road", "field"]
    coords = planted_vectors.pca(words)
    matrix = np.stack([planted_vectors.vector(w).numpy() for w in words]).astype(np.float64)
    reference = PCA(n_components=2).fit_transform(matrix)
    for axis in range(2):  # equal up to the sign of each component
        sign = np.sign(coords[:, axis] @ reference[:, axis])
        np.testing.assert_allclose(coords[:, axis], sign * reference[:, axis], atol=1e-5)
    # the planted groups separate along the first component
    assert np.sign(coords[:4, 0]).tolist().count(np.sign(coords[0, 0])) == 4
    assert np.sign(coords[4:8, 0]).tolist().count(-np.sign(coords[0, 0])) == 4

    output = planted_vectors.plot(words, tmp_path / "plots" / "groups.png", title="planted")
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    assert imread(output).shape[:2] == (600, 720)  # 6 x 5 inches at 120 dpi
    assert os.listdir(output.parent) == ["groups.png"]  # no temporary file left behind
    with pytest.raises(ValueError, match="ending in .png"):
        planted_vectors.plot(words, tmp_path / "groups.jpg")
    with pytest.raises(ValueError, match="at least two"):
        planted_vectors.plot(["cat", "cat"], tmp_path / "one.png")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        planted_vectors.plot(["cat", "zebra"], tmp_path / "zebra.png")
    assert not (tmp_path / "zebra.png").exists()


def tiny_bert(tokenizer, hidden_size=6):
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=8,
        max_position_embeddings=32,
    )
    torch.manual_seed(0)
    return BertModel(config)


def test_a_checkpoints_input_embeddings_are_a_source(wordpiece, tmp_path):
    model = tiny_bert(wordpiece)
    model.save_pretrained(tmp_path / "bert")
    wordpiece.save_pretrained(tmp_path / "bert")
    vectors = load_word_vectors(tmp_path / "bert")
    assert vectors.config["model_type"] == "bert"
    assert torch.equal(vectors.vectors, model.get_input_embeddings().weight.detach())
    assert len(vectors.neighbors("the", k=3)) == 3

    model.save_pretrained(tmp_path / "no-tokenizer")
    with pytest.raises(FileNotFoundError, match="holds no tokenizer"):
        load_word_vectors(tmp_path / "no-tokenizer")
    assert torch.equal(
        load_word_vectors(tmp_path / "no-tokenizer", tokenizer=wordpiece).vectors, vectors.vectors
    )
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_word_vectors(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"neither word_vectors.json \(saved word vectors\) nor config.json"):
        load_word_vectors(tmp_path / "empty")


def test_load_pretrained_embeddings_copies_the_shared_tokens(planted_vectors):
    model_tokenizer = train_word_tokenizer(planted_corpus() + ["zebra zebra"])
    model = tiny_bert(model_tokenizer, hidden_size=planted_vectors.dim)
    before = model.get_input_embeddings().weight.detach().clone()
    report = load_pretrained_embeddings(model, planted_vectors, model_tokenizer)
    after = model.get_input_embeddings().weight.detach()
    assert report["copied"] == len(planted_vectors) - 2 and report["missing"] == ["zebra"]
    for word in ANIMALS + ["road"]:
        assert torch.equal(after[model_tokenizer.convert_tokens_to_ids(word)], planted_vectors.vector(word))
    for untouched in ("zebra", "[PAD]", "[UNK]"):
        row = model_tokenizer.convert_tokens_to_ids(untouched)
        assert torch.equal(after[row], before[row])
    assert model.get_input_embeddings().weight.requires_grad
    load_pretrained_embeddings(model, planted_vectors, model_tokenizer, freeze=True)
    assert not model.get_input_embeddings().weight.requires_grad

    with pytest.raises(ValueError, match="6-dimensional"):
        load_pretrained_embeddings(
            tiny_bert(model_tokenizer, hidden_size=4), planted_vectors, model_tokenizer
        )
    other = train_word_tokenizer(["completely different words"])
    with pytest.raises(ValueError, match="share no token"):
        load_pretrained_embeddings(tiny_bert(other, hidden_size=6), planted_vectors, other)


def test_word_tokenizer_and_corpus_helpers(tmp_path):
    tokenizer = train_word_tokenizer(
        ["The cat , the dog <unk>", "the cat"], unk_token="<unk>", split_punctuation=False
    )
    vocab = tokenizer.get_vocab()
    assert vocab["[PAD]"] == 0 and vocab["<unk>"] == 1 and vocab["the"] == 2  # most frequent first
    assert "," in vocab and "<unk>" == tokenizer.unk_token
    sequences = encode_lines(["the zebra cat", "   ", "zebra"], tokenizer)
    assert [s.tolist() for s in sequences] == [[vocab["the"], vocab["cat"]]]  # unknown words dropped
    assert token_counts(sequences, len(tokenizer)).tolist()[vocab["cat"]] == 1
    reloaded_dir = tmp_path / "tok"
    tokenizer.save_pretrained(reloaded_dir)
    assert AutoTokenizer.from_pretrained(reloaded_dir)("the cat zebra")["input_ids"] == [
        vocab["the"],
        vocab["cat"],
        1,
    ]
    with pytest.raises(ValueError, match="min_frequency=9"):
        train_word_tokenizer(["a b"], min_frequency=9)
    (tmp_path / "blank.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        read_lines(tmp_path / "blank.txt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_lines(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="exactly one"):
        train_ppmi_svd()


def family_models(tokenizer, dim):
    """A tiny session_rnn seq2seq and session_bert model over `tokenizer`, if those families are there."""
    try:
        from hf_session.models.session_bert import SessionBertConfig, SessionBertModel
        from hf_session.models.session_rnn import SessionRnnConfig, SessionRnnForConditionalGeneration
    except ImportError as err:
        pytest.skip(f"session_rnn / session_bert not available: {err}")
    torch.manual_seed(0)
    rnn = SessionRnnForConditionalGeneration(
        SessionRnnConfig(
            vocab_size=len(tokenizer), embedding_size=dim, hidden_size=dim, bos_token_id=2, eos_token_id=3
        )
    )
    bert = SessionBertModel(
        SessionBertConfig(
            vocab_size=len(tokenizer),
            hidden_size=dim,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=8,
            max_position_embeddings=32,
        )
    )
    return {"session_rnn": rnn, "session_bert": bert}


def test_session_rnn_and_session_bert_embeddings_start_from_pretrained_vectors(planted_vectors, tmp_path):
    tokenizer = train_word_tokenizer(planted_corpus())
    for name, model in family_models(tokenizer, planted_vectors.dim).items():
        report = load_pretrained_embeddings(model, planted_vectors, tokenizer)
        assert report["copied"] == len(tokenizer) - 2, name
        cat = tokenizer.convert_tokens_to_ids("cat")
        assert torch.equal(
            model.get_input_embeddings().weight[cat].detach(), planted_vectors.vector("cat")
        ), name
        # and the checkpoint is itself a source for the explorer: the same vectors come back
        model.save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
        explored = load_word_vectors(tmp_path / name)
        assert explored.config["model_type"] == name
        assert torch.equal(explored.vectors, model.get_input_embeddings().weight.detach()), name
        assert sorted(t for t, _ in explored.neighbors("cat", k=3)) == ["cow", "dog", "horse"], name
