"""How a virtual terminal decides: amount rules, and the hook for a real virtual EMV card.

A virtual terminal asks a :data:`CardHook` what happens to each transaction. The default,
:func:`amount_rules`, is deterministic so that tests and demos can choose the outcome by the
amount alone:

=====================================  =================================================
amount (minor units)                   outcome
=====================================  =================================================
cents ``13`` (e.g. 10.13)              declined by the "issuer"
cents ``99`` (e.g. 4.99)               cancelled by the cardholder at the keypad
above ``MAX_AMOUNT`` (10,000.00)       declined (over the terminal's floor)
anything else                          approved, authorisation code derived from amount
=====================================  =================================================

A hook that runs a virtual EMV card (the simulator's cards through the EMV kernel) can be
plugged in later with the same signature.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["MAX_AMOUNT", "TEST_PAN", "CardHook", "Decision", "amount_rules"]

MAX_AMOUNT = 1_000_000
#: A test card number (Luhn-valid, BIN of a test range); the Concert V2 virtual terminal sends
#: it in clear like an old terminal would, so the driver's masking is exercised end to end.
TEST_PAN = "4970100000000014"


@dataclass(frozen=True, slots=True)
class Decision:
    """What the cardholder, card and issuer did.

    Attributes:
        approved: The transaction went through.
        cancelled: The cardholder pressed the red key (not approved).
        auth_code: Authorisation number (approved only).
        pan: The card number the terminal read.
        expiry: YYMM.
        aid: The application the terminal selected (CB's AID by default).
    """

    approved: bool
    cancelled: bool = False
    auth_code: str | None = None
    pan: str = field(default=TEST_PAN, repr=False)  # card data: never in a repr
    expiry: str = "2812"
    aid: str = "A0000000421010"


#: ``hook(action, amount, currency) -> Decision``; action is payment, refund or cancellation.
CardHook = Callable[[str, int, str], Decision]


def amount_rules(action: str, amount: int, currency: str) -> Decision:
    """The default decision (see the module docstring)."""
    cents = amount % 100
    if cents == 99:
        return Decision(approved=False, cancelled=True)
    if cents == 13 or amount > MAX_AMOUNT:
        return Decision(approved=False)
    return Decision(approved=True, auth_code=f"{(amount * 7919 + 17) % 1_000_000:06d}")
