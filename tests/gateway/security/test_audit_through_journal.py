"""Audit rows written by the journal's worker (docs/security.md, "Audit rows").

* a payment start's row commits with the sale (``Journal.create_sale(audit=...)``): a row that
  cannot be written takes the sale with it;
* rows appended through the journal (``Journal.append_audit``) while a second writer (the
  credential store's own connection, as ``posgw`` commands use it) appends too never fork the
  chain: it verifies, one row per append, no position twice;
* the daemon's security service, once the journal is attached, writes through it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
from pathlib import Path

import pytest

from gateway.journal import CardDataRejected, Journal, audit
from gateway.journal.audit import AuditNote
from gateway.security.service import SecurityService
from gateway.security.store import CredentialStore

PAN = "4761739001010010"


def _rows(db: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT actor, action, subject FROM audit ORDER BY seq").fetchall()
    finally:
        conn.close()


def _verdict(db: Path) -> audit.ChainVerdict:
    conn = sqlite3.connect(db)
    try:
        return audit.verify(conn)
    finally:
        conn.close()


async def test_a_sale_and_its_audit_row_commit_together(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    async with Journal.open(db) as journal:
        note = AuditNote("till:front-1", "payment.start", "ok", detail={"lane": 1})
        sale = await journal.create_sale(
            lane="1", amount=1250, currency="EUR", actor="till:front-1", audit=note
        )
        bad = AuditNote("till:front-1", "payment.start", "ok", detail={"pan": PAN})
        with pytest.raises(CardDataRejected):
            await journal.create_sale(
                lane="2", amount=990, currency="EUR", actor="till:front-1", audit=bad
            )
        conn = sqlite3.connect(db)
        try:
            lanes = [row[0] for row in conn.execute("SELECT lane FROM payments")]
        finally:
            conn.close()
    assert lanes == ["1"], "the sale whose audit row was refused must not be journaled"
    assert _rows(db) == [("till:front-1", "payment.start", sale.id)]
    assert _verdict(db).ok


async def test_journal_appends_and_a_second_writer_never_fork_the_chain(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    per_side = 60
    async with Journal.open(db) as journal:
        other = CredentialStore.open(db)  # its own connection, like a posgw command
        try:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                loop = asyncio.get_running_loop()

                def outside(index: int) -> None:
                    other.record(actor="cli:root", action="till.add", subject=f"t{index}",
                                 outcome="ok")  # fmt: skip

                outsiders = [loop.run_in_executor(pool, outside, i) for i in range(per_side)]
                insiders = [
                    journal.append_audit(AuditNote("till:front-1", "refund", "ok", f"p{i}"))
                    for i in range(per_side)
                ]
                entries = await asyncio.gather(*insiders)
                await asyncio.gather(*outsiders)
        finally:
            other.close()
    verdict = _verdict(db)
    assert verdict.ok, verdict.reason
    assert verdict.count == 2 * per_side
    assert len({entry.seq for entry in entries}) == per_side
    assert journal.commit_counts()[0] < 2 * per_side + 3, "appends were not grouped"


async def test_the_security_service_writes_through_the_attached_journal(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    async with Journal.open(db) as journal:
        service = await SecurityService.open(db)
        try:
            service.attach_journal(journal)
            before = journal.commit_counts()[1]
            entry = await service.record(actor="daemon", action="daemon.start", outcome="ok")
            assert journal.commit_counts()[1] == before + 1  # one request of the journal's
            assert (await service.verify_audit()).head == entry.hash
        finally:
            await service.close()
    assert _rows(db) == [("daemon", "daemon.start", "")]
