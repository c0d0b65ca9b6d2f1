"""Run transformers' own common model tests on our models.

transformers does not install its test suite, but the sdist of every release ships `tests/`. We fetch the
sdist of the INSTALLED version once with pip (cached in `tests/conformance/.cache/`, git-ignored), extract
the three common test files as a package of their own (`transformers_upstream_tests`, so they never mix
with our `tests/` and pytest never collects them: pytest skips dot-folders), fill the modules the sdist
lacks with `upstream_stand_ins`, and import the mixins from there.

Where the sdist cannot be had (no package index, a dev build of transformers), `load_upstream` raises
`UpstreamUnavailable` with a one-line reason and the conformance tests skip with it.
"""

import contextlib
import functools
import importlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import types
from pathlib import Path
from unittest import mock

import pytest
import torch
import transformers
import transformers.testing_utils
import upstream_stand_ins
from transformers.models.auto import modeling_auto

try:
    import tomllib
except ImportError:  # Python 3.10: pip vendors the same parser
    from pip._vendor import tomli as tomllib

CACHE = Path(__file__).resolve().parent / ".cache"
PACKAGE = "transformers_upstream_tests"
UPSTREAM_MODULES = ("test_modeling_common", "test_configuration_common", "test_training_mixin")
# Upstream imports these three modules; its sdist does not ship them.
STAND_IN_MODULES = ("exporters.test_export", "generation.test_utils", "utils.test_configuration_utils")
PIP_TIMEOUT_S = 300


class UpstreamUnavailable(RuntimeError):
    """transformers' test files for the installed version cannot be fetched; the message says why."""


def fetch_sdist(version: str = transformers.__version__, cache: Path = CACHE) -> Path:
    """Path of the cached sdist of transformers `version`, downloaded with pip on first use.

    The download lands in a temporary folder and is renamed into place, so concurrent test runs never
    see a half-written archive.
    """
    name = f"transformers-{version}.tar.gz"
    target = cache / name
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        command += ["--disable-pip-version-check", "--quiet", f"transformers=={version}", "-d", tmp]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise UpstreamUnavailable(
                f"pip download of the transformers {version} sdist timed out after {PIP_TIMEOUT_S} s"
            ) from None
        downloaded = Path(tmp) / name
        if result.returncode != 0 or not downloaded.is_file():
            errors = [line for line in result.stderr.splitlines() if line.strip()]
            reason = (
                errors[-1].strip().removeprefix("ERROR: ")
                if errors
                else f"pip exited with {result.returncode}"
            )
            raise UpstreamUnavailable(
                f"cannot fetch the transformers {version} sdist from the package index: {reason}"
            )
        os.replace(downloaded, target)
    return target


def extract_tests(sdist: Path, version: str = transformers.__version__, cache: Path = CACHE) -> Path:
    """Extract the common test files (and the sdist's pyproject.toml) into `cache/<version>/<PACKAGE>`.

    Returns the folder to put on `sys.path`. The package gets an empty `__init__.py`: upstream's
    `test_configuration_common.py` executes the `__init__.py` next to it at import.
    """
    root = cache / version
    package = root / PACKAGE
    if (package / "__init__.py").is_file():
        return root
    root.mkdir(parents=True, exist_ok=True)
    wanted = {f"tests/{module}.py": f"{module}.py" for module in UPSTREAM_MODULES}
    wanted["pyproject.toml"] = "pyproject.toml"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".extract-"))
    try:
        try:
            with tarfile.open(sdist) as archive:
                for member in archive.getmembers():
                    # Members are "transformers-<version>/<path>".
                    inner = member.name.partition("/")[2]
                    if inner in wanted and member.isfile():
                        (tmp / wanted.pop(inner)).write_bytes(archive.extractfile(member).read())
        except (tarfile.TarError, EOFError) as error:
            # Removed so that the next run downloads it again instead of failing the same way.
            sdist.unlink(missing_ok=True)
            raise UpstreamUnavailable(
                f"the cached {sdist.name} was unreadable ({error}); removed it"
            ) from None
        if wanted:
            raise UpstreamUnavailable(f"the transformers {version} sdist lacks {', '.join(sorted(wanted))}")
        # Written last: its presence marks a complete extraction.
        (tmp / "__init__.py").write_text("")
        try:
            os.replace(tmp, package)
        except OSError:
            # Another test run finished the same extraction first.
            if not (package / "__init__.py").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def upstream_markers(root: Path) -> list[str]:
    """transformers' pytest markers ("name: description") for the extracted test files.

    Upstream declares some in its pyproject.toml (read from the sdist) and the rest in a root conftest.py
    the sdist does not ship; those we find where they are used (`mark.<name>` in the extracted files and in
    `transformers.testing_utils`). Unregistered, each use warns at import, or fails under --strict-markers.
    """
    with open(root / PACKAGE / "pyproject.toml", "rb") as handle:
        markers = tomllib.load(handle)["tool"]["pytest"]["ini_options"]["markers"]
    declared = {marker.split(":")[0].strip() for marker in markers}
    sources = [root / PACKAGE / f"{module}.py" for module in UPSTREAM_MODULES]
    sources.append(Path(transformers.testing_utils.__file__))
    used = set()
    for source in sources:
        used.update(re.findall(r"\bmark\.([A-Za-z_][A-Za-z0-9_]*)\b", source.read_text(encoding="utf-8")))
    builtin = {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}
    extra = sorted(used - declared - builtin)
    return markers + [
        f"{name}: transformers test marker (registered in its unshipped conftest.py)" for name in extra
    ]


def install_stand_ins() -> None:
    """Make `upstream_stand_ins` importable under the module names the upstream files import."""
    for dotted in STAND_IN_MODULES:
        parent = PACKAGE
        for part in dotted.split(".")[:-1]:
            parent = f"{parent}.{part}"
            sys.modules.setdefault(parent, types.ModuleType(parent))
        sys.modules[f"{PACKAGE}.{dotted}"] = upstream_stand_ins


@functools.cache
def _root_or_reason() -> Path | str:
    # A failure is cached too, so a run without a package index tries pip once, not once per module.
    try:
        return extract_tests(fetch_sdist())
    except UpstreamUnavailable as error:
        return str(error)


def prepare_upstream() -> Path:
    """Fetch and extract the installed version's test files (once per process); returns the folder that
    holds the package. Raises `UpstreamUnavailable` with the reason if the sdist cannot be had."""
    result = _root_or_reason()
    if isinstance(result, str):
        raise UpstreamUnavailable(result)
    return result


@functools.cache
def load_upstream() -> types.SimpleNamespace:
    """`prepare_upstream()`, then import transformers' common test modules with the stand-ins (once).

    Returns a namespace with `modeling` (ModelTesterMixin, ids_tensor, ...), `configuration` (ConfigTester),
    `training` (TrainingTesterMixin) and `markers`. Raises `UpstreamUnavailable` if the sdist cannot be had.
    """
    root = prepare_upstream()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    install_stand_ins()
    modules = {name: importlib.import_module(f"{PACKAGE}.{name}") for name in UPSTREAM_MODULES}
    return types.SimpleNamespace(
        modeling=modules["test_modeling_common"],
        configuration=modules["test_configuration_common"],
        training=modules["test_training_mixin"],
        markers=upstream_markers(root),
    )


def upstream_or_skip() -> types.SimpleNamespace:
    """`load_upstream()` for a test module: skips the whole module with the reason if it fails."""
    try:
        return load_upstream()
    except UpstreamUnavailable as error:
        pytest.skip(str(error), allow_module_level=True)


class ConformanceFixtures:
    """Class-wide set-up for a conformance test class (list it first among the bases).

    - one torch thread: on a shared 2-core machine, two intra-op threads made the overfit test 25x slower
      (3.7 s → 92 s) under load;
    - `mapping_names` (dict name → our class name) entered into transformers' `*_MAPPING_NAMES` under
      `mapping_model_type` for the duration of the class, see `mapping_names_patch`.
    """

    mapping_model_type: str = ""
    mapping_names: dict[str, str] = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._saved_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        cls._mapping_stack = mapping_names_patch(cls.mapping_model_type, cls.mapping_names)

    @classmethod
    def tearDownClass(cls):
        cls._mapping_stack.close()
        torch.set_num_threads(cls._saved_threads)
        super().tearDownClass()


def mapping_names_patch(model_type: str, class_names: dict[str, str]) -> contextlib.ExitStack:
    """Enter our classes into transformers' `*_MAPPING_NAMES` dicts until the returned stack is closed.

    `class_names` maps a dict name of `transformers.models.auto.modeling_auto` (e.g.
    `"MODEL_FOR_MASKED_LM_MAPPING_NAMES"`) to our class name. Upstream tests choose labels and behaviour by
    looking a class NAME up there; this happens in the test process only, never in the library.
    """
    stack = contextlib.ExitStack()
    for dict_name, class_name in class_names.items():
        stack.enter_context(mock.patch.dict(getattr(modeling_auto, dict_name), {model_type: class_name}))
    return stack


def not_applicable(reasons: dict[str, str]):
    """Class decorator: replace each named upstream test by a skip that gives its reason.

    Keeps the list of tests that cannot apply to a model in its test file, each with why, and makes them
    show up in pytest's summary instead of silently disappearing.
    """

    def decorate(cls):
        for name, reason in reasons.items():
            if not callable(getattr(cls, name, None)):
                raise AttributeError(f"{cls.__name__} has no test {name!r} to mark as not applicable")

            def skipped(self, reason=reason):
                self.skipTest(f"not applicable: {reason}")

            skipped.__name__ = name
            setattr(cls, name, skipped)
        return cls

    return decorate
