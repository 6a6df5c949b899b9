"""Masking of card numbers that a terminal puts in free-text answer fields.

A Concert V2 answer has a 55-character "report" field and a Caisse-AP answer a PAN field (AA)
that terminals fill with a partial PAN, a token, or (older terminals, magnetic stripe) the full
card number. The codecs mask on decode, so a full PAN never reaches a dataclass, a repr, a log
line or an exception: every run of 11 or more digits keeps at most its first 6 and last 4 digits
(PCI DSS 3.4 display rule), the rest becomes ``*``.
"""

from __future__ import annotations

import re

__all__ = ["mask_digits"]

_LONG_DIGIT_RUN = re.compile(r"[0-9]{11,}")


def _mask_run(match: re.Match[str]) -> str:
    run = match.group(0)
    return run[:6] + "*" * (len(run) - 10) + run[-4:]


def mask_digits(text: str) -> str:
    """Mask every run of 11+ digits to first 6 + ``*`` + last 4; other text is unchanged.

    >>> mask_digits("4970101234567894 1226")
    '497010******7894 1226'
    """
    return _LONG_DIGIT_RUN.sub(_mask_run, text)
