"""Exceptions of the device drivers (readers and payment terminals).

Tree::

    DriverError               base of everything a driver raises
    ├── ConfigurationError    bad device URL, unknown scheme, backend library missing
    ├── DeviceUnavailable     device not reachable / not ready (service down, not plugged in)
    │   └── ReaderRemoved     the reader went away (unplugged, service restarted)
    ├── NoCard                no card in the reader (nothing to power on / talk to)
    │   └── CardRemoved       the card left the reader (during or between exchanges)
    ├── DeviceBusy            another client holds the device exclusively
    ├── DeviceClosed          the device object was closed (or never opened)
    ├── Timeout               the device did not answer in time (also a ``TimeoutError``)
    └── ProtocolError         the device answered something that breaks its protocol

Foreign exceptions (pyscard, ``OSError``, pyserial) are translated once, in the backend hook
that called the foreign library, with ``raise ... from exc``; the public template methods of
:mod:`drivers.base` let only :class:`DriverError` out. An expected payment outcome (declined,
cancelled at the terminal) is a returned value, never an exception.

Messages never contain card data: they say what failed and where (reader name, operation,
status code), never which bytes were exchanged.
"""

from __future__ import annotations

__all__ = [
    "CardRemoved",
    "ConfigurationError",
    "DeviceBusy",
    "DeviceClosed",
    "DeviceUnavailable",
    "DriverError",
    "NoCard",
    "ProtocolError",
    "ReaderRemoved",
    "Timeout",
]


class DriverError(Exception):
    """Base of every exception raised by :mod:`drivers`.

    Attributes:
        message: What failed, without card data.
        device: The device URL or reader name concerned, where known.
        delivered: True when the failure came after the device had the request (a payment
            terminal that ACKed it): the outcome is unknown and must be resolved (status
            query or reversal). False when nothing reached the device, or not applicable.
    """

    def __init__(self, message: str, *, device: str | None = None,
                 delivered: bool = False) -> None:
        self.message = message
        self.device = device
        self.delivered = delivered
        super().__init__(f"{message} [{device}]" if device else message)


class ConfigurationError(DriverError):
    """The device cannot be set up as configured (URL, scheme, missing backend library)."""


class DeviceUnavailable(DriverError):
    """The device is not reachable now; a supervisor may retry later."""


class ReaderRemoved(DeviceUnavailable):
    """The reader disappeared (unplugged, or the smart-card service restarted)."""


class NoCard(DriverError):
    """No card is present (or powered) in the reader."""


class CardRemoved(NoCard):
    """The card was removed from the reader; the card session is over."""


class DeviceBusy(DriverError):
    """Another client holds the device (exclusive access refused)."""


class DeviceClosed(DriverError):
    """The device object is closed (or was never opened)."""


class Timeout(DriverError, TimeoutError):
    """The device did not answer within the allowed time."""


class ProtocolError(DriverError):
    """The device's answer breaks its protocol (too short, bad framing, unexpected state)."""
