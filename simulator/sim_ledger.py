"""``GET /sim/ledger``: what the simulated acquirer authorised, reversed, refunded and forwarded.

A person checking an integration wants to see at a glance that nothing was charged twice and
that every abandoned sale was released. The report has three parts (no card data: amounts,
ids, idempotency keys, terminal ids and STANs only):

* ``entries``: every movement in order (``charge``, ``decline``, ``reversal``, ``refund``),
  each with the authorisation it belongs to and whether it was a forwarded offline sale;
* ``payments``: one line per authorisation: ``authorised`` (the amount when approved),
  ``reversed``, ``refunded``, ``net`` = authorised - reversed - refunded, and
  ``charges``: how many charges the host recorded for it (a replay of an idempotency key is
  not a charge);
* ``totals``: the same sums over everything, per currency;
* ``possible_double_charges``: groups of approved, unreversed authorisations with the same
  terminal id, STAN and amount under different idempotency keys (a client that resent a sale
  with a new key): empty when all is well.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["ledger_report"]


class _Entry(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def currency(self) -> int: ...
    @property
    def idempotency_key(self) -> str: ...
    @property
    def authorisation_id(self) -> str: ...
    @property
    def forwarded(self) -> bool: ...


class _Auth(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def idempotency_key(self) -> str: ...
    @property
    def approved(self) -> bool: ...
    @property
    def response_code(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def currency(self) -> int: ...
    @property
    def reversed(self) -> bool: ...
    @property
    def refunded_amount(self) -> int: ...
    @property
    def forwarded(self) -> bool: ...
    @property
    def terminal_id(self) -> str: ...
    @property
    def stan(self) -> int: ...


def ledger_report(entries: Sequence[_Entry], auths: Sequence[_Auth]) -> dict[str, Any]:
    """The JSON of ``GET /sim/ledger`` (see the module docstring)."""
    charges: dict[str, int] = {}
    for entry in entries:
        if entry.kind == "charge":
            charges[entry.authorisation_id] = charges.get(entry.authorisation_id, 0) + 1
    payments = []
    totals: dict[str, dict[str, int]] = {}
    for auth in auths:
        authorised = auth.amount if auth.approved else 0
        reversed_amount = auth.amount if auth.approved and auth.reversed else 0
        net = authorised - reversed_amount - auth.refunded_amount
        payments.append({
            "authorisation_id": auth.id,
            "idempotency_key": auth.idempotency_key,
            "terminal_id": auth.terminal_id,
            "stan": auth.stan,
            "status": "approved" if auth.approved else "declined",
            "response_code": auth.response_code,
            "forwarded": auth.forwarded,
            "currency": auth.currency,
            "authorised": authorised,
            "reversed": reversed_amount,
            "refunded": auth.refunded_amount,
            "net": net,
            "charges": charges.get(auth.id, 0),
        })  # fmt: skip
        total = totals.setdefault(
            str(auth.currency), {"authorised": 0, "reversed": 0, "refunded": 0, "net": 0}
        )
        total["authorised"] += authorised
        total["reversed"] += reversed_amount
        total["refunded"] += auth.refunded_amount
        total["net"] += net
    return {
        "entries": [
            {
                "kind": entry.kind,
                "id": entry.id,
                "authorisation_id": entry.authorisation_id,
                "amount": entry.amount,
                "currency": entry.currency,
                "idempotency_key": entry.idempotency_key,
                "forwarded": entry.forwarded,
            }
            for entry in entries
        ],
        "payments": payments,
        "totals": totals,
        "possible_double_charges": _double_charges(payments),
    }


def _double_charges(payments: list[dict[str, Any]]) -> list[list[str]]:
    """Groups of approved, unreversed authorisations of one terminal, STAN and amount."""
    groups: dict[tuple[str, int, int], list[str]] = {}
    for p in payments:
        if p["authorised"] and not p["reversed"]:
            key = (p["terminal_id"], p["stan"], p["authorised"])
            groups.setdefault(key, []).append(p["authorisation_id"])
    return [ids for ids in groups.values() if len(ids) > 1]
