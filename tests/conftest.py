"""Shared test configuration: conformance data location and the real-service fixture plugins."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Fixtures that start and stop real services live in their own plugin modules.
pytest_plugins = [
    "tests.fixtures.pcsc",
    "tests.fixtures.mqtt",
    "tests.fixtures.serial",
    "tests.fixtures.browser",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The public EMV vectors the tests read, vendored from ``../shared/conformance`` with their
#: sources and licences (``tests/data/conformance/SOURCES.md``), so a fresh clone runs them all.
CONFORMANCE = REPO_ROOT / "tests" / "data" / "conformance"
#: The shared copy CI lays beside the checkout; ``tests/test_conformance_data.py`` checks that
#: the vendored files are the same bytes where it is present.
SHARED_CONFORMANCE = REPO_ROOT.parent / "shared" / "conformance"


def conformance_path(*parts: str) -> Path:
    """Path of a vendored conformance file; a missing file fails the test (never a skip)."""
    path = CONFORMANCE.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"conformance data missing from the checkout: {path}")
    return path


def load_conformance(*parts: str) -> Any:
    """Load a vendored conformance JSON file (a missing file fails the calling test)."""
    return json.loads(conformance_path(*parts).read_text())


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Tests marked ``both_loops`` run on asyncio's loop and on uvloop, the daemon's two
    (gateway/daemon/event_loop.py); the others on asyncio's alone (one factory: their ids do
    not change). pytest-asyncio wants a mapping from every implementation of this hook."""
    if item.get_closest_marker("both_loops") is None:
        return {"asyncio": asyncio.new_event_loop}
    import uvloop

    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
