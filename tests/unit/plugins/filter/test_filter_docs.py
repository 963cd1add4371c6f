"""Every filter of the collection is documented (ansible-doc -t filter shows no UNDOCUMENTED)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

FILTERS = Path(__file__).resolve().parents[4] / "plugins" / "filter"


def _filters() -> list[str]:
    names = []
    for module in sorted(FILTERS.glob("*.py")):
        plugin = importlib.import_module(f"ansible_collections.tenantry.msp.plugins.filter.{module.stem}")
        names += list(plugin.FilterModule().filters())
    return names


@pytest.mark.parametrize("name", _filters())
def test_filter_has_documentation(name: str) -> None:
    doc_file = FILTERS / f"{name}.yml"
    assert doc_file.exists(), f"{name}: no {doc_file.name} next to the plugin"
    doc = yaml.safe_load(doc_file.read_text())
    assert doc["DOCUMENTATION"]["name"] == name
    assert doc["DOCUMENTATION"]["short_description"] and doc["EXAMPLES"].strip() and doc["RETURN"]["_value"]
    options = doc["DOCUMENTATION"]["options"]
    assert "_input" in options
    for positional in [p.strip() for p in doc["DOCUMENTATION"].get("positional", "").split(",") if p.strip()]:
        assert positional in options, f"{name}: positional {positional} is not documented"
