"""Reader and payment-terminal drivers behind one async interface.

Open a device by URL; the scheme picks the backend, imported only when used::

    async with await open_device("pcsc://Virtual PCD 00 00") as reader:
        atr = await reader.wait_for_card(timeout=30)
        rapdu = await reader.transceive(bytes.fromhex("00A404000E315041592E5359532E444446303100"))

Backends: ``pcsc`` (pyscard -> pcscd), ``serial`` and ``tcp`` (Concert V2 / Caisse-AP payment
terminals), ``sim`` (in-process virtual card, a real backend). Errors: :mod:`drivers.errors`.
"""

from __future__ import annotations

from drivers.base import (
    CardReader,
    Device,
    DeviceState,
    EventStream,
    Interface,
    PinPadCapabilities,
    ReaderEvent,
    ReaderEventKind,
    classify_interface,
)
from drivers.errors import (
    CardRemoved,
    ConfigurationError,
    DeviceBusy,
    DeviceClosed,
    DeviceUnavailable,
    DriverError,
    NoCard,
    ProtocolError,
    ReaderRemoved,
    Timeout,
)
from drivers.executor import DeviceExecutor, LoopBridge
from drivers.lifecycle import Backoff, DeviceSupervisor, SupervisorState
from drivers.registry import (
    DeviceUrl,
    create_device,
    open_device,
    parse_url,
    register_backend,
)
from drivers.smart_terminal import (
    EndOfDayResult,
    Money,
    Progress,
    ProgressCallback,
    ProgressStage,
    SmartTerminal,
    TransactionKind,
    TransactionResult,
    TransactionStatus,
)

__all__ = [
    "Backoff",
    "CardReader",
    "CardRemoved",
    "ConfigurationError",
    "Device",
    "DeviceBusy",
    "DeviceClosed",
    "DeviceExecutor",
    "DeviceState",
    "DeviceSupervisor",
    "DeviceUnavailable",
    "DeviceUrl",
    "DriverError",
    "EndOfDayResult",
    "EventStream",
    "Interface",
    "LoopBridge",
    "Money",
    "NoCard",
    "PinPadCapabilities",
    "Progress",
    "ProgressCallback",
    "ProgressStage",
    "ProtocolError",
    "ReaderEvent",
    "ReaderEventKind",
    "ReaderRemoved",
    "SmartTerminal",
    "SupervisorState",
    "Timeout",
    "TransactionKind",
    "TransactionResult",
    "TransactionStatus",
    "classify_interface",
    "create_device",
    "open_device",
    "parse_url",
    "register_backend",
]
