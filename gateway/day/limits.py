"""Store-and-forward limits: may this payment be approved offline? (a pure policy, no I/O).

When the acquirer cannot be reached the card may still approve offline (EMV 4.4 Book 3, 10.7:
"unable to go online" and the Default action codes); the shop then holds the risk until the
sale is forwarded and accepted. The configuration caps that risk per currency
(``[store_and_forward.EUR]`` in the daemon's file, docs/day.md):

* ``max_transaction``: the largest single sale that may be approved offline;
* ``max_total`` and ``max_count``: the amount and number of sales held, not yet forwarded,
  *including* this one;
* ``max_age_hours``: once the oldest held sale is older than this, no new offline approval
  until the queue drains (a link that stays down is a problem to fix, not to absorb).

A currency with no limits configured is never approved offline. Refunds and cards that require
online PIN are never taken offline either (an online PIN can only be checked by the issuer).
:func:`decide_offline` is given the journal's exposure
(:func:`gateway.journal.queries.offline_exposure`) and answers with a typed decision: the lane
turns a refusal into "unable to go online, and the terminal will not accept an offline approval"
(the card decides, usually an AAC: a decline), and the status page shows the reason.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.daemon.config import OfflineLimitsConfig, minor_units
from gateway.journal.queries import OfflineExposure
from gateway.journal.records import Payment
from gateway.journal.states import PaymentKind
from terminal import TerminalConfig

__all__ = [
    "OfflineDecision",
    "OfflineGate",
    "OfflineLimits",
    "OfflineRefusal",
    "decide_offline",
    "limits_from_config",
    "without_offline",
]


class OfflineRefusal(enum.StrEnum):
    """Why a payment may not be approved offline (the value is what the page and API show)."""

    NOT_CONFIGURED = "no_limits_for_currency"
    REFUND = "refund"
    ONLINE_PIN = "online_pin_required"
    TRANSACTION_MAXIMUM = "transaction_maximum"
    TOTAL_AMOUNT = "total_amount"
    COUNT = "count"
    AGE = "age"


@dataclass(frozen=True, slots=True)
class OfflineLimits:
    """One currency's limits, amounts in minor units (ISO 4217 exponent), age in ms."""

    currency: str
    max_transaction: int
    max_total: int
    max_count: int
    max_age_ms: int


@dataclass(frozen=True, slots=True)
class OfflineDecision:
    """The policy's answer.

    Attributes:
        allowed: True when the card's offline approval may be accepted.
        refusal: Why not, when not allowed.
        detail: One line for the log and the page (amounts in minor units; no card data).
    """

    allowed: bool
    refusal: OfflineRefusal | None = None
    detail: str = ""


def limits_from_config(section: Mapping[str, OfflineLimitsConfig]) -> dict[str, OfflineLimits]:
    """The configured limits per currency, amounts converted to minor units.

    Raises:
        ValueError: An unknown currency code, or an amount with too many decimals for it
            (the message names the currency).
    """
    limits: dict[str, OfflineLimits] = {}
    for currency, cfg in section.items():
        try:
            limits[currency] = OfflineLimits(
                currency=currency,
                max_transaction=minor_units(cfg.max_transaction, currency),
                max_total=minor_units(cfg.max_total, currency),
                max_count=cfg.max_count,
                max_age_ms=round(cfg.max_age_hours * 3_600_000),
            )
        except ValueError as exc:
            raise ValueError(f"store_and_forward.{currency}: {exc}") from None
    return limits


def decide_offline(
    *,
    limits: Mapping[str, OfflineLimits],
    exposure: Mapping[str, OfflineExposure],
    amount: int,
    currency: str,
    kind: PaymentKind,
    online_pin_required: bool,
    now_ms: int,
) -> OfflineDecision:
    """May a payment of ``amount`` ``currency`` be approved offline now?

    The checks run in a fixed order and the first that fails is the reason: kind, online PIN,
    configured currency, transaction maximum, age of the oldest held sale, count, total.
    A limit is reached *at* its value: with ``max_count = 3``, the third held sale is accepted
    and the fourth is refused.

    Args:
        limits: Per-currency limits (:func:`limits_from_config`).
        exposure: What is already held, per currency (the journal's query).
        amount: This payment's amount, minor units.
        currency: Its ISO 4217 code.
        kind: Sale or refund.
        online_pin_required: The cardholder verification chosen is online PIN.
        now_ms: The injected clock, ms since the epoch.
    """
    if kind is not PaymentKind.SALE:
        return OfflineDecision(False, OfflineRefusal.REFUND, "refunds are never taken offline")
    if online_pin_required:
        return OfflineDecision(
            False, OfflineRefusal.ONLINE_PIN, "online PIN can only be verified by the issuer"
        )
    rule = limits.get(currency)
    if rule is None:
        return OfflineDecision(
            False, OfflineRefusal.NOT_CONFIGURED, f"no store-and-forward limits for {currency}"
        )
    if amount > rule.max_transaction:
        return OfflineDecision(
            False,
            OfflineRefusal.TRANSACTION_MAXIMUM,
            f"{amount} exceeds the offline maximum of {rule.max_transaction} per sale",
        )
    held = exposure.get(currency, OfflineExposure(currency, 0, 0, now_ms))
    if held.count and now_ms - held.oldest_ms > rule.max_age_ms:
        return OfflineDecision(
            False,
            OfflineRefusal.AGE,
            f"the oldest held sale is {(now_ms - held.oldest_ms) // 60_000} min old"
            f" (limit {rule.max_age_ms // 60_000} min)",
        )
    if held.count + 1 > rule.max_count:
        return OfflineDecision(
            False, OfflineRefusal.COUNT, f"{held.count} sales held (limit {rule.max_count})"
        )
    if held.amount + amount > rule.max_total:
        return OfflineDecision(
            False,
            OfflineRefusal.TOTAL_AMOUNT,
            f"{held.amount} held + {amount} exceeds the limit of {rule.max_total}",
        )
    return OfflineDecision(True)


class OfflineGate:
    """The daemon's store-and-forward limits: the lanes' admission check and the page's view.

    :meth:`admission` gives the lane a check that :meth:`gateway.journal.Journal.
    store_for_forwarding_within` runs atomically with the store; each refusal is remembered per
    currency (what the page shows under "Offline sales stopped") until a sale is admitted again.
    """

    def __init__(
        self, limits: Mapping[str, OfflineLimits], *, clock_ms: Callable[[], int]
    ) -> None:
        self.limits = dict(limits)
        self._clock_ms = clock_ms
        #: Currency -> the last refusal (cleared when an offline sale is admitted again).
        self.stopped: dict[str, OfflineDecision] = {}
        self.refused = 0

    def admission(
        self, *, online_pin: bool
    ) -> Callable[[Payment, Mapping[str, OfflineExposure]], str | None]:
        """The check for one payment (``online_pin``: its CVM was online PIN)."""

        def admit(payment: Payment, exposure: Mapping[str, OfflineExposure]) -> str | None:
            decision = decide_offline(
                limits=self.limits,
                exposure=exposure,
                amount=payment.amount,
                currency=payment.currency,
                kind=payment.kind,
                online_pin_required=online_pin,
                now_ms=self._clock_ms(),
            )
            if decision.allowed:
                self.stopped.pop(payment.currency, None)
                return None
            assert decision.refusal is not None
            self.refused += 1
            if decision.refusal not in (OfflineRefusal.REFUND, OfflineRefusal.ONLINE_PIN):
                self.stopped[payment.currency] = decision  # the shop's state, not the card's
            return f"{decision.refusal.value}: {decision.detail}"

        return admit

    def precheck(
        self, *, amount: int, currency: str, exposure: Mapping[str, OfflineExposure]
    ) -> OfflineDecision:
        """Before the card is read: would an offline approval of this sale be refused now?

        Not atomic (the lanes run meanwhile): it chooses the kernel configuration
        (:func:`without_offline`); the admission check at the store stays the rule.
        """
        decision = decide_offline(
            limits=self.limits,
            exposure=exposure,
            amount=amount,
            currency=currency,
            kind=PaymentKind.SALE,
            online_pin_required=False,
            now_ms=self._clock_ms(),
        )
        if not decision.allowed:
            self.stopped[currency] = decision
        return decision

    def snapshot(self, exposure: Mapping[str, OfflineExposure]) -> dict[str, Any]:
        """Per currency: what is held against its limits, and why offline sales stopped."""
        currencies = sorted(set(self.limits) | set(exposure))
        out: dict[str, Any] = {}
        for code in currencies:
            held = exposure.get(code, OfflineExposure(code, 0, 0, 0))
            rule = self.limits.get(code)
            stopped = self.stopped.get(code)
            out[code] = {
                "count": held.count,
                "amount": held.amount,
                "oldest_ms": held.oldest_ms if held.count else None,
                "max_count": None if rule is None else rule.max_count,
                "max_total": None if rule is None else rule.max_total,
                "max_transaction": None if rule is None else rule.max_transaction,
                "max_age_ms": None if rule is None else rule.max_age_ms,
                "stopped": None if stopped is None or stopped.refusal is None
                else stopped.refusal.value,
                "stopped_detail": None if stopped is None else stopped.detail,
            }
        return out


_NO_OFFLINE: dict[int, tuple[TerminalConfig, TerminalConfig]] = {}


def without_offline(config: TerminalConfig) -> TerminalConfig:
    """``config`` with every floor limit at zero, for a sale the limits would refuse.

    The EMV way to say "no offline approval here" (EMV 4.4 Book 3, 10.6.1): every amount then
    exceeds the floor limit (TVR byte 4 bit 8), the terminal asks the card for an ARQC, and if the
    acquirer cannot be reached the Default action codes decide (10.7); with the usual
    TAC/IAC-Default that bit asks for an AAC: the card declines. The card decides: one whose
    codes still allow a TC is refused at the store by :meth:`OfflineGate.admission`. With the
    acquirer reachable nothing changes: the sale goes online. Cached per configuration object.
    """
    cached = _NO_OFFLINE.get(id(config))
    if cached is not None and cached[0] is config:
        return cached[1]
    aids = [
        aid.model_copy(
            update={
                "floor_limit": 0,
                "reader_ctls_floor_limit": None if aid.reader_ctls_floor_limit is None else 0,
            }
        )
        for aid in config.aids
    ]
    stripped = config.model_copy(update={"aids": aids})
    _NO_OFFLINE[id(config)] = (config, stripped)
    return stripped
