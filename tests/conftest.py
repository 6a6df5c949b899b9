"""Shared test configuration: conformance data location and the real-service fixture plugins."""

from __future__ import annotations

import json
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
CONFORMANCE = REPO_ROOT.parent / "shared" / "conformance"


def conformance_path(*parts: str) -> Path:
    """Path of a file in ../shared/conformance; skips the calling test where it is absent."""
    path = CONFORMANCE.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"conformance data not found: {path}")
    return path


def load_conformance(*parts: str) -> Any:
    """Load a JSON file from ../shared/conformance (skips where absent)."""
    return json.loads(conformance_path(*parts).read_text())
