"""Head-office sync over MQTT: sales out from the journal outbox, stock levels in (docs/sync.md).

:class:`OutboxPublisher` publishes settled sales at least once (QoS 1, marked sent only after
PUBACK, many in flight, MQTT 5 persistent sessions) and the shop's retained online/offline
status with a last will; :class:`AckLedger` keeps sales until head office acknowledges them;
:class:`StockSync` applies versioned stock levels idempotently to
:class:`gateway.sync.stock_store.StockStore`. Only the masked PAN of a card ever goes to MQTT.
"""

from __future__ import annotations

from gateway.sync.client import ClientFactory, mqtt_client_factory
from gateway.sync.errors import CardDataRefused, MessageError, PublishRefused, SyncError
from gateway.sync.ledger import AckLedger, LedgerError
from gateway.sync.messages import (
    StockUpdate,
    acks_topic,
    parse_acks,
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
    "AckLedger",
    "CardDataRefused",
    "ClientFactory",
    "LedgerError",
    "MessageError",
    "Outbox",
    "OutboxPublisher",
    "PublishRefused",
    "StockSync",
    "StockUpdate",
    "SyncError",
    "TlsConfigError",
    "acks_topic",
    "client_tls_context",
    "mqtt_client_factory",
    "parse_acks",
    "parse_stock_update",
    "sale_message",
    "sales_topic",
    "status_payload",
    "status_topic",
    "stock_filter",
    "stock_topic",
]
