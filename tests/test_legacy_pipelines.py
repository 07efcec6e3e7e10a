"""Pipelines saved by an earlier version (tests/fixtures/legacy, made by make_legacy_pipelines.py
before the architecture change) load and predict as they did then: names, config keys and the
saved folder format stay stable."""

import json
from pathlib import Path

import pytest
import spacy

from conftest import TEXTS

LEGACY = Path(__file__).parent / "fixtures" / "legacy"
EXPECTED = json.loads((LEGACY / "expected.json").read_text(encoding="utf8"))


@pytest.mark.parametrize("name", ["torch", "int8"])
def test_legacy_pipeline_predicts_as_before(name):
    nlp = spacy.load(LEGACY / name)
    for doc, expected in zip(nlp.pipe(TEXTS), EXPECTED[name], strict=True):
        assert [[e.start_char, e.end_char, e.label_] for e in doc.ents] == expected["ents"]
        assert doc.cats == pytest.approx(expected["cats"], abs=1e-4)
        assert float(abs(doc._.trf_data.hidden).sum()) == pytest.approx(expected["hidden_sum"], rel=1e-3)
