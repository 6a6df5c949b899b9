"""Helpers shared by the journal tests (no tests here): a journal on a real file, a clock, paths.

``drive_to`` walks a fresh sale along legal transitions to any state, so the state-machine tests
can start from each state in turn.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from gateway.journal import Journal, Payment, PaymentKind, PaymentState, VaultKey
from gateway.journal.journal import _Opening
from gateway.journal.schema import configure, migrate
from gateway.journal.store import Store

S = PaymentState

#: A Luhn-valid test PAN (Visa test range) and a track 2 built on it; never journaled in clear.
PAN = "4761739001010010"
TRACK2 = PAN + "D25122010123456789"
MASKED = "476173******0010"
AID = "A0000000031010"

#: A legal path from CREATED to each state: (method, kwargs) steps.
PATHS: dict[PaymentState, list[PaymentState]] = {
    S.CREATED: [],
    S.CARD_READ: [S.CARD_READ],
    S.AUTH_REQUESTED: [S.CARD_READ, S.AUTH_REQUESTED],
    S.APPROVED: [S.CARD_READ, S.AUTH_REQUESTED, S.APPROVED],
    S.DECLINED: [S.CARD_READ, S.AUTH_REQUESTED, S.DECLINED],
    S.UNKNOWN: [S.CARD_READ, S.AUTH_REQUESTED, S.UNKNOWN],
    S.COMPLETED: [S.CARD_READ, S.AUTH_REQUESTED, S.APPROVED, S.COMPLETED],
    S.REVERSAL_PENDING: [S.CARD_READ, S.AUTH_REQUESTED, S.APPROVED, S.REVERSAL_PENDING],
    S.REVERSED: [S.CARD_READ, S.AUTH_REQUESTED, S.APPROVED, S.REVERSAL_PENDING, S.REVERSED],
    S.STORED_FOR_FORWARDING: [S.CARD_READ, S.STORED_FOR_FORWARDING],
    S.FORWARDED: [S.CARD_READ, S.STORED_FOR_FORWARDING, S.FORWARDED],
    S.CANCELLED: [S.CANCELLED],
    S.FORWARD_DECLINED: [S.CARD_READ, S.STORED_FOR_FORWARDING, S.FORWARD_DECLINED],
    S.VOID_PENDING: [S.CARD_READ, S.AUTH_REQUESTED, S.APPROVED, S.COMPLETED, S.VOID_PENDING],
    S.VOIDED: [
        S.CARD_READ,
        S.AUTH_REQUESTED,
        S.APPROVED,
        S.COMPLETED,
        S.VOID_PENDING,
        S.VOIDED,
    ],
    S.DECLINE_ACKNOWLEDGED: [
        S.CARD_READ,
        S.STORED_FOR_FORWARDING,
        S.FORWARD_DECLINED,
        S.DECLINE_ACKNOWLEDGED,
    ],
}


class Clock:
    """A settable clock (seconds), injected into the journal."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@contextlib.contextmanager
def open_store(path: Path, *, seed: int = 1) -> Iterator[Store]:
    """A :class:`Store` on a real SQLite file at ``path`` (configured and migrated as the journal
    opens it), on this thread: a fixed clock, seeded randomness, a fresh vault key."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        configure(conn)
        migrate(conn)
        rng = random.Random(seed)
        yield Store(conn, clock=Clock(), random_bytes=rng.randbytes,
                    vault_key=VaultKey(os.urandom(32)))  # fmt: skip
    finally:
        conn.close()


def new_sale(store: Store, *, actor: str = "test") -> str:
    """A 12.50 EUR sale on lane 1, in CREATED; its id."""
    return store.create(kind=PaymentKind.SALE, lane="1", amount=1250, currency="EUR",
                        actor=actor, items=None, refund_of=None).id  # fmt: skip


def open_journal(
    tmp_path: Path,
    *,
    key: VaultKey | None = None,
    clock: Clock | None = None,
    seed: int = 1,
    name: str = "journal.db",
    previous_keys: tuple[VaultKey, ...] = (),
) -> _Opening:
    """A journal on a real SQLite file in ``tmp_path`` with injected clock and randomness."""
    rng = random.Random(seed)
    return Journal.open(
        tmp_path / name,
        vault_key=key if key is not None else VaultKey(os.urandom(32)),
        previous_vault_keys=previous_keys,
        clock=clock or Clock(),
        random_bytes=rng.randbytes,
    )


async def step(journal: Journal, payment_id: str, target: PaymentState) -> Payment:
    """Ask the journal for ``target`` through the public method that leads there."""
    actor = "test"
    if target is S.CARD_READ:
        return await journal.card_read(payment_id, masked_pan=MASKED, aid=AID, actor=actor)
    if target is S.AUTH_REQUESTED:
        return await journal.request_auth(payment_id, actor=actor)
    if target is S.APPROVED:
        return await journal.approve(payment_id, auth_code="A1B2C3", actor=actor)
    if target is S.DECLINED:
        return await journal.decline(payment_id, response_code="05", actor=actor)
    if target is S.UNKNOWN:
        return await journal.mark_unknown(payment_id, actor=actor, reason="timeout")
    if target is S.COMPLETED:
        return await journal.complete(payment_id, actor=actor)
    if target is S.REVERSAL_PENDING:
        return await journal.request_reversal(payment_id, actor=actor, reason="card said no")
    if target is S.REVERSED:
        return await journal.confirm_reversal(payment_id, actor=actor)
    if target is S.STORED_FOR_FORWARDING:
        return await journal.store_for_forwarding(
            payment_id,
            request=b"\x5a\x08" + bytes.fromhex(PAN),
            response_code="Y1",
            actor=actor,
        )
    if target is S.FORWARDED:
        return await journal.confirm_forwarded(payment_id, actor=actor, response_code="00")
    if target is S.CANCELLED:
        return await journal.cancel(payment_id, actor=actor, reason="till cancelled")
    if target is S.VOID_PENDING:
        return await journal.void_sale(payment_id, actor="manager:test", reason="wrong amount")
    if target is S.VOIDED:
        return await journal.confirm_void(payment_id, actor=actor)
    if target is S.FORWARD_DECLINED:
        return await journal.decline_forward(payment_id, actor=actor, response_code="05")
    if target is S.DECLINE_ACKNOWLEDGED:
        return await journal.acknowledge_declined_forward(payment_id, actor="manager:test")
    raise AssertionError(f"no method leads to {target}")


async def drive_to(
    journal: Journal, target: PaymentState, *, amount: int = 1250, lane: str = "1"
) -> Payment:
    """A new sale walked along legal transitions to ``target``."""
    payment = await journal.create_sale(lane=lane, amount=amount, currency="EUR", actor="test")
    for state in PATHS[target]:
        payment = await step(journal, payment.id, state)
    assert payment.state is target
    return payment


def db_bytes(path: Path) -> bytes:
    """The raw bytes of a SQLite file and its -wal/-shm companions, whichever exist."""
    out = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = Path(f"{path}{suffix}")
        if candidate.exists():
            out += candidate.read_bytes()
    return out
