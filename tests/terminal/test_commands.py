"""Card commands, response parsers, CardIo and the masked trace (EMV 4.4 Book 3, 6.5)."""

from __future__ import annotations

import pytest

from terminal.bits import CryptogramType
from terminal.commands import (
    CardIo,
    external_authenticate,
    generate_ac,
    get_challenge,
    get_data,
    get_processing_options,
    internal_authenticate,
    parse_directory_record,
    parse_fci,
    parse_genac,
    parse_get_data,
    parse_gpo,
    parse_internal_authenticate,
    parse_record,
    read_record,
    select,
)
from terminal.errors import CardDataError, TlvError
from terminal.trace import Tracer, mask_rapdu_hex
from tests.terminal.contact.replay import ReplayChannel, h, steps


def test_book1_11_3_select_first_and_next_occurrence() -> None:
    assert select(h("A0000000031010")).encode() == h("00A4040007A000000003101000")
    assert select(h("A000000003"), next_occurrence=True).encode() == h("00A4040205A00000000300")


def test_book1_11_2_read_record_p2_carries_sfi() -> None:
    assert read_record(2, 1).encode() == h("00B2011400")
    assert read_record(30, 255).encode() == h("00B2FFF400")


def test_book3_6_5_8_gpo_wraps_pdol_data_in_83() -> None:
    assert get_processing_options(b"").encode() == h("80A80000028300 00")
    assert get_processing_options(h("0250")).encode() == h("80A8000004 83020250 00")


def test_book3_6_5_5_generate_ac_reference_control_and_cda_bit() -> None:
    assert generate_ac(CryptogramType.ARQC, h("01")).encode() == h("80AE80000101 00")
    assert generate_ac(CryptogramType.TC, h("01"), cda=True).encode() == h("80AE50000101 00")
    assert generate_ac(CryptogramType.AAC, h("01")).encode()[2] == 0x00


def test_book3_6_5_other_commands() -> None:
    assert get_data(0x9F17).encode() == h("80CA9F1700")
    assert get_data(0x9F36).encode() == h("80CA9F3600")
    assert internal_authenticate(h("11223344")).encode() == h("008800000411223344 00")
    assert external_authenticate(h("0102030405060708 3030")).encode() == h(
        "008200000A01020304050607083030"
    )
    assert get_challenge().encode() == h("0084000000")


FCI = "6F1A 8407A0000000031010 A50F 5004 56495341 870181 9F3803 9F1A02"


def test_book1_11_3_4_parse_fci() -> None:
    fci = parse_fci(h(FCI))
    assert fci.df_name == h("A0000000031010")
    assert fci.label == "VISA"
    assert fci.priority == 1
    assert fci.confirmation_required is True
    assert fci.pdol == h("9F1A02")


@pytest.mark.parametrize(
    "data", ["6F09 8407A0000000031010", "7003 500141", "6F05 A503 500141", "6F"]
)
def test_book1_11_3_4_fci_without_84_or_a5_is_an_error(data: str) -> None:
    with pytest.raises((CardDataError, TlvError)):
        parse_fci(h(data))


def test_book1_12_2_3_directory_record_entries() -> None:
    record = h("7019 6117 4F07A0000000031010 5004 56495341 870102 9F1202 5649")
    (entry,) = parse_directory_record(record)
    assert entry.aid == h("A0000000031010")
    assert entry.priority == 2
    assert entry.preferred_name == "VI"


def test_book3_6_5_8_4_gpo_formats() -> None:
    one = parse_gpo(h("800A 5C00 08010100 08020501"))
    assert one.aip == h("5C00")
    assert one.afl == h("0801010008020501")
    two = parse_gpo(h("770E 82021980 9408 1801010020010200"))
    assert two.aip == h("1980")
    assert two.afl == h("1801010020010200")


@pytest.mark.parametrize(
    "data",
    [
        "8001 5C",
        "8005 5C00080101",
        "7704 82021980",
        "7706 9404 08010100",
        "7008 5C00 08010100",
        "7708 8203198000 9400",
    ],
)
def test_book3_6_5_8_4_bad_gpo_is_typed_error(data: str) -> None:
    with pytest.raises((CardDataError, TlvError)):
        parse_gpo(h(data))


def test_book3_6_5_5_4_genac_format_1_and_2() -> None:
    one = parse_genac(h("8012 80 0001 0102030405060708 06010A03A00000"))
    assert one.cryptogram_type is CryptogramType.ARQC
    assert one.atc == h("0001")
    assert one.iad == h("06010A03A00000")
    two = parse_genac(h("7714 9F270140 9F36020002 9F26081112131415161718"))
    assert two.cryptogram_type is CryptogramType.TC
    assert two.format2


@pytest.mark.parametrize(
    "data", ["8005 8000010102", "7707 9F270140 9F3600", "770D 9F3602 0002 9F2608 1112131415"]
)
def test_book3_6_5_5_4_bad_genac_is_typed_error(data: str) -> None:
    with pytest.raises((CardDataError, TlvError)):
        parse_genac(h(data))


def test_records_and_get_data_and_internal_authenticate() -> None:
    assert [t.tag for t in parse_record(h("7008 5F2403121231 5A00"))][:1] == [0x5F24]
    with pytest.raises(CardDataError):
        parse_record(h("7103 5F2400"))
    assert parse_get_data(h("9F170103"), 0x9F17) == h("03")
    with pytest.raises(CardDataError):
        parse_get_data(h("9F360200 01"), 0x9F17)
    assert parse_internal_authenticate(h("8002 ABCD")) == h("ABCD")
    assert parse_internal_authenticate(h("7705 9F4B02ABCD")) == h("ABCD")
    with pytest.raises(CardDataError):
        parse_internal_authenticate(h("7703 9F4C00"))


async def test_card_io_traces_every_physical_exchange_masked() -> None:
    channel = ReplayChannel(
        steps(
            ("00B2010C00", "6110", "61xx"),
            ("00C0000010", "700E 5A08 4761739001010010 5F340101 9000", "GET RESPONSE"),
            ("0020008008 241234FFFFFFFFFF", "9000", "VERIFY"),
        )
    )
    io = CardIo(channel)
    response = await io.send(read_record(1, 1))
    assert response.ok
    assert response.data.startswith(h("700E"))
    await io.send_raw(h("0020008008 241234FFFFFFFFFF"))
    channel.assert_consumed()
    names = [entry.command for entry in io.tracer.entries]
    assert names == ["READ RECORD", "GET RESPONSE", "VERIFY"]
    printed = str([entry.to_json() for entry in io.tracer.entries])
    assert "4761739001010010" not in printed
    assert "476173******0010" in printed
    assert io.tracer.entries[2].capdu == "0020008008" + "*" * 16


def test_trace_masks_dol_built_data_and_non_tlv_pan() -> None:
    tracer = Tracer()
    tracer.expect_dol([(0x9F02, 6), (0x5A, 8)])
    tracer.hook(h("80AE8000 0E 000000001000 4761739001010010 00"), h("9000"), 0.001)
    assert "4761739001010010" not in tracer.entries[0].capdu
    assert mask_rapdu_hex(h("5A0847617390010100109000")).count("*") > 0
    assert "4761739001010010" not in mask_rapdu_hex(h("01 5A08 4761739001010010 9000"))
