"""What the credential store hands out: till credentials, manager accounts, refund approvals.

Frozen records read from the journal file's ``tills``, ``managers`` and ``refund_approvals``
tables (schema 4), and the name rule every principal follows. None of them carries a token, a
token hash or a password hash: those stay in the store's SQL (docs/security.md).
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Literal

from gateway.security.errors import InvalidName

__all__ = [
    "ManagerAccount",
    "RefundApproval",
    "Role",
    "TillCredential",
    "approval_from_row",
    "check_name",
    "till_from_row",
]

Role = Literal["viewer", "manager"]
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,32}$")


def check_name(name: str) -> str:
    """``name`` when it is 1-32 of ``A-Z a-z 0-9 . _ -``.

    Raises:
        InvalidName: Another shape.
    """
    if not _NAME.match(name):
        raise InvalidName("a name is 1-32 of A-Z a-z 0-9 . _ -")
    return name


@dataclass(frozen=True, slots=True)
class TillCredential:
    """A till's credential and permissions (never its token).

    Attributes:
        name: The till's name; the journal's actor is ``till:NAME``.
        lanes: The lanes it may use, or None for every lane.
        refunds: Whether it may ask for refunds at all.
        refund_limit: Refunds above this many minor units need a manager's approval
            (None: no limit).
        has_certificate: A client certificate is bound to it (it may present it instead of
            its token).
        created_ms: When the credential was made (or last rotated).
        revoked_ms: When it was revoked, or None while active.
    """

    name: str
    lanes: frozenset[int] | None
    refunds: bool
    refund_limit: int | None
    has_certificate: bool
    created_ms: int
    revoked_ms: int | None

    @property
    def actor(self) -> str:
        """``till:NAME``, as the journal and the audit log record it."""
        return f"till:{self.name}"

    def may_use_lane(self, lane: int) -> bool:
        """True when this till may start payments on ``lane``."""
        return self.lanes is None or lane in self.lanes

    def needs_approval(self, amount: int) -> bool:
        """True when a refund of ``amount`` needs a manager's approval."""
        return self.refund_limit is not None and amount > self.refund_limit


@dataclass(frozen=True, slots=True)
class ManagerAccount:
    """A status-page account (never its password hash outside the store)."""

    name: str
    role: Role
    created_ms: int
    #: When the password last changed (sessions from before it end).
    changed_ms: int
    disabled_ms: int | None

    @property
    def actor(self) -> str:
        """``manager:NAME``."""
        return f"manager:{self.name}"


@dataclass(frozen=True, slots=True)
class RefundApproval:
    """A refund above a till's limit: asked by the till, approved (or not) by a manager."""

    id: int
    sale_id: str
    amount: int
    till: str
    requested_ms: int
    approved_by: str | None
    approved_ms: int | None
    used_ms: int | None


def till_from_row(row: sqlite3.Row) -> TillCredential:
    """A ``tills`` row as a :class:`TillCredential` (its token hash left behind)."""
    lanes = json.loads(row["lanes"])
    return TillCredential(
        name=row["name"],
        lanes=None if lanes is None else frozenset(int(x) for x in lanes),
        refunds=bool(row["refunds"]),
        refund_limit=row["refund_limit"],
        has_certificate=row["cert_sha256"] is not None,
        created_ms=row["created_ms"],
        revoked_ms=row["revoked_ms"],
    )


def approval_from_row(row: sqlite3.Row) -> RefundApproval:
    """A ``refund_approvals`` row as a :class:`RefundApproval`."""
    return RefundApproval(*(row[k] for k in row.keys()))  # noqa: SIM118 (sqlite3.Row)
