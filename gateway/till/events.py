"""The till's live stream of a lane: ``GET /api/lanes/{id}/events`` as Server-Sent Events.

Each event is written as ``id: <seq>``, ``event: <type>``, ``data: <JSON>`` (WHATWG HTML,
"Server-sent events", 9.2). The first event is the lane's current ``state``; then come
``prompt``, ``payment`` and ``reader`` events as the lane changes (:mod:`gateway.till.hub`).
A comment line keeps the connection alive every 15 s. A reconnecting till sends
``Last-Event-ID``: the events the hub still holds after it are replayed, else a ``gap`` event
(no ``id``) and the current ``state`` follow. A till that does not read never slows the lane:
once ``write_buffer`` bytes wait in the daemon for it, its queue drops the oldest events and it
later gets a ``gap`` and the current ``state``. Unknown lane: 404; a lane id that is not a
number: 400; too many streams on a lane or the daemon stopping: 503. The stream ends when the
till goes away or the daemon stops (``on_shutdown`` closes every hub), leaving no task or queue.
See docs/till-events.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from gateway.payments import Lane
from gateway.security.errors import InputError
from gateway.security.guard import requesting_till
from gateway.security.inputs import parse_event_id, parse_lane_id
from gateway.till.hub import Gap, HubClosed, LaneEvent, LaneEventHubs, Subscription
from gateway.till.jsonio import error

__all__ = ["HUBS", "EventBackend", "add_event_routes", "format_event"]

log = logging.getLogger("gateway.till.events")

#: Where the hubs are kept on the application (``app[HUBS]``).
HUBS: web.AppKey[LaneEventHubs] = web.AppKey("lane_event_hubs", LaneEventHubs)


class EventBackend(Protocol):
    """What the event stream needs from the daemon."""

    def lane(self, lane_id: int) -> Lane | None:
        """The lane with this id."""
        ...

    def all_lanes(self) -> list[Lane]:
        """Every lane."""
        ...


def format_event(item: LaneEvent | Gap) -> bytes:
    """One SSE event (a :class:`Gap` is a ``gap`` event followed by the ``state`` event).

    JSON never holds a raw newline, so each event is one ``data:`` line (WHATWG HTML, 9.2.5).
    """
    if isinstance(item, Gap):
        state = item.state.data
        gap = {"lane": state["lane"], "type": "gap", "missed": item.missed}
        gap.update(after=item.after, at=state["at"])
        head = f"event: gap\ndata: {json.dumps(gap)}\n\n".encode()
        return head + format_event(item.state)
    return f"id: {item.seq}\nevent: {item.type}\ndata: {json.dumps(item.data)}\n\n".encode()


def _last_event_id(request: web.Request) -> tuple[bool, int | None]:
    """(asked, seq): a header that is not a sequence number (``²``: ASCII digits only) asks
    for a resume it cannot get."""
    return parse_event_id(request.headers.get("Last-Event-ID"))


def _set_send_buffer(request: web.Request, size: int) -> None:
    transport = request.transport
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        except OSError as exc:  # not a TCP socket: keep the kernel's
            log.debug("SO_SNDBUF not set: %s", exc)


def add_event_routes(
    app: web.Application,
    backend: EventBackend,
    *,
    hubs: LaneEventHubs | None = None,
    clock: Callable[[], float] = time.time,
    keepalive: float = 15.0,
    tick: float = 1.0,
    write_buffer: int = 16 * 1024,
    queue_size: int = 64,
    send_buffer: int | None = None,
) -> LaneEventHubs:
    """Mount ``GET /api/lanes/{lane}/events`` on ``app`` (see the module docstring).

    Args:
        app: The daemon's application (not yet started).
        backend: Finds the lanes (the :class:`gateway.daemon.daemon.Daemon`).
        hubs: The hubs to use; by default new ones, attached to every lane now and to any
            other lane when first asked for.
        clock: Wall clock of the events' ``at``.
        keepalive: Seconds between keep-alive comments.
        tick: Seconds between checks that the till is still there and the reader unchanged.
        write_buffer: Bytes waiting for a till beyond which it gets no more until it reads.
        queue_size: Events queued per till (the oldest dropped beyond).
        send_buffer: ``SO_SNDBUF`` of each stream's socket (None: the kernel's, which grows
            to megabytes before a till that does not read holds anything up in the daemon).

    Returns:
        The hubs (also ``app[HUBS]``).
    """
    if hubs is None:
        hubs = LaneEventHubs(clock=clock, queue_size=queue_size)
    for lane in backend.all_lanes():
        hubs.attach(lane)
    app[HUBS] = hubs
    registry = hubs

    async def close_hubs(_app: web.Application) -> None:
        registry.close()

    async def events(request: web.Request) -> web.StreamResponse:
        till = requesting_till(request)
        try:
            number = parse_lane_id(request.match_info["lane"])
        except InputError as exc:
            raise error(web.HTTPBadRequest, "invalid_request", exc.message, field="lane") from None
        lane = backend.lane(number)
        if lane is None:
            raise error(web.HTTPNotFound, "not_found", f"no lane {number}")
        if not till.may_use_lane(number):
            message = f"this till may not use lane {number}"
            raise error(web.HTTPForbidden, "lane_not_allowed", message)
        hub = registry.attach(lane)
        asked, last_id = _last_event_id(request)
        try:
            subscription, first = hub.subscribe(last_id if asked else None)
        except HubClosed as exc:
            raise error(web.HTTPServiceUnavailable, "unavailable", str(exc)) from None
        with subscription:
            response = web.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream",
                    "Cache-Control": "no-cache",
                    "X-Accel-Buffering": "no",
                }
            )
            if send_buffer is not None:
                _set_send_buffer(request, send_buffer)
            await response.prepare(request)
            await _stream(request, response, subscription, first, lane, registry)
        return response

    async def _stream(
        request: web.Request,
        response: web.StreamResponse,
        subscription: Subscription,
        first: list[LaneEvent | Gap],
        lane: Lane,
        registry: LaneEventHubs,
    ) -> None:
        loop = asyncio.get_running_loop()
        await response.write(b"retry: 2000\n\n" + b"".join(format_event(item) for item in first))
        last_write = loop.time()
        while not subscription.closed:
            transport = request.transport
            if transport is None or transport.is_closing():
                return  # the till went away
            registry.refresh_reader(lane)
            if transport.get_write_buffer_size() > write_buffer:
                # a till that does not read: let its queue drop the oldest, try again later
                await asyncio.sleep(tick)
                continue
            try:
                item = await subscription.next(min(tick, keepalive))
            except HubClosed:
                return  # the daemon stops
            try:
                if item is not None:
                    await response.write(format_event(item))
                    last_write = loop.time()
                elif loop.time() - last_write >= keepalive:
                    await response.write(b": keep-alive\n\n")
                    last_write = loop.time()
            except (ConnectionError, RuntimeError) as exc:  # closed under us
                log.debug("lane %s events: till gone (%s)", lane.id, type(exc).__name__)
                return

    app.on_shutdown.append(close_hubs)
    app.router.add_get("/api/lanes/{lane}/events", events)
    return hubs
