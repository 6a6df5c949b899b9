"""The daemon's face of the credential store: async, cached, on its own worker thread.

SQLite and Argon2 block, so every :class:`~gateway.security.store.CredentialStore` call runs
on one dedicated thread (ARCHITECTURE.md, "nothing blocking runs in an async def"), reached
through :class:`drivers.executor.DeviceExecutor` (a queue put and one eventfd write per call:
about half the CPU of ``run_in_executor`` on a one-thread pool). Till lookups are cached and
checked against ``meta.credentials_version`` (one indexed row), the tills reloaded only when it
moved. A till request relies on a version read that started at most
:data:`~gateway.security.store_core.CREDENTIALS_FRESH_S` (0.25 s) before it came, and reads
again otherwise; ``posgw till revoke`` (another process) returns no sooner than that after its
commit, so once it has returned the till's next request is refused. Under load that is four
reads a second instead of one per request (the hop was 30-45 us of the loop's CPU a request,
docs/performance.md). :meth:`version` itself is never stale: requests that arrive together
share one read, but only a read that *starts after* they arrived (one in flight is waited for,
then the next one serves everyone who queued meanwhile).

Audit rows are not written here when the daemon attached its journal (:meth:`attach_journal`):
they go through the journal's worker (:meth:`gateway.journal.Journal.append_audit`), in the
next group commit (no transaction, no ``fsync`` and no write lock of their own), and a
payment start's row is handed to ``Journal.create_sale(audit=...)`` so it commits with the
sale (:func:`audit_note`). Approvals keep their row on this connection, in their own
transaction (docs/security.md, "Audit rows").
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from aiohttp import web

from drivers.executor import DeviceExecutor
from gateway.journal import CardDataRejected, Journal, JournalError
from gateway.journal.audit import AuditEntry, AuditKey, AuditNote, ChainVerdict
from gateway.security.store import CredentialStore, ManagerAccount, RefundApproval, TillCredential
from gateway.security.store_core import CREDENTIALS_FRESH_S
from gateway.security.tokens import hash_token, looks_like_token

__all__ = ["SECURITY", "SecurityService", "audit_note", "audit_request"]

log = logging.getLogger("gateway.security.service")

P = ParamSpec("P")
T = TypeVar("T")


class SecurityService:
    """Credentials, approvals and the audit log for the daemon (open with :meth:`open`)."""

    def __init__(
        self,
        executor: DeviceExecutor,
        store: CredentialStore,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._executor = executor
        self._store = store
        self._monotonic = monotonic
        self._checked_at = -math.inf  # when the read behind the cached tills started, at latest
        self._version_next: asyncio.Task[int] | None = None  # queued, not started
        self._version_reading: asyncio.Task[int] | None = None  # started, not answered
        self._version = -1
        self._tills: dict[str, TillCredential] = {}
        self._certificates: dict[str, TillCredential] = {}
        self._lock = asyncio.Lock()
        self._journal: Journal | None = None

    def attach_journal(self, journal: Journal | None) -> None:
        """Write audit rows through ``journal``'s worker from now on (None: on this store's
        own connection again)."""
        self._journal = journal

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        audit_keys: Sequence[AuditKey] = (),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> SecurityService:
        """Open the store on the journal file at ``path`` (on the service's thread); with
        ``audit_keys``, the audit rows it appends itself sign the chain's head. ``monotonic``
        dates the credentials version's reads (``CLOCK_MONOTONIC``: the clock the admin
        commands wait on)."""
        executor = DeviceExecutor("posgw-security")
        try:
            store = await executor.run(
                functools.partial(CredentialStore.open, path, clock=clock, audit_keys=audit_keys)
            )
        except BaseException:
            executor.shutdown()
            raise
        return cls(executor, store, monotonic=monotonic)

    async def close(self) -> None:
        """Close the store and its thread."""
        await self._run(self._store.close)
        await self._executor.aclose()

    async def _run(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._executor.run(func, *args, **kwargs)

    async def version(self) -> int:
        """The credentials version (moves when a till or manager credential changes), as read
        by a read that started after this call (shared with the calls queued with it)."""
        queued = self._version_next
        if queued is None:
            queued = self._version_next = asyncio.create_task(
                self._read_version(self._version_reading), name="security.version"
            )
        return await asyncio.shield(queued)

    async def _read_version(self, in_flight: asyncio.Task[int] | None) -> int:
        if in_flight is not None:  # started before some of our callers came: not fresh enough
            await asyncio.wait([in_flight])
        me = asyncio.current_task()
        self._version_next, self._version_reading = None, me
        try:
            return await self._run(self._store.version)
        finally:
            if self._version_reading is me:
                self._version_reading = None

    async def _refresh(self) -> None:
        """Make the cached tills those of a version read that started at most
        :data:`CREDENTIALS_FRESH_S` ago."""
        asked = self._monotonic()
        if asked - self._checked_at <= CREDENTIALS_FRESH_S:
            return
        version = await self.version()  # a read that started after ``asked``
        if version != self._version:
            async with self._lock:
                if version != self._version:
                    self._tills = await self._run(self._store.active_token_hashes)
                    self._certificates = await self._run(self._store.active_certificates)
                    self._version = version
        self._checked_at = max(self._checked_at, asked)

    async def till_for(self, token: str) -> TillCredential | None:
        """The active till holding ``token`` (None: unknown, malformed or revoked)."""
        if not looks_like_token(token):
            return None
        await self._refresh()
        return self._tills.get(hash_token(token))

    async def till_for_certificate(self, sha256: str) -> TillCredential | None:
        """The active till bound to the client certificate with this SHA-256 (hex)."""
        await self._refresh()
        return self._certificates.get(sha256)

    async def check_password(self, name: str, password: str) -> ManagerAccount | None:
        """The manager when the password is theirs (Argon2id, on the worker thread)."""
        return await self._run(self._store.check_password, name, password)

    async def manager(self, name: str) -> ManagerAccount | None:
        """The enabled manager of that name."""
        return await self._run(self._store.manager, name)

    async def record(
        self,
        *,
        actor: str,
        action: str,
        subject: str = "",
        outcome: str,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one audit row: through the attached journal's worker (its next group
        commit), else in a transaction of its own (:meth:`CredentialStore.record`)."""
        if self._journal is not None and not self._journal.closed:
            note = AuditNote(actor, action, outcome, subject, detail)
            return await self._journal.append_audit(note)
        return await self._run(
            functools.partial(
                self._store.record,
                actor=actor,
                action=action,
                subject=subject,
                outcome=outcome,
                detail=detail,
            )
        )

    async def verify_audit(self) -> ChainVerdict:
        """Recompute the audit chain (and check its signed checkpoint with the service's keys)."""
        store = self._store
        return await self._run(store.verify_audit, store.audit_keys)

    async def request_approval(self, sale_id: str, amount: int, till: str) -> RefundApproval:
        """The (single) approval request for this refund."""
        return await self._run(self._store.request_approval, sale_id, amount, till)

    async def consume_approval(
        self, sale_id: str, amount: int, till: str
    ) -> RefundApproval | None:
        """Use an approved approval for this refund once; None if none."""
        return await self._run(self._store.consume_approval, sale_id, amount, till)

    async def approve(self, approval_id: int, *, manager: str) -> RefundApproval:
        """A manager approves a pending request (audited)."""
        return await self._run(
            functools.partial(self._store.approve, approval_id, manager=manager)
        )

    async def pending_approvals(self) -> list[RefundApproval]:
        """Requests waiting for a manager."""
        return await self._run(self._store.pending_approvals)


#: The security service on the daemon's application (``request.app[SECURITY]``).
SECURITY: web.AppKey[SecurityService] = web.AppKey("posgw_security", SecurityService)


def audit_note(
    request: web.Request,
    *,
    actor: str,
    action: str,
    subject: str = "",
    outcome: str,
    detail: Mapping[str, Any] | None = None,
) -> AuditNote | None:
    """The audit row of a till's request, to hand to the journal change it asks for (committed
    with it); None when no security service is mounted (nothing is audited)."""
    if request.app.get(SECURITY) is None:
        return None
    return AuditNote(actor, action, outcome, subject, detail)


async def audit_request(
    request: web.Request,
    *,
    actor: str,
    action: str,
    subject: str = "",
    outcome: str,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Audit a till's request through the application's service (none mounted: nothing)."""
    service = request.app.get(SECURITY)
    if service is None:
        return
    try:
        await service.record(
            actor=actor, action=action, subject=subject, outcome=outcome, detail=detail
        )
    except CardDataRejected as exc:  # a till sent a card number where an id goes
        await service.record(
            actor=actor, action=action, subject="(card data refused)", outcome=outcome,
            detail={"refused": exc.field},
        )  # fmt: skip
    except (JournalError, sqlite3.Error) as exc:
        # the request already happened; losing its audit row is logged, never a 500
        log.error("audit row for %s %s not written: %s", actor, action, type(exc).__name__)
