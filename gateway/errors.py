"""The gateway's one exception tree, drawn once (each leaf lives with the part that raises it).

Tree (``tests/gateway/test_errors.py`` checks this drawing against the classes)::

    GatewayError                  base of everything the gateway raises
    ├── ConfigError               posgw.toml unreadable or invalid (names the field path)
    │   ├── MissingDependency     a configured part needs a library that is not installed
    │   └── TlsConfigError        an MQTT CA, certificate or key cannot be used (sync.tls)
    ├── JournalError              the journal (journal.errors)
    │   ├── JournalClosed         the journal was closed (or never opened)
    │   ├── SchemaError           the file is newer than this code, or not a journal
    │   ├── StorageError          SQLite failed (disk full, I/O error, locked too long)
    │   ├── UnknownPayment        no payment with that id
    │   ├── IllegalTransition     a state change the payment state machine does not allow
    │   ├── RefundNotAllowed      a refund of a sale that cannot be refunded
    │   ├── DuplicateReference    a till reference already names another payment
    │   ├── CardDataRejected      a value on the write path looks like a PAN or a track 2
    │   ├── InvalidRecord         a malformed field (``field`` names it)
    │   ├── VoidNotAllowed        not a completed sale of the current day, or refunded
    │   ├── DayAlreadyClosed      another day close was journaled meanwhile
    │   ├── JournalInUse          another process (a running daemon) owns the journal (journal.lock)
    │   ├── BackupError           a backup cannot be taken or restored (journal.backup)
    │   │   ├── BackupDamaged     the backup does not match its manifest, or is not sound
    │   │   └── BackupNewerSchema written by a newer posgw: never downgraded
    │   └── VaultError            the store-and-forward vault
    │       ├── VaultKeyError     the key is missing, short, too readable, or not configured
    │       ├── VaultKeyMismatch  a row was sealed under another key
    │       └── VaultTampered     a row failed authentication
    ├── AcquirerError             the online payment API (acquirer.errors)
    │   ├── AcquirerUsageError    bad arguments, plain http to a remote host, client not open
    │   ├── AcquirerUnreachable   never reached the host: nothing charged, retry with the key
    │   ├── AnswerLost            sent, no answer: outcome unknown, ``resolve_unknown(key)``
    │   │   └── AcquirerTimeout   the total time-out expired after the request went out
    │   ├── AcquirerServerError   5xx after the bounded retries
    │   ├── AcquirerRejected      4xx: ``status``, ``code``, ``field``
    │   │   ├── IdempotencyConflict  409: the key was used with another request
    │   │   └── NotFound          404: no such authorisation
    │   └── AcquirerProtocolError the answer is not the documented JSON
    ├── ForwardingError           a sealed store-and-forward request cannot be rebuilt
    ├── PaymentError              a lane refuses a till's request (payments.errors)
    │   ├── LaneBusy              a payment is already in progress on the lane
    │   ├── NotCancellable        the card is being processed, or the payment is over
    │   ├── NotForManager         not a terminal payment left for a manager to settle by hand
    │   ├── NoBrandChoice         no brand choice is open, or the brand was not offered
    │   └── UnsupportedDevice     the lane's device is neither a card reader nor a terminal
    ├── RefundError               the refund service (recovery.refunds)
    │   ├── SaleNotFound          no payment with that id
    │   ├── InvalidRefund         a field of the request is wrong (``field``)
    │   └── RefundRejected        the refund cannot be made (``code``)
    ├── SyncError                 head-office sync (sync.errors)
    │   ├── MessageError          a message from head office is malformed
    │   ├── CardDataRefused       an outgoing record looks like it holds card data
    │   ├── PublishRefused        the broker's PUBACK refused a sale (MQTT 5 reason >= 0x80)
    │   ├── LedgerError           the acknowledgement ledger's file (sync.ledger)
    │   └── StockError            the local stock store (sync.stock_store)
    │       ├── StockClosed       the store was used after close()
    │       └── InvalidItems      a basket entry cannot be applied (``field``)
    ├── SecurityError             credentials, the TLS listener, network input (security.errors)
    │   ├── CredentialError       a till or manager credential cannot be added, changed or used
    │   │   ├── UnknownPrincipal  no such (active) till or manager, or no such approval
    │   │   ├── PrincipalExists   a till or manager of that name exists
    │   │   ├── InvalidName       a name outside ``[A-Za-z0-9._-]{1,32}``
    │   │   └── WeakPassword      a manager password shorter than the minimum
    │   ├── TlsSetupError         the listener's certificate or key cannot be read or made
    │   └── InputError            bad input from the network (``field`` names it)
    └── HubClosed                 the lane event hub is closed (till.hub)

Foreign exceptions are translated once, where the foreign library is called, with
``raise ... from exc`` (sqlite3 in the journal and the stock store, aiohttp in the acquirer
client, pydantic and tomllib in the configuration, ssl in sync.tls, drivers' and the kernel's
errors in the payment session). Messages never carry card data: they name the field.
"""

from __future__ import annotations

__all__ = ["ConfigError", "GatewayError", "MissingDependency"]


class GatewayError(Exception):
    """Base of every exception the gateway raises."""


class ConfigError(GatewayError):
    """The configuration is unreadable or invalid; the message names the field path."""


class MissingDependency(ConfigError):
    """A configured part needs a library that is not installed.

    Attributes:
        part: What needs it (``"status page"``, ``"head-office sync"``).
        module: The module that could not be imported.
    """

    def __init__(self, part: str, module: str) -> None:
        super().__init__(f"{part} needs the Python module {module!r}, which is not installed")
        self.part = part
        self.module = module
