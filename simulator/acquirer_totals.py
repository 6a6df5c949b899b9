"""The simulated acquirer's batch totals: ``POST /v1/batches/close`` (docs/acquirer-api.md).

A card acquirer settles a merchant's transactions in batches; at the end of the shop's day the
gateway closes the open batch and receives the host's totals, which it compares line by line
with its journal (gateway/day/close.py). The simulator keeps one batch for the whole host: the
batch holds every ledger entry since the previous close, and closing it answers, per currency
(ISO 4217 numeric), the count and amount of ``charge``, ``reversal``, ``refund`` and ``decline``
entries, and the net sales (charges less reversals).

The route is idempotent like every ``POST`` of the API (the host's own ``Idempotency-Key``
machinery): the same key answers the same batch again, never closes a second one.

Kept apart from :mod:`simulator.acquirer_host` (which calls :func:`add_totals_routes` once) so
the host's authorisation logic and the batch logic change independently.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from simulator.acquirer_host import AcquirerHost, LedgerEntry

__all__ = ["Batches", "add_totals_routes", "batch_totals"]

_ID_RE = re.compile(r"^[\x21-\x7e]{1,16}$")
_KINDS = ("charge", "reversal", "refund", "decline")


@dataclass(slots=True)
class Batches:
    """The host's batch state: where the open batch starts in the ledger, and closed ones."""

    start: int = 0
    closed: list[dict[str, Any]] = field(default_factory=list)


def batch_totals(entries: list[LedgerEntry]) -> list[dict[str, Any]]:
    """Totals per currency and kind of ``entries``, plus ``sales_net`` (charges − reversals)."""
    sums: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for entry in entries:
        line = sums[(entry.currency, entry.kind)]
        line[0] += 1
        line[1] += entry.amount
    for currency in {currency for currency, _ in sums}:
        charge = sums.get((currency, "charge"), [0, 0])
        reversal = sums.get((currency, "reversal"), [0, 0])
        sums[(currency, "sales_net")] = [charge[0] - reversal[0], charge[1] - reversal[1]]
    return [
        {"currency": currency, "kind": kind, "count": count, "amount": amount}
        for (currency, kind), (count, amount) in sorted(sums.items())
    ]


def add_totals_routes(host: AcquirerHost) -> Batches:
    """Add ``POST /v1/batches/close`` to the host's application (before it starts)."""
    batches = Batches()

    async def close(key: str, body: dict[str, Any]) -> tuple[int, Callable[[], dict[str, Any]]]:
        merchant = body.get("merchant_id")
        if not isinstance(merchant, str) or not _ID_RE.match(merchant):
            from simulator.acquirer_host import _HttpError

            raise _HttpError(400, "invalid_request", "merchant_id", "1-16 printable characters")
        entries = host.ledger[batches.start :]
        batches.start = len(host.ledger)
        answer = {
            "batch": len(batches.closed) + 1,
            "merchant_id": merchant,
            "entries": len(entries),
            "totals": batch_totals(entries),
        }
        batches.closed.append(answer)
        return 201, lambda: dict(answer)

    async def route(request: web.Request) -> web.StreamResponse:
        return await host._idempotent(request, close)  # the host's own idempotency

    host.app.router.add_post("/v1/batches/close", route)
    return batches
