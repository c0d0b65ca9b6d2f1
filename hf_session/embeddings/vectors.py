"""The embedding explorer: one API over any source of word vectors.

A `WordVectors` is a (vocab, dim) matrix plus the tokenizer that names its rows. It comes from
PPMI-SVD (`train_ppmi_svd`), from a word2vec checkpoint, or from the input embeddings of any
transformers checkpoint with a tokenizer (session_bert, session_rnn, ...): `load_word_vectors(path)`
tells them apart. Then: nearest neighbours by cosine, analogies (a - b + c), a 2-D PCA picture.

    >>> vectors = load_word_vectors("runs/word2vec")
    >>> vectors.neighbors("france", k=5)
    >>> vectors.analogy("king", "man", "woman")      # king - man + woman
    >>> vectors.plot(["paris", "france", "rome", "italy"], "capitals.png")
"""

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..tokenization import load_tokenizer
from ..utils import atomic_output_dir

CONFIG_NAME = "word_vectors.json"
WEIGHTS_NAME = "word_vectors.safetensors"
# Tried in order on a checkpoint whose config is not registered with AutoModel (e.g. a seq2seq head only).
AUTO_CLASS_NAMES = ("AutoModel", "AutoModelForSeq2SeqLM", "AutoModelForMaskedLM", "AutoModelForCausalLM")


class WordVectors:
    """Word vectors with the tokenizer that maps words to their rows.

    Args:
        vectors: (vocab_size, dim) array or tensor; rows past `len(tokenizer)` (padding some models add
            to their embedding matrix) are dropped.
        tokenizer: a transformers tokenizer. A word that it splits into several pieces (WordPiece) is
            represented by the mean of the pieces' vectors.
        config: settings and measurements to keep with the vectors (saved as JSON).
    """

    def __init__(self, vectors, tokenizer, config: dict | None = None):
        vectors = torch.as_tensor(np.asarray(vectors) if not torch.is_tensor(vectors) else vectors)
        vectors = vectors.detach().to("cpu", torch.float32)
        if vectors.ndim != 2 or vectors.shape[1] < 2:
            raise ValueError(
                f"vectors must be a (vocab_size, dim) matrix with dim >= 2, got {tuple(vectors.shape)}"
            )
        if vectors.shape[0] < len(tokenizer):
            raise ValueError(
                f"the tokenizer has {len(tokenizer)} tokens but there are only {vectors.shape[0]} vectors"
            )
        self.vectors = vectors[: len(tokenizer)].contiguous()
        self.tokenizer = tokenizer
        self.config = dict(config or {})
        self._unit = torch.nn.functional.normalize(self.vectors, dim=1)
        self._special_ids = set(tokenizer.all_special_ids)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return self.vectors.shape[0]

    def __contains__(self, word: str) -> bool:
        try:
            self.token_ids(word)
        except ValueError:
            return False
        return True

    def token_ids(self, word: str) -> list[int]:
        """The rows that represent `word`: one for a whole word, several for WordPiece pieces."""
        if not isinstance(word, str) or not word.strip():
            raise ValueError(f"a word must be a non-empty string, got {word!r}")
        ids = self.tokenizer(word, add_special_tokens=False)["input_ids"]
        if not ids or self.tokenizer.unk_token_id in ids:
            raise ValueError(f"{word!r} is not in the vocabulary ({len(self)} tokens)")
        return ids

    def vector(self, word: str) -> torch.Tensor:
        """(dim,) vector of `word` (mean of its pieces' vectors if the tokenizer splits it)."""
        return self.vectors[self.token_ids(word)].mean(dim=0)

    def similarity(self, first: str, second: str) -> float:
        """Cosine similarity of two words."""
        return torch.nn.functional.cosine_similarity(self.vector(first), self.vector(second), dim=0).item()

    def nearest(
        self, vector: torch.Tensor, k: int = 10, exclude: set[int] = frozenset()
    ) -> list[tuple[str, float]]:
        """The `k` tokens whose vectors have the highest cosine with `vector` (dim,), special tokens excluded."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        scores = self._unit @ torch.nn.functional.normalize(
            torch.as_tensor(vector, dtype=torch.float32), dim=0
        )
        skip = list(self._special_ids | set(exclude))
        if len(skip) >= len(self):
            raise ValueError("no token is left to compare with once special and query tokens are excluded")
        scores[skip] = -float("inf")
        top = scores.topk(min(k, len(self) - len(skip)))
        tokens = self.tokenizer.convert_ids_to_tokens(top.indices.tolist())
        return list(zip(tokens, top.values.tolist(), strict=True))

    def neighbors(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The `k` nearest tokens to `word` by cosine, the word itself excluded."""
        return self.nearest(self.vector(word), k, exclude=set(self.token_ids(word)))

    def analogy(self, a: str, b: str, c: str, k: int = 10) -> list[tuple[str, float]]:
        """Tokens nearest to a - b + c ("king" - "man" + "woman"), the three query words excluded.

        Uses unit-length vectors (3CosAdd of Mikolov et al. 2013), so no word dominates by its norm.
        """
        unit = {w: torch.nn.functional.normalize(self.vector(w), dim=0) for w in (a, b, c)}
        exclude = set(self.token_ids(a)) | set(self.token_ids(b)) | set(self.token_ids(c))
        return self.nearest(unit[a] - unit[b] + unit[c], k, exclude=exclude)

    def pca(self, words: list[str]) -> np.ndarray:
        """2-D coordinates (len(words), 2) of the words on their own first two principal components."""
        if len(set(words)) < 2:
            raise ValueError(f"give at least two different words to project, got {words}")
        matrix = torch.stack([self.vector(w) for w in words]).double()
        centred = matrix - matrix.mean(dim=0)
        _, _, components = torch.linalg.svd(centred, full_matrices=False)
        components = components[:2]
        # Same sign convention as scikit-learn: the largest loading of each component is positive.
        signs = torch.sign(components[torch.arange(len(components)), components.abs().argmax(dim=1)])
        coords = centred @ (components * signs[:, None]).T
        if coords.shape[1] == 1:  # two words span one dimension only
            coords = torch.cat([coords, torch.zeros_like(coords)], dim=1)
        return coords.numpy()

    def plot(self, words: list[str], output: str | os.PathLike, title: str | None = None) -> Path:
        """Save a PNG scatter plot of `words` on their first two principal components; returns its path.

        The file appears complete or not at all (written next to it, then renamed).
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        output = Path(output)
        if output.suffix.lower() != ".png":
            raise ValueError(
                f"the plot is written as PNG: give an output path ending in .png, got {str(output)!r}"
            )
        if output.is_dir():
            raise ValueError(f"output {str(output)!r} is a folder; give a file name ending in .png")
        coords = self.pca(words)
        figure = Figure(figsize=(6, 5), dpi=120)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.scatter(coords[:, 0], coords[:, 1], s=18)
        for word, (x, y) in zip(words, coords, strict=True):
            axes.annotate(word, (x, y), textcoords="offset points", xytext=(4, 3), fontsize=9)
        axes.set_xlabel("PC 1")
        axes.set_ylabel("PC 2")
        axes.set_title(title or f"{self.config.get('method', 'word vectors')}: PCA of {len(words)} words")
        output.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".png", dir=output.parent)
        os.close(handle)
        try:
            figure.savefig(tmp, format="png")
            os.replace(tmp, output)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return output

    def save_pretrained(self, output_dir: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write `word_vectors.safetensors`, `word_vectors.json` and the tokenizer, atomically."""
        with atomic_output_dir(output_dir, overwrite=overwrite) as tmp:
            save_file({"vectors": self.vectors}, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
            (tmp / CONFIG_NAME).write_text(json.dumps(self.config, indent=2) + "\n", encoding="utf-8")
            self.tokenizer.save_pretrained(tmp)
        return Path(output_dir)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> "WordVectors":
        """Load a folder written by `save_pretrained`."""
        path = Path(path)
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (path / name).is_file():
                raise FileNotFoundError(f"{str(path)!r} holds no {name}: not a word-vector folder")
        config = json.loads((path / CONFIG_NAME).read_text(encoding="utf-8"))
        return cls(load_file(str(path / WEIGHTS_NAME))["vectors"], load_tokenizer(path), config)


def load_word_vectors(
    source: str | os.PathLike, tokenizer=None, trust_remote_code: bool = False
) -> WordVectors:
    """Word vectors from a folder: saved `WordVectors` (PPMI-SVD), or any transformers checkpoint.

    For a checkpoint (session_word2vec, session_bert, session_rnn, or any model with
    `get_input_embeddings`) the vectors are its input embeddings and the tokenizer is the one saved
    with it, unless `tokenizer` (a tokenizer or a path) is given.
    """
    path = Path(source)
    if not path.is_dir():
        raise FileNotFoundError(f"vector source {str(source)!r} is not a folder")
    if (path / CONFIG_NAME).is_file():
        return WordVectors.from_pretrained(path)
    if not (path / "config.json").is_file():
        raise ValueError(
            f"{str(source)!r} holds neither {CONFIG_NAME} (saved word vectors) nor config.json (a checkpoint)"
        )
    import transformers

    model = None
    for name in AUTO_CLASS_NAMES:
        try:
            model = getattr(transformers, name).from_pretrained(path, trust_remote_code=trust_remote_code)
            break
        except ValueError as err:  # this Auto class does not know the config: try the next one
            if "Unrecognized configuration class" not in str(err):
                raise
    if model is None:
        raise ValueError(f"no Auto class among {AUTO_CLASS_NAMES} can load the checkpoint {str(source)!r}")
    if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = load_tokenizer(tokenizer or path)
    config = {"method": "input-embeddings", "model_type": model.config.model_type, "source": str(path)}
    return WordVectors(model.get_input_embeddings().weight, tokenizer, config)
