"""Each lane's live events for the tills: a small publish/subscribe hub per lane.

The lane calls its ``listener`` (:attr:`gateway.payments.Lane.listener`) on every change a till
shows and knows nothing else about who listens. :class:`LaneEvents` turns those calls into
numbered events and hands each to every subscriber without ever waiting for one:

* an event is a JSON-safe dict ``{"seq": n, "lane": id, "type": ..., "at": ISO 8601, ...}``:
  ``prompt`` (``prompt``, ``payment`` id), ``payment`` (id, journal state, outcome, reason,
  masked PAN as the lane already shows it, interface, amount, currency, reference, offline,
  done) or ``reader`` (state, since, last error);
* ``seq`` grows by one per event; it starts from the hub's creation time in milliseconds, so
  after a daemon restart an old ``Last-Event-ID`` is never mistaken for a new event;
* every subscriber has a bounded queue: when a till does not keep up, the oldest event is
  dropped and the subscriber is told of a gap (:class:`Gap`) followed by the lane's current
  state (a ``state`` event) instead of the events it missed;
* the hub keeps the last events (``history``) so a till that reconnects with the last ``seq``
  it saw gets exactly what it missed, or a gap when the hub no longer holds it.

Everything runs on the event loop: publishing is synchronous and O(subscribers).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.errors import GatewayError
from gateway.payments import Lane, LaneView

__all__ = [
    "Gap",
    "HubClosed",
    "LaneEvent",
    "LaneEventHubs",
    "LaneEvents",
    "Subscription",
    "payment_json",
    "reader_json",
]

#: Event types a stream carries (``state`` opens a stream and follows a ``gap``).
EVENT_TYPES = ("prompt", "payment", "brand", "reader", "state", "gap")


class HubClosed(GatewayError):
    """The hub is closed (the daemon is stopping): no new subscriber."""


@dataclass(frozen=True, slots=True)
class LaneEvent:
    """One numbered event of lane ``lane`` at ``at`` (epoch seconds), with its own ``body``.

    :attr:`data`, the JSON body a till receives, is built when it is read: most events are
    published with no till subscribed and are never read, and the ISO 8601 text of ``at`` was
    a third of publishing one.
    """

    seq: int
    type: str
    lane: int
    at: float
    body: dict[str, Any]

    @property
    def data(self) -> dict[str, Any]:
        """``{"seq", "lane", "type", "at": ISO 8601, ...body}`` (a new dict at each read)."""
        return {"seq": self.seq, "lane": self.lane, "type": self.type, "at": _iso(self.at),
                **self.body}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Gap:
    """Events were lost to this subscriber; ``state`` is the lane as it is now.

    Attributes:
        missed: How many events were dropped (0 when unknown: a stale ``Last-Event-ID``).
        after: The last ``seq`` the subscriber had (or asked to resume from), if any.
        state: The lane's current state; the stream goes on after its ``seq``.
    """

    missed: int
    after: int | None
    state: LaneEvent


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def payment_json(view: LaneView) -> dict[str, Any]:
    """A payment as the till sees it: never more of a PAN than the lane's mask."""
    return {
        "id": view.id,
        "state": view.state,
        "outcome": None if view.outcome is None else view.outcome.value,
        "reason": view.reason,
        "masked_pan": view.masked_pan,
        "interface": view.interface,
        "amount": view.amount,
        "currency": view.currency,
        "reference": view.reference,
        "offline": view.offline,
        "done": view.done.is_set() or view.outcome is not None,
    }


def reader_json(lane: Lane) -> dict[str, Any]:
    """The lane's reader as the supervisor reports it (state, since, last error)."""
    supervisor = lane.supervisor
    return {
        "state": supervisor.state.value,
        "since": _iso(supervisor.since),
        "last_error": supervisor.last_error,
    }


class Subscription:
    """One subscriber's bounded queue (see :meth:`LaneEvents.subscribe`)."""

    def __init__(self, hub: LaneEvents, maxsize: int, after: int) -> None:
        self._hub = hub
        self._items: deque[LaneEvent] = deque()
        self._maxsize = maxsize
        self._after = after
        self._missed = 0
        self._wake = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def put(self, event: LaneEvent) -> None:
        """Queue ``event``; when full, drop the oldest and remember the gap (never waits)."""
        if self.closed:
            return
        if len(self._items) >= self._maxsize:
            self._items.popleft()
            self._missed += 1
            self.dropped += 1
            self._hub.dropped += 1
        self._items.append(event)
        self._wake.set()

    def pending(self) -> int:
        """Events queued and not yet taken."""
        return len(self._items)

    def take(self) -> LaneEvent | Gap | None:
        """The next event, a :class:`Gap` (the queue is then cleared), or None when empty."""
        if self._missed:
            gap = Gap(self._missed, self._after, self._hub.state_event())
            self._items.clear()
            self._missed, self._after = 0, gap.state.seq
            return gap
        if not self._items:
            self._wake.clear()
            return None
        event = self._items.popleft()
        self._after = event.seq
        return event

    async def next(self, within: float) -> LaneEvent | Gap | None:
        """Wait up to ``within`` s for :meth:`take` to have something; None if not.

        Raises:
            HubClosed: The subscription or its hub was closed.
        """
        item = self.take()
        if item is None and not self.closed:
            try:
                async with asyncio.timeout(within):
                    await self._wake.wait()
            except TimeoutError:
                pass
            item = self.take()
        if self.closed and item is None:
            raise HubClosed("lane events closed")
        return item

    def close(self) -> None:
        """Unsubscribe (idempotent); a waiting :meth:`next` raises :class:`HubClosed`."""
        if not self.closed:
            self.closed = True
            self._items.clear()
            self._hub._remove(self)
            self._wake.set()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LaneEvents:
    """The publish/subscribe hub of one lane (see the module docstring).

    Args:
        lane_id: The lane's id (every event carries it).
        clock: Wall clock for ``at`` and the first ``seq``.
        history: How many recent events are kept for ``Last-Event-ID``.
        queue_size: Each subscriber's queue bound.
        max_subscribers: Streams open at once on this lane.
        state: Builds the lane's current state (the body of a ``state`` event).
    """

    def __init__(
        self,
        lane_id: int,
        *,
        clock: Callable[[], float] = time.time,
        history: int = 64,
        queue_size: int = 64,
        max_subscribers: int = 32,
        state: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        if queue_size < 1 or history < 0:
            raise ValueError("queue_size must be >= 1 and history >= 0")
        self.lane_id = lane_id
        self._clock = clock
        self._history: deque[LaneEvent] = deque(maxlen=history)
        self._queue_size = queue_size
        self.max_subscribers = max_subscribers
        self._state = state
        self._subscribers: list[Subscription] = []
        self.seq = int(clock() * 1000)
        self.published = 0
        self.dropped = 0
        self.closed = False

    def publish(self, kind: str, **fields: Any) -> LaneEvent:
        """Number an event, keep it in the history and queue it for every subscriber."""
        self.seq += 1
        event = LaneEvent(self.seq, kind, self.lane_id, self._clock(), fields)
        self._history.append(event)
        self.published += 1
        for subscriber in tuple(self._subscribers):
            subscriber.put(event)
        return event

    def state_event(self) -> LaneEvent:
        """The lane as it is now, numbered with the last ``seq`` (not kept, not queued)."""
        return LaneEvent(self.seq, "state", self.lane_id, self._clock(), self._state())

    def subscribe(self, last_id: int | None = None) -> tuple[Subscription, list[LaneEvent | Gap]]:
        """Subscribe; the second item is what to send first.

        Without ``last_id``: the current ``state``. With one the hub still covers: the events
        after it (nothing when up to date). Otherwise (too old, or from another run): a
        :class:`Gap` holding the current state.

        Raises:
            HubClosed: The hub is closed, or ``max_subscribers`` streams are open.
        """
        if self.closed:
            raise HubClosed("lane events closed")
        if len(self._subscribers) >= self.max_subscribers:
            raise HubClosed(f"too many event streams on lane {self.lane_id}")
        first: list[LaneEvent | Gap]
        oldest = self._history[0].seq if self._history else self.seq + 1
        if last_id is None:
            first = [self.state_event()]
        elif oldest - 1 <= last_id <= self.seq:
            first = [event for event in self._history if event.seq > last_id]
        else:
            first = [Gap(0, last_id, self.state_event())]
        subscription = Subscription(self, self._queue_size, self.seq)
        self._subscribers.append(subscription)
        return subscription, first

    def _remove(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)

    @property
    def subscribers(self) -> int:
        """Subscriptions open now."""
        return len(self._subscribers)

    def diagnostics(self) -> dict[str, Any]:
        """JSON-safe counters: last seq, events published, open streams, events dropped."""
        return {
            "seq": self.seq,
            "published": self.published,
            "subscribers": len(self._subscribers),
            "dropped": self.dropped,
        }

    def close(self) -> None:
        """Close every subscription and refuse new ones (the daemon stops)."""
        self.closed = True
        for subscriber in tuple(self._subscribers):
            subscriber.close()


class LaneEventHubs:
    """One :class:`LaneEvents` per lane, attached to the lane's ``listener``.

    Args:
        clock: Wall clock of every hub.
        **options: Passed to each :class:`LaneEvents` (``history``, ``queue_size``...).
    """

    def __init__(self, *, clock: Callable[[], float] = time.time, **options: Any) -> None:
        self._clock = clock
        self._options = options
        self._hubs: dict[int, tuple[Lane, LaneEvents, str | None]] = {}
        self.closed = False

    def attach(self, lane: Lane) -> LaneEvents:
        """The hub of ``lane``, created and set as its listener on first use (idempotent)."""
        entry = self._hubs.get(lane.id)
        if entry is not None and entry[0] is lane:
            return entry[1]
        hub = LaneEvents(lane.id, clock=self._clock, state=lambda: _state(lane), **self._options)
        if self.closed:
            hub.close()
        self._hubs[lane.id] = (lane, hub, lane.supervisor.state.value)

        def listener(kind: str, view: LaneView | None) -> None:
            if kind == "prompt":
                current = lane.current
                hub.publish(
                    "prompt",
                    prompt=lane.prompt.value,
                    payment=None if current is None else current.id,
                )
            elif kind == "payment" and view is not None:
                hub.publish("payment", payment=payment_json(view))
            elif kind == "brand" and view is not None and view.brand_offer is not None:
                hub.publish("brand", payment=view.id, **view.brand_offer.to_json())
            self.refresh_reader(lane)

        lane.listener = listener
        return hub

    def refresh_reader(self, lane: Lane) -> None:
        """Publish a ``reader`` event if the reader's state changed since the last one."""
        entry = self._hubs.get(lane.id)
        if entry is None or entry[0] is not lane:
            return
        state = lane.supervisor.state.value
        if state != entry[2]:
            self._hubs[lane.id] = (lane, entry[1], state)
            entry[1].publish("reader", reader=reader_json(lane))

    def get(self, lane_id: int) -> LaneEvents | None:
        """The hub of a lane already attached."""
        entry = self._hubs.get(lane_id)
        return None if entry is None else entry[1]

    def close(self) -> None:
        """Close every hub (the daemon stops): their streams end."""
        self.closed = True
        for _lane, hub, _state_value in self._hubs.values():
            hub.close()


def _state(lane: Lane) -> dict[str, Any]:
    current, last = lane.current, lane.last
    return {
        "prompt": lane.prompt.value,
        "reader": reader_json(lane),
        "payment": None if current is None else payment_json(current),
        "last": None if last is None else payment_json(last),
    }
