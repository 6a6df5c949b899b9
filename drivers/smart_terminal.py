"""Smart payment terminals (TPE): the device runs EMV itself, the gateway asks for a payment.

:class:`SmartTerminal` is the facade a Concert V2 / Caisse-AP backend implements: ``pay``,
``refund``, ``void`` (cancellation of an earlier debit), ``cancel`` (of the one in progress),
``last_transaction_status``, ``end_of_day``, with progress events. An expected outcome
(declined, cancelled at the keypad) is a returned :class:`TransactionResult`; an exception
means the terminal could not be driven (gone, timeout, protocol broken), so the caller must
resolve the outcome with :meth:`SmartTerminal.last_transaction_status`.

Amounts are integers in minor units with an ISO 4217 currency, alpha (``"EUR"``) or numeric
(``"978"``), translated with the ``iso4217`` package's table (the one ``terminal/currency.py``
reads too; drivers may not import ``terminal``). Results carry a masked PAN only (first 6 +
last 4 at most, PCI DSS 3.4).
"""

from __future__ import annotations

import abc
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import iso4217

from drivers.base import Device

__all__ = [
    "EndOfDayResult",
    "Money",
    "Progress",
    "ProgressCallback",
    "ProgressStage",
    "SmartTerminal",
    "TransactionKind",
    "TransactionResult",
    "TransactionStatus",
]

#: ISO 4217 alpha -> numeric (three digits) and back, every currency of the table.
_ISO4217 = {entry.code: f"{entry.number:03d}" for entry in iso4217.Currency}
_NUMERIC_TO_ALPHA = {num: alpha for alpha, num in _ISO4217.items()}
_MASKED_PAN = re.compile(r"[0-9]{0,6}[*Xx#]*[0-9]{0,4}")


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units (cents) and an ISO 4217 currency code.

    Raises:
        ValueError: negative amount or a currency that is neither 3 letters nor 3 digits.
    """

    minor_units: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.minor_units, bool) or not isinstance(self.minor_units, int):
            raise TypeError("minor_units must be an int")
        if self.minor_units < 0:
            raise ValueError("amount must not be negative")
        code = self.currency.upper()
        if not (re.fullmatch(r"[A-Z]{3}", code) or re.fullmatch(r"[0-9]{3}", code)):
            raise ValueError("currency must be an ISO 4217 alpha or numeric code")
        object.__setattr__(self, "currency", code)

    @property
    def numeric(self) -> str | None:
        """ISO 4217 numeric code (``"978"``), None for an alpha code outside the table."""
        return self.currency if self.currency.isdigit() else _ISO4217.get(self.currency)

    @property
    def alpha(self) -> str | None:
        """ISO 4217 alpha code (``"EUR"``), None for a numeric code outside the table."""
        return self.currency if self.currency.isalpha() else _NUMERIC_TO_ALPHA.get(self.currency)


class TransactionKind(enum.Enum):
    """What was asked of the terminal.

    ``CANCELLATION`` is the void of an earlier transaction (Concert V2 type 2, Caisse-AP
    CD 2), not the till giving up on the transaction in progress (that is
    :meth:`SmartTerminal.cancel`, whose result keeps the kind of what was cancelled).
    """

    PAYMENT = "payment"
    REFUND = "refund"
    CANCELLATION = "cancellation"


class TransactionStatus(enum.Enum):
    """The outcome of a transaction at the terminal."""

    APPROVED = "approved"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class TransactionResult:
    """What the terminal answered.

    Attributes:
        status: Approved, declined, cancelled or error.
        kind: Payment, refund or cancellation (void of an earlier transaction).
        amount: The amount the terminal reports (may differ from the request).
        masked_pan: First 6 + last 4 at most, the rest masked; None when not given.
        auth_code: Authorisation code from the issuer, where approved online.
        reference: The till's or terminal's transaction reference.
        message: Human-readable detail from the terminal (already masked by the codec).
        private_data: Raw protocol-specific data, for the journal (masked by the codec).
    """

    status: TransactionStatus
    kind: TransactionKind
    amount: Money
    masked_pan: str | None = None
    auth_code: str | None = None
    reference: str | None = None
    message: str = ""
    private_data: bytes = b""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pan = self.masked_pan
        if pan is not None and (
            not _MASKED_PAN.fullmatch(pan) or sum(c.isdigit() for c in pan) > 10
        ):
            raise ValueError("masked_pan must keep at most the first 6 and last 4 digits")

    @property
    def approved(self) -> bool:
        """True when the transaction was approved."""
        return self.status is TransactionStatus.APPROVED


@dataclass(frozen=True, slots=True)
class EndOfDayResult:
    """Outcome of an end-of-day (batch close / remittance) at the terminal."""

    ok: bool
    transactions: int | None = None
    totals: dict[str, Money] = field(default_factory=dict)
    message: str = ""


class ProgressStage(enum.Enum):
    """Stages a terminal reports while a transaction runs."""

    SENT = "sent"
    WAITING_CARD = "waiting_card"
    CARD_READ = "card_read"
    PIN_ENTRY = "pin_entry"
    AUTHORISING = "authorising"
    PRINTING = "printing"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress event (shown to the cashier)."""

    stage: ProgressStage
    message: str = ""


ProgressCallback = Callable[[Progress], None]


class SmartTerminal(Device):
    """A payment terminal that runs the card transaction itself (Concert, Caisse-AP...)."""

    @abc.abstractmethod
    async def pay(
        self,
        amount: Money,
        *,
        reference: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> TransactionResult:
        """Ask the terminal for a payment of ``amount``; returns the outcome.

        Raises:
            DriverError: the terminal could not be driven; the outcome is unknown.
        """

    @abc.abstractmethod
    async def refund(
        self,
        amount: Money,
        *,
        reference: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> TransactionResult:
        """Ask the terminal for a refund (credit) of ``amount``; returns the outcome."""

    @abc.abstractmethod
    async def void(
        self,
        amount: Money,
        *,
        reference: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> TransactionResult:
        """Cancel (void, "annulation") an earlier approved debit of ``amount``, same day.

        Concert V2 sends transaction type 2, Caisse-AP CD 2, each with the amount and
        ``reference`` (the private field: Concert V2's 10 characters, Caisse-AP's CF) that the
        debit was sent under, which is how the terminal finds the debit to cancel. The result's
        kind is CANCELLATION; declined when the terminal has no such debit to cancel (already
        cancelled, or remitted at its end of day: then it is a refund).

        Raises:
            DriverError: the terminal could not be driven; the outcome is unknown when
                ``delivered`` is set.
        """

    @abc.abstractmethod
    async def cancel(self) -> None:
        """Ask the terminal to abort the transaction in progress (best effort)."""

    @abc.abstractmethod
    async def last_transaction_status(self) -> TransactionResult | None:
        """The outcome of the last transaction, to resolve a lost answer (None: none known)."""

    @abc.abstractmethod
    async def end_of_day(self) -> EndOfDayResult:
        """Close the batch / send the day's remittance."""
