"""ISO 4217 from the ``iso4217`` package (issue 14): one table with exponents, three-decimal
currencies end to end through the contact kernel and the simulated issuer, unknown codes
refused with a typed error. The drivers' alpha/numeric translation reads the same table."""

from __future__ import annotations

from datetime import datetime

import pytest

from drivers.smart_terminal import Money
from simulator.card import VirtualCard, default_pki
from terminal.capk import CapkStore
from terminal.config import TerminalConfig
from terminal.contact.flow import OnlineRequest, OnlineResponse, run_contact_transaction
from terminal.currency import CURRENCIES, CurrencyError, currency, to_minor_units
from terminal.environment import Environment, TransactionRequest
from terminal.result import Decision
from terminal.tlv import decode, flatten
from tests.terminal.contact.replay import TestPinPad
from tests.terminal.contact.test_profiles import Host

WHEN = datetime(2026, 11, 25, 12, 0, 0)


@pytest.mark.parametrize(
    ("code", "numeric", "exponent"),
    [("KWD", 414, 3), ("BHD", 48, 3), ("TND", 788, 3), ("JPY", 392, 0), ("EUR", 978, 2),
     ("XPF", 953, 0), ("CLF", 990, 4)],
)
def test_table_has_codes_and_exponents(code: str, numeric: int, exponent: int) -> None:
    found = currency(code)
    assert (found.alpha, found.numeric, found.exponent) == (code, numeric, exponent)
    assert currency(numeric) is found
    assert currency(f"{numeric:03d}") is found
    assert currency(code.lower()) is found


def test_table_is_the_whole_iso_list_not_a_hand_picked_one() -> None:
    assert len(CURRENCIES) > 150
    assert all(0 <= c.exponent <= 4 for c in CURRENCIES.values())


@pytest.mark.parametrize("code", ["ZZZ", "999", 0, "EURO", "", "XAU", "XTS", "BGN", "٩٧٨"])
def test_unknown_code_or_one_without_minor_unit_is_a_typed_error(code: str | int) -> None:
    with pytest.raises(CurrencyError, match="unknown currency"):
        currency(code)


@pytest.mark.parametrize(
    ("amount", "code", "minor"),
    [("12.345", "KWD", 12345), ("0.001", "BHD", 1), ("1500", "JPY", 1500), ("12.5", "EUR", 1250)],
)
def test_minor_units_follow_the_exponent(amount: str, code: str, minor: int) -> None:
    assert to_minor_units(amount, currency(code)) == minor


@pytest.mark.parametrize(("amount", "code"), [("12.3456", "KWD"), ("1.5", "JPY"), ("1.234", "EUR")])
def test_more_decimals_than_the_currency_has_are_refused(amount: str, code: str) -> None:
    with pytest.raises(CurrencyError, match="decimals"):
        to_minor_units(amount, currency(code))


@pytest.mark.parametrize("code", ["KWD", "BHD", "TND"])
async def test_three_decimal_currency_through_the_kernel_and_the_issuer(code: str) -> None:
    cur = currency(code)
    amount = to_minor_units("12.345", cur)
    card = VirtualCard.from_profile("visa_credit", rng=bytes)
    commands: list[bytes] = []

    class Channel:
        async def transceive(self, capdu: bytes) -> bytes:
            commands.append(capdu)
            return card.process(capdu)

    requests: list[OnlineRequest] = []
    host = Host()

    async def online(request: OnlineRequest) -> OnlineResponse | None:
        requests.append(request)
        return await host(request)

    store = CapkStore()
    store.load_file(default_pki().capk_file)
    config = TerminalConfig.default()
    request = TransactionRequest(amount=amount, currency_code=cur.numeric,
                                 currency_exponent=cur.exponent)
    env = Environment.fixed(WHEN, bytes.fromhex("12345678"))
    result = await run_contact_transaction(
        Channel(), config=config, request=request, env=env, online=online,
        pinpad=TestPinPad(), capk=store)
    assert result.decision is Decision.APPROVED, result.reason
    assert requests and requests[0].amount == 12345
    assert requests[0].currency == cur.numeric
    icc = flatten(decode(requests[0].icc_data))
    assert icc[0x9F02] == bytes.fromhex("000000012345")  # Amount, Authorised: 12.345 in mils
    assert icc[0x5F2A] == bytes.fromhex(f"{cur.numeric:04d}")
    # The first GENERATE AC carried the same amount and currency in its CDOL1 data.
    genac = next(c for c in commands if c[:2] == b"\x80\xae")
    assert bytes.fromhex("000000012345") in genac
    # Transaction Currency Exponent (5F36) among the terminal's data objects.
    assert config.terminal_data(request, env)[0x5F36] == b"\x03"


def test_drivers_translate_with_the_same_table() -> None:
    assert Money(12345, "KWD").numeric == "414"
    assert Money(1, "048").alpha == "BHD"
    assert Money(1, "788").alpha == "TND"
    assert Money(1, "ZZZ").numeric is None
