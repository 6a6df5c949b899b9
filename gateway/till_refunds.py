"""The till API's refund route: ``POST /api/payments/{id}/refunds`` (aiohttp).

=========================================  =====================================================
``POST /api/payments/{id}/refunds``        ``{"amount": 500, "reference": "R-1"}`` (optional
                                           ``"currency"``, must be the sale's) → 201 with the
                                           refund when the acquirer answered (``state``
                                           COMPLETED or DECLINED), 202 while it is pending
                                           (UNKNOWN: re-sent in the background under the same
                                           idempotency key)
=========================================  =====================================================

Errors, in the shape of :mod:`gateway.till_api`: ``400 {"error": "invalid_request", "field",
"message"}``; ``404 not_found`` (no such sale); ``409 not_refundable`` (not a settled sale, not
yet forwarded, or more than what remains) or ``409 reference_conflict`` (the reference was used
for another amount on this sale); ``503`` when the refund service or the journal is not there.
The same reference for the same sale answers the existing refund (``"replayed": true``), never a
second one. A refund is then read with ``GET /api/payments/{id}`` like any payment. No answer
holds more of a PAN than the sale's mask, and no request body is logged.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from aiohttp import web

from gateway.journal import CardDataRejected, JournalError
from gateway.journal.guard import check_value
from gateway.refunds import (
    InvalidRefund,
    RefundRejected,
    RefundResult,
    RefundService,
    SaleNotFound,
)

__all__ = ["RefundBackend", "add_refund_routes", "refund_json"]

_REFERENCE = re.compile(r"^[\x20-\x7e]{1,64}$")
_FIELDS = frozenset({"amount", "reference", "currency"})
MAX_AMOUNT = 999_999_999


class RefundBackend(Protocol):
    """What the refund route needs from the daemon: its refund service (None until started)."""

    refunds: RefundService | None


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body)


def _bad(field: str, message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=_dumps({"error": "invalid_request", "field": field, "message": message}),
        content_type="application/json",
    )


def _error(status: type[web.HTTPException], code: str, message: str) -> web.HTTPException:
    return status(text=_dumps({"error": code, "message": message}), content_type="application/json")


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _bad("body", "expected a JSON object") from None
    if not isinstance(body, dict):
        raise _bad("body", "expected a JSON object")
    return body


def parse_refund(body: dict[str, Any]) -> tuple[int, str, str | None]:
    """Check a refund request body; ``(amount, reference, currency or None)``.

    Raises:
        web.HTTPBadRequest: ``invalid_request`` naming the first bad field.
    """
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise _bad(unknown[0], "unknown field")
    amount = body.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT:
        raise _bad("amount", "expected a positive integer of minor units")
    reference = body.get("reference")
    if not isinstance(reference, str) or not _REFERENCE.match(reference):
        raise _bad("reference", "expected 1-64 printable characters")
    try:
        check_value("reference", reference)
    except CardDataRejected:
        raise _bad("reference", "looks like card data; send the till's own reference") from None
    code = body.get("currency")
    if code is not None and (not isinstance(code, str) or not re.fullmatch(r"[A-Z]{3}", code)):
        raise _bad("currency", "expected an ISO 4217 alphabetic code")
    return amount, reference, code


def refund_json(result: RefundResult) -> dict[str, Any]:
    """The till's view of a refund (masked PAN of the sale at most)."""
    payment = result.payment
    return {
        "id": payment.id,
        "kind": payment.kind.value,
        "refund_of": payment.refund_of,
        "state": payment.state.value,
        "amount": payment.amount,
        "currency": payment.currency,
        "masked_pan": payment.masked_pan,
        "reference": result.reference,
        "pending": not result.answered,
        "replayed": result.replayed,
        "href": f"/api/payments/{payment.id}",
    }


def add_refund_routes(app: web.Application, backend: RefundBackend) -> None:
    """Mount ``POST /api/payments/{payment}/refunds`` on ``app`` (see the module docstring)."""

    async def refund(request: web.Request) -> web.Response:
        sale_id = request.match_info["payment"]
        amount, reference, code = parse_refund(await _json_body(request))
        service = backend.refunds
        if service is None:
            raise _error(web.HTTPServiceUnavailable, "unavailable", "refunds not started")
        try:
            result = await service.refund(
                sale_id, amount=amount, reference=reference, currency_code=code
            )
        except SaleNotFound:
            raise _error(web.HTTPNotFound, "not_found", "no such payment") from None
        except InvalidRefund as exc:
            raise _bad(exc.field, str(exc)) from None
        except RefundRejected as exc:
            raise _error(web.HTTPConflict, exc.code, str(exc)) from None
        except JournalError:
            raise _error(web.HTTPServiceUnavailable, "journal", "journal unavailable") from None
        return web.json_response(refund_json(result), status=201 if result.answered else 202)

    app.router.add_post("/api/payments/{payment}/refunds", refund)
