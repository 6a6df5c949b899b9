"""End to end: the daemon with a sim:// lane, the real acquirer host, a journal in tmp_path.

The till posts a payment over HTTP, the test inserts a virtual card in the lane's slot, the
real kernel runs against it and the real acquirer host verifies the ARQC and answers with an
ARPC; the assertions read the journal, the host's ledger and the till API.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from drivers import sim as drivers_sim
from gateway.daemon.daemon import Daemon
from gateway.journal import PaymentState
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import (
    Till,
    acquirer_fixture,
    fixed_env,
    http_fixture,
    insert_card,
    make_config,
    running,
    slot_name,
    wait_state,
)
from tests.gateway.day.day_support import wait_until
from tests.gateway.journal_support import db_bytes

__all__ = ["acquirer_fixture", "http_fixture"]

S = PaymentState
PAN = "4761739001010010"  # visa_credit's test PAN: must appear in no log line


def _daemon(tmp_path: Path, acquirer: AcquirerHost, slots: list[str], **kw: object) -> Daemon:
    assert acquirer.url is not None
    config = make_config(tmp_path, acquirer.url, slots, **kw)  # type: ignore[arg-type]
    return Daemon(config, env=fixed_env, environ={})


async def _forward_settled(daemon: Daemon, host: AcquirerHost, payment_id: str) -> S:
    """Wait until the forward is answered; the journal state must follow the host's answer:
    FORWARDED when it charged, FORWARD_DECLINED (never FORWARDED) when it declined. The
    simulated issuer declines a forwarded TC today ("cryptogram is not an ARQC", 05)."""
    async with asyncio.timeout(10):
        while True:  # the forwarder works behind the till's answer: poll the journal, bounded
            state = (await daemon.journal.get(payment_id)).state
            if state is not S.STORED_FOR_FORWARDING:
                break
            await asyncio.sleep(0.05)
    assert [entry.kind for entry in host.ledger] in (["charge"], ["decline"])
    expected = S.FORWARDED if host.ledger[0].kind == "charge" else S.FORWARD_DECLINED
    assert state is expected
    return state


async def _events(daemon: Daemon, payment_id: str) -> list[S]:
    return [event.to_state for event in await daemon.journal.events(payment_id)]


@pytest.fixture(autouse=True)
def _no_pan_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test here runs with DEBUG logs; none may hold a full PAN (6 + 4 at most)."""
    caplog.set_level(logging.DEBUG)
    yield
    for pan in (PAN, "5413339000001539", "5413339000001521"):
        assert pan not in caplog.text


async def test_approved_online_completes_with_one_outbox_row(
    tmp_path: Path,
    acquirer: AcquirerHost,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    slot = slot_name()
    async with running(_daemon(tmp_path, acquirer, [slot])) as daemon:
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        status, body = await till.pay(1, 1250, currency="EUR", reference="R-1")
        assert status == 202 and body["state"] == "CREATED"
        await till.wait_prompt(1, "PRESENT CARD")
        insert_card(slot)
        result = await till.get(body["id"], wait=10)
        assert result["state"] == "COMPLETED", result
        assert result["outcome"] == "approved" and result["reference"] == "R-1"
        assert result["kind"] == "sale" and "refund_of" not in result
        assert result["masked_pan"] == "476173******0010"
        assert result["auth_code"] and result["response_code"] == "00"
        assert await _events(daemon, body["id"]) == [
            S.CREATED,
            S.CARD_READ,
            S.AUTH_REQUESTED,
            S.APPROVED,
            S.COMPLETED,
        ]
        batch = await daemon.journal.claim_batch(10)
        assert [item.payment_id for item in batch] == [body["id"]]
        assert batch[0].body["amount"] == 1250 and batch[0].body["offline"] is False
        snapshot = (await daemon.snapshot()).to_json()
        assert snapshot["journal"]["approved_today"] == 1
        assert snapshot["journal"]["outbox_backlog"] == 1
        assert snapshot["lanes"][0]["prompt"] == "IDLE"
        assert snapshot["lanes"][0]["device"]["state"] == "ready"
        assert snapshot["acquirer"]["reachable"] is True
        assert set(snapshot) >= {
            "shop",
            "version",
            "ready",
            "started_at",
            "now",
            "lanes",
            "journal",
            "acquirer",
            "mqtt",
        }
        assert PAN not in json.dumps(snapshot)
        async with http.get(f"{till.base}/status.json") as response:
            assert response.status == 200
            assert PAN not in await response.text()
    charges = acquirer.charges
    assert len(charges) == 1 and charges[0].amount == 1250
    # the host's key is the journal's key
    payment = await _get_closed(tmp_path, body["id"])
    assert charges[0].idempotency_key == payment
    assert PAN not in caplog.text


async def _get_closed(tmp_path: Path, payment_id: str) -> str | None:
    from gateway.journal import Journal

    async with Journal.open(tmp_path / "journal.db") as journal:
        return (await journal.get(payment_id)).idempotency_key


async def _pay_with_card(
    daemon: Daemon,
    http: aiohttp.ClientSession,
    slot: str,
    amount: int,
    profile: str = "visa_credit",
) -> dict[str, object]:
    assert daemon.http_port is not None
    till = Till(http, daemon.http_port)
    status, body = await till.pay(1, amount)
    assert status == 202
    await till.wait_prompt(1, "PRESENT CARD")
    insert_card(slot, profile)
    return await till.get(str(body["id"]), wait=10)


async def test_issuer_decline_is_journaled_declined_without_outbox(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    acquirer.faults.decline_all = True
    slot = slot_name()
    async with running(_daemon(tmp_path, acquirer, [slot])) as daemon:
        result = await _pay_with_card(daemon, http, slot, 1250)
        assert result["state"] == "DECLINED" and result["outcome"] == "declined"
        assert result["response_code"] == "05"
        assert await _events(daemon, str(result["id"])) == [
            S.CREATED,
            S.CARD_READ,
            S.AUTH_REQUESTED,
            S.DECLINED,
        ]
        assert await daemon.journal.claim_batch(10) == []
    assert acquirer.charges == []


async def test_acquirer_down_stores_for_forwarding_then_forwards(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """Unable to go online (EMV 4.4 Book 3, 10.7): the Default action codes approve (8A Y3);
    the sealed request is forwarded once the host is up, and the vault row is purged."""
    host = AcquirerHost()
    url = await host.start()
    port = int(url.rsplit(":", 1)[1])
    await host.stop()  # nothing listens there now
    slot = slot_name()
    daemon = Daemon(make_config(tmp_path, url, [slot]), env=fixed_env, environ={})
    async with running(daemon):
        result = await _pay_with_card(daemon, http, slot, 1250)
        assert result["state"] == "STORED_FOR_FORWARDING", result
        assert result["response_code"] == "Y3" and result["offline"] is True
        assert (await daemon.snapshot()).to_json()["acquirer"]["reachable"] is False
        sealed = _sealed(tmp_path, str(result["id"]))
        assert sealed[:16] in db_bytes(tmp_path / "journal.db")
        revived = AcquirerHost()
        await revived.start(port=port)
        try:
            payment_id = str(result["id"])
            state = await _forward_settled(daemon, revived, payment_id)
            batch = await daemon.journal.claim_batch(10)
            assert [item.body["offline"] for item in batch] == [True]
            declined = state is S.FORWARD_DECLINED
            assert [item.body.get("forward_declined", False) for item in batch] == [declined]
            # the forwarder truncates the WAL after its pass: the sealed request leaves the
            # file (polled, bounded: the truncation follows the journaled answer)
            async def purged() -> bool:
                return sealed[:16] not in db_bytes(tmp_path / "journal.db")

            await wait_until(purged, within=10)
        finally:
            await revived.stop()


def _sealed(tmp_path: Path, payment_id: str) -> bytes:
    """The sealed request of a payment, as the vault table holds it."""
    conn = sqlite3.connect(tmp_path / "journal.db")
    try:
        row = conn.execute(
            "SELECT ciphertext FROM vault WHERE payment_id = ?", (payment_id,)
        ).fetchone()
    finally:
        conn.close()
    assert row is not None
    return bytes(row[0])


async def test_offline_tc_is_stored_and_forwarded(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    """Below the floor limit visa_credit answers a TC (8A Y1): no online request at all."""
    slot = slot_name()
    async with running(_daemon(tmp_path, acquirer, [slot])) as daemon:
        result = await _pay_with_card(daemon, http, slot, 500)
        assert result["outcome"] == "approved" and result["offline"] is True
        assert result["response_code"] == "Y1"
        payment_id = str(result["id"])
        await _forward_settled(daemon, acquirer, payment_id)
        assert S.AUTH_REQUESTED not in await _events(daemon, payment_id)
    assert len(acquirer.ledger) == 1


async def test_answer_lost_goes_unknown_then_resolved_by_status_query(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    acquirer.faults.drop_after_processing = 1
    slot = slot_name()
    async with running(_daemon(tmp_path, acquirer, [slot])) as daemon:
        result = await _pay_with_card(daemon, http, slot, 1250)
        assert result["state"] == "COMPLETED", result
        assert await _events(daemon, str(result["id"])) == [
            S.CREATED,
            S.CARD_READ,
            S.AUTH_REQUESTED,
            S.UNKNOWN,
            S.APPROVED,
            S.COMPLETED,
        ]
    assert len(acquirer.charges) == 1  # the status query found the one charge, no second


async def test_busy_lane_409_and_bad_input_400(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    slot = slot_name()
    async with running(_daemon(tmp_path, acquirer, [slot])) as daemon:
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        status, first = await till.pay(1, 1000)
        assert status == 202
        status, body = await till.pay(1, 2000)
        assert status == 409 and body["error"] == "lane_busy"
        for bad, field in (
            ({"amount": -5}, "amount"),
            ({"amount": "12"}, "amount"),
            ({"amount": 5, "currency": "XYZ"}, "currency"),
            ({"amount": 5, "colour": "red"}, "colour"),
        ):
            async with http.post(f"{till.base}/api/lanes/1/payments", json=bad) as response:
                assert response.status == 400
                assert (await response.json())["field"] == field
        status, body = await till.pay(9, 100)
        assert status == 404
        assert await till.cancel(str(first["id"])) == 202
        assert (await till.get(str(first["id"]), wait=5))["state"] == "CANCELLED"


async def test_till_cancel_while_waiting_for_the_card(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    slot = slot_name()
    async with running(_daemon(tmp_path, acquirer, [slot])) as daemon:
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        _, body = await till.pay(1, 1250)
        await till.wait_prompt(1, "PRESENT CARD")
        in_progress = (await daemon.snapshot()).to_json()["lanes"][0]["payment"]
        assert in_progress["id"] == body["id"] and in_progress["state"] == "CREATED"
        assert in_progress["amount"] == 1250 and in_progress["currency"] == "EUR"
        assert await till.cancel(str(body["id"])) == 202
        result = await till.get(str(body["id"]), wait=5)
        assert result["state"] == "CANCELLED" and result["outcome"] == "cancelled"
        assert await till.cancel(str(body["id"])) == 409
        # the lane is free again: the next payment goes through
        again = await _pay_with_card(daemon, http, slot, 1250)
        assert again["state"] == "COMPLETED"
    assert len(acquirer.charges) == 1


async def test_a_till_repeating_its_request_is_not_charged_twice(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    # The till's POST timed out on its side after the sale went through; it sends it again
    # with the same reference: the answer is that sale, and the card is charged once.
    slot = slot_name()
    async with running(_daemon(tmp_path, acquirer, [slot])) as daemon:
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        status, first = await till.pay(1, 1250, reference="T-77")
        assert status == 202
        await till.wait_prompt(1, "PRESENT CARD")
        insert_card(slot)
        assert (await till.get(str(first["id"]), wait=10))["state"] == "COMPLETED"
        status, again = await till.pay(1, 1250, reference="T-77")
        assert status == 200 and again["replayed"] is True
        assert again["id"] == first["id"] and again["state"] == "COMPLETED"
        status, other = await till.pay(1, 999, reference="T-77")
        assert status == 409 and other["error"] == "reference_conflict"
        drivers_sim.slot(slot).remove()
        # a sale that took no money does not hold its reference: the till may try again
        status, cancelled = await till.pay(1, 500, reference="T-78")
        await till.wait_prompt(1, "PRESENT CARD")
        assert await till.cancel(str(cancelled["id"])) == 202
        assert (await till.get(str(cancelled["id"]), wait=5))["state"] == "CANCELLED"
        status, retry = await till.pay(1, 500, reference="T-78")
        assert status == 202 and retry["id"] != cancelled["id"]
        assert await till.cancel(str(retry["id"])) == 202
    assert len(acquirer.charges) == 1


async def test_no_card_in_time_cancels(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    slot = slot_name()
    daemon = _daemon(tmp_path, acquirer, [slot], timeouts={"card": 0.3})
    async with running(daemon):
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        _, body = await till.pay(1, 1250)
        result = await till.get(str(body["id"]), wait=5)
        assert result["state"] == "CANCELLED" and "no card" in str(result["reason"])
        assert result["outcome"] == "cancelled"


class _PulledOut:
    """A card the cardholder pulls out right after it answers the first GENERATE AC."""

    def __init__(self, card: object, slot: str) -> None:
        self._card = card
        self._slot = slot

    def process(self, capdu: bytes) -> bytes:
        rapdu: bytes = self._card.process(capdu)  # type: ignore[attr-defined]
        if capdu[:2] == b"\x80\xae":
            from drivers import sim

            sim.slot(self._slot).remove()
        return rapdu


async def test_card_removed_after_online_approval_is_reversed(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    """The host approved, the card left before the second GENERATE AC: the sale is not
    completed, the approval is reversed (ARCHITECTURE.md: never a lost or a double charge)."""
    from drivers import sim
    from simulator.card import VirtualCard

    slot = slot_name()
    async with running(_daemon(tmp_path, acquirer, [slot])) as daemon:
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        _, body = await till.pay(1, 1250)
        await till.wait_prompt(1, "PRESENT CARD")
        sim.slot(slot).insert(_PulledOut(VirtualCard.from_profile("visa_credit"), slot))
        result = await till.get(str(body["id"]), wait=10)
        assert result["outcome"] == "declined"
        assert "CardRemoved" in str(result["reason"])
        payment_id = str(body["id"])
        await wait_state(daemon.journal, payment_id, S.REVERSED)
        events = await daemon.journal.events(payment_id)
        # the host's approval is journaled with the reversal's request, once the card failed
        assert [(e.to_state, e.actor) for e in events[2:]] == [
            (S.AUTH_REQUESTED, "lane[1]"), (S.APPROVED, "acquirer"),
            (S.REVERSAL_PENDING, "lane[1]"), (S.REVERSED, "acquirer"),
        ]  # fmt: skip
        assert await daemon.journal.claim_batch(10) == []
        lanes = await till.lanes()
        assert lanes["lanes"][0]["prompt"] == "IDLE"
    assert [entry.kind for entry in acquirer.ledger] == ["charge", "reversal"]
