"""The harness itself: fetching and extracting upstream's tests, the stand-ins, and that the suite can fail."""

import io
import subprocess
import tarfile
import unittest
from unittest import mock

import conformance_harness
import pytest
import torch
import upstream_stand_ins
from transformers import PreTrainedModel
from transformers.models.auto import modeling_auto

from hf_session.models.session_rnn import SessionRnnPreTrainedModel


def write_fake_sdist(path, version, members):
    """A .tar.gz laid out like transformers' sdist ("transformers-<version>/<member>")."""
    with tarfile.open(path, "w:gz") as archive:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f"transformers-{version}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def upstream_members():
    members = {f"tests/{module}.py": f"# {module}\n" for module in conformance_harness.UPSTREAM_MODULES}
    members["tests/test_modeling_common.py"] = "@pytest.mark.torch_compile_test\ndef test_x(): ...\n"
    members["pyproject.toml"] = '[tool.pytest.ini_options]\nmarkers = ["is_training_test: training"]\n'
    return members


def test_config_common_kwargs_cover_pretrained_config():
    defaults = upstream_stand_ins.pretrained_config_fields()
    expected = set(defaults) - upstream_stand_ins.NOT_USER_SET_FIELDS | {"output_attentions"}
    assert set(upstream_stand_ins.config_common_kwargs) == expected
    for name, value in upstream_stand_ins.config_common_kwargs.items():
        assert value != defaults.get(name, False), f"{name} must differ from its default"


def test_fetch_sdist_reuses_the_cached_archive(tmp_path):
    cached = tmp_path / "transformers-9.9.9.tar.gz"
    cached.write_bytes(b"archive")
    with mock.patch.object(subprocess, "run", side_effect=AssertionError("pip must not run")):
        assert conformance_harness.fetch_sdist("9.9.9", cache=tmp_path) == cached


def test_fetch_sdist_unreachable_index_gives_one_line_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    with pytest.raises(conformance_harness.UpstreamUnavailable) as raised:
        conformance_harness.fetch_sdist("5.24.0", cache=tmp_path)
    message = str(raised.value)
    assert message.startswith("cannot fetch the transformers 5.24.0 sdist from the package index: ")
    assert "\n" not in message
    # Nothing half-written is left in the cache.
    assert list(tmp_path.iterdir()) == []


def test_extract_tests_builds_the_package(tmp_path):
    sdist = tmp_path / "transformers-9.9.9.tar.gz"
    write_fake_sdist(sdist, "9.9.9", {**upstream_members(), "tests/test_other.py": "# not wanted\n"})
    root = conformance_harness.extract_tests(sdist, "9.9.9", cache=tmp_path)
    package = root / conformance_harness.PACKAGE
    assert sorted(p.name for p in package.iterdir()) == [
        "__init__.py",
        "pyproject.toml",
        "test_configuration_common.py",
        "test_modeling_common.py",
        "test_training_mixin.py",
    ]
    assert (package / "test_training_mixin.py").read_text() == "# test_training_mixin\n"
    markers = conformance_harness.upstream_markers(root)
    assert markers[0] == "is_training_test: training"
    # Markers upstream registers in its unshipped conftest.py are found where they are used.
    assert any(marker.startswith("torch_compile_test: ") for marker in markers)


def test_extract_tests_names_a_missing_file_and_leaves_nothing(tmp_path):
    members = upstream_members()
    del members["tests/test_training_mixin.py"]
    sdist = tmp_path / "transformers-9.9.9.tar.gz"
    write_fake_sdist(sdist, "9.9.9", members)
    with pytest.raises(conformance_harness.UpstreamUnavailable, match="lacks tests/test_training_mixin.py"):
        conformance_harness.extract_tests(sdist, "9.9.9", cache=tmp_path)
    assert list((tmp_path / "9.9.9").iterdir()) == []


def test_extract_tests_removes_an_unreadable_archive(tmp_path):
    sdist = tmp_path / "transformers-9.9.9.tar.gz"
    sdist.write_bytes(b"not a tar archive")
    with pytest.raises(conformance_harness.UpstreamUnavailable, match="was unreadable"):
        conformance_harness.extract_tests(sdist, "9.9.9", cache=tmp_path)
    assert not sdist.exists()
    assert list((tmp_path / "9.9.9").iterdir()) == []


def test_upstream_loads_with_stand_ins_and_markers():
    upstream = conformance_harness.upstream_or_skip()
    assert issubclass(upstream.modeling.ModelTesterMixin, upstream_stand_ins.ExportTesterMixin)
    assert upstream.configuration.config_common_kwargs is upstream_stand_ins.config_common_kwargs
    assert any(marker.startswith("is_training_test:") for marker in upstream.markers)


def test_mapping_names_patch_is_undone():
    names = modeling_auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES
    before = dict(names)
    with conformance_harness.mapping_names_patch(
        "toy", {"MODEL_FOR_MASKED_LM_MAPPING_NAMES": "ToyForMaskedLM"}
    ):
        assert names["toy"] == "ToyForMaskedLM"
    assert dict(names) == before


def test_not_applicable_skips_with_the_reason_and_rejects_unknown_tests():
    @conformance_harness.not_applicable({"test_a": "needs a GPU"})
    class Case(unittest.TestCase):
        def test_a(self):
            raise AssertionError("must not run")

    result = unittest.TestResult()
    Case("test_a").run(result)
    assert result.skipped[0][1] == "not applicable: needs a GPU"
    with pytest.raises(AttributeError, match="no test 'test_b'"):
        conformance_harness.not_applicable({"test_b": "reason"})(Case)


def test_suite_catches_gru_weights_left_uninitialised():
    """The upstream init test must fail on our GRU model with transformers' default `_init_weights` (which
    initialises LSTM but not GRU), so a pass with ours means something."""
    from test_conformance_session_rnn import SessionRnnGruSeq2SeqConformanceTest

    @torch.no_grad()
    def default_init_weights(self, module):
        PreTrainedModel._init_weights(self, module)

    # Patched on the family's base class: transformers dispatches `_init_weights` to each nested
    # PreTrainedModel (here the inner `SessionRnnModel`), so overriding it on one head is not enough.
    result = unittest.TestResult()
    with mock.patch.object(SessionRnnPreTrainedModel, "_init_weights", default_init_weights):
        SessionRnnGruSeq2SeqConformanceTest("test_can_init_all_missing_weights").run(result)
    assert len(result.failures) == 1, (result.errors, result.skipped)
    assert "not properly handled in `_init_weights()`" in result.failures[0][1]
    assert "in module `GRU`" in result.failures[0][1]


def test_suite_catches_sdpa_left_causal_in_an_encoder():
    """The eager-vs-sdpa test must fail when an encoder's attention forgets `is_causal = False` (sdpa is
    then silently causal on a batch without a mask, while eager stays bidirectional)."""
    from test_conformance_session_bert import SessionBertConformanceTest

    from hf_session.models.session_bert.modeling_session_bert import SessionBertSelfAttention

    original_init = SessionBertSelfAttention.__init__

    def causal_init(self, config):
        original_init(self, config)
        self.is_causal = True

    name = "test_eager_matches_sdpa_inference_11_fp32_pad_left_no_attn_mask"
    clean = unittest.TestResult()
    unittest.TestSuite([SessionBertConformanceTest(name)]).run(clean)
    assert clean.wasSuccessful() and not clean.skipped, (clean.errors, clean.failures, clean.skipped)

    broken = unittest.TestResult()
    with mock.patch.object(SessionBertSelfAttention, "__init__", causal_init):
        unittest.TestSuite([SessionBertConformanceTest(name)]).run(broken)
    # Upstream reports the mismatch as a ValueError, i.e. an error rather than a failure.
    problems = broken.errors + broken.failures
    assert len(problems) == 1, broken.skipped
    assert "mean relative difference for hidden_states" in problems[0][1]
