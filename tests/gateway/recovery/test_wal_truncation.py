"""The forwarder truncates the WAL by time, not after every pass (gateway/recovery/reconciler.py).

A forward purges its sealed request (AES-GCM ciphertext, zeroed in the file by
``secure_delete``), but the WAL keeps the page's older frame until it is truncated. At load a
pass ends every few forwards, and a truncation (a checkpoint of the whole WAL) after each one
cost about 0.1 ms of CPU per payment: the forwarder now truncates once the first untruncated
forward is :data:`WAL_TRUNCATE_AFTER` old, coming back for it by itself, or after
:data:`WAL_TRUNCATE_EVERY` forwards. A real journal file, a real acquirer host over HTTP; the
journal's ``truncate_wal`` is counted by a thin wrapper (``tests/gateway/recovery_support.py``:
the truncation itself is the journal's).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from gateway.acquirer import AcquirerClient, AuthorisationRequest, seal_request
from gateway.journal import Journal, PaymentState
from gateway.recovery import reconciler as reconciler_module
from gateway.recovery.reconciler import FORWARDING, Reconciler
from simulator.acquirer_host import AcquirerHost
from tests.gateway.journal_support import db_bytes, drive_to, open_journal
from tests.gateway.recovery_support import CountingJournal, counted_reconciler

S = PaymentState


async def _stored(journal: Journal, path: Path, stan: int) -> tuple[str, bytes]:
    """A sale stored for forwarding with a real sealed request; its id and the vault's bytes."""
    payment = await drive_to(journal, S.CARD_READ)
    request = AuthorisationRequest(
        amount=1250, currency=978, transaction_type=0, icc_data=bytes.fromhex("9F0206000000001250"),
        pan="4761739001010010", terminal_id="LANE0001", merchant_id="SHOP0001", stan=stan,
        local_datetime=datetime(2026, 12, 6, 12, 0, 0),
    )  # fmt: skip
    await journal.store_for_forwarding(
        payment.id, request=seal_request(request), response_code="Y1", actor="lane[1]"
    )
    return payment.id, _vault_blob(path, payment.id)


def _vault_blob(path: Path, payment_id: str) -> bytes:
    """The sealed request as the vault table holds it (another connection, as a reader)."""
    conn = sqlite3.connect(path)
    try:
        (blob,) = conn.execute(
            "SELECT ciphertext FROM vault WHERE payment_id = ?", (payment_id,)
        ).fetchone()
    finally:
        conn.close()
    return bytes(blob)


@contextlib.asynccontextmanager
async def _forwarder(tmp_path: Path) -> AsyncIterator[tuple[Journal, CountingJournal, Reconciler]]:
    """A journal, its counting wrapper, and a reconciler forwarding to a real acquirer host."""
    async with AcquirerHost() as host, open_journal(tmp_path) as journal:
        assert host.url is not None
        async with AcquirerClient(base_url=host.url) as client:
            # a pass by period alone would never come in these tests
            counting, reconciler = counted_reconciler(journal, client, retry_interval=3600.0)
            yield journal, counting, reconciler


async def test_forwards_in_several_passes_share_one_truncation_made_without_a_wake_up(
    tmp_path: Path,
) -> None:
    async with _forwarder(tmp_path) as (journal, counting, reconciler):
        sealed: list[bytes] = []
        started = time.monotonic()
        for stan in range(1, 4):  # three forwards, each in a pass of its own
            payment_id, blob = await _stored(journal, tmp_path / "journal.db", stan)
            sealed.append(blob[:16])
            reconciler.add(payment_id)
            await reconciler.pass_once(FORWARDING)
            # the host declines this made-up card (14): a declined forward purges the same way
            assert (await journal.get(payment_id)).state in (S.FORWARDED, S.FORWARD_DECLINED)
        if time.monotonic() - started < reconciler_module.WAL_TRUNCATE_AFTER:
            assert counting.truncations == 0  # not after each pass any more
        left = reconciler.truncation_due_in()
        assert left is None or left <= reconciler_module.WAL_TRUNCATE_AFTER
        runner = asyncio.ensure_future(reconciler.run(FORWARDING))
        try:
            async with asyncio.timeout(10):  # the run loop comes back for it by itself
                await counting.truncated.wait()
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        assert counting.truncations == 1 and reconciler.truncation_due_in() is None
        path = tmp_path / "journal.db"
        assert not any(part in db_bytes(path) for part in sealed)  # gone from file and WAL
        assert _size(Path(f"{path}-wal")) == 0


def _size(path: Path) -> int:
    return path.stat().st_size


async def test_a_long_pass_truncates_every_so_many_forwards(tmp_path: Path) -> None:
    every = reconciler_module.WAL_TRUNCATE_EVERY
    async with _forwarder(tmp_path) as (journal, counting, reconciler):
        for stan in range(1, every + 3):
            reconciler.add((await _stored(journal, tmp_path / "journal.db", stan))[0])
        await reconciler.pass_once(FORWARDING)  # every + 2 forwards in one pass
        assert reconciler.pending == 0
        # the first WAL_TRUNCATE_EVERY forwards are truncated within the pass; the last two at
        # its end only if the pass took WAL_TRUNCATE_AFTER seconds, else on a later come-back
        if reconciler.truncation_due_in() is None:
            assert counting.truncations == 2
        else:
            assert counting.truncations == 1
