"""ISO 4217 currencies: numeric code (5F2A) and minor-unit exponent (5F36), from the ``iso4217``
package (the ISO 4217 maintenance agency's table, republished with each amendment).

One table for the whole project: the kernel, the gateway and the simulator call
:func:`currency`; the drivers read the same package directly (they may not import
``terminal``). A currency whose minor unit the table gives as "N.A." (gold ``XAU``, the test
code ``XTS``...) has no exponent for tag 5F36 and is refused like an unknown code.

Three-decimal currencies (KWD, BHD, TND, ...) have exponent 3: 12.345 KWD is 12345 minor units
in Amount, Authorised (9F02), with 5F36 = 03 (EMV 4.4 Book 3, Annex A; Book 4, 6.3.3).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Final

import iso4217

from terminal.errors import EmvError

__all__ = ["CURRENCIES", "TABLE_PUBLISHED", "Currency", "CurrencyError", "currency",
           "to_minor_units"]  # fmt: skip


class CurrencyError(EmvError):
    """An unknown currency or an amount that does not fit it."""


class Currency:
    """One ISO 4217 currency: alphabetic code, numeric code and minor-unit exponent."""

    __slots__ = ("alpha", "exponent", "numeric")

    def __init__(self, alpha: str, numeric: int, exponent: int) -> None:
        self.alpha = alpha
        self.numeric = numeric
        self.exponent = exponent

    def __repr__(self) -> str:
        return f"Currency({self.alpha}, {self.numeric:03d}, exponent {self.exponent})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Currency):
            return NotImplemented
        return (self.alpha, self.numeric, self.exponent) == (
            other.alpha, other.numeric, other.exponent)  # fmt: skip

    def __hash__(self) -> int:
        return hash((self.alpha, self.numeric, self.exponent))


def _load() -> dict[str, Currency]:
    table: dict[str, Currency] = {}
    for entry in iso4217.Currency:
        exponent = entry.exponent
        if exponent is None:
            continue  # no minor unit (precious metals, test and fund codes): nothing for 5F36
        table[entry.code] = Currency(entry.code, entry.number, exponent)
    return table


#: Every currency of the ISO 4217 table that has a minor unit, by alphabetic code.
CURRENCIES: Final = MappingProxyType(_load())
#: The publication date of the ISO 4217 table in use.
TABLE_PUBLISHED: Final = iso4217.__published__
_BY_NUMERIC: Final = MappingProxyType({c.numeric: c for c in CURRENCIES.values()})


def currency(code: str | int) -> Currency:
    """Look a currency up by alphabetic (``"EUR"``) or numeric (``978``/``"978"``) code.

    Raises:
        CurrencyError: for a code not in the ISO 4217 table, or one without a minor unit.
    """
    text = str(code).strip().upper()
    if text.isdigit() and text.isascii() and int(text) in _BY_NUMERIC:
        return _BY_NUMERIC[int(text)]
    if text in CURRENCIES:
        return CURRENCIES[text]
    raise CurrencyError(f"unknown currency {text[:8]!r} (not in ISO 4217 of {TABLE_PUBLISHED})")


def to_minor_units(amount: str, cur: Currency) -> int:
    """Convert a decimal amount (``"12.50"``) to minor units (1250 for EUR, 12500 for KWD).

    Raises:
        CurrencyError: for a malformed or negative amount, or more decimals than the currency has.
    """
    try:
        value = Decimal(amount)
    except InvalidOperation as exc:
        raise CurrencyError(f"amount {amount!r} is not a decimal number") from exc
    if not value.is_finite() or value < 0:
        raise CurrencyError(f"amount {amount!r} must be a non-negative number")
    minor = value.scaleb(cur.exponent)
    if minor != minor.to_integral_value():
        raise CurrencyError(f"{cur.alpha} has {cur.exponent} decimals; {amount!r} has more")
    if minor >= 10**12:
        raise CurrencyError(f"amount {amount!r} exceeds 12 digits (9F02)")
    return int(minor)
