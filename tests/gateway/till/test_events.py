"""``GET /api/lanes/{id}/events`` end to end: the daemon with a ``sim://`` lane, the real
acquirer host, a real aiohttp server and real clients reading the Server-Sent Events.

A payment yields its prompts in order and ends in the outcome; a till that reconnects with
``Last-Event-ID`` gets what it missed once; a till that never reads does not hold the lane up
and later sees a gap; the stream ends when the till goes or the daemon stops. No event holds
more of a PAN than its mask.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from drivers.errors import ReaderRemoved
from gateway.daemon.daemon import Daemon
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import (
    Till,
    acquirer_fixture,
    fixed_env,
    http_fixture,
    insert_card,
    make_config,
    running,
    slot_name,
    till_token,
)

__all__ = ["acquirer_fixture", "http_fixture"]

PANS = ("4761739001010010", "5413339000001539")  # visa_credit, ctls_mc_cda_online
EVENTS = "/api/lanes/{lane}/events"


class EventsDaemon(Daemon):
    """The daemon with the event stream's options of a test (a short tick, small queues)."""

    def __init__(self, *args: Any, events: dict[str, Any] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.event_options = {"tick": 0.1, **(events or {})}


@dataclass
class Sse:
    """One event as read: the ``id``, ``event`` and parsed ``data``; ``raw`` as sent."""

    id: str | None
    event: str
    data: dict[str, Any]
    raw: str


async def _read_event(content: aiohttp.StreamReader) -> Sse | None:
    """The next event of the stream (comments and ``retry`` skipped); None at its end."""
    fields: dict[str, str] = {}
    raw: list[str] = []
    while True:
        line = (await content.readline()).decode()
        if line == "":
            return None
        raw.append(line)
        line = line.rstrip("\n")
        if line == "":
            if "data" in fields:
                data = json.loads(fields["data"])
                return Sse(fields.get("id"), fields.get("event", "message"), data, "".join(raw))
            fields, raw = {}, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")


async def _events_until(content: aiohttp.StreamReader, done: Any, within: float = 15) -> list[Sse]:
    seen: list[Sse] = []
    async with asyncio.timeout(within):
        while True:
            event = await _read_event(content)
            assert event is not None, "the stream ended early"
            seen.append(event)
            if done(event):
                return seen


def _final(event: Sse) -> bool:
    return event.event == "payment" and event.data["payment"]["outcome"] is not None


def _no_pan(events: list[Sse]) -> None:
    """No full PAN anywhere; a PAN only ever as the lane's mask (first 6, last 4)."""
    for event in events:
        assert not any(pan in event.raw for pan in PANS)
        for payment in (event.data.get(key) for key in ("payment", "last")):
            if isinstance(payment, dict) and payment["masked_pan"] is not None:
                assert re.fullmatch(r"\d{6}\*{2,9}\d{4}", payment["masked_pan"])


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Poll an in-process counter (the hub has no signal for it) until ``condition``."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - a counter, no event to wait on
            await asyncio.sleep(0.02)


def _daemon(tmp_path: Path, acquirer: AcquirerHost, slots: list[str], **kw: Any) -> EventsDaemon:
    assert acquirer.url is not None
    return EventsDaemon(make_config(tmp_path, acquirer.url, slots), env=fixed_env, environ={}, **kw)


async def test_a_contactless_payment_streams_its_prompts_then_the_outcome(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    slot = slot_name()
    daemon = _daemon(tmp_path, acquirer, [slot])
    async with running(daemon):
        till = Till(http, daemon.http_port or 0)
        async with http.get(till.base + EVENTS.format(lane=1)) as stream:
            assert stream.status == 200
            assert stream.headers["Content-Type"] == "text/event-stream"
            first = await _read_event(stream.content)
            assert first is not None and first.event == "state"
            assert first.data["prompt"] == "IDLE" and first.data["payment"] is None
            _, body = await till.pay(1, 1250, reference="R-7")
            seen = await _events_until(
                stream.content, lambda e: e.data.get("prompt") == "PRESENT CARD"
            )
            insert_card(slot, "ctls_mc_cda_online", contactless=True)
            seen += await _events_until(stream.content, _final)
    ids = [int(event.id or 0) for event in [first, *seen]]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # one each, none skipped
    lane_events = [e for e in seen if e.event != "reader"]
    payment = [e.data["payment"] for e in lane_events if e.event == "payment"]
    assert [e.data.get("prompt") for e in lane_events if e.event == "prompt"] == [
        "PRESENT CARD",
        "PROCESSING",
        "REMOVE CARD",
        "IDLE",
    ]
    assert lane_events[0].event == "payment" and payment[0]["state"] == "CREATED"
    assert payment[0]["id"] == body["id"] and payment[0]["outcome"] is None
    last = lane_events[-1]
    assert last.event == "payment" and last is seen[-1]
    assert payment[-1]["outcome"] == "approved" and payment[-1]["state"] == "COMPLETED"
    assert payment[-1]["masked_pan"] == "541333******1539"
    assert payment[-1]["reference"] == "R-7" and payment[-1]["done"] is True
    assert all(e.data["lane"] == 1 and e.data["seq"] == int(e.id or 0) for e in seen)
    _no_pan([first, *seen])


async def test_reconnect_with_last_event_id_resumes_without_duplicates(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    slot = slot_name()
    daemon = _daemon(tmp_path, acquirer, [slot])
    async with running(daemon):
        till = Till(http, daemon.http_port or 0)
        url = till.base + EVENTS.format(lane=1)
        async with http.get(url) as stream:
            _, body = await till.pay(1, 1250)
            before = await _events_until(
                stream.content, lambda e: e.data.get("prompt") == "PRESENT CARD"
            )
        insert_card(slot)  # the till is away while the card is read
        result = await till.get(str(body["id"]), wait=10)
        assert result["outcome"] == "approved", result
        async with http.get(url, headers={"Last-Event-ID": str(before[-1].id)}) as stream:
            after = await _events_until(stream.content, _final)
        async with http.get(url, headers={"Last-Event-ID": "42"}) as stream:  # not held
            stale = [await _read_event(stream.content) for _ in range(2)]
        async with http.get(url, headers={"Last-Event-ID": "not-a-number"}) as stream:
            garbled = await _read_event(stream.content)
        assert daemon.hubs is not None
        hub = daemon.hubs.get(1)
        assert hub is not None
        await _until(lambda: hub.subscribers == 0)  # every stream above has gone
    ids = [int(e.id or 0) for e in before + after]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # resumed: no gap, no duplicate
    assert [e.data.get("prompt") for e in after if e.event == "prompt"] == ["PROCESSING", "IDLE"]
    assert after[-1].data["payment"]["state"] == "COMPLETED"
    gap, state = stale
    assert gap is not None and gap.event == "gap" and gap.id is None
    assert gap.data["after"] == 42 and gap.data["missed"] == 0
    assert state is not None and state.event == "state" and state.id == after[-1].id
    assert state.data["last"]["outcome"] == "approved" and state.data["prompt"] == "IDLE"
    assert garbled is not None and garbled.event == "gap"
    _no_pan(before + after + [state])


async def test_bad_and_unknown_lanes_are_refused(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    daemon = _daemon(tmp_path, acquirer, [slot_name()])
    async with running(daemon):
        base = f"http://127.0.0.1:{daemon.http_port}"
        async with http.get(base + EVENTS.format(lane=7)) as response:
            assert response.status == 404
            assert (await response.json())["error"] == "not_found"
        async with http.get(base + EVENTS.format(lane="x1")) as response:
            assert response.status == 400
            assert (await response.json())["field"] == "lane"


async def _raw_stream(port: int, lane: int, token: str) -> socket.socket:
    """A till on a real socket with a tiny receive buffer that sends its request, then waits."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    request = (
        f"GET {EVENTS.format(lane=lane)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    return sock


async def test_a_till_that_never_reads_does_not_hold_up_the_lane(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    slot = slot_name()
    options = {"queue_size": 4, "write_buffer": 512, "send_buffer": 4096}
    daemon = _daemon(tmp_path, acquirer, [slot], events=options)
    async with running(daemon):
        till = Till(http, daemon.http_port or 0)
        assert daemon.hubs is not None
        hub = daemon.hubs.get(1)
        assert hub is not None
        sock = await _raw_stream(daemon.http_port or 0, 1, till_token(tmp_path))
        try:
            await _until(lambda: hub.subscribers == 1)
            cancelled = 0
            while hub.dropped == 0 and cancelled < 400:  # fill its buffers with short sales
                _, body = await till.pay(1, 100 + cancelled)
                assert await till.cancel(str(body["id"])) == 202
                result = await till.get(str(body["id"]), wait=5)
                assert result["outcome"] == "cancelled", result
                cancelled += 1
            assert hub.dropped > 0, "the stalled till never lost an event"
            _, body = await till.pay(1, 1250)
            await till.wait_prompt(1, "PRESENT CARD")
            insert_card(slot)
            result = await till.get(str(body["id"]), wait=10)
            assert result["state"] == "COMPLETED", result  # the lane went on regardless
            received = await _read_until(sock, b"event: state")
        finally:
            sock.close()
        await _until(lambda: hub.subscribers == 0)  # the handler noticed and let go
    text = received.decode()
    assert "event: gap" in text
    gap_at = text.index("event: gap")
    state_body = text[text.index("event: state", gap_at) :].split("data: ", 1)[1]
    assert json.loads(state_body.split("\n", 1)[0])["last"]["outcome"] == "approved"
    assert not any(pan in text for pan in PANS)


async def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    """Read the socket until a gap, then a complete ``marker`` event after it."""
    loop = asyncio.get_running_loop()
    data = b""
    async with asyncio.timeout(15):
        while True:
            chunk = await loop.sock_recv(sock, 65536)
            assert chunk, "the stream closed"
            data += chunk
            gap = data.find(b"event: gap")
            found = data.find(marker, gap) if gap >= 0 else -1
            if found >= 0 and data.find(b"\n\n", found) >= 0:
                return data


async def test_the_stream_ends_when_the_daemon_stops(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    daemon = _daemon(tmp_path, acquirer, [slot_name()], events={"tick": 30.0})
    async with running(daemon):
        url = f"http://127.0.0.1:{daemon.http_port}" + EVENTS.format(lane=1)
        stream = await http.get(url)
        first = await _read_event(stream.content)
        assert first is not None and first.event == "state"
    async with asyncio.timeout(5):  # ends cleanly, not hung: at most the reader's stop first
        last = await _read_event(stream.content)
        if last is not None:
            assert last.event == "reader" and last.data["reader"]["state"] == "stopped", last
            last = await _read_event(stream.content)
        assert last is None
    stream.release()
    assert daemon.hubs is not None
    hub = daemon.hubs.get(1)
    assert hub is not None and hub.subscribers == 0 and hub.closed


async def test_the_reader_going_and_coming_back_is_streamed(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    daemon = _daemon(tmp_path, acquirer, [slot_name()])
    async with running(daemon):
        lane = daemon.lane(1)
        assert lane is not None and daemon.hubs is not None
        hub = daemon.hubs.get(1)
        assert hub is not None
        url = f"http://127.0.0.1:{daemon.http_port}" + EVENTS.format(lane=1)
        # from the hub's first event: the reader's set-up at start-up is held for replay
        since_start = str(hub.seq - hub.published)
        async with http.get(url, headers={"Last-Event-ID": since_start}) as stream:
            start = await _events_until(stream.content, lambda e: e.event == "reader")
            assert start[-1].data["reader"]["state"] == "ready"
            lane.supervisor.report_failure(ReaderRemoved("unplugged", device="sim"))
            seen = await _events_until(
                stream.content,
                lambda e: e.event == "reader" and e.data["reader"]["state"] == "ready",
            )
    states = [e.data["reader"]["state"] for e in seen if e.event == "reader"]
    assert states == ["not_ready", "ready"]
    lost = next(e for e in seen if e.data["reader"]["state"] == "not_ready")
    assert "unplugged" in (lost.data["reader"]["last_error"] or "")
