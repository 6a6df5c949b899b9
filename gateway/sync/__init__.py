"""Head-office sync over MQTT: sales out from the journal outbox, stock levels in (docs/sync.md).

:class:`OutboxPublisher` publishes settled sales at least once (QoS 1, marked sent only after
PUBACK) and the shop's retained online/offline status with a last will; :class:`StockSync`
applies versioned stock levels idempotently to
:class:`gateway.sync.stock_store.StockStore`. Only the masked PAN of a card ever goes to MQTT.
"""

from __future__ import annotations

from gateway.sync.client import ClientFactory, mqtt_client_factory
from gateway.sync.errors import CardDataRefused, MessageError, SyncError
from gateway.sync.messages import (
    StockUpdate,
    parse_stock_update,
    sale_message,
    sales_topic,
    status_payload,
    status_topic,
    stock_filter,
    stock_topic,
)
from gateway.sync.publisher import Outbox, OutboxPublisher
from gateway.sync.stock_sync import StockSync
from gateway.sync.tls import TlsConfigError, client_tls_context

__all__ = [
    "CardDataRefused",
    "ClientFactory",
    "MessageError",
    "Outbox",
    "OutboxPublisher",
    "StockSync",
    "StockUpdate",
    "SyncError",
    "TlsConfigError",
    "client_tls_context",
    "mqtt_client_factory",
    "parse_stock_update",
    "sale_message",
    "sales_topic",
    "status_payload",
    "status_topic",
    "stock_filter",
    "stock_topic",
]
