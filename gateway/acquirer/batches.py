"""Closing the acquirer's batch at the end of the shop's day (``POST /v1/batches/close``).

The host answers its totals for the batch it closes (docs/acquirer-api.md, "Batch totals");
:func:`close_batch` turns them into :class:`gateway.day.totals.AcquirerLine` values of the
reconciliation, currencies as ISO 4217 alphabetic codes. The request is idempotent: the day
close uses a key derived from the day, so a retried close never closes a second batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.acquirer.client import AcquirerClient
from gateway.acquirer.errors import AcquirerProtocolError
from terminal.currency import CurrencyError, currency

__all__ = ["BatchLine", "BatchTotals", "close_batch"]


@dataclass(frozen=True, slots=True)
class BatchLine:
    """One line of the host's totals (``kind``: charge, reversal, refund, decline, sales_net)."""

    currency: str
    kind: str
    count: int
    amount: int


@dataclass(frozen=True, slots=True)
class BatchTotals:
    """The host's closed batch."""

    batch: int
    entries: int
    lines: tuple[BatchLine, ...]


def _line(raw: Any) -> BatchLine:
    if not isinstance(raw, dict):
        raise AcquirerProtocolError("totals: a line is not an object", field="totals")
    try:
        alpha = currency(int(raw["currency"])).alpha
        kind, count, amount = str(raw["kind"]), int(raw["count"]), int(raw["amount"])
    except (KeyError, TypeError, ValueError, CurrencyError) as exc:
        raise AcquirerProtocolError(f"totals: bad line ({exc})", field="totals") from None
    return BatchLine(alpha, kind, count, amount)


async def close_batch(
    client: AcquirerClient, *, merchant_id: str, idempotency_key: str
) -> BatchTotals:
    """Close the open batch and return the host's totals.

    Raises:
        The client's transport errors; AcquirerProtocolError for an answer that is not the
        documented JSON.
    """
    body, _replayed = await client._call(  # the client's one transport, its retries and errors
        "POST", "/v1/batches/close", key=idempotency_key, body={"merchant_id": merchant_id}
    )
    if not isinstance(body, dict) or not isinstance(body.get("totals"), list):
        raise AcquirerProtocolError("batch answer without totals", field="totals")
    try:
        batch, entries = int(body["batch"]), int(body["entries"])
    except (KeyError, TypeError, ValueError):
        raise AcquirerProtocolError("batch answer without batch/entries", field="batch") from None
    return BatchTotals(batch, entries, tuple(_line(raw) for raw in body["totals"]))
