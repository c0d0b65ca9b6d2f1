"""Small helpers shared by the library: writing output folders so that nothing is ever half-written."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


class OutputExistsError(FileExistsError):
    """The output folder holds something we would overwrite."""


def check_output_dir(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Fail early, before any work, if `path` cannot receive a fresh output folder.

    A path that is an existing file is always refused; a non-empty folder is refused unless
    `overwrite=True` (its contents are then replaced only once the new ones are complete).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"output path {str(path)!r} is an existing file, not a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"output folder {str(path)!r} is not empty; choose another folder or pass overwrite=True "
            "(--overwrite on the command line) to replace it"
        )
    return path


@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike, overwrite: bool = False):
    """Yield a temporary folder next to `path`; on success it replaces `path` in one rename.

    If the body raises, the temporary folder is removed and `path` is left exactly as it was.
    """
    path = check_output_dir(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def data_path(*parts: str) -> Path:
    """Path of a sample bundled with the package (`hf_session/data/...`)."""
    return Path(__file__).resolve().parent.joinpath("data", *parts)


def read_tsv_column(path: str | os.PathLike, column: str) -> list[str]:
    """One column of a headed TSV file (GLUE/NSMC layout).

    Quotes are data, not field delimiters: NSMC reviews contain unbalanced `"` that the csv module's
    default quoting would use to glue rows together.
    """
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        if column not in (reader.fieldnames or []):
            raise ValueError(f"{str(path)!r} has no column {column!r}; its columns are {reader.fieldnames}")
        return [row[column] for row in reader]
