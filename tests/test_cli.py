import subprocess
import sys

from hf_session.cli import main
from hf_session.utils import data_path


def test_tokenizer_train_and_encode(tmp_path, capsys):
    out = tmp_path / "vocab"
    files = [str(data_path("multi30k", "train.en")), str(data_path("multi30k", "train.de"))]
    assert main(["tokenizer", "train", "--files", *files, "--vocab-size", "2000", "--output", str(out)]) == 0
    assert "saved a 2000-token WordPiece vocabulary" in capsys.readouterr().out
    assert main(["tokenizer", "encode", str(out), "A man in a red shirt", "Ein Mann"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[1:] == [
        "[CLS]",
        "a",
        "man",
        "in",
        "a",
        "red",
        "shirt",
        "[SEP]",
        "ein",
        "mann",
        "[SEP]",
    ]
    assert printed[2].split()[1:] == ["0"] * 8 + ["1"] * 3
    assert printed[3].split(maxsplit=1)[1] == "a man in a red shirt ein mann"


def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys):
    existing = tmp_path / "file.txt"
    existing.write_text("keep", encoding="utf-8")
    code = main(
        ["tokenizer", "train", "--files", str(tmp_path / "missing.txt"), "--output", str(tmp_path / "o")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("hf-session: error: input file") and "does not exist" in err and err.count("\n") == 1
    )
    code = main(
        ["tokenizer", "train", "--files", str(data_path("multi30k", "train.en")), "--output", str(existing)]
    )
    assert code == 2 and "existing file" in capsys.readouterr().err
    assert existing.read_text(encoding="utf-8") == "keep"


def test_python_dash_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "hf_session", "--help"], capture_output=True, text=True, check=True
    )
    assert "tokenizer" in result.stdout and "demo" in result.stdout
