"""Read application data and mandatory data (EMV 4.4 Book 3, 10.2)."""

from __future__ import annotations

import pytest

from terminal.contact.read_data import read_application_data
from terminal.contact.state import EndTransaction
from terminal.errors import CardDataError, TlvError
from terminal.result import Decision
from terminal.tlv import encode
from tests.terminal.contact.replay import h, make_txn, steps

PAN = encode(0x5A, h("4761739001010010"))
EXPIRY = encode(0x5F24, h("301231"))
CDOL1 = encode(0x8C, h("9F0206 9505 9F3704"))
CDOL2 = encode(0x8D, h("8A02 9505"))


def rec(*objects: bytes) -> str:
    return encode(0x70, b"".join(objects)).hex().upper() + "9000"


async def test_book3_10_2_reads_every_afl_record_and_collects_oda_data() -> None:
    txn, channel = make_txn(
        {0x94: h("08010202 10010100")},
        transcript=steps(
            ("00B2010C00", rec(PAN, EXPIRY), "SFI 1 rec 1 (ODA)"),
            ("00B2020C00", rec(CDOL1, CDOL2), "SFI 1 rec 2 (ODA)"),
            ("00B2011400", rec(encode(0x5F28, h("0250"))), "SFI 2 rec 1"),
        ),
    )
    await read_application_data(txn)
    channel.assert_consumed()
    assert txn.card[0x5F28] == h("0250")
    assert txn.collector is not None
    data = txn.collector.finish(None, txn.card)
    assert data == PAN + EXPIRY + CDOL1 + CDOL2


@pytest.mark.parametrize("missing", [0x5A, 0x5F24, 0x8C, 0x8D])
async def test_book3_10_2_mandatory_data_missing_terminates(missing: int) -> None:
    objects = {0x5A: PAN, 0x5F24: EXPIRY, 0x8C: CDOL1, 0x8D: CDOL2}
    del objects[missing]
    txn, _ = make_txn(
        {0x94: h("08010100")},
        transcript=steps(("00B2010C00", rec(*objects.values()), "record")),
    )
    with pytest.raises(EndTransaction) as info:
        await read_application_data(txn)
    assert info.value.decision is Decision.TERMINATED
    assert f"{missing:02X}" in info.value.reason


async def test_book3_10_2_record_not_found_terminates() -> None:
    txn, _ = make_txn({0x94: h("08010100")}, transcript=steps(("00B2010C00", "6A83", "missing")))
    with pytest.raises(EndTransaction) as info:
        await read_application_data(txn)
    assert info.value.decision is Decision.TERMINATED


async def test_book3_10_2_redundant_primitive_data_is_an_error() -> None:
    txn, _ = make_txn(
        {0x94: h("08010200")},
        transcript=steps(
            ("00B2010C00", rec(PAN, EXPIRY), "rec 1"),
            ("00B2020C00", rec(PAN, CDOL1, CDOL2), "rec 2 repeats 5A"),
        ),
    )
    with pytest.raises(CardDataError) as info:
        await read_application_data(txn)
    assert info.value.tag == 0x5A
    assert "4761739001010010" not in str(info.value)


@pytest.mark.parametrize("body", ["7103 5F2400 9000", "7005 5A08 47 9000", "9000"])
async def test_book3_10_2_sfi_1_to_10_record_must_be_template_70(body: str) -> None:
    txn, _ = make_txn({0x94: h("08010100")}, transcript=steps(("00B2010C00", body, "bad")))
    with pytest.raises((CardDataError, TlvError)):
        await read_application_data(txn)


async def test_book3_10_2_bad_afl_is_typed_error() -> None:
    txn, _ = make_txn({0x94: h("00010100")})
    with pytest.raises(CardDataError):
        await read_application_data(txn)
