"""The basket a till may send with a payment or a refund: its lines, checked (docs/daemon.md).

A payment request may carry ``items``: up to 500 lines of ``{"sku"?, "label", "qty",
"unit_price", "vat_rate"?}`` (``unit_price`` in minor units of the payment's currency, ``qty``
1..1,000,000, ``vat_rate`` a decimal percentage string such as ``"5.5"``; a line without a
``sku`` is not stock). The amount must equal the lines' total, or the request states the
difference: ``"difference": {"amount": -200, "reason": "loyalty discount"}`` (signed minor
units). The journal keeps the lines with the sale, the stated difference as one more line
(``"adjustment": true``, no ``sku``, ``qty`` 1, ``unit_price`` the difference), so the kept
lines always add up to the amount. The same line shape is published to head office
(gateway/contracts/mqtt/line.schema.json) and answered by ``GET /api/payments/{id}``.

A refund may name the lines it gives back (``sku`` and ``qty``, label and price optional); each
must be a line of the sale, for no more than was sold. Everything here answers a typed
``400 invalid_request`` naming the field; nothing quotes the request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from gateway.till.jsonio import bad_request

__all__ = ["MAX_LINES", "basket_total", "parse_basket", "parse_refund_lines"]

MAX_LINES = 500
_SKU = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_VAT = re.compile(r"^(100|[0-9]{1,2})(\.[0-9]{1,2})?$")
_LINE_FIELDS = frozenset({"sku", "label", "qty", "unit_price", "vat_rate"})
_MAX_PRICE = 100_000_000_000


def _int(value: object, field: str, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(field, what)
    return value


def _line(raw: object, n: int, *, refund: bool) -> dict[str, Any]:
    where = f"items[{n}]"
    if not isinstance(raw, dict):
        raise bad_request(where, "expected an object")
    unknown = sorted(set(raw) - _LINE_FIELDS)
    if unknown:
        raise bad_request(f"{where}.{unknown[0]}", "unknown field")
    line: dict[str, Any] = {}
    sku = raw.get("sku")
    if sku is not None or refund:
        if not isinstance(sku, str) or not _SKU.match(sku):
            raise bad_request(f"{where}.sku", "expected 1-64 of A-Z a-z 0-9 . _ -")
        line["sku"] = sku
    label = raw.get("label")
    if label is not None or not refund:
        if not isinstance(label, str) or not 0 < len(label) <= 120 or not label.isprintable():
            raise bad_request(f"{where}.label", "expected 1-120 printable characters")
        line["label"] = label
    line["qty"] = _int(raw.get("qty"), f"{where}.qty", 1, 1_000_000, "expected 1..1000000")
    price = raw.get("unit_price")
    if price is not None or not refund:
        line["unit_price"] = _int(price, f"{where}.unit_price", 0, _MAX_PRICE,
                                  "expected an integer of minor units >= 0")  # fmt: skip
    vat = raw.get("vat_rate")
    if vat is not None:
        if not isinstance(vat, str) or not _VAT.match(vat) or float(vat) > 100:
            raise bad_request(f"{where}.vat_rate", "expected a percentage such as \"5.5\"")
        line["vat_rate"] = vat
    return line


def basket_total(lines: Sequence[dict[str, Any]]) -> int:
    """The lines' total in minor units (``qty`` x ``unit_price``, adjustments included)."""
    return sum(int(line["qty"]) * int(line.get("unit_price", 0)) for line in lines)


def parse_basket(
    items: object, difference: object, *, amount: int
) -> list[dict[str, Any]] | None:
    """The lines to journal for a payment of ``amount``, or None without a basket.

    Raises:
        web.HTTPBadRequest: A malformed line or difference, or lines that do not add up to
            the amount without a stated difference.
    """
    if items is None:
        if difference is not None:
            raise bad_request("difference", "a difference needs items")
        return None
    if not isinstance(items, list) or not 0 < len(items) <= MAX_LINES:
        raise bad_request("items", f"expected a list of 1..{MAX_LINES} lines")
    lines = [_line(raw, n, refund=False) for n, raw in enumerate(items)]
    total = basket_total(lines)
    if difference is not None:
        if not isinstance(difference, dict) or set(difference) - {"amount", "reason"}:
            raise bad_request("difference", "expected {\"amount\": int, \"reason\": str}")
        delta = _int(difference.get("amount"), "difference.amount", -_MAX_PRICE, _MAX_PRICE,
                     "expected a signed integer of minor units")  # fmt: skip
        reason = difference.get("reason")
        if not isinstance(reason, str) or not 0 < len(reason) <= 120 or not reason.isprintable():
            raise bad_request("difference.reason", "expected 1-120 printable characters")
        if delta == 0:
            raise bad_request("difference.amount", "a stated difference is not 0")
        lines.append({"label": reason, "qty": 1, "unit_price": delta, "adjustment": True})
        total += delta
    if total != amount:
        raise bad_request(
            "items", f"the lines add up to {total}, not the amount {amount}: state the difference"
        )
    return lines


def parse_refund_lines(
    items: object, sale_lines: object
) -> list[dict[str, Any]] | None:
    """The sale's lines a refund gives back (label and unit price filled in from the sale).

    Raises:
        web.HTTPBadRequest: A malformed line, a SKU the sale did not have, or more than sold.
    """
    if items is None:
        return None
    if not isinstance(items, list) or not 0 < len(items) <= MAX_LINES:
        raise bad_request("items", f"expected a list of 1..{MAX_LINES} lines")
    sold: dict[str, dict[str, Any]] = {}
    for line in sale_lines if isinstance(sale_lines, list) else []:
        if isinstance(line, dict) and isinstance(line.get("sku"), str):
            entry = sold.setdefault(line["sku"], dict(line, qty=0))
            entry["qty"] += int(line.get("qty", 1))
    lines = []
    asked: dict[str, int] = {}
    for n, raw in enumerate(items):
        line = _line(raw, n, refund=True)
        original = sold.get(line["sku"])
        if original is None:
            raise bad_request(f"items[{n}].sku", "not a line of the sale")
        asked[line["sku"]] = asked.get(line["sku"], 0) + line["qty"]
        if asked[line["sku"]] > original["qty"]:
            raise bad_request(f"items[{n}].qty", "more than the sale had")
        for key in ("label", "unit_price", "vat_rate"):
            if key not in line and key in original:
                line[key] = original[key]
        lines.append(line)
    return lines
