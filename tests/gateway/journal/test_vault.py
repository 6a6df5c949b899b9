"""The store-and-forward vault: key loading, AES-GCM sealing, typed failures, purge.

Tampering is done on the real database file with sqlite3, the way an attacker with the disk
would, and the purge is checked on the raw bytes of the database and its WAL.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from gateway.journal import (
    PaymentState,
    VaultError,
    VaultKey,
    VaultKeyError,
    VaultKeyMismatch,
    VaultTampered,
    load_vault_key,
)
from gateway.journal.vault import NONCE_SIZE, VAULT_FORMAT
from tests.gateway.journal_support import PAN, db_bytes, drive_to, open_journal

S = PaymentState
KEY = bytes(range(32))
REQUEST = b"\x5a\x08" + bytes.fromhex(PAN) + b"\x9f\x26\x08" + bytes(range(8))


def _key_file(tmp_path: Path, data: bytes = KEY, mode: int = 0o600, name: str = "k") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_key_from_file_and_from_systemd_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_file = load_vault_key(_key_file(tmp_path, mode=0o400))
    creds = tmp_path / "creds"
    creds.mkdir()
    _key_file(creds, name="vault-key")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    from_cred = load_vault_key(credential="vault-key")
    assert from_file.key_id == from_cred.key_id == VaultKey(KEY).key_id
    assert KEY.hex() not in repr(from_file) and from_file.key_id.hex() in repr(from_file)


@pytest.mark.parametrize(
    ("data", "mode", "message"),
    [
        (KEY[:31], 0o600, "exactly 32 raw bytes, found 31"),
        (KEY + b"\n", 0o600, "found more than 32"),
        (b"", 0o600, "found 0"),
        (KEY, 0o604, "accessible by others"),
        (KEY, 0o602, "accessible by others"),
    ],
)
def test_bad_key_files_are_refused_clearly(
    tmp_path: Path, data: bytes, mode: int, message: str
) -> None:
    with pytest.raises(VaultKeyError, match=message):
        load_vault_key(_key_file(tmp_path, data, mode))


def test_missing_key_sources_are_refused_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(VaultKeyError, match="no such file"):
        load_vault_key(tmp_path / "absent")
    with pytest.raises(VaultKeyError, match=r"not a regular file|cannot read"):
        load_vault_key(tmp_path)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(VaultKeyError, match="CREDENTIALS_DIRECTORY is not set"):
        load_vault_key(credential="vault-key")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(VaultKeyError, match="no such file"):
        load_vault_key(credential="vault-key")
    with pytest.raises(VaultKeyError, match="bad credential name"):
        load_vault_key(credential="../k")
    with pytest.raises(VaultKeyError, match="exactly one"):
        load_vault_key()
    with pytest.raises(VaultKeyError, match="exactly one"):
        load_vault_key(tmp_path / "k", credential="k")
    with pytest.raises(VaultKeyError, match="exactly 32 bytes"):
        VaultKey(b"short")


async def test_seal_and_open_round_trip_across_restart(tmp_path: Path) -> None:
    async with open_journal(tmp_path, key=VaultKey(KEY)) as journal:
        payment = await drive_to(journal, S.CARD_READ)
        await journal.store_for_forwarding(
            payment.id, request=REQUEST, response_code="Y3", actor="lane[1]"
        )
    async with open_journal(tmp_path, key=VaultKey(KEY)) as journal:
        assert await journal.forwarding_request(payment.id) == REQUEST
    conn = sqlite3.connect(tmp_path / "journal.db")
    version, nonce, ciphertext = conn.execute(
        "SELECT version, nonce, ciphertext FROM vault"
    ).fetchone()
    conn.close()
    assert version == VAULT_FORMAT and len(nonce) == NONCE_SIZE
    assert len(ciphertext) == len(REQUEST) + 16  # GCM tag
    assert REQUEST not in ciphertext


async def test_nonces_are_fresh_for_identical_requests(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        for _ in range(5):
            payment = await drive_to(journal, S.CARD_READ)
            await journal.store_for_forwarding(
                payment.id, request=REQUEST, response_code="Y1", actor="t"
            )
    conn = sqlite3.connect(tmp_path / "journal.db")
    nonces = {row[0] for row in conn.execute("SELECT nonce FROM vault")}
    conn.close()
    assert len(nonces) == 5


async def test_wrong_key_is_a_typed_mismatch(tmp_path: Path) -> None:
    async with open_journal(tmp_path, key=VaultKey(KEY)) as journal:
        payment = await drive_to(journal, S.STORED_FOR_FORWARDING)
    async with open_journal(tmp_path, key=VaultKey(os.urandom(32))) as journal:
        with pytest.raises(VaultKeyMismatch, match=payment.id):
            await journal.forwarding_request(payment.id)


async def test_key_rotation_keeps_old_rows_readable_until_forwarded(tmp_path: Path) -> None:
    old, new = VaultKey(KEY), VaultKey(bytes(range(32, 64)))
    async with open_journal(tmp_path, key=old) as journal:
        before = await drive_to(journal, S.CARD_READ)
        await journal.store_for_forwarding(
            before.id, request=REQUEST, response_code="Y3", actor="lane[1]"
        )
    # rotated: the new key seals, the old one only opens what it sealed
    async with open_journal(tmp_path, key=new, previous_keys=(old,), seed=2) as journal:
        after = await drive_to(journal, S.CARD_READ)
        await journal.store_for_forwarding(
            after.id, request=REQUEST, response_code="Y3", actor="lane[1]"
        )
        assert await journal.forwarding_request(before.id) == REQUEST
        assert await journal.forwarding_request(after.id) == REQUEST
        assert await journal.vault_rows_by_key() == {old.key_id.hex(): 1, new.key_id.hex(): 1}
        await journal.confirm_forwarded(before.id, actor="acquirer", response_code="00")
        assert await journal.vault_rows_by_key() == {new.key_id.hex(): 1}  # old key: retire
    # without the previous key the old row would have been a typed mismatch, never garbage
    async with open_journal(tmp_path, key=old, seed=3) as journal:
        with pytest.raises(VaultKeyMismatch, match=after.id):
            await journal.forwarding_request(after.id)


@pytest.mark.parametrize("column", ["ciphertext", "nonce", "version"])
async def test_tampered_rows_are_typed_errors(tmp_path: Path, column: str) -> None:
    async with open_journal(tmp_path, key=VaultKey(KEY)) as journal:
        payment = await drive_to(journal, S.STORED_FOR_FORWARDING)
    conn = sqlite3.connect(tmp_path / "journal.db")
    value = conn.execute(f"SELECT {column} FROM vault").fetchone()[0]
    if isinstance(value, bytes):  # flip one bit in the middle
        middle = len(value) // 2
        value = value[:middle] + bytes([value[middle] ^ 0x01]) + value[middle + 1 :]
    else:
        value += 1
    conn.execute(f"UPDATE vault SET {column} = ?", (value,))
    conn.commit()
    conn.close()
    async with open_journal(tmp_path, key=VaultKey(KEY)) as journal:
        with pytest.raises(VaultTampered) as info:
            await journal.forwarding_request(payment.id)
    assert PAN not in str(info.value)


async def test_a_blob_moved_to_another_payment_fails(tmp_path: Path) -> None:
    async with open_journal(tmp_path, key=VaultKey(KEY)) as journal:
        first = await drive_to(journal, S.STORED_FOR_FORWARDING)
        second = await drive_to(journal, S.STORED_FOR_FORWARDING)
    conn = sqlite3.connect(tmp_path / "journal.db")
    blob = conn.execute(
        "SELECT nonce, ciphertext FROM vault WHERE payment_id = ?", (first.id,)
    ).fetchone()
    conn.execute(
        "UPDATE vault SET nonce = ?, ciphertext = ? WHERE payment_id = ?", (*blob, second.id)
    )
    conn.commit()
    conn.close()
    async with open_journal(tmp_path, key=VaultKey(KEY)) as journal:
        assert await journal.forwarding_request(first.id)
        with pytest.raises(VaultTampered):
            await journal.forwarding_request(second.id)


async def test_no_key_configured_is_a_typed_error_and_changes_nothing(tmp_path: Path) -> None:
    from gateway.journal import Journal

    async with Journal.open(tmp_path / "j.db") as journal:
        payment = await drive_to(journal, S.CARD_READ)
        with pytest.raises(VaultKeyError, match="no vault key"):
            await journal.store_for_forwarding(
                payment.id, request=REQUEST, response_code="Y1", actor="t"
            )
        assert (await journal.get(payment.id)).state is S.CARD_READ
        with pytest.raises(VaultKeyError):
            await journal.forwarding_request(payment.id)


async def test_forwarding_purges_the_row_and_its_bytes(tmp_path: Path) -> None:
    async with open_journal(tmp_path, key=VaultKey(KEY)) as journal:
        keep = await drive_to(journal, S.STORED_FOR_FORWARDING)
        gone = await drive_to(journal, S.STORED_FOR_FORWARDING)
        conn = sqlite3.connect(tmp_path / "journal.db")
        sealed = conn.execute(
            "SELECT ciphertext FROM vault WHERE payment_id = ?", (gone.id,)
        ).fetchone()[0]
        conn.close()
        assert sealed in db_bytes(tmp_path / "journal.db")
        await journal.confirm_forwarded(gone.id, actor="forwarder", response_code="00")
        with pytest.raises(VaultError, match="nothing in the vault"):
            await journal.forwarding_request(gone.id)
        assert await journal.forwarding_request(keep.id)
        # The purge zeroed the page and the WAL was truncated: not a byte of it remains.
        assert sealed[:16] not in db_bytes(tmp_path / "journal.db")
    assert sealed[:16] not in db_bytes(tmp_path / "journal.db")
    conn = sqlite3.connect(tmp_path / "journal.db")
    rows = [r[0] for r in conn.execute("SELECT payment_id FROM vault")]
    conn.close()
    assert rows == [keep.id]


async def test_a_run_of_forwards_leaves_the_wal_when_the_forwarder_truncates_it(
    tmp_path: Path,
) -> None:
    """The forwarder journals a run of forwards with ``truncate_wal=False`` and truncates the
    WAL once after them: until then the sealed pages are in the WAL (zeroed in the file),
    after it not a byte of them remains."""
    async with open_journal(tmp_path, key=VaultKey(KEY)) as journal:
        payments = [await drive_to(journal, S.STORED_FOR_FORWARDING) for _ in range(3)]
        conn = sqlite3.connect(tmp_path / "journal.db")
        sealed = [conn.execute("SELECT ciphertext FROM vault WHERE payment_id = ?",
                               (p.id,)).fetchone()[0] for p in payments]  # fmt: skip
        conn.close()
        for payment in payments[:2]:
            await journal.confirm_forwarded(payment.id, actor="forwarder", response_code="00",
                                            truncate_wal=False)  # fmt: skip
        await journal.decline_forward(payments[2].id, actor="forwarder", response_code="05",
                                      truncate_wal=False)  # fmt: skip
        raw = db_bytes(tmp_path / "journal.db")
        assert any(blob[:16] in raw for blob in sealed)  # still in the WAL's older frames
        await journal.truncate_wal()
        raw = db_bytes(tmp_path / "journal.db")
        assert not any(blob[:16] in raw for blob in sealed)
