"""Refund approvals: a refund above a till's limit waits for a manager, then is used once.

The till's request is made once per (sale, amount, till) and asked again gets the same row; a
manager's approval is audited as ``refund.approve`` in the approval's own transaction; the
refund consumes it once (docs/security.md, "Defaults").
"""

from __future__ import annotations

from gateway.security.errors import UnknownPrincipal
from gateway.security.principals import RefundApproval, approval_from_row
from gateway.security.store_core import StoreCore

__all__ = ["RefundApprovals"]


class RefundApprovals(StoreCore):
    """The credential store's refund-approval calls (a mixin of
    :class:`~gateway.security.store.CredentialStore`)."""

    def request_approval(self, sale_id: str, amount: int, till: str) -> RefundApproval:
        """The approval request for this refund (made once; asked again: the same one)."""
        with self._write():
            self.conn.execute(
                "INSERT INTO refund_approvals (sale_id, amount, till, requested_ms)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (sale_id, amount, till, self._now()),
            )
            row = self.conn.execute(
                "SELECT * FROM refund_approvals WHERE sale_id = ? AND amount = ? AND till = ?",
                (sale_id, amount, till),
            ).fetchone()
        return approval_from_row(row)

    def approve(self, approval_id: int, *, manager: str) -> RefundApproval:
        """A manager approves a pending request (audited as ``refund.approve``).

        Raises:
            UnknownPrincipal: No pending request with that id.
        """
        with self._write():
            changed = self.conn.execute(
                "UPDATE refund_approvals SET approved_by = ?, approved_ms = ? "
                "WHERE id = ? AND approved_ms IS NULL AND used_ms IS NULL",
                (manager, self._now(), approval_id),
            ).rowcount
            if not changed:
                raise UnknownPrincipal(f"no pending approval {approval_id}")
            row = self.conn.execute(
                "SELECT * FROM refund_approvals WHERE id = ?", (approval_id,)
            ).fetchone()
            approval = approval_from_row(row)
            self._audit(
                f"manager:{manager}",
                "refund.approve",
                approval.sale_id,
                "ok",
                {"amount": approval.amount, "till": approval.till, "approval": approval_id},
            )
        return approval

    def consume_approval(self, sale_id: str, amount: int, till: str) -> RefundApproval | None:
        """Use an approved, unused approval for this refund (once); None if there is none."""
        with self._write():
            row = self.conn.execute(
                "SELECT * FROM refund_approvals WHERE sale_id = ? AND amount = ? AND till = ?"
                " AND approved_ms IS NOT NULL AND used_ms IS NULL",
                (sale_id, amount, till),
            ).fetchone()
            if row is None:
                return None
            self.conn.execute(
                "UPDATE refund_approvals SET used_ms = ? WHERE id = ?", (self._now(), row["id"])
            )
        return approval_from_row(row)

    def pending_approvals(self) -> list[RefundApproval]:
        """Requests no manager has approved yet, oldest first."""
        rows = self.conn.execute(
            "SELECT * FROM refund_approvals WHERE approved_ms IS NULL AND used_ms IS NULL "
            "ORDER BY id"
        ).fetchall()
        return [approval_from_row(row) for row in rows]
