"""The credentials version read by the security service: shared by concurrent requests, never
stale (gateway/security/service.py: a request only takes a read that started after it came);
the till lookups rely on a read at most ``CREDENTIALS_FRESH_S`` old."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from gateway.security.service import SecurityService
from gateway.security.store import CredentialStore
from gateway.security.store_core import CREDENTIALS_FRESH_S


async def test_concurrent_requests_share_reads_yet_see_a_revoke_made_before_they_came(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    other = CredentialStore.open(path)  # another process's connection (``posgw till ...``)
    other.add_till("till-1", actor="test")
    service = await SecurityService.open(path)
    reads: list[int] = []
    store = service._store  # the real store, its reads counted; the first one held open
    real_version = store.version
    loop = asyncio.get_running_loop()
    started, gate = asyncio.Event(), threading.Event()

    def counted() -> int:
        loop.call_soon_threadsafe(started.set)
        gate.wait(10)
        value = real_version()
        reads.append(value)
        return value

    store.version = counted  # type: ignore[method-assign]
    try:
        first = asyncio.gather(*(service.version() for _ in range(10)))
        async with asyncio.timeout(10):
            await started.wait()  # the first read is on the security thread, held
        second = asyncio.gather(*(service.version() for _ in range(10)))
        loop.call_soon(gate.set)  # after the second batch's requests have queued (FIFO)
        seen_first, seen_second = await first, await second
        assert len(set(seen_first)) == 1 and len(set(seen_second)) == 1
        assert len(reads) == 2  # twenty requests, two reads
        before = seen_second[0]

        pending = asyncio.gather(*(service.version() for _ in range(5)))
        other.revoke_till("till-1", actor="test")  # committed before the next requests come
        after = await asyncio.gather(*(service.version() for _ in range(5)))
        await pending
        assert set(after) == {real_version()} and after[0] != before
        assert await service.till_for("not-a-token") is None
    finally:
        other.close()
        await service.close()


async def test_till_requests_rely_on_a_version_read_at_most_the_fresh_window_old(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    other = CredentialStore.open(path)  # another process's connection (``posgw till ...``)
    token = other.add_till("till-1", actor="test")
    now = [100.0]
    service = await SecurityService.open(path, monotonic=lambda: now[0])
    store = service._store
    real_version, reads = store.version, [0]

    def counted() -> int:
        reads[0] += 1
        return real_version()

    store.version = counted  # type: ignore[method-assign]
    try:
        assert (await service.till_for(token)) is not None and reads == [1]
        other.revoke_till("till-1", actor="test")
        now[0] += CREDENTIALS_FRESH_S  # still within the window: the cached tills, no read
        assert (await service.till_for(token)) is not None and reads == [1]
        now[0] += 0.001  # the window has passed: read again, the revocation is seen
        assert await service.till_for(token) is None and reads == [2]
        assert await service.till_for(token) is None and reads == [2]
    finally:
        other.close()
        await service.close()
