"""The shop's day through the daemon: voids, day close with reconciliation, declined forwards.

Real parts: the daemon in process with ``sim://`` lanes and virtual EMV cards, the simulated
acquirer over HTTP (its ledger says what was charged), the till API over HTTP. The manager login
(issue 11) is not connected yet: tests set the daemon's authorisation hook
(:func:`gateway.till.authority.allow_as`), and one test checks the provisional hook refuses
manager actions.
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from gateway.journal import PaymentState
from gateway.till.authority import allow_as
from simulator.acquirer_host import AcquirerHost, LedgerEntry
from tests.gateway.daemon_support import acquirer_fixture, http_fixture, running, slot_name
from tests.gateway.day.day_support import day_daemon, host_url, pay, post, wait_until

__all__ = ["acquirer_fixture", "http_fixture"]

S = PaymentState
EUR = 978


async def test_void_then_day_close_finds_a_planted_difference(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    slot = slot_name()
    daemon = day_daemon(tmp_path, host_url(acquirer), [slot])
    daemon.authorise = allow_as("manager:alice")
    async with running(daemon):
        sales = [await pay(daemon, http, slot, amount) for amount in (1250, 2000, 1500)]
        assert [s["state"] for s in sales] == ["COMPLETED"] * 3
        wrong = str(sales[1]["id"])

        # a reason shaped like a card number is the till's mistake: 400 on the field, no void
        status, body = await post(daemon, http, f"/api/payments/{wrong}/void",
                                  {"reason": "card 4761 7390 0101 0010"})  # fmt: skip
        assert (status, body.get("field")) == (400, "reason"), body
        assert (await daemon.journal.get(wrong)).state is S.COMPLETED

        status, body = await post(daemon, http, f"/api/payments/{wrong}/void", {"reason": "typo"})
        assert (status, body["outcome"], body["state"]) == (200, "voided", "VOIDED"), body
        events = await daemon.journal.events(wrong)
        assert [(e.to_state, e.actor) for e in events[-2:]] == [
            (S.VOID_PENDING, "manager:alice"),  # journaled, naming who asked, before sending
            (S.VOIDED, "acquirer"),
        ]
        assert [(e.kind, e.amount) for e in acquirer.ledger] == [
            ("charge", 1250), ("charge", 2000), ("charge", 1500), ("reversal", 2000)
        ]  # fmt: skip
        again, body = await post(daemon, http, f"/api/payments/{wrong}/void")
        assert (again, body["error"]) == (409, "not_voidable")
        refund, body = await post(
            daemon, http, f"/api/payments/{wrong}/refunds", {"amount": 100, "reference": "R1"}
        )
        assert refund == 409, body
        missing, _ = await post(daemon, http, "/api/payments/pay_nothere/void")
        assert missing == 404
        outbox = {item.payment_id: item.body for item in await daemon.journal.claim_batch(10)}
        assert outbox[wrong]["voided"] is True and outbox[wrong]["revision"] == 2

        # plant an extra charge at the acquirer: the reconciliation must find it
        acquirer.ledger.append(LedgerEntry("charge", "auth_planted", 999, EUR, "planted"))
        status, day = await post(daemon, http, "/api/days/close")
        assert status == 201, day
        assert (day["day"], day["closed_by"], day["differences"]) == (1, "manager:alice", 1)
        record = day["record"]
        assert record["acquirer"]["reconciled"] is True
        assert record["acquirer"]["differences"] == [
            {
                "source": "acquirer",
                "currency": "EUR",
                "kind": "sales_net",
                "journal": {"count": 2, "amount": 2750},
                "other": {"count": 3, "amount": 3749},
                "difference": 999,
            }
        ]
        totals = {(t["dimension"], t["key"], t["kind"]): t for t in record["totals"]}
        assert totals[("all", "all", "sales")]["amount"] == 2750
        assert totals[("all", "all", "voids")]["amount"] == 2000
        assert totals[("lane", "1", "sales")]["count"] == 2
        assert totals[("aid", "A0000000031010", "sales")]["count"] == 2

        # the day is closed: a sale of that day is refunded, never voided
        late, body = await post(daemon, http, f"/api/payments/{sales[0]['id']}/void")
        assert (late, body["error"]) == (409, "day_closed")
        money = (await daemon.day_snapshot())
        assert money["day"]["last_close"]["differences"] == 1
        assert money["day"]["last_differences"][0]["difference"] == 999
        assert money["takings"] == {}  # the new day has no sale yet
        stored = await daemon.journal.last_day_close()
        assert stored is not None and stored.record == record
        # a second close the same instant is an empty day, never a second batch for day 1
        status, second = await post(daemon, http, "/api/days/close")
        assert status == 201 and second["day"] == 2 and second["record"]["payments"] == 0
    assert len(acquirer.batches.closed) == 2


async def test_manager_actions_need_the_manager_login(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    slot = slot_name()
    async with running(day_daemon(tmp_path, host_url(acquirer), [slot])) as daemon:
        status, body = await post(daemon, http, "/api/days/close")
        assert (status, body["error"]) == (403, "manager_login_required")
        status, body = await post(daemon, http, "/api/payments/pay_x/acknowledge")
        assert status == 403
        sale = await pay(daemon, http, slot, 1300)
        status, body = await post(daemon, http, f"/api/payments/{sale['id']}/void")
        assert status == 200 and body["state"] == "VOIDED"  # a till action
        events = await daemon.journal.events(str(sale["id"]))
        assert events[-2].actor == "till:test-till"  # the till its credential names
    assert await _no_day_closed(tmp_path)


async def _no_day_closed(tmp_path: Path) -> bool:
    import sqlite3

    conn = sqlite3.connect(tmp_path / "journal.db")
    try:
        return int(conn.execute("SELECT count(*) FROM days").fetchone()[0]) == 0
    finally:
        conn.close()


async def test_a_declined_forward_reaches_the_till_head_office_and_the_page(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    down = AcquirerHost()
    url = await down.start()
    port = int(url.rsplit(":", 1)[1])
    await down.stop()  # nothing listens: the card approves offline (unable to go online)
    slot = slot_name()
    daemon = day_daemon(tmp_path, url, [slot], acquirer={"retry_interval": 0.2})
    daemon.authorise = allow_as("manager:bob")
    async with running(daemon):
        assert daemon.hubs is not None
        hub = daemon.hubs.get(1)
        assert hub is not None
        subscription, _ = hub.subscribe()
        sale = await pay(daemon, http, slot, 4321)
        assert sale["state"] == "STORED_FOR_FORWARDING", sale
        revived = AcquirerHost()
        revived.faults.decline_all = True  # the issuer declines the forwarded sale
        await revived.start(port=port)
        try:
            payment_id = str(sale["id"])

            async def declined() -> bool:
                return (await daemon.journal.get(payment_id)).state is S.FORWARD_DECLINED

            await wait_until(declined)
            assert [e.kind for e in revived.ledger] == ["decline"]
            # the till's event stream
            seen = []
            while (event := subscription.take()) is not None:
                seen.append(event)
            told = [e for e in seen if getattr(e, "type", None) == "forward_declined"]
            assert len(told) == 1
            assert told[0].data["payment"] == payment_id
            assert (told[0].data["amount"], told[0].data["currency"]) == (4321, "EUR")
            assert told[0].data["masked_pan"] == "476173******0010"
            # head office: the sale's record goes again, as declined
            batch = await daemon.journal.claim_batch(10)
            assert [(i.payment_id, i.body["forward_declined"]) for i in batch] == [
                (payment_id, True)
            ]
            # the page's data: waiting for a manager, with its amount
            money = (await daemon.day_snapshot())
            assert [(p["id"], p["amount"]) for p in money["declined_forwards"]] == [
                (payment_id, 4321)
            ]
            page = await (await http.get(f"http://127.0.0.1:{daemon.http_port}/")).text()
            assert "declined-forward" in page and "43.21" in page
            # a manager acknowledges it; it leaves the page's list
            status, body = await post(daemon, http, f"/api/payments/{payment_id}/acknowledge")
            assert (status, body["state"]) == (200, "DECLINE_ACKNOWLEDGED")
            assert body["by"] == "manager:bob"
            assert (await daemon.day_snapshot())["declined_forwards"] == []
            again, body = await post(daemon, http, f"/api/payments/{payment_id}/acknowledge")
            assert (again, body["error"]) == (409, "not_declined")
        finally:
            subscription.close()
            await revived.stop()
    assert "4761739001010010" not in json.dumps([e.data for e in seen])
