"""The journal's branch of the gateway's exception tree (gateway/errors.py draws the whole).

::

    JournalError
    ├── JournalClosed          the journal was closed (or never opened)
    ├── SchemaError            the database file is newer than this code, or not a journal
    ├── StorageError           SQLite failed (disk full, I/O error, locked too long)
    ├── UnknownPayment         no payment with that id
    ├── IllegalTransition      a state change the payment state machine does not allow
    ├── RefundNotAllowed       a refund of a sale that cannot be refunded (state, amount, currency)
    ├── CardDataRejected       a value on the write path looks like a PAN or a track 2
    ├── DuplicateReference     a till reference already names another payment
    ├── InvalidRecord          a field of a record is malformed (``field`` names it)
    └── VaultError
        ├── VaultKeyError      the vault key is missing, short, world-readable, or not configured
        ├── VaultKeyMismatch   a vault row was sealed under another key
        └── VaultTampered      a vault row failed authentication (ciphertext, nonce or AAD changed)

No message ever carries card data: a rejected value is named by its field, never quoted
(ARCHITECTURE.md, card data).
"""

from __future__ import annotations

from gateway.errors import GatewayError

__all__ = [
    "CardDataRejected",
    "DayAlreadyClosed",
    "DuplicateReference",
    "IllegalTransition",
    "InvalidRecord",
    "JournalClosed",
    "JournalError",
    "RefundNotAllowed",
    "SchemaError",
    "StorageError",
    "UnknownPayment",
    "VaultError",
    "VaultKeyError",
    "VaultKeyMismatch",
    "VaultTampered",
    "VoidNotAllowed",
]


class JournalError(GatewayError):
    """Base of every error the journal raises."""


class JournalClosed(JournalError):
    """An operation on a journal that is closed."""


class SchemaError(JournalError):
    """The database's schema version is unknown to this code, or the file is not a journal."""


class StorageError(JournalError):
    """SQLite reported an operational failure (I/O, disk full, busy beyond the timeout)."""


class UnknownPayment(JournalError):
    """No payment with the given id.

    Attributes:
        payment_id: The id that was looked up.
    """

    def __init__(self, payment_id: str) -> None:
        super().__init__(f"no payment {payment_id!r} in the journal")
        self.payment_id = payment_id


class IllegalTransition(JournalError):
    """A state change the payment state machine does not allow.

    Attributes:
        payment_id: The payment.
        current: Its state in the journal.
        requested: The state that was asked for.
    """

    def __init__(self, payment_id: str, current: str, requested: str) -> None:
        super().__init__(f"payment {payment_id!r}: illegal transition {current} -> {requested}")
        self.payment_id = payment_id
        self.current = current
        self.requested = requested


class RefundNotAllowed(JournalError):
    """A refund whose original sale is missing, not settled, or already refunded in full."""


class DuplicateReference(JournalError):
    """The sale already has a refund under this till reference (one refund per reference).

    Attributes:
        existing_id: The refund journaled under it.
    """

    def __init__(self, existing_id: str) -> None:
        super().__init__(f"the reference is already used by refund {existing_id}")
        self.existing_id = existing_id


class CardDataRejected(JournalError):
    """A value about to be written looks like a PAN or a track 2; it is never quoted.

    Attributes:
        field: The field (column or JSON path) that held it.
        kind: ``"PAN"`` or ``"track 2"``.
    """

    def __init__(self, field: str, kind: str) -> None:
        super().__init__(f"{field}: value looks like a {kind}; card data is not journaled")
        self.field = field
        self.kind = kind


class InvalidRecord(JournalError):
    """A malformed field: negative amount, unknown currency shape, a PAN mask showing too much.

    Attributes:
        field: The field that was wrong (``"amount"``), for the till's error body.
    """

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field


class VaultError(JournalError):
    """Base of the store-and-forward vault's errors."""


class VaultKeyError(VaultError):
    """The vault key cannot be used: missing, wrong length, too widely readable, not configured."""


class VaultKeyMismatch(VaultError):
    """The row was sealed under a different key (its key id differs from the current key's)."""


class VaultTampered(VaultError):
    """AES-GCM authentication failed for a row sealed under the current key."""


class VoidNotAllowed(JournalError):
    """A void the journal refuses: not a completed sale, refunded, or of a closed day.

    Attributes:
        code: ``not_voidable`` (kind or state), ``day_closed`` (refund it instead) or
            ``refunded`` (it has refunds).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class DayAlreadyClosed(JournalError):
    """Another day close was journaled since this one read the day (two closes at once)."""
