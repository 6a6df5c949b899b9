"""The status routes over a real socket: JSON round trip, masking, failures, headers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.web import add_status_routes
from tests.gateway.web_support import (
    FULL_PAN,
    MASKED_PAN,
    SnapshotBox,
    malformed_snapshot,
    serve,
    two_lane_snapshot,
)


async def _get(url: str) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text(), response.headers


async def test_status_json_round_trips() -> None:
    snapshot = two_lane_snapshot()
    async with serve(SnapshotBox(snapshot)) as base:
        status, body, headers = await _get(base + "/status.json")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Cache-Control"] == "no-store"
    assert json.loads(body) == snapshot


async def test_status_json_masks_card_numbers_anywhere() -> None:
    snapshot = two_lane_snapshot()
    snapshot["lanes"][0]["payment"]["masked_pan"] = FULL_PAN
    snapshot["lanes"][1]["device"]["last_error"] = "bad card 4761-7390-0101-0010 at lane 2"
    snapshot["acquirer"]["last_error"] = f"track 2 {FULL_PAN}D25122010000000000000F"
    snapshot["extra"] = {FULL_PAN: [int(FULL_PAN), ("x", FULL_PAN)]}
    async with serve(SnapshotBox(snapshot)) as base:
        status, body, _ = await _get(base + "/status.json")
        page_status, page, _ = await _get(base + "/")
    assert status == 200 and page_status == 200
    for text in (body, page):
        assert FULL_PAN not in text.replace("-", "").replace(" ", "")
        assert "2512201" not in text  # the expiry and service code of the track 2
    data = json.loads(body)
    assert data["lanes"][0]["payment"]["masked_pan"] == MASKED_PAN
    assert data["lanes"][1]["device"]["last_error"] == f"bad card {MASKED_PAN} at lane 2"
    assert data["acquirer"]["last_error"] == f"track 2 {MASKED_PAN}=****"
    assert data["extra"] == {MASKED_PAN: [MASKED_PAN, ["x", MASKED_PAN]]}
    assert f'class="pan">{MASKED_PAN}<' in page


async def test_page_headers_and_escaping() -> None:
    snapshot = two_lane_snapshot()
    snapshot["lanes"][0]["name"] = "<b>Lane & 'one'</b>"
    async with serve(SnapshotBox(snapshot)) as base:
        status, body, headers = await _get(base + "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp
    assert "unsafe-inline" not in csp
    assert "&lt;b&gt;Lane &amp; &#x27;one&#x27;&lt;/b&gt;" in body
    assert "<b>Lane" not in body


async def test_malformed_snapshots_never_give_a_500() -> None:
    shapes: list[Any] = [malformed_snapshot(), None, [], "text", 42, {"lanes": {"1": {}}},
                         {"lanes": [[1, 2]], "journal": {"payments_today": "12"}},
                         {"now": "9999-12-31T23:59:59-23:59", "started_at": -1e308},
                         {"lanes": [{"device": {"since": float("nan")}}]}]
    box = SnapshotBox(None)
    async with serve(box) as base:
        for shape in shapes:
            box.snapshot = shape
            for path in ("/", "/status.json", "/metrics"):
                status, body, _ = await _get(base + path)
                assert status == 200, (shape, path)
                assert "Traceback" not in body


async def test_failing_source_gives_a_readable_503_without_its_message() -> None:
    box = SnapshotBox(two_lane_snapshot())
    box.error = RuntimeError(f"database locked while reading {FULL_PAN}")
    async with serve(box) as base:
        status, body, _ = await _get(base + "/")
        json_status, json_body, _ = await _get(base + "/status.json")
    assert status == 503
    assert "Status not available" in body and "could not report its status" in body
    assert json_status == 503
    assert json.loads(json_body)["error"] == "status unavailable"
    for text in (body, json_body):
        assert "database locked" not in text and FULL_PAN not in text


async def test_hung_source_times_out_into_a_503() -> None:
    release = asyncio.Event()

    async def hung() -> dict[str, Any]:
        await release.wait()
        return two_lane_snapshot()

    async with serve(hung, snapshot_timeout=0.2) as base:
        status, body, _ = await _get(base + "/")
    release.set()
    assert status == 503
    assert "took too long" in body


async def test_plain_function_source_and_subapp_mount() -> None:
    root, status_app = web.Application(), web.Application()
    add_status_routes(status_app, two_lane_snapshot)
    root.add_subapp("/status/", status_app)
    runner = web.AppRunner(root)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/status"
        status, body, _ = await _get(base + "/")
        json_status, json_body, _ = await _get(base + "/status.json")
    finally:
        await runner.cleanup()
    assert status == 200 and "Lane 2" in body
    assert json_status == 200 and json.loads(json_body)["shop"] == "shop-001"


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="positive"):
        add_status_routes(web.Application(), two_lane_snapshot, refresh_seconds=0)


async def test_a_renderer_bug_shows_a_page_not_a_500(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_snapshot: Any) -> Any:
        raise KeyError(FULL_PAN)

    monkeypatch.setattr("gateway.web.status.build_view", broken)
    async with serve(SnapshotBox(two_lane_snapshot())) as base:
        status, body, _ = await _get(base + "/")
    assert status == 200
    assert "Some status details could not be shown." in body
    assert FULL_PAN not in body
