"""A small client of the daemon's till API (docs/daemon.md, docs/till-events.md, docs/refunds.md).

What ``posgw-sim till`` uses: start a payment on a lane, follow the lane's Server-Sent Events
(``GET /api/lanes/{id}/events``), cancel, refund, read a payment; void and close the day
(``POST /api/payments/{id}/void``, ``POST /api/days/close``) when the daemon offers them. An
integrator can read it as an example of the API in ~200 lines.

Errors: :class:`TillUnreachable` (no daemon at the URL), :class:`TillHttpError` (an error
answer: status, ``error`` code, ``field``), :class:`RouteMissing` (the daemon has no such
route: aiohttp's plain-text 404, as opposed to the JSON ``not_found`` of an unknown payment).
A bearer token (``Authorization: Bearer ...``) goes with every request when given.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

__all__ = ["RouteMissing", "SseEvent", "TillClient", "TillError", "TillHttpError",
           "TillUnreachable", "read_events"]  # fmt: skip


class TillError(Exception):
    """A till API call failed."""


class TillUnreachable(TillError):
    """No daemon answers at the URL."""


class TillHttpError(TillError):
    """The daemon answered with an error status."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body
        detail = body.get("error", "error")
        if body.get("field"):
            detail += f" (field {body['field']})"
        if body.get("message"):
            detail += f": {body['message']}"
        super().__init__(f"HTTP {status} {detail}")


class RouteMissing(TillError):
    """The daemon does not offer this route (yet)."""


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One Server-Sent Event: ``id``, ``event`` name and its JSON ``data``."""

    id: str | None
    event: str
    data: dict[str, Any]


async def read_events(content: aiohttp.StreamReader) -> AsyncIterator[SseEvent]:
    """Parse a ``text/event-stream`` (HTML Living Standard, 9.2.6): comments skipped."""
    fields: dict[str, str] = {}
    while True:
        raw = await content.readline()
        if not raw:
            return
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if "data" in fields:
                try:
                    data = json.loads(fields["data"])
                except json.JSONDecodeError:
                    data = {"text": fields["data"]}
                if isinstance(data, dict):
                    yield SseEvent(fields.get("id"), fields.get("event", "message"), data)
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        fields[name] = fields[name] + "\n" + value if name == "data" and name in fields else value


class TillClient:
    """The till API of one daemon.

    Args:
        session: The HTTP session (the caller owns it).
        base_url: The daemon, e.g. ``http://127.0.0.1:8000``.
        token: A bearer token for the till routes, when the daemon requires one.
    """

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str | None = None):
        self.session = session
        self.base = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        try:
            async with self.session.request(
                method, self.base + path, json=body, params=params, headers=self.headers
            ) as answer:
                text = await answer.text()
                status = answer.status
        except aiohttp.ClientConnectionError as exc:
            raise TillUnreachable(f"no daemon at {self.base}: {exc}") from None
        try:
            payload = json.loads(text) if text else {}
        except json.JSONDecodeError:
            payload = None
        if status == 404 and not isinstance(payload, dict):
            raise RouteMissing(f"{method} {path}: the daemon has no such route (404)")
        if not isinstance(payload, dict):
            raise TillHttpError(status, {"error": "not_json", "message": text[:200]})
        if status >= 400:
            raise TillHttpError(status, payload)
        return status, payload

    async def lanes(self) -> list[dict[str, Any]]:
        """``GET /api/lanes``."""
        _, body = await self._call("GET", "/api/lanes")
        lanes: list[dict[str, Any]] = body.get("lanes", [])
        return lanes

    async def pay(self, lane: int, amount: int, currency: str,
                  reference: str | None = None) -> dict[str, Any]:  # fmt: skip
        """``POST /api/lanes/{lane}/payments``; the created (or replayed) payment."""
        body: dict[str, Any] = {"amount": amount, "currency": currency}
        if reference:
            body["reference"] = reference
        _, answer = await self._call("POST", f"/api/lanes/{lane}/payments", body)
        return answer

    async def payment(self, payment_id: str, wait: float | None = None) -> dict[str, Any]:
        """``GET /api/payments/{id}`` (long-polling up to ``wait`` s for its end)."""
        params = None if wait is None else {"wait": str(wait)}
        _, answer = await self._call("GET", f"/api/payments/{payment_id}", params=params)
        return answer

    async def cancel(self, payment_id: str) -> dict[str, Any]:
        """``POST /api/payments/{id}/cancel``."""
        # an empty JSON object: the daemon takes state-changing requests as application/json
        return (await self._call("POST", f"/api/payments/{payment_id}/cancel", {}))[1]

    async def refund(self, payment_id: str, amount: int,
                     reference: str | None = None) -> dict[str, Any]:  # fmt: skip
        """``POST /api/payments/{id}/refunds`` (referenced refund, docs/refunds.md)."""
        body: dict[str, Any] = {"amount": amount}
        if reference:
            body["reference"] = reference
        return (await self._call("POST", f"/api/payments/{payment_id}/refunds", body))[1]

    async def void(self, payment_id: str) -> dict[str, Any]:
        """``POST /api/payments/{id}/void`` (docs/day.md; :class:`RouteMissing` on a daemon
        without it)."""
        return (await self._call("POST", f"/api/payments/{payment_id}/void", {}))[1]

    async def close_day(self) -> dict[str, Any]:
        """``POST /api/days/close`` (docs/day.md: a manager's action, so a till gets 403
        ``manager_login_required``; :class:`RouteMissing` on a daemon without it)."""
        return (await self._call("POST", "/api/days/close", {}))[1]

    async def events(self, lane: int) -> AsyncGenerator[SseEvent, None]:
        """Follow ``GET /api/lanes/{lane}/events`` until the stream ends."""
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        try:
            async with self.session.get(
                f"{self.base}/api/lanes/{lane}/events", headers=self.headers, timeout=timeout
            ) as answer:
                if answer.status != 200:
                    text = await answer.text()
                    try:
                        body = json.loads(text)
                    except json.JSONDecodeError:
                        body = None
                    if answer.status == 404 and not isinstance(body, dict):
                        raise RouteMissing("the daemon has no lane events route (404)")
                    raise TillHttpError(answer.status, body if isinstance(body, dict) else {})
                async for event in read_events(answer.content):
                    yield event
        except aiohttp.ClientConnectionError as exc:
            raise TillUnreachable(f"no daemon at {self.base}: {exc}") from None
