"""Online backup and verified restore of the journal (gateway.journal.backup, ``posgw backup``).

* a backup taken while sales are being written is one consistent snapshot: restored, its rows,
  sums and event digest equal the manifest, its event log is a prefix of the live one, and every
  settled sale has its outbox record (no torn transaction);
* a damaged backup (a flipped byte; a manifest that lies; a broken page) is refused;
* a backup of a newer schema is refused, and the journal is left alone;
* a restore while a daemon owns the journal is refused (in process and through the CLI);
* a backup whose held offline sales need a vault key the configuration lacks is refused.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.daemon.daemon import Daemon
from gateway.journal import PaymentState, VaultKey, load_vault_key
from gateway.journal.backup import (
    BackupDamaged,
    BackupError,
    BackupNewerSchema,
    restore_backup,
    summarise,
    take_backup,
    verify_backup,
)
from gateway.journal.lock import JournalInUse, journal_lock
from gateway.journal.schema import SCHEMA_VERSION
from gateway.journal.states import SETTLED
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import acquirer_fixture, make_config, running, slot_name
from tests.gateway.journal_support import drive_to, open_journal

__all__ = ["acquirer_fixture"]

S = PaymentState
KEY = VaultKey(bytes(range(32)))


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(row) for row in conn.execute(sql)]
    finally:
        conn.close()


async def _fill(tmp_path: Path, n: int = 6, key: VaultKey = KEY) -> Path:
    async with open_journal(tmp_path, key=key) as journal:
        for i in range(n):
            await drive_to(journal, S.COMPLETED, amount=100 + i)
        await drive_to(journal, S.STORED_FOR_FORWARDING, amount=999)
    return tmp_path / "journal.db"


async def test_backup_under_concurrent_writes_is_a_consistent_snapshot(tmp_path: Path) -> None:
    written = 0
    after_target: int | None = None
    enough_before = asyncio.Event()
    enough_after = asyncio.Event()
    stop = asyncio.Event()
    async with open_journal(tmp_path, key=KEY) as journal:

        async def writer() -> None:
            nonlocal written
            while not stop.is_set():
                target = S.STORED_FOR_FORWARDING if written % 5 == 0 else S.COMPLETED
                await drive_to(journal, target, amount=1000 + written, lane=str(written % 16))
                written += 1
                if written == 50:
                    enough_before.set()
                if after_target is not None and written >= after_target:
                    enough_after.set()

        task = asyncio.create_task(writer())
        async with asyncio.timeout(60):
            await enough_before.wait()
            at_start = written
            manifest = await asyncio.to_thread(take_backup, tmp_path / "journal.db", tmp_path / "b")
            at_end = written
            # keep writing after the snapshot so the live journal moves on
            after_target = at_end + 20
            await enough_after.wait()
        stop.set()
        await task
    assert at_end > at_start, "sales were written while the backup ran"
    restored = tmp_path / "restored" / "journal.db"
    restored.parent.mkdir()
    report = restore_backup(tmp_path / "b", restored, vault_key_ids={KEY.key_id.hex()})
    assert report.kept == ()
    conn = sqlite3.connect(restored)
    try:
        assert summarise(conn) == manifest.content  # counts, sums, event digest, vault key ids
    finally:
        conn.close()
    payments = manifest.tables["payments"]
    assert at_start <= payments <= written
    # the backup's event log is exactly a prefix of the live one (the audit trail)
    events_sql = "SELECT * FROM events ORDER BY seq"
    live_events = _rows(tmp_path / "journal.db", events_sql)
    backup_events = _rows(restored, events_sql)
    assert backup_events == live_events[: len(backup_events)]
    assert len(backup_events) < len(live_events)
    # no torn transaction: every settled sale has its outbox row and its vault row when held
    states = dict(_rows(restored, "SELECT id, state FROM payments"))
    outbox = {row[0] for row in _rows(restored, "SELECT payment_id FROM outbox")}
    vault = {row[0] for row in _rows(restored, "SELECT payment_id FROM vault")}
    assert {pid for pid, st in states.items() if S(st) in SETTLED} == outbox
    assert {pid for pid, st in states.items() if st == S.STORED_FOR_FORWARDING} == vault
    total = sum(int(str(row[0])) for row in _rows(restored, "SELECT amount FROM payments"))
    assert manifest.content["sums"] == {"sale": {"EUR": total}}
    # the restored journal opens, migrates nothing, and its vault rows open with the key
    async with open_journal(restored.parent, key=KEY) as journal:
        held = next(pid for pid, st in states.items() if st == S.STORED_FOR_FORWARDING)
        assert await journal.forwarding_request(held)


async def test_a_damaged_backup_is_refused(tmp_path: Path) -> None:
    source = await _fill(tmp_path)
    take_backup(source, tmp_path / "b")
    database = tmp_path / "b" / "journal.db"
    manifest_file = tmp_path / "b" / "manifest.json"
    pristine, manifest_text = database.read_bytes(), manifest_file.read_text()
    target = tmp_path / "live" / "journal.db"
    target.parent.mkdir()

    # 1. one flipped byte
    damaged = bytearray(pristine)
    damaged[len(damaged) // 2] ^= 0x01
    database.write_bytes(bytes(damaged))
    with pytest.raises(BackupDamaged, match="SHA-256"):
        restore_backup(tmp_path / "b", target)
    assert not target.exists()

    # 2. a manifest that claims one more payment (its checksum still right)
    database.write_bytes(pristine)
    document = json.loads(manifest_text)
    document["tables"]["payments"] += 1
    manifest_file.write_text(json.dumps(document))
    with pytest.raises(BackupDamaged, match="differs from the manifest in tables"):
        verify_backup(tmp_path / "b")

    # 3. a broken page with a manifest rewritten to match it (damage before the checksum)
    broken = bytearray(pristine)
    page = 4096
    broken[page * 2 : page * 2 + 64] = b"\xff" * 64
    database.write_bytes(bytes(broken))
    import hashlib

    document = json.loads(manifest_text)
    document["sha256"] = hashlib.sha256(bytes(broken)).hexdigest()
    manifest_file.write_text(json.dumps(document))
    with pytest.raises(BackupDamaged):
        verify_backup(tmp_path / "b")

    # 4. no manifest at all
    manifest_file.unlink()
    with pytest.raises(BackupDamaged, match=r"expected manifest\.json"):
        verify_backup(tmp_path / "b")


async def test_a_newer_schema_is_refused_and_the_journal_left_alone(tmp_path: Path) -> None:
    source = await _fill(tmp_path)
    conn = sqlite3.connect(source)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    manifest = take_backup(source, tmp_path / "b")
    assert manifest.schema_version == SCHEMA_VERSION + 1
    target_dir = tmp_path / "live"
    target_dir.mkdir()
    async with open_journal(target_dir, key=KEY) as journal:
        await drive_to(journal, S.COMPLETED)
    before = (target_dir / "journal.db").read_bytes()
    with pytest.raises(BackupNewerSchema, match=f"schema version {SCHEMA_VERSION + 1}"):
        restore_backup(tmp_path / "b", target_dir / "journal.db")
    assert (target_dir / "journal.db").read_bytes() == before
    assert sorted(p.name for p in target_dir.iterdir() if "before-restore" in p.name) == []


async def test_restore_replaces_the_journal_and_keeps_the_previous_one(tmp_path: Path) -> None:
    source = await _fill(tmp_path, n=3)
    manifest = take_backup(source, tmp_path / "b")
    target_dir = tmp_path / "live"
    target_dir.mkdir()
    async with open_journal(target_dir, key=KEY) as journal:
        await drive_to(journal, S.COMPLETED, amount=5555)
    previous = (target_dir / "journal.db").read_bytes()
    report = restore_backup(
        tmp_path / "b", target_dir / "journal.db", vault_key_ids={KEY.key_id.hex()}
    )
    assert [p.read_bytes() for p in report.kept[:1]] == [previous]
    amounts = sorted(
        row[0] for row in _rows(target_dir / "journal.db", "SELECT amount FROM payments")
    )  # type: ignore[type-var]
    assert amounts == [100, 101, 102, 999]
    assert manifest.tables["payments"] == 4


async def test_a_backup_needing_an_unconfigured_vault_key_is_refused(tmp_path: Path) -> None:
    source = await _fill(tmp_path, n=1)
    take_backup(source, tmp_path / "b")
    other = VaultKey(bytes(32))
    with pytest.raises(BackupError, match=f"vault key id\\(s\\) {KEY.key_id.hex()}"):
        restore_backup(tmp_path / "b", tmp_path / "x.db", vault_key_ids={other.key_id.hex()})
    assert not (tmp_path / "x.db").exists()


def test_backup_refuses_a_used_destination_and_a_missing_journal(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x")
    with pytest.raises(BackupError, match="no journal there"):
        take_backup(tmp_path / "none.db", tmp_path / "b")
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(BackupError, match="not a posgw journal"):
        take_backup(plain, tmp_path / "b2")
    with pytest.raises(BackupError, match="not an empty directory"):
        take_backup(plain, tmp_path / "full")


def test_the_owner_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    with journal_lock(journal):
        with pytest.raises(JournalInUse) as info, journal_lock(journal):
            pass
        assert info.value.pid == os.getpid()
    with journal_lock(journal):
        pass


async def test_restore_while_the_daemon_runs_is_refused(
    tmp_path: Path, acquirer: AcquirerHost
) -> None:
    live = tmp_path / "live"
    live.mkdir()
    config = make_config(live, acquirer.url, [slot_name()])
    assert config.vault.key_file is not None
    backup_src = tmp_path / "src"
    backup_src.mkdir()
    key = load_vault_key(config.vault.key_file)
    take_backup(await _fill(backup_src, key=key), tmp_path / "b")
    config_file = live / "posgw.toml"
    config_file.write_text(
        f'shop = "t"\n[journal]\npath = "{config.journal.path}"\n'
        f'[vault]\nkey_file = "{config.vault.key_file}"\n'
        f'[acquirer]\nurl = "{acquirer.url}"\nmerchant_id = "M1"\n'
        '[[lanes]]\nid = 1\nreader = "sim://unused"\n'
    )
    daemon = Daemon(config)
    async with running(daemon):
        before = config.journal.path.read_bytes()
        with pytest.raises(JournalInUse, match=f"process {os.getpid()}"):
            restore_backup(tmp_path / "b", config.journal.path)
        cli = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "gateway.daemon.cli",
                "restore",
                str(tmp_path / "b"),
                "--config",
                str(config_file),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert cli.returncode == 2, cli.stderr
        assert "in use by process" in cli.stderr and "stop the daemon first" in cli.stderr
        # backup while it runs works (online), through the CLI
        out = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "gateway.daemon.cli",
                "backup",
                str(tmp_path / "online"),
                "--config",
                str(config_file),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        assert verify_backup(tmp_path / "online").schema_version == SCHEMA_VERSION
        printed = json.loads(out.stdout)
        assert printed["sha256"] == verify_backup(tmp_path / "online").sha256
        assert config.journal.path.read_bytes()[:16] == before[:16]
    assert not [p for p in live.iterdir() if "before-restore" in p.name]
