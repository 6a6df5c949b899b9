"""Steps written once: a transition that passes through a state with no side effect of its own.

``Store.transition(..., via=Via(...))`` writes the payment's row once, in the later state, with
both steps' columns and both event rows (docs/journal.md, "Steps written once"). What must hold
is that nothing tells it from the two steps written one after the other: the same row, the same
events (actors, reasons, states), the same outbox record, the same figures and day in money on
the loop; an illegal chain or a step with side effects writes nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.journal import (
    CardDataRejected,
    HostApproval,
    IllegalTransition,
    InvalidRecord,
    PaymentState,
)
from gateway.journal.store import Store, Via
from tests.gateway.journal_support import AID, MASKED, new_sale, open_journal, open_store

S = PaymentState
#: Columns that differ between two payments by construction (ids, keys, times, order).
_OWN = {"id", "idempotency_key", "created_ms", "updated_ms", "seq"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "journal.db", seed=5) as opened:
        yield opened


def _sale(store: Store) -> str:
    return new_sale(store, actor="till:front")


def _row(store: Store, payment_id: str) -> dict[str, Any]:
    row = store.conn.execute("SELECT * FROM payments WHERE id = ?", (payment_id,)).fetchone()
    return {key: row[key] for key in row.keys() if key not in _OWN}  # noqa: SIM118 - a Row iterates values


def _events(store: Store, payment_id: str) -> list[tuple[Any, ...]]:
    rows = store.conn.execute(
        "SELECT actor, from_state, to_state, reason FROM events WHERE payment_id = ? ORDER BY seq",
        (payment_id,),
    ).fetchall()
    return [tuple(row) for row in rows]


def _outbox(store: Store, payment_id: str) -> list[str]:
    rows = store.conn.execute(
        "SELECT body FROM outbox WHERE payment_id = ?", (payment_id,)
    ).fetchall()
    return [str(row[0]).replace(payment_id, "<id>") for row in rows]


READ = {"masked_pan": MASKED, "aid": AID, "interface": "contact"}
APPROVAL = {"auth_code": "123456", "response_code": "00"}


def _online_step_by_step(store: Store, payment_id: str) -> None:
    store.transition(payment_id, S.CARD_READ, actor="lane[1]", reason="cardholder's choice",
                     updates=READ)  # fmt: skip
    store.transition(payment_id, S.AUTH_REQUESTED, actor="lane[1]", new_key=True)
    store.transition(payment_id, S.APPROVED, actor="acquirer", updates=APPROVAL)
    store.transition(payment_id, S.COMPLETED, actor="lane[1]", reason="card accepted")


def _online_passing_through(store: Store, payment_id: str) -> None:
    store.transition(payment_id, S.AUTH_REQUESTED, actor="lane[1]", new_key=True,
                     via=Via(S.CARD_READ, "lane[1]", "cardholder's choice", READ))  # fmt: skip
    store.transition(payment_id, S.COMPLETED, actor="lane[1]", reason="card accepted",
                     via=Via(S.APPROVED, "acquirer", "", APPROVAL))  # fmt: skip


def test_an_online_sale_passing_through_is_written_as_step_by_step(store: Store) -> None:
    one, other = _sale(store), _sale(store)
    _online_step_by_step(store, one)
    _online_passing_through(store, other)
    assert _row(store, other) == _row(store, one)
    assert _row(store, other)["state"] == "COMPLETED"
    assert _events(store, other) == _events(store, one)
    assert [event[1:3] for event in _events(store, other)] == [
        (None, "CREATED"), ("CREATED", "CARD_READ"), ("CARD_READ", "AUTH_REQUESTED"),
        ("AUTH_REQUESTED", "APPROVED"), ("APPROVED", "COMPLETED"),
    ]  # fmt: skip
    assert _outbox(store, other) == _outbox(store, one) and len(_outbox(store, other)) == 1
    key = store.conn.execute(
        "SELECT idempotency_key FROM payments WHERE id = ?", (other,)
    ).fetchone()[0]
    assert key and key.startswith("idem_")


def test_an_offline_approval_passing_through_keeps_its_sealed_request(store: Store) -> None:
    one, other = _sale(store), _sale(store)
    offline = {"auth_code": None, "response_code": "Y1"}
    store.transition(one, S.CARD_READ, actor="lane[1]", updates=READ)
    store.transition(one, S.STORED_FOR_FORWARDING, actor="lane[1]", updates=offline,
                     vault_plaintext=b'{"pan":"x"}')  # fmt: skip
    store.transition(other, S.STORED_FOR_FORWARDING, actor="lane[1]", updates=offline,
                     vault_plaintext=b'{"pan":"x"}', via=Via(S.CARD_READ, "lane[1]", "", READ))
    assert _row(store, other) == _row(store, one)
    assert _events(store, other) == _events(store, one)
    assert _outbox(store, other) == _outbox(store, one)
    assert store.vault_open(other) == b'{"pan":"x"}'


def test_an_illegal_chain_writes_nothing(store: Store) -> None:
    sale = _sale(store)
    before = (_row(store, sale), _events(store, sale))
    with pytest.raises(IllegalTransition):  # CREATED -> APPROVED is not a step
        store.transition(sale, S.COMPLETED, actor="lane[1]",
                         via=Via(S.APPROVED, "acquirer", "", APPROVAL))  # fmt: skip
    with pytest.raises(IllegalTransition):  # CARD_READ -> COMPLETED is not a step either
        store.transition(sale, S.COMPLETED, actor="lane[1]",
                         via=Via(S.CARD_READ, "lane[1]", "", READ))  # fmt: skip
    assert (_row(store, sale), _events(store, sale)) == before


def test_a_state_with_side_effects_cannot_be_passed_through(store: Store) -> None:
    sale = _sale(store)
    store.transition(sale, S.AUTH_REQUESTED, actor="lane[1]", new_key=True,
                     via=Via(S.CARD_READ, "lane[1]", "", READ))  # fmt: skip
    before = (_row(store, sale), _events(store, sale))
    for state in (S.COMPLETED, S.STORED_FOR_FORWARDING, S.FORWARDED, S.VOIDED):
        with pytest.raises(InvalidRecord, match="side effects"):
            store.transition(sale, S.REVERSAL_PENDING, actor="lane[1]",
                             via=Via(state, "lane[1]"))  # fmt: skip
    assert (_row(store, sale), _events(store, sale)) == before


def test_a_passed_step_is_checked_for_card_data(store: Store) -> None:
    sale = _sale(store)
    with pytest.raises(InvalidRecord):  # not a column a transition may set
        store.transition(sale, S.AUTH_REQUESTED, actor="lane[1]",
                         via=Via(S.CARD_READ, "lane[1]", "", {"amount": "1"}))  # fmt: skip
    with pytest.raises(CardDataRejected):
        store.transition(sale, S.AUTH_REQUESTED, actor="lane[1]",
                         via=Via(S.CARD_READ, "lane[1]", "pan 4761739001010119", READ))
    assert _events(store, sale) == [("till:front", None, "CREATED", "")]


def test_the_state_read_when_the_remembered_one_is_wrong(store: Store, tmp_path: Path) -> None:
    sale = _sale(store)
    with sqlite3.connect(tmp_path / "journal.db") as other:  # behind the store's back
        other.execute("UPDATE payments SET state = 'CARD_READ' WHERE id = ?", (sale,))
    with pytest.raises(IllegalTransition):  # CARD_READ -> CARD_READ: read, then judged
        store.transition(sale, S.AUTH_REQUESTED, actor="lane[1]",
                         via=Via(S.CARD_READ, "lane[1]", "", READ))  # fmt: skip
    assert _row(store, sale)["state"] == "CARD_READ"


async def test_the_loop_notes_the_passed_steps_as_it_noted_the_steps(tmp_path: Path) -> None:
    async with (
        open_journal(tmp_path, name="a.db") as step_by_step,
        open_journal(tmp_path, name="b.db") as once,
    ):
        for journal, passing in ((step_by_step, False), (once, True)):
            for amount in (1250, 700):
                sale = await journal.create_sale(lane="1", amount=amount, currency="EUR",
                                                 actor="till:front")  # fmt: skip
                if passing:
                    await journal.card_read_and_request_auth(
                        sale.id, masked_pan=MASKED, aid=AID, actor="lane[1]"
                    )
                    await journal.approve_then(sale.id, HostApproval("123456"), S.COMPLETED,
                                               actor="lane[1]")  # fmt: skip
                else:
                    await journal.card_read(sale.id, masked_pan=MASKED, aid=AID, actor="lane[1]")
                    await journal.request_auth(sale.id, actor="lane[1]")
                    await journal.approve(sale.id, auth_code="123456", actor="acquirer")
                    await journal.complete(sale.id, actor="lane[1]")
        one, other = step_by_step.figures.read(), once.figures.read()
        assert replace(other, day_start_ms=0) == replace(one, day_start_ms=0)
        assert (other.payments, other.approved, other.outbox_backlog) == (2, 2, 2)
        money_one, money_other = step_by_step.money.read(), once.money.read()
        assert money_other.takings == money_one.takings == {"EUR": 1950}
        assert (money_other.decided, money_other.approved) == (money_one.decided, 2)
        assert money_other.auth_samples == money_one.auth_samples == 2
        assert [(p.amount, p.state) for p in money_other.last_payments] == [
            (p.amount, p.state) for p in money_one.last_payments
        ]
