"""Fixtures of the layer-2 tests: one NetLab per test module, torn down even when a test fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from netlab import NetLab


@pytest.fixture(scope="module")
def netlab() -> Iterator[NetLab]:
    lab = NetLab()
    try:
        yield lab
    finally:
        lab.close()
        assert lab.leftovers() == [], "namespaces left behind"
