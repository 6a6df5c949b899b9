"""The status page's words, marked for translation (English msgids; catalogues in locale/).

Only the English text lives in code; :class:`gateway.web.i18n.PageLocale` translates it when the
page is rendered. ``pybabel extract -k N_ gateway/web`` lists every msgid below, and a test checks
that each has a French translation.
"""

from __future__ import annotations

from gateway.web.i18n import N_

__all__ = ["DAY_STATES", "HEADINGS", "KINDS", "OFFLINE_REFUSALS", "PAYMENT_STATES"]

#: Journal state -> what the manager reads.
PAYMENT_STATES = {
    "CREATED": N_("Started"),
    "CARD_READ": N_("Card read"),
    "AUTH_REQUESTED": N_("Waiting for the bank's answer"),
    "APPROVED": N_("Approved"),
    "DECLINED": N_("Declined"),
    "UNKNOWN": N_("Outcome not known yet — checking with the bank"),
    "COMPLETED": N_("Completed"),
    "REVERSAL_PENDING": N_("Being cancelled with the bank"),
    "REVERSED": N_("Cancelled with the bank"),
    "STORED_FOR_FORWARDING": N_("Kept to send to the bank later"),
    "FORWARDED": N_("Sent to the bank"),
    "CANCELLED": N_("Cancelled"),
    "FORWARD_DECLINED": N_("Refused by the bank after the sale — no money will come"),
    "DECLINE_ACKNOWLEDGED": N_("Refused by the bank — seen by a manager"),
    "VOID_PENDING": N_("Void in progress with the bank"),
    "VOIDED": N_("Voided"),
}

#: Why the shop stopped approving offline (gateway.day.limits.OfflineRefusal values).
OFFLINE_REFUSALS = {
    "no_limits_for_currency": N_("Offline sales are not allowed in this currency"),
    "refund": N_("Refunds always need the bank"),
    "online_pin_required": N_("This card needs its PIN checked by the bank"),
    "transaction_maximum": N_("Amount above the offline limit per sale"),
    "total_amount": N_("Offline total limit reached"),
    "count": N_("Offline sales count limit reached"),
    "age": N_("Offline sales waiting too long to be sent"),
}

#: Kinds of money move in the day's totals.
KINDS = {
    "sales": N_("Sales"),
    "refunds": N_("Refunds"),
    "voids": N_("Voids"),
    "offline": N_("Offline approvals"),
    "forward_declined": N_("Refused after the sale"),
}

#: Day-close state.
DAY_STATES = {
    "open": N_("Day open"),
    "closed": N_("Day closed"),
    "closed_with_differences": N_("Day closed — the bank's totals differ"),
}

#: Headings and labels of the page.
HEADINGS = {
    "takings": N_("Today's takings"),
    "last_payments": N_("Last payments"),
    "approval_rate": N_("Approval rate"),
    "median_auth": N_("Median authorisation time"),
    "offline_queue": N_("Offline sales waiting to be sent"),
    "limit": N_("limit"),
    "day": N_("Day close"),
    "differences": N_("Differences with the bank"),
    "terminal_transactions": N_("{count} transactions"),
    "terminal_unavailable": N_("Terminal totals unavailable: lane {lanes}"),
    "needs_manager": N_("Needs a manager"),
    "more_waiting": N_("{count} more waiting"),
    "amount": N_("Amount"),
    "card": N_("Card"),
    "outcome": N_("Outcome"),
    "lane": N_("Lane"),
    "time": N_("Time"),
    "none_yet": N_("No payment yet today"),
    "offline_stopped": N_("Offline sales stopped"),
}
