"""Device events and errors of the Concert-family payment terminal drivers.

The results themselves are :class:`drivers.smart_terminal.TransactionResult`. Outcomes and
errors are different things: an answer from the terminal (approved, declined, cancelled, error
status) is a returned result; an exception means the outcome is not known from this exchange.
Where the request was *not delivered* (no ACK, line gone before the request went out) nothing
happened at the terminal; where it was delivered and the answer is missing or unreadable, the
caller must resolve the outcome with ``last_transaction_status()`` or a reversal::

    DriverError (drivers.errors)
    ├── DeviceUnavailable
    │   └── TerminalUnavailable   line gone, device missing, no ACK to ENQ
    ├── DeviceBusy
    │   └── TerminalBusy          ENQ refused (NAK), or a transaction is already running
    ├── Timeout                   delivered, no answer within answer_timeout
    └── ProtocolError
        ├── drivers.protocols.errors.ProtocolError   bad frames / fields (field, offset)
        └── RequestRejected       the terminal NAKed our request frame on every try

Each of these carries ``delivered`` (:class:`~drivers.errors.DriverError`'s attribute: True when
the terminal had the request), so the gateway knows whether a reversal may be needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.errors import DeviceBusy, DeviceUnavailable
from drivers.errors import ProtocolError as DriverProtocolError

__all__ = ["RequestRejected", "TerminalBusy", "TerminalEvent", "TerminalUnavailable"]


@dataclass(frozen=True, slots=True)
class TerminalEvent:
    """A device-level event outside the transaction progress (status page, metrics, alarms).

    ``kind`` is one of: ``late_answer`` (an answer after the till gave up; ``detail`` is its
    status: an approved late payment must be reversed), ``duplicate_answer``,
    ``unexpected_answer``, ``link_down``, ``link_up``, ``cancel_requested``.
    """

    kind: str
    detail: str = ""


class TerminalUnavailable(DeviceUnavailable):
    """The terminal cannot be reached (line gone, device missing, no ACK to ENQ)."""


class TerminalBusy(DeviceBusy):
    """The terminal refused the enquiry (NAK), or another transaction is running."""


class RequestRejected(DriverProtocolError):
    """The terminal refused our request frame on every try (NAK or no ACK)."""
