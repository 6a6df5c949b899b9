"""Where the card was read, in the journal (schema version 8): journaled with CARD_READ, kept
across a restart, in the head-office record and the day's rows, checked, migrated from
version 7."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from gateway.contracts import mqtt_validator
from gateway.journal import InvalidRecord, Journal, PaymentState
from gateway.journal.schema import MIGRATIONS, SCHEMA_VERSION, configure, migrate
from gateway.sync.messages import sale_message
from tests.gateway.journal_support import AID, MASKED, Clock, open_journal

S = PaymentState


async def _completed_sale(journal: Journal, interface: str | None) -> str:
    sale = await journal.create_sale(lane="1", amount=1000, currency="EUR", actor="test")
    await journal.card_read(sale.id, masked_pan=MASKED, aid=AID, actor="test", interface=interface)
    await journal.request_auth(sale.id, actor="test")
    await journal.approve(sale.id, auth_code="123456", actor="test")
    await journal.complete(sale.id, actor="test")
    return sale.id


async def test_the_interface_is_journaled_with_card_read_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    clock = Clock()
    async with open_journal(tmp_path, clock=clock) as journal:
        tap = await _completed_sale(journal, "contactless")
        dip = await _completed_sale(journal, "contact")
        tpe = await _completed_sale(journal, "terminal")
        unread = await _completed_sale(journal, None)
        assert (await journal.get(tap)).interface == "contactless"
    async with open_journal(tmp_path, clock=clock, seed=2) as journal:  # the daemon restarted
        assert [(await journal.get(p)).interface for p in (tap, dip, tpe, unread)] == [
            "contactless", "contact", "terminal", None
        ]  # fmt: skip
        rows = {row.id: row.interface for row in await journal.day_payments(0, 2**62)}
        assert rows == {tap: "contactless", dip: "contact", tpe: "terminal", unread: None}
        records = {item.payment_id: item for item in await journal.claim_batch(10)}
    assert records[tap].body["interface"] == "contactless"
    assert "interface" not in records[unread].body  # optional in the contract: absent, not null
    validator = mqtt_validator("sale.schema.json")  # the contract takes the new field
    for item in records.values():
        validator.validate(json.loads(sale_message(item, shop="shop-1")))
    wrong = json.loads(sale_message(records[tap], shop="shop-1")) | {"interface": "auto"}
    assert not validator.is_valid(wrong)


async def test_an_interface_of_the_wrong_shape_is_refused_and_nothing_moves(
    tmp_path: Path,
) -> None:
    async with open_journal(tmp_path) as journal:
        sale = await journal.create_sale(lane="1", amount=100, currency="EUR", actor="test")
        for bad in ("auto", "CONTACT", "4761739001010010"):
            with pytest.raises(InvalidRecord, match="interface"):
                await journal.card_read(
                    sale.id, masked_pan=MASKED, aid=AID, actor="test", interface=bad
                )
        assert (await journal.get(sale.id)).state is S.CREATED
        assert [e.to_state for e in await journal.events(sale.id)] == [S.CREATED]


async def test_version_7_journal_gains_a_null_interface_column(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    conn = sqlite3.connect(path, isolation_level=None)
    configure(conn)
    assert migrate(conn, MIGRATIONS[:7]) == 0
    conn.execute(
        "INSERT INTO payments (id, kind, lane, amount, currency, state, created_ms, updated_ms)"
        " VALUES ('pay_v7', 'sale', '1', 500, 'EUR', 'COMPLETED', 1, 1)"
    )
    conn.close()
    async with open_journal(tmp_path) as journal:  # opening migrates 7 -> 8
        old = await journal.get("pay_v7")
        assert (old.amount, old.state, old.interface) == (500, S.COMPLETED, None)
        [row] = await journal.day_payments(0, 2)
        assert row.interface is None
        new = await _completed_sale(journal, "contact")
        assert (await journal.get(new)).interface == "contact"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 8
    columns = {r[1]: r[2] for r in conn.execute("PRAGMA table_info(payments)")}
    assert columns["interface"] == "TEXT"
    conn.close()
