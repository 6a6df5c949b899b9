"""``posgw backup`` while 16 lanes pay: the copy is one consistent snapshot, restored equal.

Sixteen ``sim://`` lanes of one daemon pay with virtual cards through the till API (online
approvals at the simulated acquirer); meanwhile ``posgw backup`` runs as a separate process on
the live journal (SQLite's online backup API). The backup is then verified and restored into
another directory, and checked against its manifest and against the live journal after the
load: the same row counts, sums and event-log digest as the manifest says, an event log and a
hash-chained audit log that are exactly prefixes of the live ones (the audit chain's head in the
manifest), and every settled sale with its outbox record (no transaction cut in half).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

from gateway.journal.backup import restore_backup, summarise, verify_backup
from gateway.journal.states import SETTLED, PaymentState
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import running, slot_name
from tests.gateway.day.day_support import day_daemon, pay, till_session

LANES = 16
REPO = Path(__file__).resolve().parents[3]


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(row) for row in conn.execute(sql)]
    finally:
        conn.close()


async def test_backup_under_a_16_lane_load_is_restored_equal(tmp_path: Path) -> None:
    host = AcquirerHost()
    url = await host.start()
    slots = [slot_name() for _ in range(LANES)]
    live = tmp_path / "live"
    live.mkdir()
    daemon = day_daemon(live, url, slots)
    config_file = live / "posgw.toml"
    config_file.write_text(
        f'shop = "t"\n[journal]\npath = "{live / "journal.db"}"\n'
        f'[vault]\nkey_file = "{live / "vault.key"}"\n'
        f'[acquirer]\nurl = "{url}"\nmerchant_id = "SHOP0001"\n'
        '[[lanes]]\nid = 1\nreader = "sim://unused"\n'
    )
    stop = asyncio.Event()
    paid = [0] * LANES
    progress = asyncio.Event()

    async def until(count: int) -> None:
        async with asyncio.timeout(60):
            while sum(paid) < count:
                progress.clear()
                await progress.wait()

    try:
        async with till_session(live) as http, running(daemon):

            async def lane(index: int) -> None:
                while not stop.is_set():
                    result = await pay(daemon, http, slots[index], 1300 + index, lane=index + 1)
                    assert result["state"] == "COMPLETED", result
                    paid[index] += 1
                    progress.set()

            tasks = [asyncio.create_task(lane(i)) for i in range(LANES)]
            try:
                await until(3 * LANES)  # the load is running on every lane
                before = sum(paid)
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "gateway.daemon.cli", "backup", str(tmp_path / "b"),
                    "--config", str(config_file), cwd=REPO, env={**os.environ},
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                )  # fmt: skip
                out, err = await process.communicate()
                assert process.returncode == 0, err.decode()
                during = sum(paid) - before
                target = sum(paid) + 2 * LANES
                await until(target)  # and goes on after the snapshot
            finally:
                stop.set()
                await asyncio.gather(*tasks)
    finally:
        await host.stop()
    assert during > 0, "payments completed while the backup ran"
    assert b"schema" in out

    manifest = verify_backup(tmp_path / "b")
    restored = tmp_path / "restored" / "journal.db"
    restored.parent.mkdir()
    restore_backup(tmp_path / "b", restored)
    conn = sqlite3.connect(restored)
    try:
        assert summarise(conn) == manifest.content  # counts, sums, event digest (audit trail)
    finally:
        conn.close()
    live_db = live / "journal.db"
    live_events = _rows(live_db, "SELECT * FROM events ORDER BY seq")
    backup_events = _rows(restored, "SELECT * FROM events ORDER BY seq")
    assert backup_events == live_events[: len(backup_events)]
    assert 0 < len(backup_events) < len(live_events)
    # the hash-chained audit log too: a prefix of the live chain, its head in the manifest
    audit_sql = "SELECT * FROM audit ORDER BY seq"
    backup_audit = _rows(restored, audit_sql)
    assert backup_audit and backup_audit == _rows(live_db, audit_sql)[: len(backup_audit)]
    head = manifest.content["audit_head"]
    assert (head["seq"], head["hash"]) == (backup_audit[-1][0], backup_audit[-1][-1])
    states = {
        str(pid): PaymentState(str(st))
        for pid, st in _rows(restored, "SELECT id, state FROM payments")
    }
    outbox = {str(row[0]) for row in _rows(restored, "SELECT payment_id FROM outbox")}
    assert {pid for pid, st in states.items() if st in SETTLED} == outbox
    assert manifest.tables["payments"] == len(states) >= 3 * LANES
    lanes = {str(row[0]) for row in _rows(restored, "SELECT DISTINCT lane FROM payments")}
    assert len(lanes) == LANES
    sums = manifest.content["sums"]["sale"]["EUR"]
    assert sums == sum(int(str(r[0])) for r in _rows(restored, "SELECT amount FROM payments"))
