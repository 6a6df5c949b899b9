"""Store-and-forward limits (gateway.day.limits): each limit refuses exactly at its value.

A pure policy, so these are unit tests on plain values; the daemon test that drives 500 payments
with the acquirer down against the same limits is in test_daemon_day.py.
"""

from __future__ import annotations

import pytest

from gateway.daemon.config import OfflineLimitsConfig
from gateway.daemon.config import minor_units as to_minor_units
from gateway.day.limits import OfflineLimits, OfflineRefusal, decide_offline, limits_from_config
from gateway.journal.queries import OfflineExposure
from gateway.journal.states import PaymentKind

NOW = 1_700_000_000_000
HOUR = 3_600_000
EUR = OfflineLimits("EUR", max_transaction=5000, max_total=20000, max_count=5, max_age_ms=HOUR)


def decide(
    amount: int = 1000,
    *,
    held: OfflineExposure | None = None,
    currency: str = "EUR",
    kind: PaymentKind = PaymentKind.SALE,
    online_pin: bool = False,
    now: int = NOW,
) -> OfflineRefusal | None:
    exposure = {} if held is None else {held.currency: held}
    decision = decide_offline(
        limits={"EUR": EUR},
        exposure=exposure,
        amount=amount,
        currency=currency,
        kind=kind,
        online_pin_required=online_pin,
        now_ms=now,
    )
    assert decision.allowed is (decision.refusal is None)
    return decision.refusal


def test_per_transaction_maximum_is_inclusive() -> None:
    assert decide(5000) is None
    assert decide(5001) is OfflineRefusal.TRANSACTION_MAXIMUM


def test_count_refuses_the_sale_after_the_last_allowed_one() -> None:
    assert decide(held=OfflineExposure("EUR", 4, 4000, NOW)) is None
    assert decide(held=OfflineExposure("EUR", 5, 5000, NOW)) is OfflineRefusal.COUNT


def test_total_counts_this_sale_too() -> None:
    assert decide(1000, held=OfflineExposure("EUR", 1, 19000, NOW)) is None
    assert decide(1001, held=OfflineExposure("EUR", 1, 19000, NOW)) is OfflineRefusal.TOTAL_AMOUNT


def test_age_of_the_oldest_held_sale_stops_new_offline_approvals() -> None:
    assert decide(held=OfflineExposure("EUR", 1, 100, NOW - HOUR)) is None
    assert decide(held=OfflineExposure("EUR", 1, 100, NOW - HOUR - 1)) is OfflineRefusal.AGE
    # an empty queue has no age, whatever the clock says
    assert decide(held=OfflineExposure("EUR", 0, 0, 0)) is None


def test_refunds_online_pin_and_unconfigured_currencies_are_never_offline() -> None:
    assert decide(kind=PaymentKind.REFUND) is OfflineRefusal.REFUND
    assert decide(online_pin=True) is OfflineRefusal.ONLINE_PIN
    assert decide(currency="CHF") is OfflineRefusal.NOT_CONFIGURED


def test_other_currencies_do_not_count_against_this_one() -> None:
    assert decide(held=OfflineExposure("CHF", 99, 10**9, NOW - 10 * HOUR)) is None


def test_the_reason_names_the_numbers_without_card_data() -> None:
    decision = decide_offline(
        limits={"EUR": EUR},
        exposure={"EUR": OfflineExposure("EUR", 5, 5000, NOW)},
        amount=100,
        currency="EUR",
        kind=PaymentKind.SALE,
        online_pin_required=False,
        now_ms=NOW,
    )
    assert decision.detail == "5 sales held (limit 5)"


def test_config_amounts_follow_the_currency_exponent() -> None:
    section = {
        "EUR": OfflineLimitsConfig(
            max_transaction="50.00", max_total="200", max_count=5, max_age_hours=1
        ),
        "JPY": OfflineLimitsConfig(
            max_transaction="5000", max_total="20000", max_count=3, max_age_hours=0.5
        ),
    }
    limits = limits_from_config(section)
    assert limits["EUR"] == EUR
    assert limits["JPY"] == OfflineLimits("JPY", 5000, 20000, 3, HOUR // 2)
    assert to_minor_units("1.234", "KWD") == 1234


@pytest.mark.parametrize(
    ("currency", "amount", "message"),
    [
        ("EUR", "1.005", "EUR has 2 decimal places"),
        ("JPY", "10.5", "JPY has 0 decimal places"),
        ("XYZ", "10", "'XYZ' is not an ISO 4217 currency"),
    ],
)
def test_bad_limits_are_refused_with_the_currency_named(
    currency: str, amount: str, message: str
) -> None:
    section = {
        currency: OfflineLimitsConfig(
            max_transaction=amount, max_total="100", max_count=1, max_age_hours=1
        )
    }
    with pytest.raises(ValueError, match=message) as info:
        limits_from_config(section)
    assert str(info.value).startswith(f"store_and_forward.{currency}: ")


def test_config_rejects_non_numbers_and_negative_amounts() -> None:
    with pytest.raises(ValueError, match="decimal amount"):
        OfflineLimitsConfig(max_transaction="lots", max_total="1", max_count=1, max_age_hours=1)
    with pytest.raises(ValueError, match=">= 0"):
        OfflineLimitsConfig(max_transaction="-1", max_total="1", max_count=1, max_age_hours=1)


def test_daemon_config_reads_the_section_and_names_the_bad_field() -> None:
    from gateway.daemon.config import ConfigError, parse_config

    base = {
        "shop": "s1",
        "acquirer": {"url": "http://127.0.0.1:1", "merchant_id": "M1"},
        "lanes": [{"id": 1, "reader": "sim://lane1"}],
    }
    good = {"max_transaction": "50", "max_total": "200", "max_count": 5, "max_age_hours": 1}
    config = parse_config({**base, "store_and_forward": {"EUR": good}})
    assert limits_from_config(config.store_and_forward) == {"EUR": EUR}
    assert parse_config(base).store_and_forward == {}
    bad = {**good, "max_total": "1.001"}
    with pytest.raises(ConfigError, match=r"store_and_forward\.EUR: '1\.001': EUR has 2"):
        parse_config({**base, "store_and_forward": {"EUR": bad}})
