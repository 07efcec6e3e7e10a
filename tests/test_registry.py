"""Every registered name of the package is in setup.cfg's entry points, and every entry point
resolves to what the code registers (as spacy-curated-transformers' tests/test_registry.py):
a name missing from the entry points cannot be found by `spacy train` or a packaged pipeline
until something happens to import its module."""

import importlib
import pkgutil
from importlib.metadata import entry_points

import pytest
from spacy.util import registry

import spacy_bertprod

GROUPS = {"spacy_architectures": "architectures", "spacy_misc": "misc", "spacy_readers": "readers"}


def _ours(group: str):
    return {e.name: e for e in entry_points(group=group) if e.value.startswith("spacy_bertprod")}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_entry_point_resolves_to_the_registered_function(group):
    points = _ours(group)
    assert points, f"no {group} entry points: is the package installed (pip install -e .)?"
    for name, point in points.items():
        assert getattr(registry, GROUPS[group]).get(name) is point.load(), name


def test_every_registered_name_is_an_entry_point():
    for module in pkgutil.walk_packages(spacy_bertprod.__path__, "spacy_bertprod."):
        importlib.import_module(module.name)
    for group, kind in GROUPS.items():
        registered = {name for name in getattr(registry, kind).get_all() if name.startswith("spacy_bertprod.")}
        assert registered <= set(_ours(group)), (
            f"{kind} registered but not in setup.cfg: {registered - set(_ours(group))}"
        )


def test_every_factory_entry_point_makes_a_component():
    from spacy.language import Language

    for name, point in _ours("spacy_factories").items():
        point.load()
        assert Language.has_factory(name), name


def test_the_project_writes_current_architecture_versions():
    """configs/ and the component's default config name TorchTransformer.v2; the v1 name (in
    pipelines saved before it) builds the same model."""
    from pathlib import Path

    from spacy_bertprod.backends.base import TORCH_TRANSFORMER, TORCH_TRANSFORMER_V1
    from spacy_bertprod.component import DEFAULT_CONFIG_STR

    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.cfg"))
    assert configs
    for text in [p.read_text(encoding="utf8") for p in configs] + [DEFAULT_CONFIG_STR]:
        assert TORCH_TRANSFORMER_V1 not in text
    assert TORCH_TRANSFORMER in DEFAULT_CONFIG_STR
    assert registry.architectures.get(TORCH_TRANSFORMER_V1) is registry.architectures.get(TORCH_TRANSFORMER)
