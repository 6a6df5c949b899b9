"""Errors of head-office sync (docs/sync.md).

The tree is short on purpose (the aiomqtt/httpx habit: foreign exceptions are translated once,
at the boundary, with ``raise ... from exc``)::

    SyncError
    ├── MessageError        a message from head office is malformed (topic, field, why)
    ├── CardDataRefused     an outgoing record looks like it holds card data; never quoted
    ├── PublishRefused      the broker's PUBACK refused a sale (MQTT 5 reason code >= 0x80)
    └── LedgerError         the acknowledgement ledger's SQLite file failed (gateway.sync.ledger)

Broker outages are not errors of this tree: the publisher and the stock subscriber catch
``aiomqtt.MqttError``, record it in ``diagnostics()`` and reconnect with jittered backoff.
Stock store errors live in :mod:`gateway.sync.stock_store`.
"""

from __future__ import annotations

from gateway.errors import GatewayError

__all__ = ["CardDataRefused", "MessageError", "PublishRefused", "SyncError"]


class SyncError(GatewayError):
    """Base of the sync errors."""


class MessageError(SyncError):
    """A stock message from head office cannot be applied.

    Attributes:
        topic: The MQTT topic it came on.
        field: The field that was wrong (``"version"``), or ``"payload"``.
    """

    def __init__(self, topic: str, field: str, why: str) -> None:
        super().__init__(f"{topic}: {field}: {why}")
        self.topic = topic
        self.field = field


class CardDataRefused(SyncError):
    """An outgoing sale record holds something shaped like a PAN or track 2 (never quoted).

    Attributes:
        field: The JSON path of the offending value (``"items[0].note"``).
    """

    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: looks like card data; not published")
        self.field = field


class PublishRefused(SyncError):
    """The broker answered a sale's PUBLISH with a failure reason code (MQTT 5, 3.4.2.1).

    The sale stays unsent in the journal and is tried again after a reconnect with backoff
    (a quota or an authorization may change; the reason is kept in the diagnostics).

    Attributes:
        reason: The broker's reason, e.g. ``"Not authorized (0x87)"``.
        count: How many sales of the window were refused.
    """

    def __init__(self, reason: str, count: int) -> None:
        super().__init__(f"broker refused {count} sale(s): {reason}")
        self.reason = reason
        self.count = count
