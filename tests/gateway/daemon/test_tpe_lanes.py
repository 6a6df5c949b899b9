"""TPE lanes through the daemon: each protocol and transport, every outcome, and doubt.

Three lanes' worth of real parts: a virtual Concert V2 terminal on a pty, a virtual Caisse-AP
terminal on a pty (Concert frames) and one on TCP (Caisse-AP over IP), each behind a daemon
running in this process with the till API over HTTP. The virtual terminals decide by the
amount (simulator/tpe/rules.py: cents 13 declined, cents 99 cancelled at the keypad) and count
their charges, which the journal must match: nothing lost, nothing charged twice.

Ptys run 8N1 here: a lane that is set up again reopens its pty, which this machine's kernel
refuses at 7E1 (docs/tpe.md, known limits).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from gateway.daemon.daemon import Daemon
from gateway.errors import ConfigError
from gateway.journal import PaymentState
from gateway.payments.terminal_recovery import terminal_reference
from gateway.till.authority import allow_as
from simulator.acquirer_host import AcquirerHost
from simulator.tpe import FAULT_NAMES
from simulator.tpe.rules import TEST_PAN
from tests.gateway.daemon_support import (
    TEST_TILL,
    Till,
    acquirer_fixture,
    fixed_env,
    http_fixture,
    make_config,
    register_till,
    running,
    till_token,
)
from tests.gateway.tpe_support import KINDS, Rig, start_rig

pytestmark = pytest.mark.both_loops  # the daemon's two event loops

__all__ = ["acquirer_fixture", "http_fixture"]


@pytest.fixture(autouse=True)
def _no_pan_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The virtual Concert V2 terminal sends the card number in clear (as old ones do): it
    must reach no log line, whatever path its answer takes (late, unsolicited, recovered)."""
    caplog.set_level(logging.DEBUG)
    yield
    assert TEST_PAN not in caplog.text

S = PaymentState


@pytest_asyncio.fixture(params=KINDS)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    made = await start_rig(request.param)
    try:
        yield made
    finally:
        await made.tpe.stop()


def tpe_daemon(tmp_path: Path, acquirer: AcquirerHost, url: str, *,
               token_dir: Path | None = None) -> Daemon:
    """A daemon with one TPE lane at ``url``; its journal and config in ``tmp_path``, the test
    till's token from ``token_dir`` (the ``http`` fixture's, when ``tmp_path`` is below it)."""
    assert acquirer.url is not None
    if token_dir is not None:
        register_till(tmp_path / "journal.db", TEST_TILL, till_token(token_dir))
    config = make_config(tmp_path, acquirer.url, [], lanes=[{"id": 1, "reader": url}],
                         timeouts={"transaction": 10.0})
    return Daemon(config, env=fixed_env, environ={})


async def pay(till: Till, amount: int) -> dict[str, Any]:
    status, body = await till.pay(1, amount, currency="EUR")
    assert status == 202, body
    result = await till.get(body["id"], wait=15)
    assert result["done"] is True, result
    return result


async def lane_ready(till: Till) -> None:
    """Wait (bounded) until lane 1's terminal is set up (a fault set before that would hit
    the setup's keep-alive, not the payment)."""
    async with asyncio.timeout(10):
        while (await till.lanes())["lanes"][0]["device"]["state"] != "ready":  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # polls another part's published state over HTTP


async def states(daemon: Daemon, payment_id: str) -> list[PaymentState]:
    return [event.to_state for event in await daemon.journal.events(payment_id)]


async def test_pays_declines_and_is_cancelled_at_the_keypad(
        tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, rig: Rig) -> None:
    daemon = tpe_daemon(tmp_path, acquirer, rig.url)
    async with running(daemon):
        till = Till(http, daemon.http_port or 0)
        approved = await pay(till, 1250)
        declined = await pay(till, 1013)
        keypad = await pay(till, 499)
        lanes = (await till.lanes())["lanes"]
        batch = await daemon.journal.claim_batch(10)
        approved_states = await states(daemon, approved["id"])
        declined_states = await states(daemon, declined["id"])
        stored = await daemon.journal.get(approved["id"])
    assert (approved["state"], approved["outcome"]) == ("COMPLETED", "approved")
    assert approved["masked_pan"] == "497010******0014"
    assert approved["interface"] == "terminal"
    assert approved_states == [S.CREATED, S.CARD_READ, S.AUTH_REQUESTED, S.APPROVED,
                               S.COMPLETED]
    assert (declined["state"], declined["outcome"]) == ("DECLINED", "declined")
    assert declined_states == [S.CREATED, S.CARD_READ, S.AUTH_REQUESTED, S.DECLINED]
    # Concert V2 has one status for "refused or not processed" (7): no keypad cancel apart.
    keypad_outcome = "declined" if rig.kind == "pty-concert-v2" else "cancelled"
    assert (keypad["state"], keypad["outcome"]) == ("DECLINED", keypad_outcome)
    assert [item.payment_id for item in batch] == [approved["id"]]  # head office: the sale
    assert stored.auth_code
    assert stored.interface == "terminal"  # journaled with CARD_READ (schema 8)
    if rig.kind != "pty-concert-v2":  # Caisse-AP gives the AID
        assert stored.aid == "A0000000421010"
    assert [c.amount for c in rig.brain.charges] == [1250]
    assert lanes[0]["prompt"] == "IDLE"
    assert lanes[0]["for_manager"] == []
    assert acquirer.ledger == []  # the terminal's host moved the money, not ours


async def late_answers(till: Till) -> int:
    device = (await till.lanes())["lanes"][0]["device"]["device"] or {}
    return int(device.get("late_answers", 0))


async def test_cancel_from_the_till_while_the_terminal_waits_for_the_card(
        tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, rig: Rig) -> None:
    """No abort message exists: the till's cancel stops the waiting, the payment is in doubt,
    and the terminal's own outcome settles it (at once, or before the next payment)."""
    rig.faults.slow = 1.0  # the card comes a second after the request
    stages: list[str] = []
    stage_seen = asyncio.Event()

    def seen(stage: str) -> None:
        stages.append(stage)
        stage_seen.set()

    rig.brain.on_stage = seen

    async def reach(stage: str, count: int) -> None:
        async with asyncio.timeout(5):
            while stages.count(stage) < count:
                stage_seen.clear()
                await stage_seen.wait()

    daemon = tpe_daemon(tmp_path, acquirer, rig.url)
    async with running(daemon):
        till = Till(http, daemon.http_port or 0)
        told = []
        for n, amount in enumerate((2500, 2599), start=1):  # pays anyway / abandons at keypad
            status, body = await till.pay(1, amount, currency="EUR")
            assert status == 202
            await reach("request", n)  # the terminal has the request, waits for the card
            assert await till.cancel(body["id"]) == 202
            told.append(await till.get(body["id"], wait=15))
            await reach("decided", n)
            if rig.kind.startswith("pty"):  # its answer reaches the driver late: wait for it
                async with asyncio.timeout(5):
                    while await late_answers(till) < n:  # noqa: ASYNC110 - observable state
                        await asyncio.sleep(0.02)
        rig.faults.slow = 0.0
        after = await pay(till, 1000)  # the lane settles what is in doubt first
        kept = await daemon.journal.get(told[0]["id"])
        abandoned = await daemon.journal.get(told[1]["id"])
        kept_states = await states(daemon, kept.id)
        lanes = (await till.lanes())["lanes"]
    for answer in told:  # what the till heard at once: a defined outcome, never an error
        assert answer["outcome"] in ("approved", "cancelled", "declined", "unknown"), answer
    assert kept.state is S.COMPLETED  # the approval is kept
    assert S.UNKNOWN in kept_states  # ...after the cancel left it in doubt
    assert abandoned.state is S.DECLINED
    assert after["state"] == "COMPLETED"
    assert [c.amount for c in rig.brain.charges] == [2500, 1000]
    assert lanes[0]["for_manager"] == []


async def test_link_cut_after_the_charge(
        tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession) -> None:
    """The terminal charged, the answer was lost: Caisse-AP's duplicate settles it at once;
    Concert V2 cannot be asked, so the sale is left UNKNOWN for the manager, never guessed."""
    for kind in KINDS:
        rig = await start_rig(kind, answer_timeout=0.8)
        try:
            rig.faults.cut = 1
            (tmp_path / kind).mkdir()
            daemon = tpe_daemon(tmp_path / kind, acquirer, rig.url, token_dir=tmp_path)
            async with running(daemon):
                till = Till(http, daemon.http_port or 0)
                await lane_ready(till)
                cut = await pay(till, 4200)
                after = await pay(till, 1500)
                lanes = (await till.lanes())["lanes"]
        finally:
            await rig.tpe.stop()
        assert [c.amount for c in rig.brain.charges] == [4200, 1500], kind
        assert after["state"] == "COMPLETED", kind
        if kind == "pty-concert-v2":
            assert cut["state"] == "UNKNOWN", kind
            assert lanes[0]["for_manager"] == [cut["id"]]
        else:
            assert (cut["state"], cut["outcome"]) == ("COMPLETED", "approved"), (kind, cut)
            assert lanes[0]["for_manager"] == []


async def test_a_request_that_never_reached_the_terminal_is_declined_not_lost(
        tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession) -> None:
    """The terminal hangs up right after the request (fault disconnect: nothing charged); the
    duplicate describes an earlier transaction, so this one never happened there."""
    rig = await start_rig("tcp-caisse-ap")
    try:
        daemon = tpe_daemon(tmp_path, acquirer, rig.url)
        async with running(daemon):
            till = Till(http, daemon.http_port or 0)
            first = await pay(till, 1000)
            rig.faults.disconnect = True
            lost = await pay(till, 2000)
            rig.faults.disconnect = False
            last = await pay(till, 3000)  # settles the one in doubt first
            settled = await daemon.journal.get(lost["id"])
            reason = (await daemon.journal.events(lost["id"]))[-1].reason
    finally:
        await rig.tpe.stop()
    assert lost["outcome"] in ("unknown", "declined")  # the duplicate hung up too at first
    assert [first["state"], settled.state.value, last["state"]] == ["COMPLETED", "DECLINED",
                                                                     "COMPLETED"]
    assert reason == "the terminal has no transaction for it"
    assert [c.amount for c in rig.brain.charges] == [1000, 3000]


async def refund(till: Till, payment_id: str, amount: int, reference: str,
                 ) -> tuple[int, dict[str, Any]]:
    url = f"{till.base}/api/payments/{payment_id}/refunds"
    async with till.session.post(url, json={"amount": amount, "reference": reference}) as resp:
        return resp.status, await resp.json()


async def test_refunds_from_the_till_go_to_the_terminal(
        tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, rig: Rig) -> None:
    daemon = tpe_daemon(tmp_path, acquirer, rig.url)
    async with running(daemon):
        till = Till(http, daemon.http_port or 0)
        sale = await pay(till, 5000)
        refused = await refund(till, sale["id"], 1013, "R-1")  # cents 13: the terminal says no
        done = await refund(till, sale["id"], 2000, "R-2")
        again = await refund(till, sale["id"], 2000, "R-2")  # the same reference: replayed
        done_id = done[1].get("id") or done[1].get("refund", {}).get("id")
        events = await states(daemon, done_id) if done_id else []
        batch = await daemon.journal.claim_batch(10)
    assert sale["state"] == "COMPLETED"
    assert refused[1]["state"] == "DECLINED", refused
    assert done[1]["state"] == "COMPLETED", done
    assert again[1]["state"] == "COMPLETED" and again[1].get("replayed") is True, again
    assert events == [S.CREATED, S.CARD_READ, S.AUTH_REQUESTED, S.APPROVED, S.COMPLETED]
    assert [(p.action, p.amount, p.outcome) for p in rig.brain.processed] == [
        ("payment", 5000, "approved"), ("refund", 1013, "declined"),
        ("refund", 2000, "approved")]
    assert len(batch) == 2  # the sale and its refund, to head office
    assert acquirer.ledger == []  # our acquirer never saw the sale nor its refund


async def test_end_of_day_at_the_terminal_keeps_its_totals(
        tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, rig: Rig) -> None:
    daemon = tpe_daemon(tmp_path, acquirer, rig.url)
    async with running(daemon):
        till = Till(http, daemon.http_port or 0)
        sale = await pay(till, 5000)
        await pay(till, 1013)  # declined: not in the totals
        await refund(till, sale["id"], 1500, "R-1")
        async with http.post(f"{till.base}/api/lanes/1/end-of-day", json={}) as response:
            status, body = response.status, await response.json()
        async with http.post(f"{till.base}/api/lanes/9/end-of-day", json={}) as response:
            missing = response.status
        kept = await daemon.journal.terminal_totals("1")
    assert status == 200 and missing == 404
    assert [(t.ok, t.transactions, t.debits, t.refunds) for t in kept] == [
        (body["ok"], body["transactions"], body["debits"], body["refunds"])]
    if rig.kind == "pty-concert-v2":  # no remittance request in Concert V2: said and kept
        assert body["ok"] is False and "no end-of-day" in body["message"]
    else:
        assert (body["ok"], body["transactions"], body["debits"], body["refunds"]) == (
            True, 2, 5000, 1500)
        assert body["currency"] == "EUR"


async def close_day(daemon: Daemon, http: aiohttp.ClientSession) -> dict[str, Any]:
    """Close the day as a manager (the hook set by the caller) and return the answer."""
    url = f"http://127.0.0.1:{daemon.http_port}/api/days/close"
    async with http.post(url, json={}) as response:
        day: dict[str, Any] = await response.json()
        assert response.status == 201, day
    return day


async def test_day_close_reconciles_the_terminal_s_end_of_day_totals(
        tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession) -> None:
    rig = await start_rig("tcp-caisse-ap")
    try:
        daemon = tpe_daemon(tmp_path, acquirer, rig.url)
        daemon.authorise = allow_as("manager:alice")
        async with running(daemon):
            till = Till(http, daemon.http_port or 0)
            sale = await pay(till, 5000)
            await pay(till, 1013)  # declined: in neither side's totals
            await refund(till, sale["id"], 1500, "R-1")
            async with http.post(f"{till.base}/api/lanes/1/end-of-day", json={}) as response:
                assert response.status == 200
            day = await close_day(daemon, http)
            asked = len(await daemon.journal.terminal_totals("1"))
            money = await daemon.day_snapshot()
    finally:
        await rig.tpe.stop()
    [lane] = day["record"]["terminals"]
    assert (lane["lane"], lane["reconciled"], lane["differences"]) == ("1", True, [])
    assert lane["terminal"] == {"currency": "EUR", "transactions": 2, "debits": 5000,
                                "refunds": 1500}
    assert lane["journal_lines"] == [
        {"currency": "EUR", "kind": "refunds", "count": 1, "amount": 1500},
        {"currency": "EUR", "kind": "sales_net", "count": 1, "amount": 5000}]
    assert day["differences"] == 0 and day["record"]["journal_lines"] == []
    assert asked == 1  # the end of day of this day was used, the terminal not asked again
    totals = {(t["dimension"], t["key"], t["kind"]): (t["count"], t["amount"])
              for t in day["record"]["totals"]}  # fmt: skip
    assert totals[("interface", "terminal", "sales")] == (1, 5000)  # the terminal's own reader
    assert totals[("interface", "terminal", "refunds")] == (1, 1500)
    assert money["day"]["last_differences"] == [] and money["day"]["terminals_unavailable"] == []


async def test_day_close_asks_the_terminal_and_finds_a_planted_debit(
        tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession) -> None:
    rig = await start_rig("tcp-caisse-ap")
    try:
        daemon = tpe_daemon(tmp_path, acquirer, rig.url)
        daemon.authorise = allow_as("manager:alice")
        async with running(daemon):
            till = Till(http, daemon.http_port or 0)
            await pay(till, 5000)
            rig.brain.planted_debit = 700  # the terminal's totals count a debit we never took
            day = await close_day(daemon, http)  # no end of day yet: the close asks for one
            kept = await daemon.journal.terminal_totals("1")
            money = await daemon.day_snapshot()
            # the totals asked for are timed after that close: the next day asks again
            following = await close_day(daemon, http)
            asked = len(await daemon.journal.terminal_totals("1"))
    finally:
        await rig.tpe.stop()
    [lane] = day["record"]["terminals"]
    expected = [
        {"source": "tpe:1", "currency": "EUR", "kind": "sales_net",
         "journal": {"count": 1, "amount": 5000}, "other": {"count": None, "amount": 5700},
         "difference": 700},
        {"source": "tpe:1", "currency": "EUR", "kind": "transactions",
         "journal": {"count": 1, "amount": None}, "other": {"count": 2, "amount": None},
         "difference": None},
    ]  # fmt: skip
    assert lane["reconciled"] is True and lane["differences"] == expected
    assert day["differences"] == 2
    assert [(t.actor, t.transactions, t.debits) for t in kept] == [("manager:alice", 2, 5700)]
    assert money["day"]["last_differences"] == expected
    [second] = following["record"]["terminals"]
    assert asked == 2 and second["totals_id"] != lane["totals_id"]
    assert (second["terminal"]["debits"], second["differences"], following["differences"]) == (
        0, [], 0)


#: Each fault of ``posgw-sim tpe --fault`` with a value; ``disconnect`` last (on a pty it
#: closes the line for good).
FAULTS: list[tuple[str, object]] = [
    ("silent", True), ("busy", True), ("nak", 1), ("nak", 3), ("no_ack", True),
    ("bad_lrc", 1), ("bad_lrc", 3), ("noise", 1), ("drop", 1), ("slow", 0.3), ("stall", 0.3),
    ("duplicate", True), ("cut", 1), ("disconnect", True),
]


async def test_every_fault_ends_in_a_defined_outcome_with_nothing_lost(
        tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession) -> None:
    assert {name for name, _ in FAULTS} == set(FAULT_NAMES)
    for kind in KINDS:
        rig = await start_rig(kind, answer_timeout=0.8, cancel_grace=0.2)
        (tmp_path / kind).mkdir()
        outcomes: dict[str, str] = {}
        try:
            daemon = tpe_daemon(tmp_path / kind, acquirer, rig.url, token_dir=tmp_path)
            async with running(daemon):
                till = Till(http, daemon.http_port or 0)
                await lane_ready(till)
                for n, (name, value) in enumerate(FAULTS):
                    setattr(rig.faults, name, value)
                    told = await pay(till, 1000 + 100 * n)
                    setattr(rig.faults, name, type(value)())  # the fault goes away
                    outcomes[f"{name}:{value}"] = told["outcome"]
                    assert told["outcome"] in ("approved", "declined", "unknown"), (kind, name)
                    if name == "disconnect" and kind.startswith("pty"):
                        break  # the pty is gone for good; the journal is checked below
                    after = await pay(till, 50)  # settles what the fault left in doubt
                    assert after["state"] == "COMPLETED", (kind, name, after)
                rows = await daemon.journal.on_lane("1", list(S))
        finally:
            await rig.tpe.stop()
        by_reference = {terminal_reference(p.id): p for p in rows}
        for charge in rig.brain.charges:  # 0 lost: every charge is a completed sale...
            sale = by_reference[(charge.reference or "").strip()]
            allowed = {S.COMPLETED} if kind != "pty-concert-v2" else {S.COMPLETED, S.UNKNOWN}
            assert sale.state in allowed, (kind, charge, sale.state, outcomes)
        references = [(c.reference or "").strip() for c in rig.brain.charges]
        assert len(references) == len(set(references))  # ...and none charged twice
        for sale in rows:  # no completed sale without its charge
            if sale.state is S.COMPLETED:
                assert terminal_reference(sale.id) in references, (kind, sale.id)


async def test_a_payment_the_terminal_cannot_confirm_is_shown_for_the_manager(
        tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession) -> None:
    """Concert V2 cannot be asked for its last transaction: a cut answer stays UNKNOWN and
    the status page says so on the lane, never approved or dropped by guess."""
    rig = await start_rig("pty-concert-v2", answer_timeout=0.8)
    try:
        rig.faults.cut = 1
        daemon = tpe_daemon(tmp_path, acquirer, rig.url)
        async with running(daemon):
            till = Till(http, daemon.http_port or 0)
            cut = await pay(till, 4200)
            async with http.get(f"{till.base}/") as response:
                page = await response.text()
            status = await daemon.journal.get(cut["id"])
    finally:
        await rig.tpe.stop()
    assert (cut["outcome"], status.state) == ("unknown", S.UNKNOWN)
    assert "1 payment(s) the terminal could not confirm, for the manager to check" in page
    assert cut["id"] in page


async def test_a_terminal_that_stops_answering_its_keep_alive_goes_not_ready(
        tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession) -> None:
    rig = await start_rig("pty-concert-v2")
    url = rig.url.replace("keepalive=0", "keepalive=0.2")
    try:
        daemon = tpe_daemon(tmp_path, acquirer, url)
        async with running(daemon):
            till = Till(http, daemon.http_port or 0)
            await lane_ready(till)
            rig.faults.silent = True  # the terminal no longer answers ENQ
            async with asyncio.timeout(10):
                while (await till.lanes())["lanes"][0]["device"]["state"] != "not_ready":  # noqa: ASYNC110
                    await asyncio.sleep(0.05)  # polls another part's published state
            async with http.get(f"{till.base}/") as response:
                page = await response.text()
            device = (await till.lanes())["lanes"][0]["device"]
            rig.faults.silent = False
            await lane_ready(till)
            after = await pay(till, 1250)
    finally:
        await rig.tpe.stop()
    assert "Payment terminal not connected" in page
    assert "keep-alive" in (device["last_error"] or "")
    assert device["probe_failures"] >= 1
    assert after["state"] == "COMPLETED"


@pytest.mark.parametrize(("reader", "words"), [
    ("serial://bt/zz:1?protocol=caisse-ap", "ADDR:CHANNEL"),
    ("serial:///dev/ttyACM0?protocol=zvt", "unknown terminal protocol"),
    ("tcp://10.0.0.5:8888?protocol=concert-v2", "only Caisse-AP runs over TCP"),
    ("serial://usb/0B00?protocol=concert-v2", "VID:PID"),
    ("tcp://10.0.0.5:8888?keepalive=x", "keepalive must be a number"),
])
def test_check_config_refuses_a_bad_tpe_url(tmp_path: Path, reader: str, words: str) -> None:
    """``posgw check-config`` reads a TPE lane's URL and options as the driver will."""
    with pytest.raises(ConfigError, match=words):
        make_config(tmp_path, "http://127.0.0.1:9", [], lanes=[{"id": 1, "reader": reader}])


async def test_no_new_payment_while_the_terminal_cannot_tell_about_one_in_doubt(
        tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession) -> None:
    """Caisse-AP: the charge's answer is lost and the terminal then stops answering. Its last
    transaction is the only evidence, so the lane takes no other payment (not ready) until the
    terminal tells; then the charge is completed, not lost and not overwritten."""
    rig = await start_rig("tcp-caisse-ap", answer_timeout=0.5)

    def decided(stage: str) -> None:
        if stage == "decided":
            rig.faults.silent = True  # from now on it answers nothing (the duplicate neither)

    try:
        daemon = tpe_daemon(tmp_path, acquirer, rig.url)
        async with running(daemon):
            till = Till(http, daemon.http_port or 0)
            await lane_ready(till)
            rig.faults.cut = 1
            rig.brain.on_stage = decided
            charged = await pay(till, 4200)
            rig.brain.on_stage = None
            async with asyncio.timeout(10):
                while (await till.lanes())["lanes"][0]["device"]["state"] == "ready":  # noqa: ASYNC110
                    await asyncio.sleep(0.05)  # polls another part's published state
            refused = await pay(till, 1500)  # not sent: the lane is not ready
            in_doubt = (await daemon.journal.get(charged["id"])).state
            rig.faults.silent = False
            await lane_ready(till)  # its setup asked the terminal again
            settled = await daemon.journal.get(charged["id"])
            after = await pay(till, 1600)
    finally:
        await rig.tpe.stop()
    assert charged["outcome"] == "unknown" and in_doubt is S.UNKNOWN
    assert (refused["state"], refused["reason"]) == ("CANCELLED", "reader not ready")
    assert settled.state is S.COMPLETED and settled.auth_code
    assert after["state"] == "COMPLETED"
    assert [c.amount for c in rig.brain.charges] == [4200, 1600]
