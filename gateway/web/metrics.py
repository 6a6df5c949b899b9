"""Prometheus metrics built from the daemon snapshot, one scrape at a time.

No global mutable metric: each scrape builds a private :class:`~prometheus_client.CollectorRegistry`
holding one :class:`SnapshotCollector` bound to the snapshot just taken, so several daemons (or
test apps) in one process never clash and a scrape always shows one consistent moment.

Exposed (Prometheus text format 0.0.4); a value the snapshot does not give is left out, never
invented:

========================================  =======  =========================================
name                                      type     labels
========================================  =======  =========================================
``posgw_status_snapshot_ok``              gauge    (1: the daemon answered)
``posgw_info``                            gauge    ``shop``, ``version`` (always 1)
``posgw_ready``                           gauge
``posgw_lane_device_state``               gauge    ``lane``, ``name``, ``state`` (1 for the
                                                   current state, 0 for the others)
``posgw_lane_device_state_since_seconds`` gauge    ``lane`` (Unix time of the last change)
``posgw_lane_device_{setups,failures,losses}_total``  counter  ``lane``
``posgw_lane_payment_in_progress``        gauge    ``lane``
``posgw_payments_today``                  gauge    ``outcome`` = approved, declined, other (sales)
``posgw_refunds_today``                   gauge    completed refunds since midnight
``posgw_outbox_backlog``                  gauge
``posgw_payments_awaiting_recovery``      gauge
``posgw_acquirer_reachable``              gauge
``posgw_mqtt_enabled``, ``posgw_mqtt_connected``, ``posgw_mqtt_backlog``  gauge
``posgw_stock_skus``, ``posgw_stock_low``, ``posgw_stock_low_threshold``    gauge (with [mqtt])
``posgw_stock_low_level``                 gauge    ``sku`` (each product at or below the threshold)
========================================  =======  =========================================
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.web.values import as_bool, as_int, as_mapping, as_text, as_time, scrub

__all__ = ["CONTENT_TYPE", "DEVICE_STATES", "SnapshotCollector", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: The supervisor states of :mod:`drivers.lifecycle`, plus ``unknown`` for anything else.
DEVICE_STATES = ("setting_up", "ready", "not_ready", "stopped", "unknown")
_COUNTERS = ("setups", "failures", "losses")


def _gauge(name: str, doc: str, value: int | float | bool | None) -> Iterator[Metric]:
    if value is not None:
        family = GaugeMetricFamily(name, doc)
        family.add_metric([], float(value))
        yield family


class SnapshotCollector(Collector):
    """Yields the metrics of one snapshot (``None``: the daemon gave none)."""

    def __init__(self, snapshot: Any) -> None:
        """Bind the collector to a snapshot (scrubbed here: labels never carry a PAN)."""
        self._snapshot = None if snapshot is None else scrub(snapshot)

    def collect(self) -> Iterator[Metric]:
        """One scrape's metric families (prometheus_client's Collector protocol)."""
        yield from _gauge("posgw_status_snapshot_ok", "1 when the daemon produced a snapshot",
                          self._snapshot is not None)
        if self._snapshot is None:
            return
        snap = as_mapping(self._snapshot)
        info = GaugeMetricFamily("posgw_info", "Gateway identity", labels=["shop", "version"])
        info.add_metric([as_text(snap.get("shop"), limit=60) or "unknown",
                         as_text(snap.get("version"), limit=30) or "unknown"], 1.0)
        yield info
        yield from _gauge("posgw_ready", "1 when the gateway takes payments",
                          as_bool(snap.get("ready")))
        lanes = snap.get("lanes")
        yield from self._lanes(lanes if isinstance(lanes, list) else [])
        yield from self._journal(as_mapping(snap.get("journal")))
        acquirer, mqtt = as_mapping(snap.get("acquirer")), as_mapping(snap.get("mqtt"))
        yield from _gauge("posgw_acquirer_reachable", "1 when the payment provider answers",
                          as_bool(acquirer.get("reachable")))
        yield from _gauge("posgw_mqtt_enabled", "1 when the head-office link is configured",
                          as_bool(mqtt.get("enabled")))
        yield from _gauge("posgw_mqtt_connected", "1 when connected to the head-office broker",
                          as_bool(mqtt.get("connected")))
        yield from _gauge("posgw_mqtt_backlog", "Messages waiting to be published",
                          as_int(mqtt.get("backlog")))
        yield from self._stock(as_mapping(snap.get("stock")))

    def _stock(self, stock: Any) -> Iterator[Metric]:
        if as_bool(stock.get("enabled")) is not True:
            return
        yield from _gauge("posgw_stock_skus", "Products in the local stock",
                          as_int(stock.get("skus")))
        yield from _gauge("posgw_stock_low_threshold", "Level at or below which a product is low",
                          as_int(stock.get("low_threshold")))
        lines = [as_mapping(line) for line in stock.get("low") or [] if isinstance(line, dict)]
        yield from _gauge("posgw_stock_low", "Products at or below the low-stock level", len(lines))
        level = GaugeMetricFamily("posgw_stock_low_level", "Level of each low product",
                                  labels=["sku"])
        for line in lines:
            sku, value = as_text(line.get("sku"), limit=64), as_int(line.get("level"))
            if sku and value is not None:
                level.add_metric([sku], float(value))
        yield level

    def _lanes(self, lanes: list[Any]) -> Iterator[Metric]:
        state = GaugeMetricFamily("posgw_lane_device_state",
                                  "Supervisor state of each lane's device (1 = current)",
                                  labels=["lane", "name", "state"])
        since = GaugeMetricFamily("posgw_lane_device_state_since_seconds",
                                  "Unix time the lane's device entered its state",
                                  labels=["lane"])
        paying = GaugeMetricFamily("posgw_lane_payment_in_progress",
                                   "1 while a payment runs on the lane", labels=["lane"])
        counters = {name: CounterMetricFamily(f"posgw_lane_device_{name}",
                                              f"Device {name} since the daemon started",
                                              labels=["lane"]) for name in _COUNTERS}
        seen: set[str] = set()
        for index, raw in enumerate(lanes):
            lane = as_mapping(raw)
            key = as_text(lane.get("id"), limit=20) or str(index + 1)
            if key in seen:  # two lanes with one id would make duplicate series
                continue
            seen.add(key)
            name = as_text(lane.get("name"), limit=60) or f"Lane {key}"
            device = as_mapping(lane.get("device"))
            current = as_text(device.get("state"), limit=40)
            current = current if current in DEVICE_STATES else "unknown"
            for candidate in DEVICE_STATES:
                state.add_metric([key, name, candidate], 1.0 if candidate == current else 0.0)
            moment = as_time(device.get("since"))
            if moment is not None:
                since.add_metric([key], moment.timestamp())
            paying.add_metric([key], 0.0 if lane.get("payment") is None else 1.0)
            for counter_name, family in counters.items():
                count = as_int(device.get(counter_name))
                if count is not None and count >= 0:
                    family.add_metric([key], float(count))
        yield state
        yield since
        yield paying
        yield from counters.values()

    def _journal(self, journal: Mapping[str, Any]) -> Iterator[Metric]:
        total, approved, declined = (as_int(journal.get(k)) for k in
                                     ("payments_today", "approved_today", "declined_today"))
        today = GaugeMetricFamily("posgw_payments_today", "Payments since midnight by outcome",
                                  labels=["outcome"])
        if approved is not None:
            today.add_metric(["approved"], float(approved))
        if declined is not None:
            today.add_metric(["declined"], float(declined))
        if total is not None and approved is not None and declined is not None:
            today.add_metric(["other"], float(max(0, total - approved - declined)))
        yield today
        yield from _gauge("posgw_refunds_today", "Refunds completed since midnight",
                          as_int(journal.get("refunds_today")))
        yield from _gauge("posgw_outbox_backlog", "Sales waiting in the outbox",
                          as_int(journal.get("outbox_backlog")))
        yield from _gauge("posgw_payments_awaiting_recovery",
                          "Payments whose outcome must be resolved after a restart",
                          as_int(journal.get("awaiting_recovery")))


def render_metrics(snapshot: Any) -> bytes:
    """The Prometheus text exposition of one snapshot (``None`` when the daemon gave none)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return generate_latest(registry)
