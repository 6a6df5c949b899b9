"""The crash-safe payment journal, sale outbox and store-and-forward vault (docs/journal.md).

One SQLite file (WAL, ``synchronous=FULL``) behind an asyncio API whose SQLite work runs on one
dedicated thread. Every payment state change is committed, with its event row, before the side
effect it announces; a settled sale's record for head office is written to the outbox in the
same transaction; an offline-approved payment's authorisation request is sealed with AES-GCM and
purged once forwarded; no clear PAN or track 2 is ever written outside that sealed blob.
"""

from __future__ import annotations

from gateway.journal.errors import (
    CardDataRejected,
    DayAlreadyClosed,
    DuplicateReference,
    IllegalTransition,
    InvalidRecord,
    JournalClosed,
    JournalError,
    RefundNotAllowed,
    SchemaError,
    StorageError,
    UnknownPayment,
    VaultError,
    VaultKeyError,
    VaultKeyMismatch,
    VaultTampered,
    VoidNotAllowed,
)
from gateway.journal.journal import Journal
from gateway.journal.records import (
    Event,
    HostApproval,
    OutboxItem,
    Payment,
    PendingPayment,
    Recovery,
    TerminalTotals,
)
from gateway.journal.schema import SCHEMA_VERSION
from gateway.journal.states import Action, PaymentKind, PaymentState
from gateway.journal.vault import VaultKey, load_vault_key

__all__ = [
    "SCHEMA_VERSION",
    "Action",
    "CardDataRejected",
    "DayAlreadyClosed",
    "DuplicateReference",
    "Event",
    "HostApproval",
    "IllegalTransition",
    "InvalidRecord",
    "Journal",
    "JournalClosed",
    "JournalError",
    "OutboxItem",
    "Payment",
    "PaymentKind",
    "PaymentState",
    "PendingPayment",
    "Recovery",
    "RefundNotAllowed",
    "SchemaError",
    "StorageError",
    "TerminalTotals",
    "UnknownPayment",
    "VaultError",
    "VaultKey",
    "VaultKeyError",
    "VaultKeyMismatch",
    "VaultTampered",
    "VoidNotAllowed",
    "load_vault_key",
]
