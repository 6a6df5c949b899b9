"""The store manager's status page, its JSON and the Prometheus scrape, as aiohttp routes.

:func:`add_status_routes` adds three GET routes to an application:

* ``/``: the HTML page (:mod:`gateway.web.page`), which refreshes itself every few seconds;
* ``/status.json``: the snapshot as JSON, with card-number-shaped values masked;
* ``/metrics``: the Prometheus text exposition (:mod:`gateway.web.metrics`). Its library,
  ``prometheus_client`` (about 1 MB with the ``http.server`` and ``wsgiref`` modules it loads),
  is imported at the first scrape, not at start: a shop without monitoring never loads it
  (docs/performance.md, "Memory"). Importing this module still fails without it.

Each request takes one snapshot from the callable it was given (the daemon's async
``snapshot()``; a plain function works too), scrubs it (:func:`gateway.web.values.scrub`) and
renders it. A snapshot with missing keys or odd types renders with "unknown"; a snapshot that
cannot be had (the callable raised or took longer than ``snapshot_timeout``) gives a 503 page
(and ``posgw_status_snapshot_ok 0`` on ``/metrics``); nothing here answers 500.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.web.i18n import PageLocale, choose_locale, prepare_locale
from gateway.web.money import render_money
from gateway.web.page import CONTENT_SECURITY_POLICY, render_page, render_unavailable
from gateway.web.values import scrub
from gateway.web.view import build_view

__all__ = ["SnapshotSource", "add_status_routes"]

log = logging.getLogger("posgw.gateway.web")

# Found, not imported: a missing library still fails this import (the daemon's start names it),
# not the first scrape.
if importlib.util.find_spec("prometheus_client") is None:
    raise ImportError("prometheus_client is not installed", name="prometheus_client")

#: Gives the current snapshot, directly or as an awaitable (``Daemon.snapshot``).
SnapshotSource = Callable[[], Any | Awaitable[Any]]

#: Times on the page are the box's local time (the shop's clock).
_ZONE = datetime.now().astimezone().tzinfo or UTC

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class _Unavailable(Exception):  # private control flow: never leaves this module
    """No snapshot could be taken (the reason is safe to show)."""


class _StatusRoutes:
    """The handlers, bound to one snapshot source."""

    def __init__(
        self,
        source: SnapshotSource,
        refresh_seconds: float,
        timeout: float,
        locale: str | None = None,
        manager_link: bool = False,
    ) -> None:
        self._locale = locale
        self._manager_link = manager_link
        self._source = source
        self._refresh = refresh_seconds
        self._timeout = timeout

    async def _snapshot(self) -> Any:
        """One scrubbed snapshot, or :class:`_Unavailable`."""
        try:
            async with asyncio.timeout(self._timeout):
                result = self._source()
                if inspect.isawaitable(result):
                    result = await result
        except TimeoutError as exc:
            log.warning("status snapshot took longer than %.1f s", self._timeout)
            raise _Unavailable("The gateway took too long to answer.") from exc
        except Exception as exc:
            # The exception's text is not shown or logged: only its type.
            log.warning("status snapshot failed: %s", type(exc).__name__)
            raise _Unavailable("The gateway could not report its status.") from exc
        return scrub(result)  # a Snapshot too: its JSON dict, copied and scrubbed in one walk

    async def page(self, request: web.Request) -> web.Response:
        """``GET /``: the HTML status page, in the manager's language."""
        headers = {**_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY}
        try:
            snapshot = await self._snapshot()
        except _Unavailable as exc:
            return web.Response(text=render_unavailable(str(exc), refresh_seconds=self._refresh),
                                status=503, content_type="text/html", headers=headers)
        try:
            loc = PageLocale(
                choose_locale(request.headers.get("Accept-Language"), override=self._locale),
                _ZONE,
            )
            body = render_page(
                build_view(snapshot, gettext=loc.gettext),
                refresh_seconds=self._refresh,
                money=render_money(snapshot.get("money"), loc),
                loc=loc,
                manager_link=self._manager_link,
            )
        except Exception as exc:  # noqa: BLE001 - last line of defence: show a page, not a 500
            log.error("status page rendering failed: %s", type(exc).__name__)
            body = render_unavailable("Some status details could not be shown.",
                                      refresh_seconds=self._refresh)
        return web.Response(text=body, content_type="text/html", headers=headers)

    async def status_json(self, _request: web.Request) -> web.Response:
        """``GET /status.json``: the (scrubbed) snapshot."""
        try:
            snapshot = await self._snapshot()
        except _Unavailable as exc:
            return web.json_response({"error": "status unavailable", "reason": str(exc)},
                                     status=503, headers=_HEADERS)
        body = json.dumps(snapshot, ensure_ascii=False, allow_nan=False, sort_keys=False)
        return web.Response(text=body, content_type="application/json", headers=_HEADERS)

    async def metrics(self, _request: web.Request) -> web.Response:
        """``GET /metrics``: the Prometheus exposition (``posgw_status_snapshot_ok 0`` if none)."""
        from gateway.web.metrics import CONTENT_TYPE, render_metrics  # at the first scrape

        try:
            snapshot = await self._snapshot()
        except _Unavailable:
            snapshot = None
        return web.Response(body=render_metrics(snapshot),
                            headers={**_HEADERS, "Content-Type": CONTENT_TYPE})


def add_status_routes(
    app: web.Application,
    snapshot: SnapshotSource,
    *,
    refresh_seconds: float = 5.0,
    snapshot_timeout: float = 2.0,
    locale: str | None = None,
    manager_link: bool = False,
) -> None:
    """Add ``/``, ``/status.json`` and ``/metrics`` to ``app``.

    Args:
        app: The aiohttp application (the daemon's, or a sub-application).
        snapshot: Returns the daemon's typed snapshot (:class:`gateway.daemon.snapshot.
            Snapshot`, rendered as its ``to_json()`` would be) or an awaitable of it; called once
            per request. A plain JSON-like mapping is accepted too, and rendered as robustly
            (missing keys and odd types show as "unknown").
        refresh_seconds: How often an open page refreshes itself.
        snapshot_timeout: How long a request waits for a snapshot before answering 503.
        locale: Forces the page's locale (``[http] locale``); None: the browser's
            Accept-Language chooses (gateway/web/i18n.py).
        manager_link: The page links to ``/manager`` (mounted on the same application).
    """
    if refresh_seconds <= 0 or snapshot_timeout <= 0:
        raise ValueError("refresh_seconds and snapshot_timeout must be positive")
    routes = _StatusRoutes(snapshot, refresh_seconds, snapshot_timeout, locale, manager_link)
    prepare_locale(locale)  # Babel's data for a moment now, not under load (docs/performance.md)
    app.router.add_get("/", routes.page, name="status-page")
    app.router.add_get("/status.json", routes.status_json, name="status-json")
    app.router.add_get("/metrics", routes.metrics, name="metrics")
