"""The till API's contract: gateway/contracts/till-api.openapi.json (OpenAPI 3.1) against the
routes the daemon mounts and against live answers of a running daemon (sim:// lane, acquirer
host, mosquitto, head office). A route, an answer, an error or an event type that changes
without its schema fails here (docs/contracts.md)."""

from __future__ import annotations

import asyncio
import json
import time
import types
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest

from drivers import sim as drivers_sim
from gateway.daemon.daemon import Daemon
from gateway.daemon.wiring import web_app
from gateway.security.manager import ManagerPages
from gateway.till.contract import till_api_document
from simulator.acquirer_host import AcquirerHost
from simulator.head_office import HeadOffice
from tests.fixtures.mqtt import MqttBroker
from tests.gateway.daemon_support import (
    acquirer_fixture,
    fixed_env,
    http_fixture,
    insert_card,
    make_config,
    running,
    slot_name,
)
from tests.gateway.sync_support import new_shop

__all__ = ["acquirer_fixture", "http_fixture"]

DOC = till_api_document()
BASKET = [{"sku": "SKU-1", "label": "Coffee 250g", "qty": 2, "unit_price": 450, "vat_rate": "5.5"},
          {"label": "Gift wrap", "qty": 1, "unit_price": 350}]  # fmt: skip


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A 2020-12 validator for one schema of the document, its #/components refs resolved."""
    return jsonschema.Draft202012Validator(dict(schema, components=DOC["components"]))


def _mounted_routes() -> set[tuple[str, str]]:
    backend = types.SimpleNamespace(journal=None, refunds=None, default_currency="EUR",
                                    lane=lambda _i: None, all_lanes=list, view=lambda _i: None,
                                    remember=lambda _v: None, stock=None,
                                    low_stock_threshold=lambda: 0)  # fmt: skip

    async def no_snapshot() -> None:
        return None

    app, _ = web_app(backend, no_snapshot, {})
    # the daemon's listener adds the manager pages (gateway/daemon/listener.py)
    pages = ManagerPages(None, None, None, secure_cookie=False)  # type: ignore[arg-type]
    pages.add_routes(app)
    routes = set()
    for route in app.router.routes():
        if route.method != "HEAD":
            info = route.resource.get_info() if route.resource is not None else {}
            routes.add((route.method.lower(), str(info.get("path") or info.get("formatter"))))
    return routes


def test_the_document_is_openapi_3_1_with_valid_schemas() -> None:
    assert DOC["openapi"].startswith("3.1.")
    for name, schema in DOC["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema), name
    for path, operations in DOC["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], (method, path)


def test_every_mounted_route_is_documented_and_every_documented_route_is_mounted() -> None:
    """A new route without its entry in the document (or a removed one still in it) fails."""
    documented = {(method, path) for path, ops in DOC["paths"].items() for method in ops}
    assert _mounted_routes() == documented


class Checker:
    """Calls the daemon and validates every answer against the operation's documented one."""

    def __init__(self, http: aiohttp.ClientSession, port: int) -> None:
        self.http = http
        self.base = f"http://127.0.0.1:{port}"
        self.seen: set[tuple[str, str, int]] = set()

    async def call(self, method: str, template: str, path: str | None = None,
                   **kwargs: Any) -> tuple[int, Any]:  # fmt: skip
        async with self.http.request(method, self.base + (path or template), **kwargs) as answer:
            status, text = answer.status, await answer.text()
            kind = answer.content_type
        operation = DOC["paths"][template][method.lower()]
        documented = operation["responses"].get(str(status))
        assert documented is not None, f"{method} {template}: {status} is not documented: {text}"
        assert kind in documented["content"], f"{method} {template} {status}: {kind}"
        body: Any = text
        if kind == "application/json":
            body = json.loads(text)
            schema = documented["content"][kind]["schema"]
            errors = [e.message for e in _validator(schema).iter_errors(body)]
            assert errors == [], (method, template, status, errors)
        self.seen.add((method.lower(), template, status))
        return status, body


async def test_live_answers_match_the_document(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, mqtt_broker: MqttBroker
) -> None:
    shop, slot = new_shop(), slot_name()
    assert acquirer.url is not None
    mqtt = {"host": mqtt_broker.host, "port": mqtt_broker.port, "low_stock": 8}
    config = make_config(tmp_path, acquirer.url, [slot], mqtt=mqtt, shop=shop)
    event_schema = _validator(DOC["components"]["schemas"]["LaneEvent"])
    async with (
        HeadOffice(host=mqtt_broker.host, port=mqtt_broker.port, shop=shop) as office,
        running(Daemon(config, env=fixed_env, environ={})) as daemon,
    ):
        await office.publish_stock("SKU-1", level=10)
        assert daemon.http_port is not None
        api = Checker(http, daemon.http_port)
        events: list[tuple[str, dict[str, Any]]] = []
        stream = asyncio.create_task(_read_events(api, events))
        try:
            await api.call("POST", "/api/lanes/{lane}/payments", "/api/lanes/1/payments",
                           json={"amount": 1200, "items": BASKET})  # fmt: skip
            await api.call("POST", "/api/lanes/{lane}/payments", "/api/lanes/9/payments",
                           json={"amount": 1})  # fmt: skip
            status, started = await api.call(
                "POST", "/api/lanes/{lane}/payments", "/api/lanes/1/payments",
                json={"amount": 1250, "items": BASKET, "reference": "T-9"},
            )  # fmt: skip
            assert status == 202
            busy, _ = await api.call("POST", "/api/lanes/{lane}/payments",
                                     "/api/lanes/1/payments", json={"amount": 5})  # fmt: skip
            assert busy == 409
            await api.call("GET", "/api/lanes")
            insert_card(slot)
            _, sale = await api.call("GET", "/api/payments/{payment}",
                                     f"/api/payments/{started['id']}?wait=10")  # fmt: skip
            assert sale["state"] == "COMPLETED" and sale["items"] == BASKET
            await api.call("POST", "/api/lanes/{lane}/payments", "/api/lanes/1/payments",
                           json={"amount": 1250, "items": BASKET, "reference": "T-9"})  # fmt: skip
            await api.call("GET", "/api/payments/{payment}", "/api/payments/nope")
            await api.call("GET", "/api/payments/{payment}", "/api/payments/x?wait=soon")
            await api.call("POST", "/api/payments/{payment}/cancel", "/api/payments/nope/cancel",
                           json={})  # fmt: skip
            await api.call("POST", "/api/payments/{payment}/cancel", "/api/payments/nope/cancel",
                           data="{}")  # not application/json: 415  # fmt: skip
            await api.call("POST", "/api/payments/{payment}/brand", "/api/payments/nope/brand",
                           json={"aid": "A0000000031010"})  # fmt: skip
            await api.call("POST", "/api/payments/{payment}/brand", "/api/payments/nope/brand",
                           json={"aid": "zz"})  # fmt: skip
            await api.call("GET", "/api/lanes", headers={"Authorization": "Bearer nope"})
            status, _ = await api.call(
                "POST", "/api/payments/{payment}/refunds", f"/api/payments/{sale['id']}/refunds",
                json={"amount": 450, "reference": "R-1", "items": [{"sku": "SKU-1", "qty": 1}]},
            )  # fmt: skip
            assert status == 201
            bad_line = {"amount": 1, "reference": "R-2", "items": [{"sku": "X"}]}
            await api.call("POST", "/api/payments/{payment}/refunds",
                           f"/api/payments/{sale['id']}/refunds", json=bad_line)  # fmt: skip
            await api.call("POST", "/api/payments/{payment}/refunds", "/api/payments/no/refunds",
                           json={"amount": 1, "reference": "R-3"})  # fmt: skip
            # a reader lane has no terminal day to close: 200, ok false, kept (docs/tpe.md)
            status, day = await api.call("POST", "/api/lanes/{lane}/end-of-day",
                                         "/api/lanes/1/end-of-day", json={})  # fmt: skip
            assert status == 200 and day["ok"] is False
            await api.call("POST", "/api/lanes/{lane}/end-of-day", "/api/lanes/7/end-of-day",
                           json={})  # fmt: skip
            # the day's routes (docs/day.md): a refunded sale is not voided; a till is not a
            # manager
            void = "/api/payments/{payment}/void"
            status, _ = await api.call("POST", void, f"/api/payments/{sale['id']}/void", json={})
            assert status == 409
            await api.call("POST", void, "/api/payments/nope/void", json={"reason": "typo"})
            status, _ = await api.call("POST", "/api/payments/{payment}/acknowledge",
                                       "/api/payments/nope/acknowledge", json={})  # fmt: skip
            assert status == 403
            status, _ = await api.call("POST", "/api/payments/{payment}/settle",
                                       "/api/payments/nope/settle", json={})  # fmt: skip
            assert status == 403
            assert (await api.call("POST", "/api/days/close", json={}))[0] == 403
            assert (await api.call("GET", "/api/days/current"))[0] == 200
            await eventually(lambda: _level_is(api, 9))
            await api.call("GET", "/api/stock")
            await api.call("GET", "/api/stock/{sku}", "/api/stock/NOPE")
            await api.call("GET", "/api/stock/{sku}", "/api/stock/a%20b")
            await api.call("GET", "/api/lanes/{lane}/events", "/api/lanes/x/events")
            await api.call("GET", "/api/lanes/{lane}/events", "/api/lanes/7/events")
            # one request per sale (?wait=S): 202 with the payment while it runs, 200 at its end
            drivers_sim.slot(slot).remove()
            pay = ("POST", "/api/lanes/{lane}/payments")
            status, running_sale = await api.call(*pay, "/api/lanes/1/payments?wait=0.1",
                                                  json={"amount": 1250})  # fmt: skip
            assert status == 202 and running_sale["done"] is False
            insert_card(slot)
            _, ended = await api.call("GET", "/api/payments/{payment}",
                                      f"/api/payments/{running_sale['id']}?wait=10")  # fmt: skip
            assert ended["state"] == "COMPLETED"
            status, waited = await api.call(*pay, "/api/lanes/1/payments?wait=10",
                                            json={"amount": 1300})  # fmt: skip
            assert status == 200 and waited["state"] == "COMPLETED" and waited["done"] is True
            status, _ = await api.call(*pay, "/api/lanes/1/payments?wait=later", json={"amount": 1})
            assert status == 400
            _, served = await api.call("GET", "/api/openapi.json")
            assert served == DOC
            await api.call("GET", "/")
            await api.call("GET", "/status.json")
            await api.call("GET", "/metrics")
            await eventually(lambda: _approved_streamed(events))
        finally:
            stream.cancel()
    kinds = {kind for kind, _ in events}
    assert {"state", "prompt", "payment"} <= kinds
    for kind, data in events:
        assert data["type"] == kind
        errors = [e.message for e in event_schema.iter_errors(data)]
        assert errors == [], (kind, errors)
    operations = {(m, t) for m, t, _ in api.seen}
    documented = {(m, p) for p, ops in DOC["paths"].items() for m in ops}
    # every operation was exercised, but the stream (read above) and the manager's HTML pages
    pages = {(m, p) for m, p in documented if not p.startswith("/api/") and p not in
             ("/", "/status.json", "/metrics")}  # fmt: skip
    assert operations | {("get", "/api/lanes/{lane}/events")} | pages == documented
    errors_seen = {(m, t, s) for m, t, s in api.seen if s >= 400}
    assert len(errors_seen) >= 8


async def eventually(check: Any, within: float = 15.0) -> None:
    """Await ``check()`` until true, polling; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        await asyncio.sleep(0.05)


async def _level_is(api: Checker, level: int) -> bool:
    _, line = await api.call("GET", "/api/stock/{sku}", "/api/stock/SKU-1")
    return bool(line.get("level") == level)


async def _approved_streamed(events: list[tuple[str, dict[str, Any]]]) -> bool:
    payments = [data["payment"] for kind, data in events if kind == "payment"]
    return any(p.get("outcome") == "approved" for p in payments)


async def _read_events(api: Checker, events: list[tuple[str, dict[str, Any]]]) -> None:
    """Read lane 1's Server-Sent Events into ``events`` (event type, data)."""
    async with api.http.get(f"{api.base}/api/lanes/1/events") as answer:
        assert answer.status == 200
        assert answer.content_type == "text/event-stream"
        kind = None
        async for raw in answer.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: ") and kind is not None:
                events.append((kind, json.loads(line[len("data: "):])))
