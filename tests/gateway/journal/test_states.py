"""The payment state machine on a real SQLite file: every legal path, every illegal transition.

Each illegal transition must raise :class:`IllegalTransition` naming the payment and both
states, and leave the payment and its event log exactly as they were.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.journal import (
    SCHEMA_VERSION,
    IllegalTransition,
    InvalidRecord,
    Journal,
    JournalClosed,
    PaymentKind,
    PaymentState,
    RefundNotAllowed,
    SchemaError,
    UnknownPayment,
)
from gateway.journal.schema import MIGRATIONS, configure, migrate
from gateway.journal.states import TERMINAL, TRANSITIONS
from tests.gateway.journal_support import (
    AID,
    MASKED,
    PATHS,
    Clock,
    drive_to,
    open_journal,
    step,
)

S = PaymentState


async def test_online_sale_path_records_each_step_with_actor_and_time(tmp_path: Path) -> None:
    clock = Clock()
    async with open_journal(tmp_path, clock=clock) as journal:
        sale = await journal.create_sale(
            lane="2", amount=1999, currency="EUR", actor="lane[2]", items=[{"sku": "B7"}]
        )
        clock.now += 1
        await journal.card_read(sale.id, masked_pan=MASKED, aid=AID, actor="lane[2].reader")
        clock.now += 1
        requested = await journal.request_auth(sale.id, actor="lane[2]")
        clock.now += 1
        await journal.approve(sale.id, auth_code="123456", actor="acquirer")
        done = await journal.complete(sale.id, actor="lane[2]", reason="TC")
        events = await journal.events(sale.id)
    assert done.state is S.COMPLETED and done.kind is PaymentKind.SALE
    assert (done.masked_pan, done.aid, done.auth_code) == (MASKED, AID, "123456")
    assert done.items == [{"sku": "B7"}]
    assert requested.idempotency_key and done.idempotency_key == requested.idempotency_key
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, S.CREATED),
        (S.CREATED, S.CARD_READ),
        (S.CARD_READ, S.AUTH_REQUESTED),
        (S.AUTH_REQUESTED, S.APPROVED),
        (S.APPROVED, S.COMPLETED),
    ]
    assert [e.actor for e in events] == [
        "lane[2]",
        "lane[2].reader",
        "lane[2]",
        "acquirer",
        "lane[2]",
    ]
    assert [e.at_ms for e in events] == [
        1_700_000_000_000,
        1_700_000_001_000,
        1_700_000_002_000,
        1_700_000_003_000,
        1_700_000_003_000,
    ]
    assert events[-1].reason == "TC"


@pytest.mark.parametrize("target", list(PATHS), ids=lambda s: s.value)
async def test_every_state_is_reachable_by_a_legal_path(tmp_path: Path, target: S) -> None:
    async with open_journal(tmp_path) as journal:
        payment = await drive_to(journal, target)
        events = await journal.events(payment.id)
        assert (await journal.get(payment.id)).state is target
    chain = [e.to_state for e in events]
    assert chain == [S.CREATED, *PATHS[target]]
    for event in events[1:]:
        assert event.from_state is not None and event.to_state in TRANSITIONS[event.from_state]


@pytest.mark.parametrize("source", list(PATHS), ids=lambda s: s.value)
async def test_illegal_transitions_raise_and_change_nothing(tmp_path: Path, source: S) -> None:
    # CREATED is only ever entered by create_sale/create_refund, never by a transition.
    illegal = [t for t in PATHS if t is not S.CREATED and t not in TRANSITIONS[source]]
    assert illegal, "every state has some illegal target"
    async with open_journal(tmp_path) as journal:
        payment = await drive_to(journal, source)
        before = await journal.events(payment.id)
        for target in illegal:
            with pytest.raises(IllegalTransition) as info:
                await step(journal, payment.id, target)
            assert info.value.payment_id == payment.id
            assert (info.value.current, info.value.requested) == (source.value, target.value)
            assert payment.id in str(info.value)
            assert f"{source.value} -> {target.value}" in str(info.value)
        assert await journal.get(payment.id) == payment
        assert await journal.events(payment.id) == before


def test_terminal_states_are_the_ends_of_the_machine() -> None:
    assert {
        S.DECLINED,
        S.VOIDED,
        S.REVERSED,
        S.FORWARDED,
        S.CANCELLED,
        S.DECLINE_ACKNOWLEDGED,
    } == TERMINAL
    # Every non-terminal state can reach a terminal one; nothing leads back to CREATED.
    assert all(S.CREATED not in nexts for nexts in TRANSITIONS.values())


async def test_unknown_is_resolved_by_status_not_by_guessing(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        found_approved = await drive_to(journal, S.UNKNOWN)
        approved = await journal.approve(
            found_approved.id, auth_code="777777", actor="recovery", reason="status query"
        )
        reversed_one = await drive_to(journal, S.UNKNOWN)
        await journal.request_reversal(reversed_one.id, actor="recovery", reason="no status")
        with pytest.raises(IllegalTransition):
            await journal.complete(reversed_one.id, actor="x")
    assert approved.state is S.APPROVED


async def test_idempotency_keys_are_stored_before_sending_and_unique(tmp_path: Path) -> None:
    async with open_journal(tmp_path, seed=7) as journal:
        keys = [(await drive_to(journal, S.AUTH_REQUESTED)).idempotency_key for _ in range(20)]
        fresh = await drive_to(journal, S.CARD_READ)
    assert all(key and key.startswith("idem_") for key in keys)
    assert len(set(keys)) == 20
    assert fresh.idempotency_key is None
    # Injected randomness: the same seed gives the same ids and keys (replayable).
    async with open_journal(tmp_path, seed=7, name="again.db") as journal:
        again = [(await drive_to(journal, S.AUTH_REQUESTED)).idempotency_key for _ in range(20)]
    assert again == keys


async def test_idempotency_key_survives_a_restart(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        sent = await drive_to(journal, S.AUTH_REQUESTED)
    async with open_journal(tmp_path, seed=99) as journal:
        assert (await journal.get(sent.id)).idempotency_key == sent.idempotency_key


async def test_refunds_follow_the_machine_and_never_exceed_the_sale(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        sale = await drive_to(journal, S.COMPLETED, amount=1000)
        refund = await journal.create_refund(sale.id, lane="3", amount=600, actor="lane[3]")
        assert (refund.kind, refund.refund_of, refund.currency) == (
            PaymentKind.REFUND,
            sale.id,
            "EUR",
        )
        for state in PATHS[S.COMPLETED]:
            refund = await step(journal, refund.id, state)
        with pytest.raises(RefundNotAllowed, match="exceeds"):
            await journal.create_refund(sale.id, lane="3", amount=401, actor="lane[3]")
        # A declined refund gives its amount back.
        failed = await journal.create_refund(sale.id, lane="3", amount=400, actor="lane[3]")
        await journal.cancel(failed.id, actor="lane[3]", reason="card removed")
        last = await journal.create_refund(sale.id, lane="3", amount=400, actor="lane[3]")
        assert last.state is S.CREATED
        with pytest.raises(RefundNotAllowed, match="no such sale"):
            await journal.create_refund("pay_nope", lane="3", amount=1, actor="x")
        open_sale = await drive_to(journal, S.APPROVED)
        with pytest.raises(RefundNotAllowed, match="APPROVED"):
            await journal.create_refund(open_sale.id, lane="3", amount=1, actor="x")
        with pytest.raises(RefundNotAllowed, match="refund"):
            await journal.create_refund(refund.id, lane="3", amount=1, actor="x")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": True}, "amount"),
        ({"currency": "eur"}, "currency"),
        ({"currency": "EURO"}, "currency"),
    ],
)
async def test_bad_sale_fields_are_typed_errors(
    tmp_path: Path, kwargs: dict[str, object], field: str
) -> None:
    args: dict[str, object] = {"lane": "1", "amount": 100, "currency": "EUR", "actor": "t"}
    args.update(kwargs)
    async with open_journal(tmp_path) as journal:
        with pytest.raises(InvalidRecord, match=field):
            await journal.create_sale(**args)  # type: ignore[arg-type]


async def test_bad_card_fields_are_typed_errors(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        sale = await journal.create_sale(lane="1", amount=100, currency="EUR", actor="t")
        with pytest.raises(InvalidRecord, match="masked_pan"):
            await journal.card_read(sale.id, masked_pan="4761739001**0010", aid=AID, actor="t")
        with pytest.raises(InvalidRecord, match="aid"):
            await journal.card_read(sale.id, masked_pan=MASKED, aid="a0000000031010", actor="t")
        with pytest.raises(UnknownPayment) as info:
            await journal.card_read("pay_missing", masked_pan=MASKED, aid=AID, actor="t")
        assert info.value.payment_id == "pay_missing"
        assert (await journal.get(sale.id)).state is S.CREATED


async def test_close_is_idempotent_and_later_calls_are_typed_errors(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "j.db")
    await journal.close()
    await journal.close()
    assert journal.closed
    with pytest.raises(JournalClosed):
        await journal.get("pay_x")
    with pytest.raises(JournalClosed):
        await journal.create_sale(lane="1", amount=1, currency="EUR", actor="t")


async def test_connection_is_wal_full_sync_with_foreign_keys(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        store = journal._s()
        pragmas = await journal._run(
            lambda: [
                store.conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in (
                    "journal_mode",
                    "synchronous",
                    "foreign_keys",
                    "secure_delete",
                    "user_version",
                    "cache_size",
                )
            ]
        )
    assert pragmas == ["wal", 2, 1, 1, SCHEMA_VERSION, -512]  # a 512 KiB page cache


def test_migrations_run_forward_and_keep_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    configure(conn)
    assert migrate(conn, MIGRATIONS[:1]) == 0
    conn.execute(
        "INSERT INTO payments (id, kind, lane, amount, currency, state, created_ms, updated_ms)"
        " VALUES ('pay_old', 'sale', '1', 5, 'EUR', 'COMPLETED', 1, 1)"
    )
    conn.close()

    async def reopen() -> None:
        async with open_journal(tmp_path, name="old.db") as journal:
            assert (await journal.get("pay_old")).state is S.COMPLETED
            assert (await journal.claim_batch(5)) == []  # version 2's table now exists

    import asyncio

    asyncio.run(reopen())
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_newer_schema_and_foreign_files_are_refused(tmp_path: Path) -> None:
    async with open_journal(tmp_path):
        pass
    conn = sqlite3.connect(tmp_path / "journal.db")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaError, match="newer"):
        await open_journal(tmp_path)

    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE t (x)")
    other.close()
    with pytest.raises(SchemaError, match="not a posgw journal"):
        await open_journal(tmp_path, name="other.db")

    (tmp_path / "junk.db").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(SchemaError):
        await open_journal(tmp_path, name="junk.db")


async def test_the_event_log_is_append_only(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        await drive_to(journal, S.COMPLETED)
    conn = sqlite3.connect(tmp_path / "journal.db")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE events SET to_state = 'APPROVED'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM events")
    conn.close()
