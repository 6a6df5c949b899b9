"""The journal's synchronous SQLite work; every method runs on the journal's one worker thread.

Each public method is one unit of work: a payment's state change, its event row, its outbox
record and its vault row commit together or not at all. Called alone, a method is one SQLite
transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``); run by the journal's worker in a group
(:mod:`gateway.journal.worker`), it joins the group's transaction inside its own savepoint.
:class:`gateway.journal.Journal` is the asyncio face of this class; nothing here may be called
from the event loop thread.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gateway.journal import audit
from gateway.journal.errors import (
    DuplicateReference,
    InvalidRecord,
    RefundNotAllowed,
    UnknownPayment,
    VaultError,
    VaultKeyError,
)
from gateway.journal.figures import DayCounts
from gateway.journal.guard import check_value
from gateway.journal.records import (
    Event,
    OutboxItem,
    Payment,
    PendingPayment,
    Recovery,
    TerminalTotals,
    encode_record,
)
from gateway.journal.states import (
    APPROVED_AT_LANE,
    FORWARD_DONE,
    SETTLED,
    TRANSITIONS,
    PaymentKind,
    PaymentState,
    check_transition,
    recovery_action,
)
from gateway.journal.vault import SealedBlob, VaultKey, open_blob, seal

__all__ = ["Store", "Via", "time_letters"]

S = PaymentState
#: Payments whose last written state :class:`Store` remembers (more than the lanes in flight).
WRITTEN_KEPT = 1024
#: Letters of :func:`time_letters`: 26**10 ms reach the year 6400.
_TIME_LETTERS = 10
#: "aa", "ab" ... "zz": two base-26 digits at a time.
_LETTER_PAIRS = tuple(chr(97 + high) + chr(97 + low) for high in range(26) for low in range(26))


def time_letters(ms: int) -> str:
    """``ms`` (since the epoch) as 10 lowercase letters, base 26, most significant first.

    Identifiers start with it so that one made later sorts after one made earlier: a new row
    lands on the last page of every index keyed on its id (the payments' ids, the events by
    payment, the outbox, the vault, the idempotency keys), the page the other rows of its group
    commit wrote too, instead of a page of its own picked at random (docs/journal.md,
    "Identifiers").
    """
    value = min(max(ms, 0), 26**_TIME_LETTERS - 1)
    pairs = []
    for _ in range(_TIME_LETTERS // 2):
        value, pair = divmod(value, 676)
        pairs.append(_LETTER_PAIRS[pair])
    return "".join(reversed(pairs))


#: Columns a transition may set besides the state (never a free-form column name).
UPDATABLE = frozenset(
    {"masked_pan", "aid", "interface", "auth_code", "response_code", "idempotency_key"}
)
#: Fields of a sale record that the journal itself computes (not card data by construction).
_OWN_NUMBERS = frozenset({"completed_ms"})
#: Refunds in these states no longer count against the original sale's amount.
_REFUND_VOID = (S.DECLINED.value, S.CANCELLED.value, S.REVERSED.value)
#: Sale states in which the card is not (or no longer) charged.
_NOT_CHARGING = (*_REFUND_VOID, S.REVERSAL_PENDING.value, S.VOID_PENDING.value, S.VOIDED.value)


@dataclass(frozen=True, slots=True)
class Via:
    """A state a transition passes through on its way, written in the same ``UPDATE``.

    The step keeps its own event row (by its own actor, with its own reason) and sets its own
    columns; the row is written once, in the transition's state. Only a step with no side effect
    of its own may be passed through (not a state that settles, purges the vault or re-queues a
    record): CREATED -> CARD_READ before AUTH_REQUESTED or STORED_FOR_FORWARDING, AUTH_REQUESTED
    (or UNKNOWN) -> APPROVED before COMPLETED or REVERSAL_PENDING (docs/journal.md, "Steps
    written once").
    """

    state: PaymentState
    actor: str
    reason: str = ""
    updates: Mapping[str, str | None] | None = None


#: States whose entry writes something besides the row and its event (:meth:`Store.transition`).
_WITH_SIDE_EFFECTS = SETTLED | FORWARD_DONE | {S.VOIDED}


class Store:
    """SQLite operations on one connection, owned by one thread."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        clock: Callable[[], float],
        random_bytes: Callable[[int], bytes],
        vault_key: VaultKey | None,
        previous_vault_keys: Sequence[VaultKey] = (),
    ) -> None:
        self.conn = conn
        conn.row_factory = sqlite3.Row
        #: Unsent outbox records the last transition added by re-queuing a record (0 or 1).
        self.requeued = 0
        self._clock = clock
        self._random = random_bytes
        self._key = vault_key
        # rows sealed before a key rotation open with the key that sealed them
        self._keys = {key.key_id: key for key in previous_vault_keys}
        if vault_key is not None:
            self._keys[vault_key.key_id] = vault_key
        #: The audit chain's checkpoint keys, the current one first (gateway.journal.audit).
        self.audit_keys = tuple(
            key.audit_key() for key in (vault_key, *previous_vault_keys) if key is not None
        )
        #: The state this store last wrote for each recent payment: a hint, never trusted
        #: (:meth:`transition` updates from it only where the row still holds it).
        self._written: dict[str, PaymentState] = {}

    def _wrote(self, payment_id: str, state: PaymentState) -> None:
        written = self._written
        written.pop(payment_id, None)
        written[payment_id] = state
        if len(written) > WRITTEN_KEPT:
            del written[next(iter(written))]

    def now_ms(self) -> int:
        """The injected clock, in whole milliseconds since the epoch."""
        return round(self._clock() * 1000)

    def _token(self, prefix: str, size: int, now_ms: int) -> str:
        """``prefix``, the time (:func:`time_letters`), then ``size`` random bytes in Base32
        (letters and 2-7: never a long digit run for the card-data guard to trip on)."""
        random_part = base64.b32encode(self._random(size)).decode().rstrip("=").lower()
        return prefix + time_letters(now_ms) + random_part

    @contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        if self.conn.in_transaction:
            # inside the worker's group (gateway.journal.worker): the request's savepoint
            # undoes this call's changes if it fails, and the group's COMMIT makes them durable
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _state(self, payment_id: str) -> PaymentState:
        """The payment's state alone (a transition's first read: no whole row to build)."""
        found = self.conn.execute(
            "SELECT state FROM payments WHERE id = ?", (payment_id,)
        ).fetchone()
        if found is None:
            raise UnknownPayment(payment_id)
        return PaymentState(found[0])

    def _row(self, payment_id: str) -> sqlite3.Row:
        row = self.conn.execute("SELECT * FROM payments WHERE id = ?", (payment_id,)).fetchone()
        if row is None:
            raise UnknownPayment(payment_id)
        return row  # type: ignore[no-any-return]

    def sign_audit_head(self) -> str:
        """At open: sign the audit chain's head if its last checkpoint holds (or there is none
        yet: the first signature trusts the chain as found); returns why it does not hold
        ('' when it does). Nothing is signed without a vault key."""
        if not self.audit_keys:
            return ""
        with self._txn() as conn:
            problem = audit.checkpoint_problem(conn, self.audit_keys)
            if not problem:
                audit.sign_head(conn, self.audit_keys)
        return problem

    # -- payments -------------------------------------------------------------------------

    def create(
        self,
        *,
        kind: PaymentKind,
        lane: str,
        amount: int,
        currency: str,
        actor: str,
        items: Sequence[Any] | None,
        refund_of: str | None,
        till_reference: str | None = None,
    ) -> Payment:
        """Insert a payment in CREATED with its first event (from nothing to CREATED).

        Raises:
            DuplicateReference: a refund of ``refund_of`` already has ``till_reference``.
        """
        check_value("lane", lane)
        check_value("till_reference", till_reference)
        check_value("actor", actor)
        check_value("items", items)
        items_json = None if items is None else json.dumps(list(items), separators=(",", ":"))
        now = self.now_ms()
        payment_id = self._token("pay_", 8, now)
        with self._txn() as conn:
            if refund_of is not None:
                if till_reference is not None:
                    existing = self._refund_by_reference(refund_of, till_reference)
                    if existing is not None:
                        raise DuplicateReference(existing.id)
                currency = self._check_refund(refund_of, amount)
            # RETURNING: the row as inserted, not read again (sqlite.org/lang_returning.html)
            (row,) = conn.execute(
                "INSERT INTO payments (id, kind, refund_of, lane, amount, currency, state, items,"
                " created_ms, updated_ms, till_reference) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " RETURNING *",
                (
                    payment_id,
                    kind.value,
                    refund_of,
                    lane,
                    amount,
                    currency,
                    S.CREATED.value,
                    items_json,
                    now,
                    now,
                    till_reference,
                ),
            ).fetchall()
            self._event(payment_id, now, actor, None, S.CREATED, "")
            self._wrote(payment_id, S.CREATED)
        return Payment.from_row(row)

    def _refund_by_reference(self, original_id: str, till_reference: str) -> Payment | None:
        row = self.conn.execute(
            "SELECT * FROM payments WHERE refund_of = ? AND till_reference = ?",
            (original_id, till_reference),
        ).fetchone()
        return None if row is None else Payment.from_row(row)

    def find_sale(self, till_reference: str, since_ms: int) -> Payment | None:
        """The newest sale under ``till_reference`` created since ``since_ms`` that may take
        (or has taken) money: not cancelled, declined or reversed."""
        placeholders = ", ".join("?" * len(_NOT_CHARGING))
        row = self.conn.execute(
            "SELECT * FROM payments WHERE kind = 'sale' AND till_reference = ?"  # noqa: S608
            f" AND created_ms >= ? AND state NOT IN ({placeholders})"
            " ORDER BY created_ms DESC LIMIT 1",
            (till_reference, since_ms, *_NOT_CHARGING),
        ).fetchone()
        return None if row is None else Payment.from_row(row)

    def find_refund(self, original_id: str, till_reference: str) -> Payment | None:
        """The refund of ``original_id`` journaled under ``till_reference``, if any."""
        return self._refund_by_reference(original_id, till_reference)

    def on_lane(self, lane: str, states: Sequence[PaymentState]) -> list[Payment]:
        """The payments of ``lane`` in one of ``states``, oldest first."""
        marks = ", ".join("?" * len(states))
        rows = self.conn.execute(
            f"SELECT * FROM payments WHERE lane = ? AND state IN ({marks})"  # noqa: S608
            " ORDER BY created_ms, id",
            (lane, *(state.value for state in states)),
        ).fetchall()
        return [Payment.from_row(row) for row in rows]

    def add_terminal_totals(self, *, lane: str, actor: str, ok: bool,
                            transactions: int | None, debits: int | None,
                            refunds: int | None, currency: str | None,
                            message: str) -> TerminalTotals:
        """Record a terminal's end of day (one row, committed)."""
        with self._txn() as conn:
            cursor = conn.execute(
                "INSERT INTO terminal_totals (lane, at_ms, actor, ok, transactions, debits,"
                " refunds, currency, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (lane, self.now_ms(), actor, int(ok), transactions, debits, refunds, currency,
                 message),
            )
            row = conn.execute("SELECT * FROM terminal_totals WHERE id = ?",
                               (cursor.lastrowid,)).fetchone()
        return TerminalTotals.from_row(row)

    def terminal_totals(self, lane: str) -> list[TerminalTotals]:
        """A lane's recorded ends of day, oldest first."""
        rows = self.conn.execute(
            "SELECT * FROM terminal_totals WHERE lane = ? ORDER BY at_ms, id", (lane,)
        ).fetchall()
        return [TerminalTotals.from_row(row) for row in rows]

    def _check_refund(self, original_id: str, amount: int) -> str:
        row = self.conn.execute(
            "SELECT kind, state, amount, currency FROM payments WHERE id = ?", (original_id,)
        ).fetchone()
        if row is None:
            raise RefundNotAllowed(f"refund of {original_id!r}: no such sale")
        if row["kind"] != PaymentKind.SALE.value or PaymentState(row["state"]) not in SETTLED:
            raise RefundNotAllowed(
                f"refund of {original_id!r}: the original is a {row['kind']} in {row['state']}"
            )
        placeholders = ", ".join("?" * len(_REFUND_VOID))
        refunded = self.conn.execute(
            f"SELECT coalesce(sum(amount), 0) FROM payments WHERE refund_of = ?"  # noqa: S608
            f" AND state NOT IN ({placeholders})",
            (original_id, *_REFUND_VOID),
        ).fetchone()[0]
        if refunded + amount > row["amount"]:
            raise RefundNotAllowed(
                f"refund of {original_id!r}: {amount} + {refunded} already refunded or pending"
                f" exceeds the sale's {row['amount']}"
            )
        return str(row["currency"])

    def _event(
        self,
        payment_id: str,
        now: int,
        actor: str,
        old: PaymentState | None,
        new: PaymentState,
        reason: str,
    ) -> None:
        self.conn.execute(
            "INSERT INTO events (payment_id, at_ms, actor, from_state, to_state, reason)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (payment_id, now, actor, None if old is None else old.value, new.value, reason),
        )

    def transition(
        self,
        payment_id: str,
        new: PaymentState,
        *,
        actor: str,
        reason: str = "",
        updates: Mapping[str, str | None] | None = None,
        new_key: bool = False,
        vault_plaintext: bytes | None = None,
        via: Via | None = None,
    ) -> Payment:
        """Move a payment to ``new`` in one transaction, with everything that goes with it.

        The event row always; a fresh idempotency key when ``new_key``; the outbox record when
        the payment settles (enters :data:`SETTLED` from outside it); the sealed vault row when
        ``vault_plaintext`` is given; the vault purge when it reaches FORWARDED or FORWARD_DECLINED.
        With ``via``, the payment passes through ``via.state`` first: its event row and its
        columns too, the row written once (:class:`Via`).

        Raises:
            UnknownPayment, IllegalTransition, CardDataRejected, VaultKeyError.
            InvalidRecord: a column a transition may not set, or ``via`` a state with side
            effects.
        """
        if via is None:
            updates = dict(updates or {})
        else:
            if via.state in _WITH_SIDE_EFFECTS:
                raise InvalidRecord("via", f"{via.state.value} has side effects of its own")
            check_value("via.actor", via.actor)
            check_value("via.reason", via.reason)
            updates = {**(via.updates or {}), **(updates or {})}
        check_value("actor", actor)
        check_value("reason", reason)
        for column, value in updates.items():
            if column not in UPDATABLE:
                raise InvalidRecord(column, "not a column a transition may set")
            check_value(column, value)
        if vault_plaintext is not None and self._key is None:
            raise VaultKeyError("no vault key configured: cannot store for forwarding")
        now = self.now_ms()
        if new_key:
            updates["idempotency_key"] = self._token("idem_", 10, now)
        with self._txn() as conn:
            # RETURNING: the row as updated, without reading it again (fetchall ends the
            # statement before the next one, sqlite.org/lang_returning.html)
            update = (
                f"UPDATE payments SET state = ?, updated_ms = ?"  # noqa: S608
                f"{''.join(f', {column} = ?' for column in updates)}"
                " WHERE id = ? AND state = ? RETURNING *"
            )
            step = new if via is None else via.state  # the first step from the row's state
            chain_allowed = via is None or new in TRANSITIONS[step]
            old = self._written.get(payment_id)
            rows = []
            if old is not None and step in TRANSITIONS[old] and chain_allowed:
                # the state this store wrote last, most likely still the row's: no read first
                # (the WHERE clause makes it so; another state finds no row, then it is read)
                rows = conn.execute(
                    update, (new.value, now, *updates.values(), payment_id, old.value)
                ).fetchall()
            if not rows:
                old = self._state(payment_id)
                check_transition(payment_id, old, step)
                if via is not None:
                    check_transition(payment_id, step, new)
                rows = conn.execute(
                    update, (new.value, now, *updates.values(), payment_id, old.value)
                ).fetchall()
            (row,) = rows
            payment = Payment.from_row(row)
            self._wrote(payment_id, new)
            if via is not None:
                self._event(payment_id, now, via.actor, old, step, via.reason)
                old = step  # the transition's own step starts where the passed one ended
            self._event(payment_id, now, actor, old, new, reason)
            # a refused void (VOID_PENDING -> COMPLETED) keeps the sale's record as it was sent
            if new in SETTLED and old not in SETTLED and old is not S.VOID_PENDING:
                self._outbox_insert(payment, offline=new is S.STORED_FOR_FORWARDING, now=now)
            if vault_plaintext is not None:
                assert self._key is not None
                blob = seal(self._key, payment_id, vault_plaintext)
                conn.execute(
                    "INSERT INTO vault (payment_id, version, key_id, nonce, ciphertext,"
                    " created_ms) VALUES (?, ?, ?, ?, ?, ?)",
                    (payment_id, blob.version, blob.key_id, blob.nonce, blob.ciphertext, now),
                )
            if new in FORWARD_DONE:
                conn.execute("DELETE FROM vault WHERE payment_id = ?", (payment_id,))
            self.requeued = 0
            if new is S.FORWARD_DECLINED:
                self.requeued = self._outbox_requeue(payment_id, now, forward_declined=True)
            if new is S.VOIDED:
                self.requeued = self._outbox_requeue(payment_id, now, voided=True)
        return payment

    def get(self, payment_id: str) -> Payment:
        """The payment with this id."""
        return Payment.from_row(self._row(payment_id))

    def events(self, payment_id: str) -> list[Event]:
        """The payment's events in order."""
        self._row(payment_id)
        rows = self.conn.execute(
            "SELECT * FROM events WHERE payment_id = ? ORDER BY seq", (payment_id,)
        ).fetchall()
        return [Event.from_row(row) for row in rows]

    def day_counts(self, day_start_ms: int) -> DayCounts:
        """The day's figures and the outbox backlog, counted (at open; docs/journal.md).

        An index range over ``payments_by_created`` (covering: the table is not read) and the
        ``outbox_unsent`` partial index: the cost follows the day's rows, not the journal's.
        """
        counts = {"payments": 0, "approved": 0, "declined": 0, "refunds": 0}
        for kind, state, count in self.conn.execute(
            "SELECT kind, state, count(*) FROM payments WHERE created_ms >= ?"
            " GROUP BY kind, state",
            (day_start_ms,),
        ):
            if kind == PaymentKind.SALE.value:
                counts["payments"] += count
                if PaymentState(state) in APPROVED_AT_LANE:
                    counts["approved"] += count
                elif state == S.DECLINED.value:
                    counts["declined"] += count
            elif state == S.COMPLETED.value:
                counts["refunds"] += count
        unsent = self.conn.execute("SELECT count(*) FROM outbox WHERE sent_ms IS NULL").fetchone()
        return DayCounts(day_start_ms, **counts, outbox_backlog=int(unsent[0]))

    # -- vault ------------------------------------------------------------------------------

    def vault_open(self, payment_id: str) -> bytes:
        """Decrypt the vault row of a payment awaiting forwarding."""
        if self._key is None:
            raise VaultKeyError("no vault key configured: cannot read the vault")
        row = self.conn.execute(
            "SELECT version, key_id, nonce, ciphertext FROM vault WHERE payment_id = ?",
            (payment_id,),
        ).fetchone()
        if row is None:
            self._row(payment_id)
            raise VaultError(f"payment {payment_id!r}: nothing in the vault (forwarded?)")
        blob = SealedBlob(row["version"], row["key_id"], row["nonce"], row["ciphertext"])
        return open_blob(self._keys.get(blob.key_id, self._key), payment_id, blob)

    def vault_rows_by_key(self) -> dict[str, int]:
        """How many sealed rows each key id (hex) holds: when a previous key's count is 0,
        that key can be retired."""
        rows = self.conn.execute("SELECT key_id, count(*) FROM vault GROUP BY key_id").fetchall()
        return {bytes(row[0]).hex(): int(row[1]) for row in rows}

    def checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it (old vault pages leave the WAL)."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

    # -- outbox -----------------------------------------------------------------------------

    def _outbox_insert(self, payment: Payment, *, offline: bool, now: int) -> None:
        record = payment.sale_record(offline=offline)
        # Defence in depth: every caller-supplied value was checked on its way in; the record
        # is checked again except for the journal's own numbers (a millisecond timestamp is a
        # 13-digit number that passes Luhn one time in ten).
        check_value("outbox", {k: v for k, v in record.items() if k not in _OWN_NUMBERS})
        self.conn.execute(
            "INSERT INTO outbox (payment_id, body, created_ms) VALUES (?, ?, ?)",
            (payment.id, encode_record(record), now),
        )

    def _outbox_requeue(self, payment_id: str, now: int, **flags: bool) -> int:
        """Send a settled payment's record again, as revision 2, with ``flags`` set
        (``forward_declined``: the bank declined the offline sale; ``voided``: reversed).

        Head office already has (or will have) the first record; the new one replaces it (same
        ``id``, higher ``revision``; docs/sync.md). The old row is deleted and a new one inserted
        (a new outbox id) in the same transaction as the transition: a publisher that claimed
        the old row and is sending it now marks nothing of the new one as sent. Nothing when the
        payment has no record (it never settled).

        Returns:
            How many more unsent records there are now: 1 when the old one had been sent, 0
            when it was still waiting (it is replaced) or there was none (the day's figures).
        """
        row = self.conn.execute(
            "SELECT body, sent_ms FROM outbox WHERE payment_id = ?", (payment_id,)
        ).fetchone()
        if row is None:
            return 0
        record = Payment.from_row(self._row(payment_id)).sale_record(
            offline=bool(json.loads(row[0]).get("offline"))
        )
        record.update(revision=2, **flags)
        check_value("outbox", {k: v for k, v in record.items() if k not in _OWN_NUMBERS})
        self.conn.execute("DELETE FROM outbox WHERE payment_id = ?", (payment_id,))
        self.conn.execute(
            "INSERT INTO outbox (payment_id, body, created_ms) VALUES (?, ?, ?)",
            (payment_id, encode_record(record), now),
        )
        return 0 if row[1] is None else 1

    def claim_batch(self, limit: int, lease_ms: int) -> list[OutboxItem]:
        """Claim up to ``limit`` unsent records, oldest first, for ``lease_ms``.

        One ``UPDATE ... RETURNING`` (sqlite.org/lang_returning.html) claims and reads them;
        RETURNING gives no order, so they are sorted by id here.
        """
        now = self.now_ms()
        with self._txn() as conn:
            rows = conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, claimed_until_ms = ?"
                " WHERE id IN (SELECT id FROM outbox WHERE sent_ms IS NULL AND"
                " (claimed_until_ms IS NULL OR claimed_until_ms <= ?) ORDER BY id LIMIT ?)"
                " RETURNING id, payment_id, body, attempts, created_ms",
                (now + lease_ms, now, limit),
            ).fetchall()
        rows.sort(key=lambda row: row[0])
        return [
            OutboxItem(row[0], row[1], row[2], row[3], row[4])
            for row in rows
        ]

    def mark_sent(self, ids: Sequence[int]) -> int:
        """Mark records acknowledged by head office; returns how many changed.

        One statement for the whole list (its ids as a JSON array, read by ``json_each``,
        sqlite.org/json1.html#jeach): one SQLite step, not one per record.
        """
        now = self.now_ms()
        listed = json.dumps([int(record_id) for record_id in ids])
        with self._txn() as conn:
            return int(
                conn.execute(
                    "UPDATE outbox SET sent_ms = ?, claimed_until_ms = NULL WHERE sent_ms IS NULL"
                    " AND id IN (SELECT value FROM json_each(?))",
                    (now, listed),
                ).rowcount
            )

    def outbox_after(self, position: int, limit: int) -> list[OutboxItem]:
        """Up to ``limit`` outbox records with an id above ``position``, sent or not, in id
        order (read only: the local stock follows the settled sales with this)."""
        rows = self.conn.execute(
            "SELECT * FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (position, limit)
        ).fetchall()
        return [
            OutboxItem(row["id"], row["payment_id"], row["body"], row["attempts"],
                       row["created_ms"])
            for row in rows
        ]  # fmt: skip

    def prune_sent(self, before_ms: int, limit: int) -> int:
        """Delete up to ``limit`` records head office acknowledged before ``before_ms``."""
        with self._txn() as conn:
            return int(
                conn.execute(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
                    " WHERE sent_ms IS NOT NULL AND sent_ms < ? ORDER BY sent_ms LIMIT ?)",
                    (before_ms, limit),
                ).rowcount
            )

    def mark_failed(self, ids: Sequence[int], error: str) -> None:
        """Release claims after a failed send so the records are retried."""
        check_value("error", error)
        with self._txn() as conn:
            conn.executemany(
                "UPDATE outbox SET claimed_until_ms = NULL, last_error = ?"
                " WHERE id = ? AND sent_ms IS NULL",
                [(error[:500], record_id) for record_id in ids],
            )

    # -- recovery ---------------------------------------------------------------------------

    def recover(self) -> Recovery:
        """Release the previous run's outbox claims; list the payments that need an action."""
        actionable = [state.value for state in PaymentState if recovery_action(state)]
        with self._txn() as conn:
            released = conn.execute(
                "UPDATE outbox SET claimed_until_ms = NULL"
                " WHERE sent_ms IS NULL AND claimed_until_ms IS NOT NULL"
            ).rowcount
            rows = conn.execute(
                f"SELECT * FROM payments WHERE state IN ({', '.join('?' * len(actionable))})"  # noqa: S608
                " ORDER BY created_ms, id",
                actionable,
            ).fetchall()
            unsent = conn.execute("SELECT count(*) FROM outbox WHERE sent_ms IS NULL").fetchone()
        pending = []
        for row in rows:
            payment = Payment.from_row(row)
            action = recovery_action(payment.state)
            assert action is not None
            pending.append(PendingPayment(payment, action))
        return Recovery(tuple(pending), int(unsent[0]), released)
