"""The lane event hub alone (:mod:`gateway.till.hub`): numbering and order, the bounded
queue that drops the oldest and reports a gap, resuming from a ``Last-Event-ID``, unsubscribe
and close; and the SSE framing of :func:`gateway.till.events.format_event`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.till.events import format_event
from gateway.till.hub import Gap, HubClosed, LaneEvent, LaneEvents

T0 = 1_700_000_000.0


def _hub(**options: Any) -> LaneEvents:
    state: dict[str, Any] = {"prompt": "IDLE", "n": 0}

    def current() -> dict[str, Any]:
        state["n"] += 1
        return {"prompt": state["prompt"], "asked": state["n"]}

    return LaneEvents(3, clock=lambda: T0, state=current, **options)


def _drain(subscription: Any) -> list[LaneEvent | Gap]:
    items = []
    while (item := subscription.take()) is not None:
        items.append(item)
    return items


def test_events_are_numbered_in_order_with_lane_type_and_time() -> None:
    hub = _hub()
    assert hub.seq == int(T0 * 1000)  # a restarted daemon numbers above the last run
    subscription, first = hub.subscribe()
    assert [item.type for item in first if isinstance(item, LaneEvent)] == ["state"]
    hub.publish("prompt", prompt="PRESENT CARD", payment="p1")
    hub.publish("payment", payment={"id": "p1", "state": "CREATED"})
    hub.publish("reader", reader={"state": "ready"})
    items = _drain(subscription)
    assert all(isinstance(item, LaneEvent) for item in items)
    seqs = [item.seq for item in items if isinstance(item, LaneEvent)]
    assert seqs == [hub.seq - 2, hub.seq - 1, hub.seq]
    first_event = items[0]
    assert isinstance(first_event, LaneEvent)
    assert first_event.data == {
        "seq": seqs[0],
        "lane": 3,
        "type": "prompt",
        "at": "2023-11-14T22:13:20+00:00",
        "prompt": "PRESENT CARD",
        "payment": "p1",
    }
    assert [item.type for item in items if isinstance(item, LaneEvent)] == [
        "prompt",
        "payment",
        "reader",
    ]


def test_a_full_queue_drops_the_oldest_and_reports_one_gap_then_the_state() -> None:
    hub = _hub(queue_size=3)
    subscription, _ = hub.subscribe()
    start = hub.seq
    fast, _ = hub.subscribe()
    for n in range(10):
        hub.publish("prompt", prompt=f"P{n}")
        assert fast.take() is not None  # a till that keeps up loses nothing
    assert subscription.pending() == 3 and subscription.dropped == 7
    assert hub.diagnostics() == {
        "seq": start + 10,
        "published": 10,
        "subscribers": 2,
        "dropped": 7,
    }
    gap = subscription.take()
    assert isinstance(gap, Gap)
    assert (gap.missed, gap.after) == (7, start)
    assert gap.state.type == "state" and gap.state.seq == hub.seq
    assert gap.state.data["prompt"] == "IDLE"
    assert subscription.take() is None  # the stale events went with the gap
    hub.publish("prompt", prompt="after")
    item = subscription.take()
    assert isinstance(item, LaneEvent) and item.data["prompt"] == "after"
    assert item.seq == gap.state.seq + 1


def test_resume_replays_exactly_what_followed_else_a_gap() -> None:
    hub = _hub(history=4)
    for n in range(6):
        hub.publish("prompt", prompt=f"P{n}")
    last = hub.seq
    _, up_to_date = hub.subscribe(last)
    assert up_to_date == []
    _, replay = hub.subscribe(last - 2)
    assert [item.seq for item in replay if isinstance(item, LaneEvent)] == [last - 1, last]
    _, oldest = hub.subscribe(last - 4)  # the oldest held is last - 3: still complete
    assert len(oldest) == 4
    for stale in (last - 5, last + 1, -1):  # too old, from another run, unreadable
        _, first = hub.subscribe(stale)
        assert len(first) == 1
        gap = first[0]
        assert isinstance(gap, Gap) and gap.missed == 0 and gap.after == stale
        assert gap.state.seq == last


async def test_unsubscribe_stops_delivery_and_wakes_the_reader() -> None:
    hub = _hub()
    subscription, _ = hub.subscribe()
    assert hub.subscribers == 1
    waiter = asyncio.create_task(subscription.next(30))
    await asyncio.sleep(0)
    hub.publish("prompt", prompt="PRESENT CARD")
    item = await waiter
    assert isinstance(item, LaneEvent) and item.data["prompt"] == "PRESENT CARD"
    assert await subscription.next(0.01) is None  # nothing new: a time-out, not an error
    waiter = asyncio.create_task(subscription.next(30))
    await asyncio.sleep(0)
    with subscription:
        pass  # leaving the block unsubscribes
    with pytest.raises(HubClosed):
        await waiter
    assert hub.subscribers == 0
    hub.publish("prompt", prompt="IDLE")
    assert subscription.pending() == 0
    subscription.close()  # twice is fine


async def test_closing_the_hub_ends_every_subscription_and_refuses_new_ones() -> None:
    hub = _hub(max_subscribers=2)
    first, _ = hub.subscribe()
    second, _ = hub.subscribe()
    with pytest.raises(HubClosed, match="too many"):
        hub.subscribe()
    waiters = [asyncio.create_task(sub.next(30)) for sub in (first, second)]
    await asyncio.sleep(0)
    hub.close()
    for waiter in waiters:
        with pytest.raises(HubClosed):
            await waiter
    assert hub.subscribers == 0
    with pytest.raises(HubClosed):
        hub.subscribe()


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="queue_size"):
        LaneEvents(1, queue_size=0)


def test_sse_framing_of_an_event_and_of_a_gap() -> None:
    hub = _hub(queue_size=1)
    subscription, first = hub.subscribe()
    state = first[0]
    assert isinstance(state, LaneEvent)
    text = format_event(state).decode()
    lines = text.split("\n")
    assert lines[0] == f"id: {state.seq}" and lines[1] == "event: state"
    assert json.loads(lines[2].removeprefix("data: ")) == state.data
    assert text.endswith("\n\n") and len(lines) == 5
    hub.publish("prompt", prompt="multi\nline")  # JSON escapes it: still one data line
    hub.publish("prompt", prompt="x")
    gap = subscription.take()
    assert isinstance(gap, Gap)
    blocks = format_event(gap).decode().split("\n\n")
    assert blocks[0].startswith("event: gap\ndata: ") and "id:" not in blocks[0]
    body = json.loads(blocks[0].split("data: ", 1)[1])
    assert body["type"] == "gap" and body["missed"] == 1 and body["lane"] == 3
    assert blocks[1].startswith(f"id: {hub.seq}\nevent: state\n")


def test_an_event_read_later_says_when_it_was_published_and_what_it_held() -> None:
    """The body is built when read (:attr:`LaneEvent.data`): still the publish time and the
    fields as they were then, whatever the clock and the caller's dict did since."""
    now = [T0]
    hub = LaneEvents(5, clock=lambda: now[0])
    payment = {"id": "p9", "state": "CREATED"}
    event = hub.publish("payment", payment=dict(payment))
    now[0] = T0 + 3600.5
    payment["state"] = "COMPLETED"
    later = hub.publish("prompt", prompt="IDLE", payment=None)
    assert event.data == {
        "seq": later.seq - 1,
        "lane": 5,
        "type": "payment",
        "at": "2023-11-14T22:13:20+00:00",
        "payment": {"id": "p9", "state": "CREATED"},
    }
    assert later.data["at"] == "2023-11-14T23:13:20.500000+00:00"
    assert event.data == event.data and event.data is not event.data  # a new dict each read
