"""Card side of GPO, READ RECORD and GET DATA (EMV 4.4 Book 3, 6.5.7, 6.5.8, 6.5.11), and the
T=0 GET RESPONSE behaviour through the terminal's transport layer (Book 1, 9.3.1.3)."""

from __future__ import annotations

from simulator.card import VirtualCard
from terminal.apdu import CommandApdu
from terminal.tlv import decode, flatten
from terminal.transport import exchange

from .test_card_select import send

VISA_GPO = "80A8000013831100" + "00" * 16 + "00"  # PDOL of 17 bytes


def selected(name: str = "visa_credit") -> VirtualCard:
    card = VirtualCard.from_profile(name)
    aid = card.applications[0].profile.aid.hex()
    assert send(card, f"00A40400{len(aid) // 2:02X}{aid}00")[1] in (0x9000, 0x6283)
    return card


def test_book3_6_5_8_gpo_format_2_gives_aip_and_afl():
    card = selected()
    resp, sw = send(card, VISA_GPO)
    assert sw == 0x9000
    data = flatten(decode(resp))
    assert data[0x82] == card.applications[0].aip
    assert data[0x94] == card.applications[0].afl


def test_gpo_format_1_for_the_legacy_card():
    card = selected("sda_legacy")
    resp, sw = send(card, "80A80000028300")
    assert sw == 0x9000
    assert resp[0] == 0x80
    app = card.applications[0]
    assert resp[2:] == app.aip + app.afl


def test_gpo_errors():
    card = VirtualCard.from_profile("visa_credit")
    assert send(card, VISA_GPO)[1] == 0x6985  # nothing selected
    card = selected()
    assert send(card, "80A8000013841100" + "00" * 16 + "00")[1] == 0x6A80  # not tag 83
    assert send(card, "80A8000012831000" + "00" * 15 + "00")[1] == 0x6700  # PDOL length
    assert send(card, "80A8010013831100" + "00" * 16 + "00")[1] == 0x6A86
    assert send(card, "00A8000013831100" + "00" * 16 + "00")[1] == 0x6E00
    assert send(card, VISA_GPO)[1] == 0x9000
    assert send(card, VISA_GPO)[1] == 0x6985  # already initiated


def test_blocked_application_refuses_gpo_with_6985():
    assert send(selected("blocked_application"), VISA_GPO)[1] == 0x6985


def test_book3_6_5_11_read_record():
    card = selected()
    record, sw = send(card, "00B2011400")
    assert sw == 0x9000
    assert record[0] == 0x70
    assert 0x5A in flatten(decode(record))
    assert send(card, "00B2091400")[1] == 0x6A83  # no such record
    assert send(card, "00B2017C00")[1] == 0x6A83  # no such SFI
    assert send(card, "00B2011000")[1] == 0x6A86  # P2 low bits not 100
    assert send(card, "00B2001400")[1] == 0x6A86  # record 0


def test_read_record_with_nothing_selected_is_6985():
    assert send(VirtualCard.from_profile("visa_credit"), "00B2011400")[1] == 0x6985


def test_book3_6_5_7_get_data():
    card = selected()
    resp, sw = send(card, "80CA9F3600")
    assert (resp, sw) == (bytes.fromhex("9F36020001"), 0x9000)
    assert send(card, "80CA9F1300") == (bytes.fromhex("9F13020000"), 0x9000)
    assert send(card, "80CA9F1700") == (bytes.fromhex("9F170103"), 0x9000)
    log_format, sw = send(card, "80CA9F4F00")
    assert sw == 0x9000
    assert log_format.startswith(b"\x9f\x4f")
    assert send(card, "80CA9F1400") == (bytes.fromhex("9F140103"), 0x9000)
    assert send(card, "80CA5A0000")[1] == 0x6A88  # the PAN is not readable by GET DATA
    assert send(card, "00CA9F3600")[1] == 0x6E00


def test_pin_try_counter_of_pin_blocked_card_is_zero():
    assert send(selected("pin_blocked"), "80CA9F1700") == (bytes.fromhex("9F170100"), 0x9000)


class _Channel:
    def __init__(self, card: VirtualCard) -> None:
        self.card = card
        self.sent: list[bytes] = []

    async def transceive(self, capdu: bytes) -> bytes:
        self.sent.append(capdu)
        return self.card.process(capdu)


async def test_t0_card_answers_61xx_and_get_response_completes_it():
    card = VirtualCard.from_profile("visa_credit", t0=True)
    channel = _Channel(card)
    aid = bytes.fromhex("A0000000031010")
    response = await exchange(channel, CommandApdu(0x00, 0xA4, 0x04, 0x00, aid, 0))
    assert response.sw == 0x9000
    assert flatten(decode(response.data))[0x84] == aid
    assert [c[1] for c in channel.sent] == [0xA4, 0xC0]
    assert card.process(bytes.fromhex("00C0000010")) == b"\x69\x85"  # nothing pending
