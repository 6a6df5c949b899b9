"""Test outcomes chosen by amount and PAN: the sandbox's magic numbers (docs/sandbox.md).

An integrator reaches every answer their till will meet in production by the amount they
type, or by the test card they use, without configuring the simulator. The amounts are in
minor units (``9905`` is 99.05 EUR, or 9905 JPY); the PAN rules look at the last four digits
(a virtual card profile of one's own with such a PAN, on a BIN an issuer serves). The
amount wins when both match. Any other amount and PAN: the issuer decides (approve when the
ARQC verifies).

``posgw-sim acquirer --no-test-rules`` turns the table off; every outcome also exists as a
CLI fault option that applies to every authorisation (:mod:`simulator.cli_acquirer`).
"""

from __future__ import annotations

import enum

__all__ = ["AMOUNT_RULES", "ISSUER_CODES", "PAN_SUFFIX_RULES", "Outcome", "outcome_for"]


class Outcome(enum.Enum):
    """What the host does with one authorisation."""

    APPROVE = "approve"
    DO_NOT_HONOUR = "05"
    INSUFFICIENT_FUNDS = "51"
    WRONG_PIN = "55"
    ISSUER_UNAVAILABLE = "91"
    TIMEOUT = "timeout"
    SERVER_ERROR = "5xx"
    SERVER_ERROR_ONCE = "5xx-once"
    ANSWER_LOST = "answer-lost"


#: Outcomes that are an issuer's response code (with a valid ARPC, except 91 which has none).
ISSUER_CODES = {
    Outcome.DO_NOT_HONOUR: "05",
    Outcome.INSUFFICIENT_FUNDS: "51",
    Outcome.WRONG_PIN: "55",
    Outcome.ISSUER_UNAVAILABLE: "91",
}

#: Amount (minor units) → outcome. Kept in one table with docs/sandbox.md (a test compares).
AMOUNT_RULES: dict[int, Outcome] = {
    9905: Outcome.DO_NOT_HONOUR,
    9951: Outcome.INSUFFICIENT_FUNDS,
    9955: Outcome.WRONG_PIN,
    9991: Outcome.ISSUER_UNAVAILABLE,
    9970: Outcome.TIMEOUT,
    9950: Outcome.SERVER_ERROR,
    9953: Outcome.SERVER_ERROR_ONCE,
    9960: Outcome.ANSWER_LOST,
}

#: Last four PAN digits → outcome.
PAN_SUFFIX_RULES: dict[str, Outcome] = {
    "9905": Outcome.DO_NOT_HONOUR,
    "9951": Outcome.INSUFFICIENT_FUNDS,
    "9955": Outcome.WRONG_PIN,
    "9991": Outcome.ISSUER_UNAVAILABLE,
}


def outcome_for(amount: int, pan: str) -> Outcome:
    """The scripted outcome of an authorisation of ``amount`` (minor units) with ``pan``."""
    by_amount = AMOUNT_RULES.get(amount)
    if by_amount is not None:
        return by_amount
    return PAN_SUFFIX_RULES.get(pan[-4:], Outcome.APPROVE)
