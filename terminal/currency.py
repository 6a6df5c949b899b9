"""ISO 4217 currencies the terminal needs: numeric code (5F2A) and minor-unit exponent (5F36)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from terminal.errors import EmvError

__all__ = ["CURRENCIES", "Currency", "CurrencyError", "currency", "to_minor_units"]


class CurrencyError(EmvError):
    """An unknown currency or an amount that does not fit it."""


class Currency:
    """One ISO 4217 currency."""

    __slots__ = ("alpha", "exponent", "numeric")

    def __init__(self, alpha: str, numeric: int, exponent: int) -> None:
        self.alpha = alpha
        self.numeric = numeric
        self.exponent = exponent

    def __repr__(self) -> str:
        return f"Currency({self.alpha}, {self.numeric:03d}, exponent {self.exponent})"


# The currencies of the EEA, UK, Switzerland and the main card-scheme currencies (ISO 4217).
CURRENCIES: dict[str, Currency] = {
    c.alpha: c
    for c in (
        Currency("EUR", 978, 2), Currency("GBP", 826, 2), Currency("CHF", 756, 2),
        Currency("USD", 840, 2), Currency("SEK", 752, 2), Currency("DKK", 208, 2),
        Currency("NOK", 578, 2), Currency("PLN", 985, 2), Currency("CZK", 203, 2),
        Currency("HUF", 348, 2), Currency("RON", 946, 2), Currency("BGN", 975, 2),
        Currency("ISK", 352, 0), Currency("JPY", 392, 0), Currency("CAD", 124, 2),
        Currency("AUD", 36, 2), Currency("XPF", 953, 0), Currency("MAD", 504, 2),
    )
}  # fmt: skip
_BY_NUMERIC = {c.numeric: c for c in CURRENCIES.values()}


def currency(code: str | int) -> Currency:
    """Look a currency up by alphabetic (``"EUR"``) or numeric (``978``/``"978"``) code.

    Raises:
        CurrencyError: for a code not in :data:`CURRENCIES`.
    """
    text = str(code).strip().upper()
    if text.isdigit() and int(text) in _BY_NUMERIC:
        return _BY_NUMERIC[int(text)]
    if text in CURRENCIES:
        return CURRENCIES[text]
    raise CurrencyError(f"unknown currency {text!r}")


def to_minor_units(amount: str, cur: Currency) -> int:
    """Convert a decimal amount (``"12.50"``) to minor units (1250 for EUR).

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
