"""The kernel run without its APDU trace (``trace=False``, :mod:`terminal.trace`) decides
exactly as with it: every contact and contactless profile of the simulator's cards and every
contactless conformance transcript give the same result, the same "card read OK" moment and
the same card-removal index; only the trace is empty. The daemon runs the kernel that way."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

import simulator
from simulator.card.engine import VirtualCard
from simulator.card.field import CardInField
from terminal.capk import CapkStore
from terminal.config import TerminalConfig
from terminal.contact.flow import run_contact_transaction
from terminal.contactless import ContactlessResult, UiRequest, run_contactless_transaction
from terminal.contactless.replay import ReplayChannel, replay_setup
from terminal.environment import Environment, TransactionRequest
from terminal.trace import NoTrace, Tracer, tracer
from tests.terminal.contact.replay import TestPinPad
from tests.terminal.contact.test_profiles import WHEN, Host, contact_profiles, expected_of
from tests.terminal.contactless.helpers import TRACES, UN, sim_config
from tests.terminal.contactless.helpers import trace as transcript

CTLS_PROFILES = sorted(
    path.stem
    for path in (Path(simulator.__file__).resolve().parent / "profiles").glob("ctls_*.json")
)


def _fixed_rng(n: int) -> bytes:
    return bytes(range(n))


def test_no_trace_counts_exchanges_and_records_nothing() -> None:
    recording, counting = tracer(True), tracer(False)
    assert type(recording) is Tracer and isinstance(counting, NoTrace)
    for hook in (recording.hook, counting.hook):
        hook(bytes.fromhex("00A404000E315041592E5359532E444446303100"), b"\x90\x00", 0.001)
        hook(bytes.fromhex("00B2010C00"), bytes.fromhex("70075A0547617300011990") + b"\x90\x00",
             0.001)  # fmt: skip
    assert recording.exchanges == counting.exchanges == 2
    assert len(recording.entries) == 2 and counting.entries == []


async def _contact(name: str, trace: bool) -> Any:
    card = VirtualCard.from_profile(name, rng=_fixed_rng)
    store = CapkStore()
    store.load_file(simulator.card.default_pki().capk_file)

    class Channel:
        async def transceive(self, capdu: bytes) -> bytes:
            return card.process(capdu)

    amount = round(float(expected_of(name).get("amount", "12.50")) * 100)
    return await run_contact_transaction(
        Channel(), config=TerminalConfig.default(), request=TransactionRequest(amount=amount),
        env=Environment.fixed(WHEN, UN), online=Host(), pinpad=TestPinPad(), capk=store,
        trace=trace,
    )  # fmt: skip


@pytest.mark.parametrize("name", contact_profiles())
async def test_contact_profile_decides_the_same_without_the_trace(name: str) -> None:
    traced, untraced = await _contact(name, True), await _contact(name, False)
    assert traced.trace and untraced.trace == []
    assert dataclasses.replace(traced, trace=[]) == untraced


def _same_but_trace(traced: ContactlessResult, untraced: ContactlessResult) -> None:
    assert traced.trace and untraced.trace == []
    assert untraced.card_removable_at == traced.card_removable_at is not None
    mine, theirs = traced.to_json(), untraced.to_json()
    mine.pop("trace"), theirs.pop("trace")
    assert mine == theirs


def _expected(name: str) -> dict[str, Any]:
    path = Path(simulator.__file__).resolve().parent / "profiles" / f"{name}.json"
    expected: dict[str, Any] = json.loads(path.read_text())["expected"]
    return expected


async def _tap(name: str, trace: bool) -> tuple[ContactlessResult, list[UiRequest]]:
    shown: list[UiRequest] = []
    expected = _expected(name)
    result = await run_contactless_transaction(
        CardInField(VirtualCard.from_profile(name, rng=_fixed_rng), 0),
        config=sim_config(**expected.get("config", {})),
        request=TransactionRequest(amount=int(expected["amount"].replace(".", ""))),
        env=Environment.fixed(WHEN, UN), ui=shown.append, trace=trace,
    )  # fmt: skip
    return result, shown


@pytest.mark.parametrize("name", CTLS_PROFILES)
async def test_contactless_profile_decides_the_same_without_the_trace(name: str) -> None:
    (traced, traced_ui), (untraced, untraced_ui) = await _tap(name, True), await _tap(name, False)
    _same_but_trace(traced, untraced)
    assert untraced_ui == traced_ui  # "card read OK" at the same moment, or not at all in both


@pytest.mark.parametrize("name", TRACES)
async def test_conformance_transcript_replays_the_same_without_the_trace(name: str) -> None:
    results = []
    for trace in (True, False):
        setup = replay_setup(transcript(name))
        channel = ReplayChannel(setup.apdus)
        results.append(await run_contactless_transaction(
            channel, config=setup.config, request=setup.request, env=setup.env,
            kernel2=setup.kernel2, trace=trace,
        ))  # fmt: skip
    _same_but_trace(*results)
