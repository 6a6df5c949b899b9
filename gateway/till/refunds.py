"""The till API's refund route: ``POST /api/payments/{id}/refunds`` (aiohttp).

=========================================  =====================================================
``POST /api/payments/{id}/refunds``        ``{"amount": 500, "reference": "R-1"}`` (optional
                                           ``"currency"``, must be the sale's; optional
                                           ``"items"``: the sale's lines given back, by ``sku``
                                           and ``qty``, :mod:`gateway.till.basket`) → 201 with the
                                           refund when the acquirer answered (``state``
                                           COMPLETED or DECLINED), 202 while it is pending
                                           (UNKNOWN: re-sent in the background under the same
                                           idempotency key)
=========================================  =====================================================

Errors, in the shape of :mod:`gateway.till.payments`: ``400 {"error": "invalid_request", "field",
"message"}``; ``404 not_found`` (no such sale); ``409 not_refundable`` (not a settled sale, not
yet forwarded, or more than what remains) or ``409 reference_conflict`` (the reference was used
for another amount on this sale); ``503`` when the refund service or the journal is not there.
The same reference for the same sale answers the existing refund (``"replayed": true``), never a
second one. The till's credential decides (docs/security.md): ``403 refunds_not_allowed`` for a
till without refunds; above its ``refund_limit``, ``403 manager_approval_required`` (with the
``approval`` id) until a manager approves that (sale, amount, till) on ``/manager``; the
approval is then used once. The refund's first journal event and its audit row name the till.
A refund is then read with ``GET /api/payments/{id}`` like any payment. No answer holds more of
a PAN than the sale's mask, and no request body is logged.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from aiohttp import web

from gateway.journal import Journal, JournalError, UnknownPayment
from gateway.recovery.refunds import (
    InvalidRefund,
    RefundRejected,
    RefundResult,
    RefundService,
    SaleNotFound,
)
from gateway.security.errors import InputError
from gateway.security.guard import requesting_till
from gateway.security.inputs import check_reference
from gateway.security.service import SECURITY, audit_request
from gateway.security.store import TillCredential
from gateway.till.basket import parse_refund_lines
from gateway.till.jsonio import bad_request, error, json_body

__all__ = ["RefundBackend", "add_refund_routes", "refund_json"]

_REFERENCE = re.compile(r"^[\x20-\x7e]{1,64}$")
_FIELDS = frozenset({"amount", "reference", "currency", "items"})
MAX_AMOUNT = 999_999_999


class RefundBackend(Protocol):
    """What the refund route needs from the daemon: its refund service (None until started)
    and the journal (the sale's lines, for a refund that names lines)."""

    refunds: RefundService | None
    journal: Journal


def parse_refund(body: dict[str, Any]) -> tuple[int, str, str | None]:
    """Check a refund request body; ``(amount, reference, currency or None)``.

    Raises:
        web.HTTPBadRequest: ``invalid_request`` naming the first bad field.
    """
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise bad_request(unknown[0], "unknown field")
    amount = body.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT:
        raise bad_request("amount", "expected a positive integer of minor units")
    reference = body.get("reference")
    if not isinstance(reference, str) or not _REFERENCE.match(reference):
        raise bad_request("reference", "expected 1-64 printable characters")
    try:
        check_reference(reference)
    except InputError as exc:
        raise bad_request(exc.field, exc.message) from None
    code = body.get("currency")
    if code is not None and (not isinstance(code, str) or not re.fullmatch(r"[A-Z]{3}", code)):
        raise bad_request("currency", "expected an ISO 4217 alphabetic code")
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
        "items": payment.items,
        "pending": not result.answered,
        "replayed": result.replayed,
        "href": f"/api/payments/{payment.id}",
    }


async def _permitted(
    request: web.Request,
    till: TillCredential,
    service: RefundService,
    sale_id: str,
    amount: int,
    reference: str,
) -> str | None:
    """Check the till's refund permissions; the approving manager when one was needed.

    Raises:
        web.HTTPForbidden: ``refunds_not_allowed``, or ``manager_approval_required`` (with the
            approval request's ``approval`` id, shown to managers at ``/manager``).
        SaleNotFound: No such sale (checked before an approval is asked for it).
    """
    if not till.refunds:
        await audit_request(
            request, actor=till.actor, action="refund", subject=sale_id, outcome="denied",
            detail={"amount": amount},
        )  # fmt: skip
        raise error(web.HTTPForbidden, "refunds_not_allowed", "this till may not refund")
    if not till.needs_approval(amount) or await service.replays(sale_id, reference):
        return None
    security = request.app.get(SECURITY)
    if security is not None:
        approval = await security.consume_approval(sale_id, amount, till.name)
        if approval is not None:
            return approval.approved_by
        asked = await security.request_approval(sale_id, amount, till.name)
    await audit_request(
        request, actor=till.actor, action="refund", subject=sale_id,
        outcome="approval_required", detail={"amount": amount, "limit": till.refund_limit},
    )  # fmt: skip
    raise error(
        web.HTTPForbidden,
        "manager_approval_required",
        f"a refund above {till.refund_limit} needs a manager's approval (status page, /manager)",
        approval=None if security is None else asked.id,
    )


def add_refund_routes(app: web.Application, backend: RefundBackend) -> None:
    """Mount ``POST /api/payments/{payment}/refunds`` on ``app`` (see the module docstring)."""

    async def refund(request: web.Request) -> web.Response:
        till = requesting_till(request)
        sale_id = request.match_info["payment"]
        body = await json_body(request)
        amount, reference, code = parse_refund(body)
        service = backend.refunds
        if service is None:
            raise error(web.HTTPServiceUnavailable, "unavailable", "refunds not started")
        lines = None
        if body.get("items") is not None:
            try:
                sale = await backend.journal.get(sale_id)
            except UnknownPayment:
                raise error(web.HTTPNotFound, "not_found", "no such payment") from None
            except JournalError:
                raise error(web.HTTPServiceUnavailable, "journal", "unavailable") from None
            lines = parse_refund_lines(body["items"], sale.items)
        try:
            approved_by = await _permitted(request, till, service, sale_id, amount, reference)
            result = await service.refund(
                sale_id,
                amount=amount,
                reference=reference,
                currency_code=code,
                requested_by=till.actor,
                items=lines,
            )
        except SaleNotFound:
            raise error(web.HTTPNotFound, "not_found", "no such payment") from None
        except InvalidRefund as exc:
            raise bad_request(exc.field, str(exc)) from None
        except RefundRejected as exc:
            raise error(web.HTTPConflict, exc.code, str(exc)) from None
        except JournalError:
            raise error(web.HTTPServiceUnavailable, "journal", "journal unavailable") from None
        detail: dict[str, Any] = {"sale": sale_id, "amount": amount, "replayed": result.replayed}
        if approved_by is not None:
            detail["approved_by"] = approved_by
        await audit_request(
            request, actor=till.actor, action="refund", subject=result.payment.id,
            outcome=result.payment.state.value, detail=detail,
        )  # fmt: skip
        return web.json_response(refund_json(result), status=201 if result.answered else 202)

    app.router.add_post("/api/payments/{payment}/refunds", refund)
