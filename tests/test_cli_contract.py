"""What every `bertprod` command promises: its options come from the settings dataclasses (declared
once), a user's mistake is one clear line with exit code 1, and a bug keeps its traceback."""

import dataclasses

import pytest
from spacy.cli._util import app
from typer.testing import CliRunner

import spacy_bertprod.cli  # noqa: F401  (registers the commands)
from spacy_bertprod.compress.settings import CompressSettings, QuantizeSettings
from spacy_bertprod.errors import BertprodError, InvalidInput
from spacy_bertprod.options import FLAGS, from_options, option_fields

RUNNER = CliRunner()


def _flags(cls):
    return [f.metadata[FLAGS][0].split("/")[0] for f in option_fields(cls)]


def test_compress_options_are_the_settings_fields():
    result = RUNNER.invoke(app, ["bertprod", "compress", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for flag in _flags(CompressSettings):  # the nested QuantizeSettings' too
        assert flag in result.output, flag
    assert "--exclude-nodes" in _flags(CompressSettings) and "--trim-vocab" in _flags(CompressSettings)


def test_settings_from_the_option_defaults_are_the_dataclass_defaults():
    defaults = {}
    for f in option_fields(CompressSettings):
        value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        defaults[f.name] = ",".join(value) if isinstance(value, list) else value
    assert from_options(CompressSettings, defaults) == CompressSettings()
    parsed = from_options(CompressSettings, {**defaults, "nodes_to_exclude": "a, b,,c", "sample_path": ""})
    assert parsed.quantization.nodes_to_exclude == ["a", "b", "c"] and parsed.sample_path is None
    assert parsed.quantization == dataclasses.replace(QuantizeSettings(), nodes_to_exclude=["a", "b", "c"])


def test_a_user_error_is_one_line_with_exit_code_1(tmp_path):
    (tmp_path / "in").mkdir()
    result = RUNNER.invoke(app, ["bertprod", "compress", str(tmp_path / "in"), str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "not a saved spaCy pipeline (no config.cfg in it)" in " ".join(result.output.split())
    assert "Traceback" not in result.output
    with pytest.raises(ValueError):  # project errors are also the builtin a caller catches
        raise InvalidInput("x")
    assert issubclass(InvalidInput, BertprodError)


def test_a_bug_in_a_compress_stage_keeps_its_traceback(tmp_path, monkeypatch):
    from spacy_bertprod.compress import pipeline

    def broken_stage(*args, **kwargs):
        raise ValueError("injected bug")  # a plain ValueError, as numpy or a typo would raise

    monkeypatch.setattr(pipeline, "load_source", broken_stage)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "config.cfg").write_text("", encoding="utf8")
    result = RUNNER.invoke(app, ["bertprod", "compress", str(tmp_path / "in"), str(tmp_path / "out")])
    assert result.exit_code != 0
    assert isinstance(result.exception, ValueError) and str(result.exception) == "injected bug"
    assert "injected bug" not in result.output  # not swallowed into a one-line message
