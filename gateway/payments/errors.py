"""Why a lane refuses a till's request (the branch ``PaymentError`` of :mod:`gateway.errors`).

An expected payment outcome (declined, cancelled, in doubt) is never an exception: it is a
:class:`gateway.payments.policy.Verdict` and a journal state. These are the till's mistakes and
the lane's configuration errors.
"""

from __future__ import annotations

from gateway.errors import GatewayError

__all__ = [
    "LaneBusy",
    "NoBrandChoice",
    "NotCancellable",
    "NotForManager",
    "PaymentError",
    "UnsupportedDevice",
]


class PaymentError(GatewayError):
    """Base of the payment lanes' errors."""


class LaneBusy(PaymentError):
    """The lane already has a payment in progress."""


class NotCancellable(PaymentError):
    """The card is being processed: the payment can no longer be cancelled."""


class NotForManager(PaymentError):
    """The payment is not a terminal payment left for the manager to settle by hand.

    Only a smart-terminal payment the terminal itself could not settle (UNKNOWN, flagged for
    the manager by :class:`gateway.payments.terminal_recovery.TerminalRecovery`) is settled by
    hand; everything else is settled by the terminal or the acquirer, never by a person.
    """


class NoBrandChoice(PaymentError):
    """The payment offers no brand choice now, or the brand chosen was not among those offered.

    Attributes:
        offered: Whether a choice is open (then the AID was not one of its brands).
    """

    def __init__(self, message: str, *, offered: bool) -> None:
        super().__init__(message)
        self.offered = offered


class UnsupportedDevice(PaymentError):
    """The lane's device is neither a card reader nor a smart payment terminal.

    Attributes:
        kind: The type name of what the device URL opened.
    """

    def __init__(self, kind: str) -> None:
        super().__init__(f"a lane needs a card reader or a payment terminal, not a {kind}")
        self.kind = kind
