"""Count-based word vectors: co-occurrence counts → PPMI → truncated SVD.

The three steps of the lesson, each a function over a `scipy.sparse` matrix, then `train_ppmi_svd`
to run them on text. Following Levy, Goldberg and Dagan (2015), *Improving Distributional Similarity
with Lessons Learned from Word Embeddings*: context-distribution smoothing (``alpha=0.75``) and
symmetric eigenvalue weighting (``U · S^0.5``) are the defaults.
"""

import os
import time
from collections.abc import Iterable

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from ..utils import check_output_dir
from .corpus import encode_lines, read_lines, train_word_tokenizer
from .vectors import WordVectors


def cooccurrence_matrix(
    sequences: list[np.ndarray], vocab_size: int, window: int = 2, distance_weighting: bool = False
) -> scipy.sparse.csr_matrix:
    """Symmetric co-occurrence counts: X[w, c] = how often c occurs within `window` tokens of w.

    Args:
        sequences: id arrays (one per line; windows never cross lines).
        vocab_size: number of rows and columns.
        window: context words on each side.
        distance_weighting: count a context at distance d as 1/d (GloVe's harmonic weighting).

    Returns:
        (vocab_size, vocab_size) float64 CSR matrix, symmetric.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    if not sequences:
        raise ValueError("no sequences to count")
    ids = np.concatenate(sequences)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token ids must lie in [0, {vocab_size}), got {ids.min()}..{ids.max()}")
    line = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    rows, cols, values = [], [], []
    # One vectorised pass per distance instead of a Python loop per token.
    for distance in range(1, window + 1):
        same_line = line[distance:] == line[:-distance]
        left, right = ids[:-distance][same_line], ids[distance:][same_line]
        weight = 1.0 / distance if distance_weighting else 1.0
        rows += [left, right]
        cols += [right, left]
        values.append(np.full(2 * len(left), weight))
    counts = scipy.sparse.coo_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(vocab_size, vocab_size)
    )
    return counts.tocsr()  # duplicate (row, col) entries are summed here


def ppmi(counts: scipy.sparse.spmatrix, alpha: float = 0.75, shift: float = 1.0) -> scipy.sparse.csr_matrix:
    """Positive pointwise mutual information of a co-occurrence matrix.

    PPMI(w, c) = max(0, log P(w, c) / (P(w) P_alpha(c)) - log shift), with
    P_alpha(c) = #(c)^alpha / sum_c' #(c')^alpha. `alpha=1` is plain PMI; `alpha < 1` raises rare
    contexts' probability and so tames PMI's bias towards them. `shift=k` gives SPPMI, the matrix
    skip-gram with k negative samples implicitly factorises.

    Returns:
        CSR matrix of the same shape; cells with no count or non-positive PMI are absent (zero).
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    if shift <= 0:
        raise ValueError(f"shift must be positive, got {shift}")
    counts = scipy.sparse.csr_matrix(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise ValueError("the co-occurrence matrix holds no counts")
    p_word = np.asarray(counts.sum(axis=1)).ravel() / total
    context = np.asarray(counts.sum(axis=0)).ravel() ** alpha
    p_context = context / context.sum()
    coo = counts.tocoo()
    keep = coo.data > 0
    row, col, data = coo.row[keep], coo.col[keep], coo.data[keep]
    pmi = np.log(data / total) - np.log(p_word[row]) - np.log(p_context[col]) - np.log(shift)
    positive = pmi > 0
    return scipy.sparse.csr_matrix((pmi[positive], (row[positive], col[positive])), shape=counts.shape)


def truncated_svd(
    matrix: scipy.sparse.spmatrix, dim: int, eigenvalue_weighting: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The top-`dim` singular triplets of a sparse matrix, as word vectors U · S^p.

    `eigenvalue_weighting` is p: 1 gives U·S (the rank-`dim` reconstruction's row factor), 0 gives U,
    0.5 splits S evenly between words and contexts and usually works best for similarity.

    Returns:
        vectors (rows, dim) float32 and singular values (dim,) in decreasing order.
    """
    rows, cols = matrix.shape
    if not 1 <= dim < min(rows, cols):
        raise ValueError(f"dim must lie in [1, {min(rows, cols) - 1}] for a {rows}x{cols} matrix, got {dim}")
    # A seeded start vector makes ARPACK, and so the vectors, reproducible.
    start = np.random.default_rng(seed).standard_normal(min(rows, cols))
    u, s, _ = scipy.sparse.linalg.svds(scipy.sparse.csr_matrix(matrix, dtype=np.float64), k=dim, v0=start)
    order = np.argsort(-s)
    u, s = u[:, order], s[order]
    # Singular vectors have an arbitrary sign; fix it so the largest entry of each is positive.
    signs = np.sign(u[np.abs(u).argmax(axis=0), np.arange(dim)])
    u = u * signs
    return (u * s**eigenvalue_weighting).astype(np.float32), s


def train_ppmi_svd(
    files: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
    texts: Iterable[str] | None = None,
    *,
    tokenizer=None,
    dim: int = 100,
    window: int = 2,
    min_frequency: int = 5,
    max_vocab_size: int | None = None,
    lowercase: bool = True,
    split_punctuation: bool = True,
    unk_token: str = "[UNK]",
    alpha: float = 0.75,
    shift: float = 1.0,
    distance_weighting: bool = False,
    eigenvalue_weighting: float = 0.5,
    seed: int = 0,
    output_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> WordVectors:
    """Count, weight and factorise: PPMI-SVD word vectors from text.

    Args:
        files / texts: the corpus (exactly one), one paragraph or sentence per line.
        tokenizer: a transformers tokenizer (e.g. our WordPiece one) to split with; by default a
            whole-word vocabulary is built (`min_frequency`, `max_vocab_size`, `lowercase`,
            `split_punctuation`, `unk_token`: see `train_word_tokenizer`).
        dim, window, alpha, shift, distance_weighting, eigenvalue_weighting: see the step functions.
        output_dir: if given, save there (complete or not at all).

    Returns:
        `WordVectors` whose `config` records every setting, the singular values and the timings.
    """
    if (files is None) == (texts is None):
        raise ValueError("give exactly one of `files` or `texts`")
    if output_dir is not None:
        check_output_dir(output_dir, overwrite)  # fail before the work, not after
    lines = read_lines(files) if files is not None else [t for t in texts if t.strip()]
    if not lines:
        raise ValueError("texts is empty (no non-blank string)")
    start = time.perf_counter()
    if tokenizer is None:
        tokenizer = train_word_tokenizer(
            lines,
            min_frequency=min_frequency,
            max_vocab_size=max_vocab_size,
            lowercase=lowercase,
            split_punctuation=split_punctuation,
            unk_token=unk_token,
        )
    sequences = encode_lines(lines, tokenizer)
    vocab_size = len(tokenizer)
    counts = cooccurrence_matrix(sequences, vocab_size, window, distance_weighting)
    weighted = ppmi(counts, alpha=alpha, shift=shift)
    vectors, singular_values = truncated_svd(weighted, dim, eigenvalue_weighting, seed)
    config = {
        "method": "ppmi-svd",
        "dim": dim,
        "window": window,
        "alpha": alpha,
        "shift": shift,
        "distance_weighting": distance_weighting,
        "eigenvalue_weighting": eigenvalue_weighting,
        "vocab_size": vocab_size,
        "corpus_tokens": int(sum(len(s) for s in sequences)),
        "nonzero_ppmi": int(weighted.nnz),
        "singular_values": [float(s) for s in singular_values],
        "train_seconds": round(time.perf_counter() - start, 3),
    }
    result = WordVectors(vectors, tokenizer, config)
    if output_dir is not None:
        result.save_pretrained(output_dir, overwrite=overwrite)
    return result
