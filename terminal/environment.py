"""What a transaction depends on besides the card: the injected environment and the request.

ARCHITECTURE.md, "rules that keep it real": the clock, the unpredictable number and the random
transaction selection are injected, so that a transaction replays bit for bit. The kernel never
calls :func:`datetime.now`, :func:`os.urandom` or :mod:`random` itself; it asks
:class:`Environment`.

:class:`TransactionRequest` is what the till asks for: amount, amount other (cashback),
currency, transaction type (tag 9C, EMV 4.4 Book 3, Annex A; ISO 8583 processing code) and the
cardholder-choice callback used by application selection (Book 1, 12.4). Both the contact flow
and the contactless Entry Point take it.
"""

from __future__ import annotations

import enum
import os
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from terminal.application import Candidate

__all__ = ["ChooseApplication", "Environment", "TransactionRequest", "TransactionType"]


def _system_clock() -> datetime:
    return datetime.now().astimezone()


def _system_un() -> bytes:
    return os.urandom(4)


def _system_percent() -> int:
    return 1 + secrets.randbelow(99)


@dataclass(frozen=True)
class Environment:
    """Injected sources of time and randomness (EMV 4.4 Book 3, 10.6.2; Book 4, 6.5.6).

    Attributes:
        clock: Local date and time of the transaction (tags 9A and 9F21).
        unpredictable_number: Four bytes for tag 9F37 (Book 4, Annex C; called once per
            transaction).
        random_percent: A number 1..99 for random transaction selection (Book 3, 10.6.2).
    """

    clock: Callable[[], datetime]
    unpredictable_number: Callable[[], bytes]
    random_percent: Callable[[], int]

    @classmethod
    def system(cls) -> Environment:
        """The real clock, ``os.urandom`` for the UN and ``secrets`` for the selection draw."""
        return cls(_system_clock, _system_un, _system_percent)

    @classmethod
    def fixed(cls, when: datetime, un: bytes, percent: int = 99) -> Environment:
        """A fixed environment, for tests and replays.

        Args:
            when: The transaction's local date and time.
            un: The 4-byte unpredictable number returned every time.
            percent: The random selection draw (1..99); 99 never selects at a sane target.
        """
        if len(un) != 4:
            raise ValueError("the unpredictable number is 4 bytes")
        if not 1 <= percent <= 99:
            raise ValueError("the random selection draw is 1..99")
        return cls(lambda: when, lambda: un, lambda: percent)


class TransactionType(enum.IntEnum):
    """Transaction Type, tag 9C (EMV 4.4 Book 3, Annex A; first two digits of ISO 8583:1987
    processing code)."""

    PURCHASE = 0x00
    CASH = 0x01
    CASHBACK = 0x09
    REFUND = 0x20


ChooseApplication = Callable[[Sequence[Candidate]], Awaitable[Candidate | None]]
"""Cardholder choice of application (EMV 4.4 Book 1, 12.4): given the candidates in priority
order, return one, or ``None`` to cancel."""


@dataclass(frozen=True)
class TransactionRequest:
    """A payment asked for by the till.

    Attributes:
        amount: Amount, Authorised (9F02) in minor units, cashback included (Book 3, Annex A).
        amount_other: Amount, Other (9F03): the cashback part, in minor units.
        currency_code: Transaction Currency Code (5F2A), numeric ISO 4217 (978 = EUR).
        currency_exponent: Transaction Currency Exponent (5F36).
        transaction_type: Tag 9C.
        transaction_sequence_counter: Tag 9F41 (incremented by the caller per transaction).
        force_online: Merchant forced the transaction online (TVR byte 4 bit 4).
        choose_application: Cardholder choice callback; ``None`` chooses automatically by
            priority (and declines applications that require confirmation, Book 1, 12.4).
        unattended: The terminal is unattended (changes CVM conditions 01/02/04).
    """

    amount: int
    amount_other: int = 0
    currency_code: int = 978
    currency_exponent: int = 2
    transaction_type: TransactionType = TransactionType.PURCHASE
    transaction_sequence_counter: int = 1
    force_online: bool = False
    choose_application: ChooseApplication | None = field(default=None, compare=False)
    unattended: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.amount <= 999_999_999_999:
            raise ValueError("amount must fit n 12 (0..999999999999)")
        if not 0 <= self.amount_other <= self.amount:
            raise ValueError("amount other must be between 0 and the amount")
        if not 0 <= self.currency_code <= 999:
            raise ValueError("currency code is numeric ISO 4217, 0..999")
        if not 0 <= self.transaction_sequence_counter <= 99_999_999:
            raise ValueError("transaction sequence counter must fit n 8")

    @property
    def is_cash(self) -> bool:
        """A cash (manual cash) transaction (9C 01)."""
        return self.transaction_type is TransactionType.CASH

    @property
    def is_cashback(self) -> bool:
        """Purchase with cashback (9C 09, or a purchase with an amount other)."""
        return self.transaction_type is TransactionType.CASHBACK or (
            self.transaction_type is TransactionType.PURCHASE and self.amount_other > 0
        )
