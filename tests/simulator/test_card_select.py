"""Card side of SELECT and the PSE/PPSE directories (EMV 4.4 Book 1, 11.3, 12.2-12.3)."""

from __future__ import annotations

import pytest

from simulator.card import VirtualCard
from terminal.tlv import decode, find_all, flatten

PSE = b"1PAY.SYS.DDF01".hex()
PPSE = b"2PAY.SYS.DDF01".hex()


def send(card: VirtualCard, hexstr: str) -> tuple[bytes, int]:
    rapdu = card.process(bytes.fromhex(hexstr.replace(" ", "")))
    return rapdu[:-2], int.from_bytes(rapdu[-2:], "big")


def select(card: VirtualCard, name_hex: str, p2: str = "00") -> tuple[bytes, int]:
    return send(card, f"00A404{p2}{len(name_hex) // 2:02X}{name_hex}00")


def test_book1_12_2_pse_fci_names_the_directory_sfi_and_its_record():
    card = VirtualCard.from_profile("visa_credit")
    fci, sw = select(card, PSE)
    assert sw == 0x9000
    assert flatten(decode(fci))[0x88] == b"\x01"
    record, sw = send(card, "00B2010C00")
    assert sw == 0x9000
    entries = find_all(decode(record), 0x61)
    assert [flatten([e])[0x4F].hex().upper() for e in entries] == ["A0000000031010"]
    assert send(card, "00B2020C00")[1] == 0x6A83


def test_book_b_3_3_ppse_lists_entries_with_kernel_identifier():
    card = VirtualCard.from_profile("ctls_mc_cda_online")
    fci, sw = select(card, PPSE)
    assert sw == 0x9000
    entry = flatten(find_all(decode(fci), 0x61))
    assert entry[0x4F] == bytes.fromhex("A0000000041010")
    assert entry[0x9F2A] == b"\x02"


def test_missing_directory_is_6a82():
    assert select(VirtualCard.from_profile("visa_credit"), PPSE)[1] == 0x6A82
    assert select(VirtualCard.from_profile("ctls_visa_online"), PSE)[1] == 0x6A82


def test_book1_12_3_3_partial_name_and_next_occurrence():
    card = VirtualCard.from_profile("cb_visa_cobadged")
    fci, sw = select(card, "A0000000")
    assert sw == 0x9000
    assert flatten(decode(fci))[0x84].hex().upper() == "A0000000421010"
    fci, sw = select(card, "A0000000", p2="02")
    assert sw == 0x9000
    assert flatten(decode(fci))[0x84].hex().upper() == "A0000000031010"
    assert select(card, "A0000000", p2="02")[1] == 0x6A82


def test_full_aid_selection_returns_fci_with_pdol_and_label():
    fci, sw = select(VirtualCard.from_profile("visa_credit"), "A0000000031010")
    assert sw == 0x9000
    data = flatten(decode(fci))
    assert data[0x50] == b"VISA CREDIT"
    assert data[0x9F38] == bytes.fromhex("9F1A0295055F2A029A039C019F3704")


def test_unknown_aid_is_6a82():
    assert select(VirtualCard.from_profile("visa_credit"), "A0000000041010")[1] == 0x6A82


def test_book1_12_3_2_blocked_application_answers_fci_with_6283():
    fci, sw = select(VirtualCard.from_profile("blocked_application"), "A0000000031010")
    assert sw == 0x6283
    assert flatten(decode(fci))[0x84] == bytes.fromhex("A0000000031010")


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("00A4000007A000000003101000", 0x6A86),  # P1 select by file id: not supported
        ("00A4040C07A000000003101000", 0x6A86),  # P2 "no FCI"
        ("80A4040007A000000003101000", 0x6E00),  # wrong class for SELECT
        ("00A40400", 0x6700),  # no name
        ("00A4040007A0000000031010FFFF", 0x6700),  # Lc does not match
        ("F0A4040007A000000003101000", 0x6E00),  # unknown class
        ("0077000000", 0x6D00),  # unknown instruction
    ],
)
def test_select_parameter_errors(apdu, sw):
    assert send(VirtualCard.from_profile("visa_credit"), apdu)[1] == sw


def test_new_select_resets_the_session():
    card = VirtualCard.from_profile("visa_credit")
    select(card, "A0000000031010")
    assert send(card, "80A8000013831100" + "00" * 16 + "00")[1] == 0x9000
    select(card, "A0000000031010")
    assert send(card, "80A8000013831100" + "00" * 16 + "00")[1] == 0x9000
