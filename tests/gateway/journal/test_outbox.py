"""The outbox: one sale record per settled payment, written in the sale's own transaction.

Claims are leases (each claim counts an attempt); unsent records survive restarts and are
released by recovery. Atomicity is shown with a real SQLite trigger that makes the outbox
insert fail: the sale must then stay APPROVED with no COMPLETED event (or, when APPROVED was
to be journaled with COMPLETED in one request, AUTH_REQUESTED with neither).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.journal import Action, HostApproval, InvalidRecord, PaymentState, StorageError
from tests.gateway.journal_support import AID, MASKED, Clock, drive_to, open_journal

S = PaymentState


async def test_completed_sale_writes_its_record_for_head_office(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        sale = await journal.create_sale(
            lane="4",
            amount=2590,
            currency="EUR",
            actor="lane[4]",
            items=[{"sku": "3017620422003", "qty": 1, "price": 2590}],
        )
        await journal.card_read(sale.id, masked_pan=MASKED, aid=AID, actor="lane[4]")
        await journal.request_auth(sale.id, actor="lane[4]")
        await journal.approve(sale.id, auth_code="OK1234", actor="acquirer")
        assert await journal.claim_batch(10) == []  # nothing before completion
        done = await journal.complete(sale.id, actor="lane[4]")
        [item] = await journal.claim_batch(10)
    assert item.payment_id == sale.id and item.attempts == 1
    assert item.body == {
        "type": "sale",
        "payment_id": sale.id,
        "lane": "4",
        "amount": 2590,
        "currency": "EUR",
        "masked_pan": MASKED,
        "aid": AID,
        "auth_code": "OK1234",
        "response_code": "00",
        "offline": False,
        "completed_ms": done.updated_ms,
        "items": [{"sku": "3017620422003", "qty": 1, "price": 2590}],
    }


@pytest.mark.parametrize(
    "state", [S.DECLINED, S.REVERSED, S.CANCELLED, S.UNKNOWN, S.APPROVED, S.REVERSAL_PENDING]
)
async def test_unsettled_payments_have_no_record(tmp_path: Path, state: S) -> None:
    async with open_journal(tmp_path) as journal:
        await drive_to(journal, state)
        assert await journal.claim_batch(10) == []


async def test_offline_sale_and_refund_records(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        offline = await drive_to(journal, S.STORED_FOR_FORWARDING, amount=800)
        await journal.confirm_forwarded(offline.id, actor="forwarder")  # no second record
        refund = await journal.create_refund(offline.id, lane="1", amount=300, actor="lane[1]")
        await journal.card_read(refund.id, masked_pan=MASKED, aid=AID, actor="lane[1]")
        await journal.request_auth(refund.id, actor="lane[1]")
        await journal.approve(refund.id, auth_code="R00001", actor="acquirer")
        await journal.complete(refund.id, actor="lane[1]")
        items = await journal.claim_batch(10)
    assert [(i.payment_id, i.body["type"], i.body["offline"]) for i in items] == [
        (offline.id, "sale", True),
        (refund.id, "refund", False),
    ]
    assert items[0].body["response_code"] == "Y1"
    assert items[1].body["refund_of"] == offline.id and items[1].body["amount"] == 300


async def test_claims_are_leases_counted_as_attempts(tmp_path: Path) -> None:
    clock = Clock()
    async with open_journal(tmp_path, clock=clock) as journal:
        sales = [await drive_to(journal, S.COMPLETED) for _ in range(5)]
        first = await journal.claim_batch(3, lease=30)
        assert [i.payment_id for i in first] == [s.id for s in sales[:3]]
        second = await journal.claim_batch(10, lease=30)
        assert [i.payment_id for i in second] == [s.id for s in sales[3:]]
        assert await journal.claim_batch(10) == []  # all leased
        assert await journal.mark_sent([first[0].id, first[0].id, second[0].id]) == 2
        await journal.mark_failed([first[1].id], error="broker unreachable")
        retry = await journal.claim_batch(10, lease=30)
        assert [(i.id, i.attempts) for i in retry] == [(first[1].id, 2)]
        clock.now += 31  # the other leases expire: claimable again
        expired = await journal.claim_batch(10)
        assert sorted(i.id for i in expired) == sorted([first[1].id, first[2].id, second[1].id])
        assert {i.id: i.attempts for i in expired}[first[1].id] == 3
        assert await journal.mark_sent([i.id for i in expired]) == 3
        clock.now += 100
        assert await journal.claim_batch(10) == []
        with pytest.raises(InvalidRecord):
            await journal.claim_batch(0)


async def test_unsent_records_survive_restart_and_recovery_releases_claims(
    tmp_path: Path,
) -> None:
    async with open_journal(tmp_path) as journal:
        sales = [await drive_to(journal, S.COMPLETED) for _ in range(3)]
        claimed = await journal.claim_batch(2, lease=3600)
        await journal.mark_sent([claimed[0].id])
    async with open_journal(tmp_path) as journal:  # "crashed" holding claimed[1]
        plan = await journal.recover()
        assert (plan.outbox_unsent, plan.released_claims) == (2, 1)
        again = await journal.claim_batch(10)
    assert [i.payment_id for i in again] == [sales[1].id, sales[2].id]
    assert [i.attempts for i in again] == [2, 1]


def _fail_outbox_inserts(db: Path) -> None:
    """Every later insert into the outbox fails as a full disk would ('disk said no')."""
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox"
        " BEGIN SELECT RAISE(ABORT, 'disk said no'); END"
    )
    conn.commit()
    conn.close()


async def test_sale_and_record_commit_together_or_not_at_all(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        sale = await drive_to(journal, S.APPROVED)
    _fail_outbox_inserts(tmp_path / "journal.db")
    async with open_journal(tmp_path) as journal:
        with pytest.raises(StorageError, match="disk said no"):
            await journal.complete(sale.id, actor="lane[1]")
        after = await journal.get(sale.id)
        events = await journal.events(sale.id)
        plan = await journal.recover()
    assert after.state is S.APPROVED
    assert events[-1].to_state is S.APPROVED
    # Restart recovery sees an approved but uncompleted sale: it must be reversed.
    assert plan.by_action(Action.REVERSE) == [after]


async def test_an_approval_journaled_with_completed_is_undone_with_it(tmp_path: Path) -> None:
    """``approve_then``: when COMPLETED's outbox insert fails, APPROVED goes too (one request):
    the sale stays AUTH_REQUESTED, for a status query at restart."""
    async with open_journal(tmp_path) as journal:
        sale = await drive_to(journal, S.AUTH_REQUESTED)
    _fail_outbox_inserts(tmp_path / "journal.db")
    async with open_journal(tmp_path) as journal:
        with pytest.raises(StorageError, match="disk said no"):
            await journal.approve_then(
                sale.id, HostApproval("AB12CD"), S.COMPLETED, actor="lane[1]"
            )
        after = await journal.get(sale.id)
        events = await journal.events(sale.id)
        plan = await journal.recover()
    assert (after.state, after.auth_code) == (S.AUTH_REQUESTED, None)
    assert events[-1].to_state is S.AUTH_REQUESTED
    assert plan.by_action(Action.STATUS_QUERY) == [after]


async def test_recovery_lists_what_needs_action(tmp_path: Path) -> None:
    clock = Clock()
    async with open_journal(tmp_path, clock=clock) as journal:
        by_state = {}
        for state in S:
            clock.now += 1
            by_state[state] = await drive_to(journal, state)
    async with open_journal(tmp_path, seed=5) as journal:
        plan = await journal.recover()
    ids = {action: [p.id for p in plan.by_action(action)] for action in Action}
    assert ids == {
        Action.CANCEL: [by_state[S.CREATED].id, by_state[S.CARD_READ].id],
        Action.STATUS_QUERY: [by_state[S.AUTH_REQUESTED].id, by_state[S.UNKNOWN].id],
        Action.REVERSE: [
            by_state[S.APPROVED].id,
            by_state[S.REVERSAL_PENDING].id,
            by_state[S.VOID_PENDING].id,
        ],
        Action.FORWARD: [by_state[S.STORED_FOR_FORWARDING].id],
    }
    status = plan.by_action(Action.STATUS_QUERY)
    assert all(p.idempotency_key for p in status)  # the key to query under survived
    # COMPLETED, STORED_FOR_FORWARDING and FORWARDED settled: three records for head office;
    # FORWARD_DECLINED and DECLINE_ACKNOWLEDGED went through STORED_FOR_FORWARDING, VOID_PENDING
    # and VOIDED through COMPLETED (one record each).
    assert plan.outbox_unsent == 7


async def test_pruning_drops_only_records_acknowledged_long_ago(tmp_path: Path) -> None:
    day = 86400.0
    clock = Clock()
    async with open_journal(tmp_path, clock=clock) as journal:
        old_sent = await drive_to(journal, S.COMPLETED)
        old_unsent = await drive_to(journal, S.COMPLETED)
        [first, second] = await journal.claim_batch(10)
        assert {first.payment_id, second.payment_id} == {old_sent.id, old_unsent.id}
        sent = first if first.payment_id == old_sent.id else second
        assert await journal.mark_sent([sent.id]) == 1
        clock.now += 20 * day
        recent = await drive_to(journal, S.COMPLETED)
        [recent_item] = [i for i in await journal.claim_batch(10) if i.payment_id == recent.id]
        assert await journal.mark_sent([recent_item.id]) == 1
        clock.now += 15 * day  # the first record was acknowledged 35 days ago, the last 15
        assert await journal.prune_outbox(older_than=30 * day, batch=1) == 1
        assert await journal.prune_outbox(older_than=30 * day) == 0  # nothing more to do
        # the unsent record stays however old it is; every payment stays in the journal
        left = {item.payment_id for item in await journal.claim_batch(10, lease=0.001)}
        assert left == {old_unsent.id}
        for payment in (old_sent, old_unsent, recent):
            assert (await journal.get(payment.id)).state is S.COMPLETED
        store = journal._s()
        rows = await journal._run(
            lambda: [r[0] for r in store.conn.execute("SELECT payment_id FROM outbox")]
        )
        assert sorted(rows) == sorted([old_unsent.id, recent.id])
        with pytest.raises(InvalidRecord):
            await journal.prune_outbox(older_than=0)
