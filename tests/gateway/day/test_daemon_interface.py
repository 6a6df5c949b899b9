"""The interface per payment through the daemon (schema 8): on an ``auto`` lane, a card dipped
and a card tapped are journaled with their interfaces, the day close splits its totals by them,
and the till reads the journaled interface after a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from drivers import sim as drivers_sim
from gateway.daemon.daemon import Daemon
from gateway.till.authority import allow_as
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import (
    Till,
    acquirer_fixture,
    http_fixture,
    insert_card,
    running,
    slot_name,
)
from tests.gateway.day.day_support import day_daemon, host_url, post

__all__ = ["acquirer_fixture", "http_fixture"]


async def _pay(
    daemon: Daemon, http: aiohttp.ClientSession, slot: str, amount: int, *, tap: bool
) -> dict[str, Any]:
    """One payment on lane 1: a contact card dipped, or a contactless card tapped."""
    assert daemon.http_port is not None
    till = Till(http, daemon.http_port)
    status, body = await till.pay(1, amount)
    assert status == 202, body
    await till.wait_prompt(1, "PRESENT CARD", within=10)
    if tap:
        insert_card(slot, "ctls_mc_cda_online", contactless=True)
    else:
        insert_card(slot, "visa_credit")
    try:
        return await till.get(str(body["id"]), wait=15)
    finally:
        drivers_sim.slot(slot).remove()


async def test_an_auto_lane_journals_each_interface_and_the_close_splits_by_it(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    slot = slot_name()
    daemon = day_daemon(tmp_path, host_url(acquirer), [slot])
    assert daemon.config.lanes[0].interface == "auto"  # the reader decides by the ATR
    daemon.authorise = allow_as("manager:alice")
    async with running(daemon):
        dip = await _pay(daemon, http, slot, 1250, tap=False)
        tap = await _pay(daemon, http, slot, 2000, tap=True)
        assert [(p["state"], p["interface"]) for p in (dip, tap)] == [
            ("COMPLETED", "contact"), ("COMPLETED", "contactless")
        ]  # fmt: skip
        journaled = {pid: (await daemon.journal.get(pid)).interface
                     for pid in (str(dip["id"]), str(tap["id"]))}  # fmt: skip
        assert journaled == {str(dip["id"]): "contact", str(tap["id"]): "contactless"}
        outbox = {item.payment_id: item.body for item in await daemon.journal.claim_batch(10)}
        assert outbox[str(tap["id"])]["interface"] == "contactless"  # head office's record

        status, day = await post(daemon, http, "/api/days/close")
        assert status == 201, day
        totals = {(t["dimension"], t["key"], t["kind"], t["currency"]): (t["count"], t["amount"])
                  for t in day["record"]["totals"]}  # fmt: skip
        assert totals[("interface", "contact", "sales", "EUR")] == (1, 1250)
        assert totals[("interface", "contactless", "sales", "EUR")] == (1, 2000)
        assert ("interface", "unknown", "sales", "EUR") not in totals  # no longer lumped
        assert totals[("lane", "1", "sales", "EUR")] == (2, 3250)

    # a restart: the lane's view of the payment is gone, the journal still says where
    again = day_daemon(tmp_path, host_url(acquirer), [slot])
    async with running(again):
        assert again.http_port is not None
        till = Till(http, again.http_port)
        after = [await till.get(str(p["id"])) for p in (dip, tap)]
        assert [p["interface"] for p in after] == ["contact", "contactless"]
