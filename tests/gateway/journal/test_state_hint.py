"""A transition updates from the state the store wrote last, and never trusts it.

:meth:`Store.transition` skips reading the state when the row still holds the one this store
wrote (the ``WHERE state = ?`` of its ``UPDATE``). A row changed behind the store's back, or a
write rolled back, leaves the remembered state wrong: the transition must then read the row and
judge from what is really there, as it did before the hint existed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.journal import IllegalTransition, PaymentState
from gateway.journal.store import Store
from tests.gateway.journal_support import AID, MASKED, new_sale, open_store

S = PaymentState


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "journal.db", seed=3) as opened:
        yield opened


def _events(store: Store, payment_id: str) -> list[tuple[str | None, str]]:
    rows = store.conn.execute(
        "SELECT from_state, to_state FROM events WHERE payment_id = ? ORDER BY seq", (payment_id,)
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def _behind_its_back(path: Path, payment_id: str, state: PaymentState) -> None:
    with sqlite3.connect(path) as other:
        other.execute("UPDATE payments SET state = ? WHERE id = ?", (state.value, payment_id))


def test_a_state_changed_elsewhere_is_read_and_judged(store: Store, tmp_path: Path) -> None:
    refused, moved = new_sale(store), new_sale(store)
    _behind_its_back(tmp_path / "journal.db", refused, S.CANCELLED)
    _behind_its_back(tmp_path / "journal.db", moved, S.CARD_READ)
    with pytest.raises(IllegalTransition) as info:  # legal from CREATED, not from CANCELLED
        store.transition(refused, S.CARD_READ, actor="test",
                         updates={"masked_pan": MASKED, "aid": AID})  # fmt: skip
    assert (info.value.current, info.value.requested) == ("CANCELLED", "CARD_READ")
    assert store.get(refused).state is S.CANCELLED
    # illegal from the remembered CREATED, legal from the CARD_READ really there
    assert store.transition(moved, S.AUTH_REQUESTED, actor="test").state is S.AUTH_REQUESTED
    assert _events(store, moved)[-1] == ("CARD_READ", "AUTH_REQUESTED")


def test_a_rolled_back_write_leaves_the_committed_state_in_charge(store: Store) -> None:
    sale = new_sale(store)
    store.conn.execute("BEGIN IMMEDIATE")
    store.transition(sale, S.CARD_READ, actor="test", updates={"masked_pan": MASKED, "aid": AID})
    store.conn.execute("ROLLBACK")  # as a group whose COMMIT failed
    with pytest.raises(IllegalTransition) as info:  # the store last wrote CARD_READ
        store.transition(sale, S.AUTH_REQUESTED, actor="test")
    assert (info.value.current, info.value.requested) == ("CREATED", "AUTH_REQUESTED")
    read = store.transition(sale, S.CARD_READ, actor="test",
                            updates={"masked_pan": MASKED, "aid": AID})  # fmt: skip
    assert read.state is S.CARD_READ
    assert _events(store, sale) == [(None, "CREATED"), ("CREATED", "CARD_READ")]


def test_the_remembered_states_stay_bounded(store: Store) -> None:
    from gateway.journal.store import WRITTEN_KEPT

    sales = [new_sale(store) for _ in range(WRITTEN_KEPT + 20)]
    assert len(store._written) == WRITTEN_KEPT
    # the oldest are forgotten, not wrong: their transitions read the row
    for sale in (sales[0], sales[-1]):
        assert store.transition(sale, S.CANCELLED, actor="test").state is S.CANCELLED
