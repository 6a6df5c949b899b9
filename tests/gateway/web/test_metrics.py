"""/metrics over a real socket, parsed with prometheus_client's own text parser."""

from __future__ import annotations

from typing import Any

import aiohttp
import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

from gateway.web import render_metrics
from tests.gateway.web_support import (
    FULL_PAN,
    MASKED_PAN,
    SnapshotBox,
    malformed_snapshot,
    serve,
    two_lane_snapshot,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def _scrape(base: str) -> tuple[str, str]:
    async with aiohttp.ClientSession() as session, session.get(base + "/metrics") as response:
        assert response.status == 200
        return await response.text(), response.headers["Content-Type"]


async def test_metrics_exposition_has_the_expected_samples() -> None:
    async with serve(SnapshotBox(two_lane_snapshot())) as base:
        text, content_type = await _scrape(base)
    assert content_type.startswith("text/plain; version=0.0.4")
    s = _samples(text)
    assert s[("posgw_status_snapshot_ok", ())] == 1
    assert s[("posgw_info", (("shop", "shop-001"), ("version", "0.1.0")))] == 1
    assert s[("posgw_ready", ())] == 1
    lane = (("lane", "2"), ("name", "Lane 2"))
    assert s[("posgw_lane_device_state", (*lane, ("state", "not_ready")))] == 1
    assert s[("posgw_lane_device_state", (*lane, ("state", "ready")))] == 0
    assert s[("posgw_lane_device_state", (("lane", "1"), ("name", "Lane 1"),
                                          ("state", "ready")))] == 1
    assert sum(v for (name, labels), v in s.items()
               if name == "posgw_lane_device_state") == 2  # one current state per lane
    assert s[("posgw_lane_device_state_since_seconds", (("lane", "2"),))] == 1763804520.0
    assert s[("posgw_lane_payment_in_progress", (("lane", "1"),))] == 1
    assert s[("posgw_lane_payment_in_progress", (("lane", "2"),))] == 0
    assert s[("posgw_lane_device_failures_total", (("lane", "2"),))] == 3
    assert s[("posgw_payments_today", (("outcome", "approved"),))] == 10
    assert s[("posgw_payments_today", (("outcome", "declined"),))] == 2
    assert s[("posgw_payments_today", (("outcome", "other"),))] == 0
    assert s[("posgw_refunds_today", ())] == 1
    assert s[("posgw_outbox_backlog", ())] == 0
    assert s[("posgw_payments_awaiting_recovery", ())] == 0
    assert s[("posgw_acquirer_reachable", ())] == 1
    assert s[("posgw_mqtt_connected", ())] == 1
    assert s[("posgw_mqtt_backlog", ())] == 0


async def test_two_apps_in_one_process_do_not_clash() -> None:
    other = two_lane_snapshot()
    other["shop"] = "shop-002"
    other["mqtt"]["connected"] = False
    other["journal"]["outbox_backlog"] = 7
    first_box, second_box = SnapshotBox(two_lane_snapshot()), SnapshotBox(other)
    async with serve(first_box) as first, serve(second_box) as second:
        one, _ = await _scrape(first)
        two, _ = await _scrape(second)
        again, _ = await _scrape(first)
    s1, s2 = _samples(one), _samples(two)
    assert s1[("posgw_mqtt_connected", ())] == 1 and s2[("posgw_mqtt_connected", ())] == 0
    assert s1[("posgw_outbox_backlog", ())] == 0 and s2[("posgw_outbox_backlog", ())] == 7
    assert ("posgw_info", (("shop", "shop-002"), ("version", "0.1.0"))) in s2
    assert _samples(again) == s1
    # Nothing leaked into the process-wide default registry.
    assert not [m for m in prometheus_client.REGISTRY.collect() if m.name.startswith("posgw")]


async def test_malformed_snapshot_gives_only_what_it_knows() -> None:
    snapshot = malformed_snapshot()
    snapshot["lanes"].append({"id": 9, "name": f"till {FULL_PAN}", "device": {"state": "ready"}})
    snapshot["lanes"].append({"id": 9, "name": "duplicate id"})
    async with serve(SnapshotBox(snapshot)) as base:
        text, _ = await _scrape(base)
    s = _samples(text)
    assert ("posgw_ready", ()) not in s            # "perhaps" is not a boolean
    assert ("posgw_outbox_backlog", ()) not in s   # the journal was a list
    assert ("posgw_mqtt_backlog", ()) not in s     # -1.5 is not a count
    assert not [k for k in s if k[0] == "posgw_payments_today"]
    assert s[("posgw_lane_device_state", (("lane", "1"), ("name", "Lane 1"),
                                          ("state", "unknown")))] == 1
    assert s[("posgw_lane_device_state", (("lane", "9"), ("name", f"till {MASKED_PAN}"),
                                          ("state", "ready")))] == 1
    assert FULL_PAN not in text
    assert "duplicate id" not in text


async def test_failing_source_reports_snapshot_not_ok() -> None:
    box = SnapshotBox(two_lane_snapshot())
    box.error = OSError("socket closed")
    async with serve(box) as base:
        text, _ = await _scrape(base)
    s = _samples(text)
    assert s == {("posgw_status_snapshot_ok", ()): 0}


def test_render_metrics_without_a_server() -> None:
    text = render_metrics({"ready": False, "lanes": []}).decode()
    s: dict[Any, float] = _samples(text)
    assert s[("posgw_ready", ())] == 0
    assert s[("posgw_info", (("shop", "unknown"), ("version", "unknown")))] == 1


def test_low_stock_lines_are_metrics() -> None:
    snap = two_lane_snapshot()
    snap["stock"] = {"enabled": True, "skus": 42, "low_threshold": 3,
                     "low": [{"sku": "SKU-7", "level": 2}]}  # fmt: skip
    samples = _samples(render_metrics(snap).decode())
    assert samples[("posgw_stock_low_level", (("sku", "SKU-7"),))] == 2.0
    assert samples[("posgw_stock_low", ())] == 1.0
    assert samples[("posgw_stock_skus", ())] == 42.0
