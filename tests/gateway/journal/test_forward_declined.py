"""A forwarded offline approval the acquirer declines, and the store-and-forward exposure query.

FORWARD_DECLINED is its own state (not FORWARDED: no money will come); the vault row is purged
when it is entered (the request was sent); it leaves only by a manager's acknowledgement, which
the event log attributes; it is not refundable and is not a second sale record for head office.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from gateway.journal import IllegalTransition, PaymentState, RefundNotAllowed, VaultError
from gateway.journal.queries import OfflineExposure
from tests.gateway.journal_support import Clock, drive_to, open_journal

S = PaymentState


async def test_declined_forward_purges_the_vault_and_waits_for_a_manager(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        held = await drive_to(journal, S.STORED_FOR_FORWARDING, amount=4200)
        assert (await journal.vault_rows_by_key()) != {}
        declined = await journal.decline_forward(
            held.id, actor="forwarder", response_code="51", reason="declined by the issuer"
        )
        assert declined.state is S.FORWARD_DECLINED and declined.response_code == "51"
        assert await journal.vault_rows_by_key() == {}
        with pytest.raises(VaultError):
            await journal.forwarding_request(held.id)
        # not FORWARDED, not refundable, not forwardable twice
        with pytest.raises(IllegalTransition):
            await journal.confirm_forwarded(held.id, actor="forwarder")
        with pytest.raises(RefundNotAllowed):
            await journal.create_refund(held.id, lane="1", amount=100, actor="till")
        recovery = await journal.recover()
        assert held.id not in {item.payment.id for item in recovery.pending}
        acked = await journal.acknowledge_declined_forward(
            held.id, actor="manager:alice", reason="customer called"
        )
        events = await journal.events(held.id)
        with pytest.raises(IllegalTransition):
            await journal.acknowledge_declined_forward(held.id, actor="manager:alice")
    assert acked.state is S.DECLINE_ACKNOWLEDGED
    assert [(e.to_state, e.actor) for e in events[-2:]] == [
        (S.FORWARD_DECLINED, "forwarder"),
        (S.DECLINE_ACKNOWLEDGED, "manager:alice"),
    ]
    assert events[-1].reason == "customer called"
    with sqlite3.connect(tmp_path / "journal.db") as conn:
        outbox = conn.execute("SELECT count(*) FROM outbox WHERE payment_id = ?", (held.id,))
        assert outbox.fetchone()[0] == 1  # the offline sale record, no duplicate


async def test_only_a_stored_sale_can_be_declined_as_a_forward(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        online = await drive_to(journal, S.COMPLETED)
        forwarded = await drive_to(journal, S.FORWARDED)
        for payment in (online, forwarded):
            with pytest.raises(IllegalTransition):
                await journal.decline_forward(payment.id, actor="forwarder", response_code="05")
        completed = await drive_to(journal, S.COMPLETED)
        with pytest.raises(IllegalTransition):
            await journal.acknowledge_declined_forward(completed.id, actor="manager:alice")


async def test_offline_exposure_counts_only_sales_awaiting_forwarding(tmp_path: Path) -> None:
    clock = Clock()
    async with open_journal(tmp_path, clock=clock) as journal:
        assert await journal.offline_exposure() == {}
        first = await drive_to(journal, S.STORED_FOR_FORWARDING, amount=1000)
        clock.now += 60
        await drive_to(journal, S.STORED_FOR_FORWARDING, amount=2500)
        await drive_to(journal, S.STORED_FOR_FORWARDING, amount=700)
        # not counted: forwarded, declined forward, online sales
        await drive_to(journal, S.FORWARDED, amount=9999)
        await drive_to(journal, S.FORWARD_DECLINED, amount=8888)
        await drive_to(journal, S.COMPLETED, amount=7777)
        chf = await journal.create_sale(lane="1", amount=300, currency="CHF", actor="t")
        await journal.card_read(chf.id, masked_pan=None, aid=None, actor="t")
        await journal.store_for_forwarding(chf.id, request=b"r", response_code="Y3", actor="t")
        exposure = await journal.offline_exposure()
        await journal.confirm_forwarded(first.id, actor="forwarder", response_code="00")
        after = await journal.offline_exposure()
    assert exposure == {
        "CHF": OfflineExposure("CHF", 1, 300, 1_700_000_060_000),
        "EUR": OfflineExposure("EUR", 3, 4200, 1_700_000_000_000),
    }
    assert after["EUR"] == OfflineExposure("EUR", 2, 3200, 1_700_000_060_000)


async def test_a_record_in_flight_never_marks_its_new_revision_sent(tmp_path: Path) -> None:
    # The publisher claimed the offline sale's record and is sending it when the bank's decline
    # arrives: its PUBACK must not mark revision 2 as sent (head office would never hear).
    async with open_journal(tmp_path) as journal:
        held = await drive_to(journal, S.STORED_FOR_FORWARDING, amount=1500)
        [first] = await journal.claim_batch(10)
        await journal.decline_forward(held.id, actor="forwarder", response_code="05")
        assert await journal.mark_sent([first.id]) == 0
        [second] = await journal.claim_batch(10)
    assert second.payment_id == held.id and second.id != first.id
    assert (second.body["revision"], second.body["forward_declined"]) == (2, True)
    assert "revision" not in first.body


async def test_day_figures_follow_voids_and_declined_forwards(tmp_path: Path) -> None:
    # The in-memory day figures must equal a fresh count through the day's new transitions,
    # also when a record already sent to head office is queued again as revision 2.
    from tests.gateway.journal.test_figures import fresh_count

    db = tmp_path / "journal.db"
    async with open_journal(tmp_path, clock=Clock(time.time())) as journal:

        def check() -> None:
            assert journal.figures.read() == fresh_count(db, journal.figures.read().day_start_ms)

        sold = await drive_to(journal, S.COMPLETED)
        held = await drive_to(journal, S.STORED_FOR_FORWARDING)
        check()
        batch = await journal.claim_batch(10)
        await journal.mark_sent([item.id for item in batch])  # head office has both
        check()
        await journal.void_sale(sold.id, actor="till:1", reason="typo")
        check()
        await journal.confirm_void(sold.id, actor="acquirer")  # revision 2: one more to send
        check()
        await journal.decline_forward(held.id, actor="forwarder", response_code="05")
        check()
        await journal.acknowledge_declined_forward(held.id, actor="manager:alice")
        check()
        unsent_only = await drive_to(journal, S.STORED_FOR_FORWARDING)
        await journal.decline_forward(unsent_only.id, actor="forwarder", response_code="05")
        check()  # its first record was never sent: replaced, not added
        assert journal.figures.read().outbox_backlog == 3


async def test_revision_2_records_match_the_published_sale_schema(tmp_path: Path) -> None:
    # Head office validates what it receives: the declined forward's and the void's records
    # (revision 2) are sale messages of the published contract (gateway/contracts/mqtt).
    from gateway.contracts import mqtt_validator
    from gateway.sync.messages import sale_message

    validator = mqtt_validator("sale.schema.json")
    async with open_journal(tmp_path) as journal:
        held = await drive_to(journal, S.STORED_FOR_FORWARDING)
        await journal.decline_forward(held.id, actor="forwarder", response_code="05")
        sold = await drive_to(journal, S.COMPLETED)
        await journal.void_sale(sold.id, actor="till:1")
        await journal.confirm_void(sold.id, actor="acquirer")
        batch = await journal.claim_batch(10)
    assert {item.body.get("revision") for item in batch} == {2}
    for item in batch:
        message = json.loads(sale_message(item, shop="shop-1"))
        assert [e.message for e in validator.iter_errors(message)] == []
