"""Every contactless virtual card profile reaches its expected outcome (issue 4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import simulator
from simulator.card.engine import VirtualCard
from terminal.contactless import Outcome
from tests.terminal.contactless.helpers import sim_config, tap

PROFILES = [
    (path.stem, json.loads(path.read_text())["expected"])
    for path in sorted((Path(simulator.__file__).resolve().parent / "profiles").glob("ctls_*.json"))
]


@pytest.mark.parametrize(("name", "expected"), PROFILES, ids=[p[0] for p in PROFILES])
async def test_profile_reaches_expected_outcome(name: str, expected: dict[str, Any]) -> None:
    config = sim_config(**expected.get("config", {}))
    amount = int(expected["amount"].replace(".", ""))
    card = VirtualCard.from_profile(name)
    result = await tap(card, amount, config=config)
    if expected.get("taps") == 2:
        assert result.outcome.name == expected["first_tap"]
        assert result.parameters.ui_on_outcome is not None
        assert result.parameters.ui_on_outcome.message.name == expected["first_tap_message"]
        result = await tap(card, amount, config=config, restart=result.restart)
    want = expected["contactless"]
    if want == "APPROVED" and expected.get("online"):
        assert result.outcome is Outcome.ONLINE_REQUEST  # the acquirer approves it
    else:
        assert result.outcome.name == want
    if "oda" in expected:
        assert result.oda_method == expected["oda"]
        assert result.oda_verified is True
    if "cvm" in expected:
        assert result.parameters.cvm.name == expected["cvm"]
