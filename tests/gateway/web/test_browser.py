"""The status page as a store manager sees it: a real aiohttp server and headless chromium.

One browser for the module (tests.fixtures.browser); each test serves its own snapshot on
127.0.0.1 and reads the page through chromium: visible texts, no full PAN in the DOM, a real
screenshot, the self-refresh (and its "connection lost" banner), the page without JavaScript,
escaping of hostile names, and no Content-Security-Policy violation of the page's own script.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.gateway.web_support import (
    FULL_PAN,
    MASKED_PAN,
    SnapshotBox,
    malformed_snapshot,
    serve,
    two_lane_snapshot,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _console_errors(target: Any) -> list[str]:
    errors: list[str] = []
    target.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    target.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def _png_summary(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the pixel data) of a PNG, read by hand."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    offset, idat = 8, b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            idat += data[offset + 8 : offset + 8 + length]
        offset += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


async def test_manager_sees_both_lanes_and_no_full_pan(page: Any, tmp_path: Path) -> None:
    snapshot = two_lane_snapshot()
    # Defence in depth: a full PAN leaked upstream into an error text and a payment id.
    snapshot["lanes"][1]["device"]["last_error"] = f"reader lost: ReaderRemoved: card {FULL_PAN}"
    snapshot["lanes"][0]["payment"]["id"] = f"pay-{FULL_PAN}"
    errors = _console_errors(page)
    async with serve(SnapshotBox(snapshot)) as base:
        response = await page.goto(base + "/")
        assert response is not None and response.status == 200
        assert await page.title() == "shop-001 — payment gateway status"
        await expect(page.locator("#headline")).to_contain_text("Ready to take payments")
        await expect(page.locator("#headline")).to_contain_text("updated 10:45:12")

        lane1 = page.locator("#lane-1")
        await expect(lane1.locator("h2")).to_have_text("Lane 1")
        await expect(lane1.locator(".device")).to_contain_text("Reader ready since 08:00")
        await expect(lane1.locator(".device")).to_contain_text("card in reader")
        await expect(lane1.locator(".prompt")).to_have_text("PROCESSING")
        await expect(lane1.locator(".amount")).to_have_text("12.50 EUR")
        await expect(lane1.locator(".pay-state")).to_have_text("Waiting for the bank's answer")
        await expect(lane1.locator(".pan")).to_have_text(MASKED_PAN)
        await expect(lane1.locator(".reader")).to_have_text("pcsc://Virtual PCD 00 00")

        lane2 = page.locator("#lane-2")
        await expect(lane2.locator(".device")).to_contain_text(
            "Reader not connected since 10:42 (3 min ago) — retrying (next try in 4 s)")
        await expect(lane2.locator(".problem")).to_contain_text(
            "Last problem: Reader lost: card 476173******0010 (at 10:42)")
        await expect(lane2).to_contain_text("No payment in progress.")
        await expect(lane2.locator(".prompt")).to_have_text("IDLE")

        body = page.locator("body")
        await expect(body).to_contain_text("12 payments today")
        await expect(body).to_contain_text("All sales sent to head office")
        await expect(body).to_contain_text("Payment provider reachable")
        await expect(body).to_contain_text("Connected to head office")
        await expect(page.locator("#stale")).to_be_hidden()

        content = await page.content()
        assert FULL_PAN not in content
        assert "Traceback" not in content and "ReaderRemoved" not in content
        assert content.count("476173******0010") == 3  # card, reference, lane 2's last problem

        shot = tmp_path / "status.png"
        await page.screenshot(path=str(shot), full_page=True)
        width, height, distinct = _png_summary(shot)
        assert width == 1280 and height >= 300
        assert shot.stat().st_size > 10_000
        assert distinct > 32, "screenshot looks blank"
    assert errors == [], f"console errors (CSP or script): {errors}"


async def test_page_refreshes_itself_and_flags_a_lost_gateway(page: Any) -> None:
    box = SnapshotBox(two_lane_snapshot())
    errors = _console_errors(page)
    async with serve(box, refresh_seconds=0.2) as base:
        await page.goto(base + "/")
        lane1 = page.locator("#lane-1")
        await expect(lane1.locator(".prompt")).to_have_text("PROCESSING")

        changed = two_lane_snapshot()
        changed["lanes"][0]["prompt"] = "APPROVED"
        changed["lanes"][0]["payment"]["state"] = "APPROVED"
        changed["journal"]["payments_today"] = 13
        changed["journal"]["approved_today"] = 11
        box.snapshot = changed
        await expect(lane1.locator(".prompt")).to_have_text("APPROVED")
        await expect(lane1.locator(".pay-state")).to_have_text("Approved")
        await expect(page.locator("body")).to_contain_text("13 payments today")

        box.error = RuntimeError("daemon busy")
        await expect(page.locator("#stale")).to_be_visible()
        await expect(page.locator("#stale")).to_have_text(
            "Connection to the gateway lost — retrying")
        # The last good view stays on screen while the banner shows.
        await expect(lane1.locator(".prompt")).to_have_text("APPROVED")

        box.error = None
        changed["lanes"][1]["device"]["state"] = "ready"
        await expect(page.locator("#stale")).to_be_hidden()
        await expect(page.locator("#lane-2 .device")).to_contain_text("Reader ready")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e]


async def test_malformed_snapshot_still_renders(page: Any) -> None:
    async with serve(SnapshotBox(malformed_snapshot())) as base:
        response = await page.goto(base + "/")
        assert response is not None and response.status == 200
        await expect(page.locator("#headline")).to_contain_text("Gateway state unknown")
        await expect(page.locator("header h1")).to_have_text("Shop (name unknown)")
        lanes = page.locator("section.lane")
        await expect(lanes).to_have_count(5)
        await expect(lanes.nth(0).locator(".device")).to_have_text("Reader state unknown")
        await expect(lanes.nth(3).locator(".amount")).to_have_text("unknown")
        await expect(lanes.nth(4).locator(".pan")).to_have_text("unknown")
        await expect(page.locator("body")).to_contain_text("Payments today: unknown")
        await expect(page.locator("body")).to_contain_text("Payment provider: unknown")
        shown = await page.locator("main").inner_text()
        assert "Traceback" not in shown and "Error" not in shown


async def test_page_reads_without_javascript(browser: Any) -> None:
    context = await browser.new_context(java_script_enabled=False)
    try:
        no_js = await context.new_page()
        async with serve(SnapshotBox(two_lane_snapshot())) as base:
            await no_js.goto(base + "/")
            await expect(no_js.locator("#lane-1 .amount")).to_have_text("12.50 EUR")
            await expect(no_js.locator("#lane-2 .device")).to_contain_text("not connected")
            refresh = no_js.locator('meta[http-equiv="refresh"]')
            await expect(refresh).to_have_attribute("content", "5")
    finally:
        await context.close()


async def test_hostile_names_are_shown_as_text(page: Any) -> None:
    snapshot = two_lane_snapshot()
    snapshot["shop"] = "<script>window.pwned=1</script>"
    snapshot["lanes"][0]["name"] = '<img src=x onerror="window.pwned=2">'
    snapshot["lanes"][0]["prompt"] = "</span><b>HI</b>"
    snapshot["lanes"][1]["device"]["last_error"] = '"><svg onload=alert(1)>'
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    async with serve(SnapshotBox(snapshot)) as base:
        await page.goto(base + "/")
        await expect(page.locator("header h1")).to_have_text("<script>window.pwned=1</script>")
        await expect(page.locator("#lane-1 h2")).to_have_text(
            '<img src=x onerror="window.pwned=2">')
        await expect(page.locator("#lane-1 .prompt")).to_have_text("</span><b>HI</b>")
        assert await page.locator("main img, main svg, main b, main script").count() == 0
        assert await page.evaluate("window.pwned === undefined")
    assert dialogs == []
