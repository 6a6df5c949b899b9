"""Card-number checks shared by every part that must recognise a PAN (journal guard, status page).

A leaf module: it imports nothing of the gateway, so the journal's write-path guard
(:mod:`gateway.journal.guard`) and the status page's scrubbing (:mod:`gateway.web.values`) use
one definition without the page importing the journal.
"""

from __future__ import annotations

__all__ = ["luhn_ok"]


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of ISO/IEC 7812-1, Annex B, on a string of digits."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0
