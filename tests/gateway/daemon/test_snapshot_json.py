"""``Snapshot.to_json`` gives exactly what ``dataclasses.asdict`` gives, as new objects.

The hand-written conversion replaced ``asdict`` for speed (docs/performance.md); these tests
hold it to the same output on a snapshot with every kind of field filled (two lanes, one busy,
nested device diagnostics with lists, a last payment, MQTT and acquirer status), and check
that changing the JSON never changes the snapshot.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from gateway.daemon.snapshot import (
    AcquirerStatus,
    JournalFigures,
    LaneSnapshot,
    MqttStatus,
    PaymentInProgress,
    Snapshot,
)


def _snapshot() -> Snapshot:
    device = {"state": "ready", "since": "2026-12-05T19:00:00+00:00", "failures": 0,
              "history": [{"at": 1.5, "error": None}, ("tuple", 2)], "ratio": 0.25}  # fmt: skip
    busy = PaymentInProgress(
        id="pay_abc",
        amount=1250,
        currency="EUR",
        masked_pan="476173******0010",
        started_at=None,
        state="CARD_READ",
    )
    return Snapshot(
        shop="shop-1",
        version="1.0",
        ready=True,
        started_at="2026-12-05T18:00:00+00:00",
        now=None,
        lanes=[
            LaneSnapshot(
                id=1,
                name="Till 1",
                reader="sim://a",
                interface="auto",
                device=device,
                prompt="PROCESSING",
                payment=busy,
                last={"id": "pay_old", "outcome": "approved", "offline": False},
            ),
            LaneSnapshot(
                id=2,
                name="Till 2",
                reader="sim://b",
                interface="contact",
                device={"state": "not ready"},
                prompt="IDLE",
            ),
        ],
        journal=JournalFigures(payments_today=3, approved_today=2, declined_today=1),
        acquirer=AcquirerStatus(
            url="http://127.0.0.1:1", reachable=False, last_error="refused", last_success=None
        ),
        mqtt=MqttStatus(enabled=True, connected=False, backlog=4, last_publish=12.5),
    )


def test_to_json_is_what_asdict_gives() -> None:
    snapshot = _snapshot()
    assert snapshot.to_json() == asdict(snapshot)
    assert json.dumps(snapshot.to_json()) == json.dumps(asdict(snapshot))  # key order too


def test_changing_the_json_leaves_the_snapshot_alone() -> None:
    snapshot = _snapshot()
    document = snapshot.to_json()
    document["lanes"][0]["device"]["history"][0]["error"] = "changed"
    document["lanes"][0]["last"]["outcome"] = "changed"
    document["lanes"][0]["payment"]["state"] = "changed"
    assert snapshot.to_json() == asdict(_snapshot())


def test_the_page_scrubs_the_snapshot_as_it_would_its_json() -> None:
    from gateway.web.values import scrub

    snapshot = _snapshot()
    snapshot.lanes[1].device["last_error"] = "card 4761739001010010 refused"  # a PAN upstream
    direct = scrub(snapshot)  # what the status routes do: one walk, no to_json() first
    assert direct == scrub(snapshot.to_json())
    assert json.dumps(direct) == json.dumps(scrub(snapshot.to_json()))  # key order too
    assert direct["lanes"][1]["device"]["last_error"] == "card 476173******0010 refused"
