"""Korean WordPiece: our normalisation against stock BERT normalisation, same trainer, same text.

Trains both on the NSMC-derived train reviews (../shared/data/nsmc, or the bundled sample) and reports,
on the test reviews: tokens per whitespace word (fertility), [UNK] rate, share of words kept whole,
and how "안녕하세요" is split.

    .venv/bin/python benchmarks/tokenizer_korean.py [--vocab-size 16000] [--lowercase]
"""

import argparse
import unicodedata
from pathlib import Path

from tokenizers import normalizers

from hf_session.tokenization import train_wordpiece, vocabulary_stats
from hf_session.utils import data_path, read_tsv_column

SYLLABLES = ("\uac00", "\ud7a3")


def is_hangul(char: str) -> bool:
    """Hangul syllables or conjoining jamo (what NFD turns syllables into)."""
    return SYLLABLES[0] <= char <= SYLLABLES[1] or "\u1100" <= char <= "\u11ff"


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nsmc"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=16000)
    parser.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()

    folder = SHARED if (SHARED / "train.tsv").exists() else data_path("nsmc")
    train = read_tsv_column(folder / "train.tsv", "document")
    test = read_tsv_column(folder / "test.tsv", "document")
    print(f"train {len(train)} reviews, test {len(test)} reviews from {folder}; vocab_size={args.vocab_size}")
    candidates = {
        "hf-session (NFD→strip→NFC)": None,
        "stock BERT normalisation": normalizers.BertNormalizer(lowercase=args.lowercase, strip_accents=True),
    }
    print("syllabic: share of Hangul vocabulary entries made of whole syllables (readable pieces);")
    print("decode=NFC: share of test reviews whose decoded ids equal the NFC text (what BLEU, QA spans and")
    print("string matching compare against)\n")
    print(
        f"{'normalisation':30} {'vocab':>6} {'tokens/word':>11} {'[UNK] rate':>10} {'whole words':>11} "
        f"{'syllabic':>10} {'decode=NFC':>9}  '안녕하세요 했습니다'"
    )
    for name, normalizer in candidates.items():
        tok = train_wordpiece(
            texts=train, vocab_size=args.vocab_size, lowercase=args.lowercase, normalizer=normalizer
        )
        s = vocabulary_stats(tok, test)
        hangul = [p.lstrip("#") for p in tok.get_vocab() if any(is_hangul(c) for c in p)]
        syllable_pieces = sum(
            all(SYLLABLES[0] <= c <= SYLLABLES[1] for c in p if is_hangul(c)) for p in hangul
        )
        round_trip = sum(
            tok.decode(ids).replace(" ", "") == unicodedata.normalize("NFC", text.lower()).replace(" ", "")
            for text, ids in zip(test, tok(test, add_special_tokens=False)["input_ids"], strict=True)
            if tok.unk_token_id not in ids
        )
        print(
            f"{name:30} {s['vocab_size']:6d} {s['tokens_per_word']:11.3f} {s['unk_rate']:10.4%} "
            f"{s['whole_word_rate']:11.1%} {syllable_pieces / len(hangul):10.1%} {round_trip / len(test):9.1%}  "
            f"{tok.tokenize('안녕하세요 했습니다')}"
        )


if __name__ == "__main__":
    main()
