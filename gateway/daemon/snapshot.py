"""The daemon's status snapshot, typed: what the status page, ``/status.json`` and the metrics read.

:meth:`gateway.daemon.daemon.Daemon.snapshot` fills one :class:`Snapshot` per request from the
parts' own counters (lanes, journal figures, acquirer health, sync diagnostics);
:meth:`Snapshot.to_json` gives the JSON documented in docs/daemon.md and docs/status-page.md
(field order and names are that document's). Masked data only: a lane's payment carries its
masked PAN, never more.

This module imports nothing else of the gateway, so :mod:`gateway.web` can depend on it alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

__all__ = [
    "AcquirerStatus",
    "JournalFigures",
    "LaneSnapshot",
    "MqttStatus",
    "PaymentInProgress",
    "Snapshot",
    "StockStatus",
]


@dataclass(slots=True)
class PaymentInProgress:
    """The payment a lane is taking now (its journal state when the snapshot was taken)."""

    id: str
    amount: int
    currency: str
    masked_pan: str | None
    started_at: str | None
    state: str


@dataclass(slots=True)
class LaneSnapshot:
    """One lane: its device's lifecycle, its prompt, the payment in progress and the last one.

    Attributes:
        device: The device supervisor's diagnostics (state, since, last error...).
        last: The last payment as the till saw it (``LaneView.to_json``), or None.
        for_manager: Payment ids on a smart-terminal lane that the terminal could not settle
            (UNKNOWN): the manager decides (docs/tpe.md).
    """

    id: int
    name: str
    reader: str
    interface: str
    device: dict[str, Any]
    prompt: str
    payment: PaymentInProgress | None = None
    last: dict[str, Any] | None = None
    for_manager: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JournalFigures:
    """Today's figures from the journal, and what waits for recovery."""

    payments_today: int = 0
    approved_today: int = 0
    declined_today: int = 0
    refunds_today: int = 0
    outbox_backlog: int = 0
    awaiting_recovery: int = 0


@dataclass(frozen=True, slots=True)
class AcquirerStatus:
    """Whether the acquirer answered lately."""

    url: str
    reachable: bool | None
    last_error: str | None
    last_success: str | None


@dataclass(frozen=True, slots=True)
class MqttStatus:
    """Head-office sync, as its workers report it."""

    enabled: bool = False
    connected: bool = False
    backlog: int = 0
    last_error: str | None = None
    last_publish: Any = None


@dataclass(frozen=True, slots=True)
class StockStatus:
    """The local stock: how many products, and those at or below the low-stock level."""

    enabled: bool = False
    skus: int = 0
    low_threshold: int | None = None
    #: ``{"sku": str, "level": int}`` of each low product, sorted by SKU.
    low: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Snapshot:
    """The whole status (see the module docstring)."""

    shop: str
    version: str
    ready: bool
    started_at: str | None
    now: str | None
    lanes: list[LaneSnapshot] = field(default_factory=list)
    journal: JournalFigures = field(default_factory=JournalFigures)
    acquirer: AcquirerStatus | None = None
    mqtt: MqttStatus = field(default_factory=MqttStatus)
    stock: StockStatus = field(default_factory=StockStatus)
    #: The day in money (docs/day.md, docs/status-page.md): ``takings`` (currency -> minor
    #: units), ``last_payments``, ``approval_rate``, ``median_auth_ms``, ``declined_forwards``,
    #: ``offline`` (per currency: held against the limits, why offline sales stopped) and
    #: ``day`` (when it opened, ``since`` when the takings start, the last close and its
    #: differences); ``declined_forwards_more`` (beyond the 20 listed). None without a journal.
    money: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON-safe dict of docs/daemon.md (``/status.json``).

        What ``dataclasses.asdict`` gives (new dicts and lists all the way down), without its
        ``copy.deepcopy`` of every string and number: a fifth of its cost, which with 16 lanes
        was the page's largest part (docs/performance.md).
        """
        result = _plain(self)
        assert isinstance(result, dict)
        return result


_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """``value`` with dataclasses as dicts, and every dict, list and tuple a new one."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value  # immutable: shared, not copied
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(item) for item in value)
    if is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS.get(type(value))
        if names is None:
            names = _FIELDS[type(value)] = tuple(f.name for f in fields(value))
        return {name: _plain(getattr(value, name)) for name in names}
    return value  # nothing else is found in a snapshot; returned as it is
