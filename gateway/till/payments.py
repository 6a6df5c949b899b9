"""The till API (aiohttp): start a payment on a lane, follow it, cancel it (docs/daemon.md).

=====================================  =========================================================
``POST /api/lanes/{id}/payments``      ``{"amount": 1250, "currency": "EUR", "reference": "...",
                                       "items": [...], "difference": {...}}`` (the basket:
                                       :mod:`gateway.till.basket`)
                                       → 202 ``{"id": ..., "state": "CREATED"}``; 409 lane busy;
                                       a reference already used by a sale of the last 24 h
                                       that is not cancelled, declined or reversed → 200 that
                                       sale (``"replayed": true``), or 409 if it differs.
                                       With ``?wait=S`` (≤ 30 s) the answer is the payment as
                                       ``GET`` shows it, with ``href``: 200 once it has ended,
                                       202 (``done`` false) if it had not within S: one request
                                       per sale
``GET /api/payments/{id}[?wait=S]``    the payment (journal state, outcome, masked PAN, its
                                       basket lines as ``items``); with
                                       ``wait`` the answer waits up to S s (≤ 30) for the end
``POST /api/payments/{id}/cancel``     while the lane waits for the card → 202; else 409
``POST /api/payments/{id}/brand``      ``{"aid": "A0000000031010"}``: the brand of a
                                       co-badged card, while its ``brand`` event's choice is
                                       open → 200; an AID not offered → 400; no choice open
                                       → 409 (EU IFR 2015/751 art. 8)
``GET /api/lanes``                     every lane (prompt, reader state, current payment)
=====================================  =========================================================

Every route needs a till's credential (``Authorization: Bearer``, else 401; checked by
:func:`gateway.security.guard.till_auth`); a till starts and cancels payments only on its own
lanes (else ``403 lane_not_allowed``), and the journal's first event of a sale and the audit
log name it (``till:NAME``). Bad input is ``400 {"error": "invalid_request", "field": NAME,
"message": ...}``: a lane id that is not 1-999 in ASCII digits, JSON nested too deep, a
``reference`` that looks like a card number (never echoed). Nothing here logs a request body,
and no answer holds more of a PAN than its mask.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any, Protocol

from aiohttp import web

from gateway.journal import (
    CardDataRejected,
    InvalidRecord,
    Journal,
    JournalError,
    Payment,
    UnknownPayment,
)
from gateway.payments import Lane, LaneBusy, LaneView, NoBrandChoice, NotCancellable
from gateway.security.errors import InputError
from gateway.security.guard import requesting_till
from gateway.security.inputs import check_reference, parse_lane_id
from gateway.security.service import audit_note, audit_request
from gateway.security.store import TillCredential
from gateway.till.basket import parse_basket
from gateway.till.jsonio import bad_request, error, json_body
from terminal.currency import Currency, CurrencyError, currency

__all__ = ["TillBackend", "add_till_routes"]

_REFERENCE = re.compile(r"^[\x20-\x7e]{1,64}$")
MAX_WAIT = 30.0
#: How long a till reference names its sale: a request repeating it answers that sale.
REFERENCE_WINDOW = 24 * 3600.0


class TillBackend(Protocol):
    """What the till API needs from the daemon."""

    journal: Journal
    default_currency: str

    def lane(self, lane_id: int) -> Lane | None:
        """The lane with this id."""
        ...

    def all_lanes(self) -> list[Lane]:
        """Every lane."""
        ...

    def view(self, payment_id: str) -> LaneView | None:
        """The lane's view of a recent payment."""
        ...

    def remember(self, view: LaneView) -> None:
        """Keep a view for GET."""
        ...


def _lane_id(request: web.Request, backend: TillBackend) -> Lane:
    try:
        number = parse_lane_id(request.match_info["lane"])
    except InputError as exc:
        raise bad_request(exc.field, exc.message) from None
    lane = backend.lane(number)
    if lane is None:
        raise error(web.HTTPNotFound, "not_found", f"no lane {number}")
    return lane


async def _check_lane(request: web.Request, till: TillCredential, lane: int, action: str) -> None:
    """403 ``lane_not_allowed`` (audited) when this till may not use ``lane``."""
    if till.may_use_lane(lane):
        return
    await audit_request(
        request, actor=till.actor, action=action, outcome="denied", detail={"lane": lane}
    )
    raise error(web.HTTPForbidden, "lane_not_allowed", f"this till may not use lane {lane}")


def _parse_payment(
    body: dict[str, Any], default_currency: str
) -> tuple[int, Currency, str | None, list[dict[str, Any]] | None]:
    unknown = sorted(set(body) - {"amount", "currency", "type", "reference", "items",
                                  "difference"})  # fmt: skip
    if unknown:
        raise bad_request(unknown[0], "unknown field")
    amount = body.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= 999_999_999:
        raise bad_request("amount", "expected a positive integer of minor units")
    code = body.get("currency", default_currency)
    if not isinstance(code, str) or not re.fullmatch(r"[A-Z]{3}", code):
        raise bad_request("currency", "expected an ISO 4217 alphabetic code")
    try:
        cur = currency(code)
    except CurrencyError:
        raise bad_request("currency", "unknown currency") from None
    kind = body.get("type", "purchase")
    if kind != "purchase":
        raise bad_request("type", "only purchase is supported")
    reference = body.get("reference")
    if reference is not None and not (isinstance(reference, str) and _REFERENCE.match(reference)):
        raise bad_request("reference", "expected 1-64 printable characters")
    if reference is not None:
        try:
            check_reference(reference)
        except InputError as exc:
            raise bad_request(exc.field, exc.message) from None
    lines = parse_basket(body.get("items"), body.get("difference"), amount=amount)
    return amount, cur, reference, lines


def _wait_seconds(request: web.Request) -> float | None:
    """The ``wait`` query parameter: seconds, clamped to 0..:data:`MAX_WAIT`; None if absent.

    Raises:
        HTTPBadRequest: ``wait`` is not a number.
    """
    wait = request.query.get("wait")
    if wait is None:
        return None
    try:
        return min(MAX_WAIT, max(0.0, float(wait)))
    except ValueError:
        raise bad_request("wait", "expected seconds") from None


async def _wait_for_end(view: LaneView | None, seconds: float) -> None:
    """Wait until the lane ends the payment of ``view``, at most ``seconds``."""
    if view is None or view.done.is_set():
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await view.done.wait()


def _payment_json(payment: Payment, view: LaneView | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": payment.id,
        "kind": payment.kind.value,
        "lane": int(payment.lane) if payment.lane.isdigit() else payment.lane,
        "state": payment.state.value,
        "amount": payment.amount,
        "currency": payment.currency,
        "masked_pan": payment.masked_pan,
        "aid": payment.aid,
        "auth_code": payment.auth_code,
        "response_code": payment.response_code,
        "reference": payment.till_reference,
        "items": payment.items,
        "interface": payment.interface,  # as journaled with CARD_READ (survives a restart)
        "done": view.done.is_set() if view is not None else True,
    }
    if payment.refund_of is not None:
        body["refund_of"] = payment.refund_of
    if view is not None:
        body.update(
            outcome=None if view.outcome is None else view.outcome.value,
            reason=view.reason,
            reference=view.reference,
            offline=view.offline,
            interface=payment.interface or view.interface,  # the view's before CARD_READ
        )
    return body


def add_till_routes(app: web.Application, backend: TillBackend) -> None:
    """Mount the till API on ``app`` (see the module docstring)."""

    async def start(request: web.Request) -> web.Response:
        till = requesting_till(request)
        lane = _lane_id(request, backend)
        await _check_lane(request, till, lane.id, "payment.start")
        wait = _wait_seconds(request)  # a bad ``wait`` is refused before any money moves
        body = await json_body(request)
        amount, cur, reference, lines = _parse_payment(body, backend.default_currency)
        if reference is not None:  # a till retrying its request must not charge twice
            replay = await _replayed(reference, lane, amount, cur, wait)
            if replay is not None:
                return replay
        detail = {"lane": lane.id, "amount": amount, "currency": cur.alpha}
        # the audit row commits with the sale (subject: its id), in the journal's request
        note = audit_note(
            request, actor=till.actor, action="payment.start", outcome="ok", detail=detail
        )
        try:
            view = await lane.start_payment(
                amount=amount, currency=cur, reference=reference, requested_by=till.actor,
                items=lines, audit=note,
            )  # fmt: skip
        except LaneBusy as exc:
            raise error(web.HTTPConflict, "lane_busy", str(exc)) from None
        except InvalidRecord as exc:
            raise bad_request(exc.field, str(exc)) from None
        except CardDataRejected as exc:
            raise bad_request(exc.field, "looks like card data") from None
        backend.remember(view)
        if wait is not None:  # the till waits for the end in this request (no GET after it)
            return await _answer_payment(view.id, view, wait, replayed=False)
        return web.json_response(
            {
                "id": view.id,
                "lane": lane.id,
                "state": "CREATED",
                "href": f"/api/payments/{view.id}",
            },
            status=202,
        )

    async def _replayed(
        reference: str, lane: Lane, amount: int, cur: Currency, wait: float | None
    ) -> web.Response | None:
        try:
            sale = await backend.journal.find_sale(reference, within=REFERENCE_WINDOW)
        except JournalError:
            raise error(web.HTTPServiceUnavailable, "journal", "journal unavailable") from None
        if sale is None:
            return None
        if (sale.lane, sale.amount, sale.currency) != (str(lane.id), amount, cur.alpha):
            raise error(
                web.HTTPConflict,
                "reference_conflict",
                f"reference already used by payment {sale.id} for another lane or amount",
            )
        if wait is not None:  # the sale itself, once it has ended (or ``wait`` ran out)
            return await _answer_payment(sale.id, backend.view(sale.id), wait, replayed=True)
        body = {"id": sale.id, "lane": lane.id, "state": sale.state.value, "replayed": True}
        return web.json_response({**body, "href": f"/api/payments/{sale.id}"}, status=200)

    async def _answer_payment(
        payment_id: str, view: LaneView | None, wait: float, *, replayed: bool
    ) -> web.Response:
        """A started (or replayed) sale as ``GET /api/payments/{id}`` shows it, once it has
        ended or ``wait`` seconds have passed: 200 when it has ended, 202 while it runs."""
        await _wait_for_end(view, wait)
        try:
            payment = await backend.journal.get(payment_id)
        except JournalError:  # the sale is journaled: the till can still GET it
            raise error(web.HTTPServiceUnavailable, "journal", "journal unavailable") from None
        body = _payment_json(payment, view)
        body["href"] = f"/api/payments/{payment_id}"
        if replayed:
            body["replayed"] = True
        return web.json_response(body, status=200 if body["done"] else 202)

    async def get_payment(request: web.Request) -> web.Response:
        payment_id = request.match_info["payment"]
        view = backend.view(payment_id)
        wait = _wait_seconds(request)
        if wait is not None:
            await _wait_for_end(view, wait)
        try:
            payment = await backend.journal.get(payment_id)
        except UnknownPayment:
            raise error(web.HTTPNotFound, "not_found", "no such payment") from None
        except JournalError:
            raise error(web.HTTPServiceUnavailable, "journal", "journal unavailable") from None
        return web.json_response(_payment_json(payment, view))

    async def cancel(request: web.Request) -> web.Response:
        till = requesting_till(request)
        payment_id = request.match_info["payment"]
        view = backend.view(payment_id)
        if view is None:
            raise error(web.HTTPNotFound, "not_found", "no such payment in progress")
        await _check_lane(request, till, view.lane, "payment.cancel")
        lane = backend.lane(view.lane)
        try:
            if lane is None:
                raise NotCancellable("no lane")
            lane.cancel(payment_id, requested_by=till.actor)
        except NotCancellable as exc:
            await audit_request(
                request, actor=till.actor, action="payment.cancel", subject=payment_id,
                outcome="not_cancellable",
            )  # fmt: skip
            raise error(web.HTTPConflict, "not_cancellable", str(exc)) from None
        await audit_request(
            request, actor=till.actor, action="payment.cancel", subject=payment_id, outcome="ok"
        )
        return web.json_response({"id": payment_id, "cancelling": True}, status=202)

    async def brand(request: web.Request) -> web.Response:
        till = requesting_till(request)
        payment_id = request.match_info["payment"]
        body = await json_body(request)
        unknown = sorted(set(body) - {"aid"})
        if unknown:
            raise bad_request(unknown[0], "unknown field")
        aid = body.get("aid")
        if not isinstance(aid, str) or not re.fullmatch(r"[0-9A-Fa-f]{10,32}", aid):
            raise bad_request("aid", "expected the AID of an offered brand, 5-16 bytes of hex")
        view = backend.view(payment_id)
        lane = None if view is None else backend.lane(view.lane)
        if lane is None:
            raise error(web.HTTPNotFound, "not_found", "no such payment in progress")
        await _check_lane(request, till, lane.id, "payment.brand")
        try:
            chosen = lane.choose_brand(payment_id, aid)
        except NoBrandChoice as exc:
            if exc.offered:
                raise bad_request("aid", str(exc)) from None
            raise error(web.HTTPConflict, "no_brand_choice", str(exc)) from None
        return web.json_response({"id": payment_id, "aid": chosen}, status=200)

    async def lanes(_request: web.Request) -> web.Response:
        return web.json_response({"lanes": [lane.snapshot() for lane in backend.all_lanes()]})

    app.router.add_post("/api/lanes/{lane}/payments", start)
    app.router.add_get("/api/payments/{payment}", get_payment)
    app.router.add_post("/api/payments/{payment}/cancel", cancel)
    app.router.add_post("/api/payments/{payment}/brand", brand)
    app.router.add_get("/api/lanes", lanes)
