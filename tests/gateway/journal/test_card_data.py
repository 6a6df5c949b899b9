"""No clear PAN or track 2 in the journal outside the vault blob (ARCHITECTURE.md, card data).

The guard is tested on its own (Luhn, grouping, BCD bytes, track 2, AIDs and zero-led numbers
that must pass), then on every write path, then on the raw bytes of the database file and its
WAL after a run that stores a PAN-bearing request in the vault and forwards some of it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.journal import CardDataRejected, PaymentState
from gateway.journal.guard import check_value, find_card_data, luhn_ok
from tests.gateway.journal_support import (
    AID,
    MASKED,
    PAN,
    TRACK2,
    db_bytes,
    drive_to,
    open_journal,
)

S = PaymentState
PANS = [PAN, "5413330089020011", "374245455400126", "6011000990139424", "4000056655665556"]


def test_luhn_matches_known_numbers() -> None:
    assert all(luhn_ok(pan) for pan in PANS)
    assert not luhn_ok(PAN[:-1] + str((int(PAN[-1]) + 1) % 10))


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (PAN, "PAN"),
        (f"card {PAN} ok", "PAN"),
        ("4761 7390 0101 0010", "PAN"),
        ("4761-7390-0101-0010", "PAN"),
        (PAN + "2512", "PAN"),  # a PAN with the expiry glued on
        (TRACK2, "track 2"),
        (PAN + "=2512201", "track 2"),
        (TRACK2.lower(), "track 2"),
        ("374245455400126", "PAN"),
    ],
)
def test_guard_finds_card_data(text: str, kind: str) -> None:
    assert find_card_data(text) == kind


@pytest.mark.parametrize(
    "text",
    [
        AID,
        "A0000000041010",
        MASKED,
        "000000031010000",
        "1234567890",
        PAN[:-1] + "1",  # fails Luhn
        "2024-06-10T12:00:00Z",
        "pay_tb7dmhxlregnjqtj",
        "",
    ],
)
def test_guard_lets_ordinary_values_through(text: str) -> None:
    assert find_card_data(text) is None


def test_guard_walks_json_and_bytes_and_names_the_field() -> None:
    with pytest.raises(CardDataRejected) as info:
        check_value("items", [{"sku": "A"}, {"note": f"paid with {PAN}"}])
    assert info.value.field == "items[1].note" and info.value.kind == "PAN"
    assert PAN not in str(info.value)
    with pytest.raises(CardDataRejected, match="PAN"):
        check_value("blob", bytes.fromhex(PAN))  # BCD-packed
    with pytest.raises(CardDataRejected, match="PAN"):
        check_value("amount", int(PAN))
    with pytest.raises(CardDataRejected, match=r"items\.<key>"):
        check_value("items", {PAN: 1})
    check_value("items", [{"sku": "A1", "qty": 2, "price": 1.5, "gift": False}])


async def test_every_write_path_refuses_card_data(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        with pytest.raises(CardDataRejected, match="items"):
            await journal.create_sale(
                lane="1", amount=100, currency="EUR", actor="t", items=[{"memo": TRACK2}]
            )
        with pytest.raises(CardDataRejected, match="lane"):
            await journal.create_sale(lane=PAN, amount=100, currency="EUR", actor="t")
        with pytest.raises(CardDataRejected, match="actor"):
            await journal.create_sale(lane="1", amount=100, currency="EUR", actor=PAN)
        sale = await drive_to(journal, S.AUTH_REQUESTED)
        with pytest.raises(CardDataRejected, match="reason") as info:
            await journal.mark_unknown(sale.id, actor="t", reason=f"timeout for {PAN}")
        assert PAN not in str(info.value) and PAN not in repr(info.value)
        with pytest.raises(CardDataRejected, match="error"):
            await journal.mark_failed([1], error=f"rejected {TRACK2}")
        assert (await journal.get(sale.id)).state is S.AUTH_REQUESTED
        with pytest.raises(CardDataRejected, match="amount"):
            await journal.create_sale(lane="1", amount=int(PAN), currency="EUR", actor="t")


async def test_database_file_holds_no_clear_card_data(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    async with open_journal(tmp_path) as journal:
        for index, pan in enumerate(PANS):
            masked = pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
            sale = await journal.create_sale(
                lane="1",
                amount=100 + index,
                currency="EUR",
                actor="lane[1]",
                items=[{"sku": "3017620422003"}],
            )
            await journal.card_read(sale.id, masked_pan=masked, aid=AID, actor="lane[1]")
            request = (
                b"\x5a\x08"
                + bytes.fromhex(pan.ljust(16, "F"))
                + b"\x57\x13"
                + bytes.fromhex((pan + "D2512201").ljust(38, "F"))
                + pan.encode()
            )
            await journal.store_for_forwarding(
                sale.id, request=request, response_code="Y1", actor="lane[1]"
            )
            assert await journal.forwarding_request(sale.id) == request
            if index % 2:
                await journal.confirm_forwarded(sale.id, actor="forwarder")
        online = await drive_to(journal, S.COMPLETED)
        await journal.claim_batch(10)
        raw_open = db_bytes(path)
    raw_closed = db_bytes(path)
    assert raw_open and raw_closed and MASKED.encode() in raw_closed  # the scan sees the data
    assert online.masked_pan is not None and online.masked_pan.encode() in raw_closed
    for raw in (raw_open, raw_closed):
        for pan in PANS:
            assert pan.encode() not in raw
            assert bytes.fromhex(pan.ljust(16, "F")) not in raw
            assert bytes.fromhex(pan[: len(pan) // 2 * 2]) not in raw
            assert (pan + "D").encode() not in raw
            assert pan.encode("utf-16-le") not in raw


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("100000000008", "PAN"),  # twelve digits, Luhn-valid: the shortest PAN
        ("1000 0000 0008", "PAN"),
        ("ref 1-0-0-0-0-0-0-0-0-0-0-8 end", "PAN"),  # one dash between each digit still counts
        ("10000000000", None),  # eleven digits: neither a PAN nor a track 2 can be that short
        ("1000 0000 000", None),
        ("1000  0000 0008", None),  # two spaces end a run: 4 + 8 digits
        (100000000008, "PAN"),  # the smallest integer that can hold one
        (-100000000008, "PAN"),
        (99_999_999_999, None),  # eleven digits: let through without being turned into text
    ],
)
def test_guard_at_twelve_digits(value: str | int, kind: str | None) -> None:
    # the guard first looks for twelve digits in one run, and skips integers below 10^11:
    # each side of that boundary
    if isinstance(value, str):
        assert find_card_data(value) == kind
    if kind is None:
        check_value("field", value)
    else:
        with pytest.raises(CardDataRejected, match=kind):
            check_value("field", value)
