"""Helpers of the contactless tests: transcripts, replays, virtual cards in the field."""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any

import simulator
from simulator.card.engine import VirtualCard
from simulator.card.field import CardInField
from terminal.config import AidConfig, TerminalConfig
from terminal.contactless import ContactlessResult, UiRequest, run_contactless_transaction
from terminal.contactless.replay import ReplayChannel, ReplaySetup, replay_setup
from terminal.environment import Environment, TransactionRequest
from tests.conftest import load_conformance

TRACES = ("mock-msc-ms-mode.json", "mock-msc-offline-2.json", "mock-msc-offline.json",
          "mock-msc-online.json", "mock-visa-offline.json", "mock-visa-online.json")
SIM_CA_KEYS = str(Path(simulator.__file__).resolve().parent / "data" / "keys" / "capk_sim.json")
WHEN = datetime.datetime(2026, 11, 25, 12, 0, 0)
UN = bytes.fromhex("12345678")


def trace(name: str) -> dict[str, Any]:
    """A transcript of conformance/emv/contactless_traces (a deep copy, free to edit)."""
    return copy.deepcopy(load_conformance("emv", "contactless_traces", name))


def set_response(transcript: dict[str, Any], cmd_prefix: str, resp: str) -> None:
    """Replace the recorded response of the first command starting with ``cmd_prefix``."""
    for apdu in transcript["apdus"]:
        if apdu["cmd"].upper().startswith(cmd_prefix.upper()):
            apdu["resp"] = resp
            return
    raise AssertionError(f"no recorded command {cmd_prefix}")


async def replay(
    transcript: dict[str, Any], *, aid_changes: dict[str, Any] | None = None,
    config_changes: dict[str, Any] | None = None, env: Environment | None = None,
    ui: list[UiRequest] | None = None,
) -> tuple[ContactlessResult, ReplayChannel, ReplaySetup]:
    """Replay a (possibly edited) transcript, with configuration changes."""
    setup = replay_setup(transcript)
    config = setup.config
    if aid_changes:
        config = config.model_copy(update={"aids": [a.model_copy(update=aid_changes)
                                                     for a in config.aids]})
    if config_changes:
        config = config.model_copy(update=config_changes)
    channel = ReplayChannel(setup.apdus)
    result = await run_contactless_transaction(
        channel, config=config, request=setup.request, env=env or setup.env,
        kernel2=setup.kernel2, ui=None if ui is None else ui.append)
    return result, channel, setup


def sim_config(**aid_changes: Any) -> TerminalConfig:
    """The shipped terminal configuration with the simulator's CA keys."""
    base = TerminalConfig.default()
    aids: list[AidConfig] = [a.model_copy(update=aid_changes) for a in base.aids]
    return base.model_copy(update={"ca_keys": [SIM_CA_KEYS], "aids": aids})


async def tap(
    profile: str | VirtualCard, amount: int, *, config: TerminalConfig | None = None,
    ui: list[UiRequest] | None = None, **kwargs: Any,
) -> ContactlessResult:
    """Tap a virtual card (no field latency) for ``amount`` minor units."""
    card = profile if isinstance(profile, VirtualCard) else VirtualCard.from_profile(profile)
    return await run_contactless_transaction(
        CardInField(card, 0), config=config or sim_config(),
        request=TransactionRequest(amount=amount), env=Environment.fixed(WHEN, UN),
        ui=None if ui is None else ui.append, **kwargs)
