"""Bit-exact tests of the EMV bit maps (terminal.bits)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.bits import (
    AdditionalTerminalCapabilities,
    AdditionalTerminalCapabilitiesBit,
    Aip,
    AipBit,
    Auc,
    AucBit,
    Cid,
    CidReason,
    CryptogramType,
    Ctq,
    CtqBit,
    RrpStatus,
    TerminalCapabilities,
    TerminalCapabilitiesBit,
    Tsi,
    TsiBit,
    Ttq,
    TtqBit,
    Tvr,
    TvrBit,
)
from terminal.errors import CardDataError

MAPS = [
    (Tvr, TvrBit, 5, 0x95),
    (Tsi, TsiBit, 2, 0x9B),
    (Aip, AipBit, 2, 0x82),
    (Auc, AucBit, 2, 0x9F07),
    (TerminalCapabilities, TerminalCapabilitiesBit, 3, 0x9F33),
    (AdditionalTerminalCapabilities, AdditionalTerminalCapabilitiesBit, 5, 0x9F40),
    (Ttq, TtqBit, 4, 0x9F66),
    (Ctq, CtqBit, 2, 0x9F6C),
]

# EMV 4.4 Book 3, Annex C5 (and Book C-2 for byte 5 bits 4-3): (member, byte, mask).
TVR_EXPECTED = [
    (TvrBit.ODA_NOT_PERFORMED, 1, 0x80),
    (TvrBit.SDA_FAILED, 1, 0x40),
    (TvrBit.ICC_DATA_MISSING, 1, 0x20),
    (TvrBit.CARD_ON_EXCEPTION_FILE, 1, 0x10),
    (TvrBit.DDA_FAILED, 1, 0x08),
    (TvrBit.CDA_FAILED, 1, 0x04),
    (TvrBit.SDA_SELECTED, 1, 0x02),
    (TvrBit.DIFFERENT_APPLICATION_VERSIONS, 2, 0x80),
    (TvrBit.EXPIRED_APPLICATION, 2, 0x40),
    (TvrBit.APPLICATION_NOT_YET_EFFECTIVE, 2, 0x20),
    (TvrBit.SERVICE_NOT_ALLOWED, 2, 0x10),
    (TvrBit.NEW_CARD, 2, 0x08),
    (TvrBit.CV_NOT_SUCCESSFUL, 3, 0x80),
    (TvrBit.UNRECOGNISED_CVM, 3, 0x40),
    (TvrBit.PIN_TRY_LIMIT_EXCEEDED, 3, 0x20),
    (TvrBit.PIN_PAD_NOT_PRESENT, 3, 0x10),
    (TvrBit.PIN_NOT_ENTERED, 3, 0x08),
    (TvrBit.ONLINE_PIN_ENTERED, 3, 0x04),
    (TvrBit.EXCEEDS_FLOOR_LIMIT, 4, 0x80),
    (TvrBit.LCOL_EXCEEDED, 4, 0x40),
    (TvrBit.UCOL_EXCEEDED, 4, 0x20),
    (TvrBit.RANDOMLY_SELECTED_ONLINE, 4, 0x10),
    (TvrBit.MERCHANT_FORCED_ONLINE, 4, 0x08),
    (TvrBit.DEFAULT_TDOL_USED, 5, 0x80),
    (TvrBit.ISSUER_AUTHENTICATION_FAILED, 5, 0x40),
    (TvrBit.SCRIPT_FAILED_BEFORE_FINAL_GENAC, 5, 0x20),
    (TvrBit.SCRIPT_FAILED_AFTER_FINAL_GENAC, 5, 0x10),
    (TvrBit.RR_THRESHOLD_EXCEEDED, 5, 0x08),
    (TvrBit.RR_TIME_LIMITS_EXCEEDED, 5, 0x04),
]


def _ids(value: object) -> str:
    return getattr(value, "__name__", "")


def _only(size: int, byte: int, mask: int) -> bytes:
    data = bytearray(size)
    data[byte - 1] = mask
    return bytes(data)


@pytest.mark.parametrize(("member", "byte", "mask"), TVR_EXPECTED, ids=str)
def test_tvr_bits_are_where_the_spec_puts_them(member: TvrBit, byte: int, mask: int) -> None:
    tvr = Tvr()
    tvr.set(member)
    assert tvr.bytes() == _only(5, byte, mask)
    assert tvr.is_set(member)
    assert member in tvr
    tvr.clear(member)
    assert tvr.bytes() == bytes(5)


@pytest.mark.parametrize(("cls", "bits", "size", "tag"), MAPS, ids=_ids)
def test_each_named_bit_is_exactly_one_bit(cls: Any, bits: Any, size: int, tag: int) -> None:
    seen: dict[tuple[int, int], set[str]] = {}
    for member in bits:
        assert 1 <= member.byte <= size
        assert 1 <= member.bit <= 8
        assert member.mask == 1 << (member.bit - 1)
        raw = _only(size, member.byte, member.mask)
        view = cls(raw)
        assert view.is_set(member)
        assert bytes(view) == raw
        # Only the members at the very same position (other interface) read as set.
        others = {m for m in bits if view.is_set(m)}
        assert all((m.byte, m.bit) == (member.byte, member.bit) for m in others)
        if hasattr(view, "set"):
            fresh = cls()
            fresh.set(member)
            assert fresh.bytes() == raw
        seen.setdefault((member.byte, member.bit), set()).add(member.scope)
    # Two names share a position only when they belong to different interfaces.
    for scopes in seen.values():
        assert len(scopes) == 1 or scopes == {"contact", "contactless"}


@pytest.mark.parametrize(("cls", "bits", "size", "tag"), MAPS, ids=_ids)
def test_wrong_length_is_a_typed_error(cls: Any, bits: Any, size: int, tag: int) -> None:
    for bad in (b"", bytes(size - 1), bytes(size + 1)):
        with pytest.raises(CardDataError) as info:
            cls(bad)
        assert info.value.tag == tag
    assert cls().bytes() == bytes(size)
    assert cls.parse(bytes(size)) == cls()


def test_tvr_names_contact_and_contactless() -> None:
    tvr = Tvr(bytes.fromhex("8000040084"))
    assert tvr.names() == [
        "Offline data authentication was not performed",
        "Online PIN entered (online CVM captured)",
        "Default TDOL used",
        "CA ECC key missing",
    ]
    ctls = Tvr(bytes.fromhex("8000040086"), contactless=True)
    assert ctls.rrp is RrpStatus.PERFORMED
    assert ctls.names()[-2:] == [
        "Relay resistance time limits exceeded",
        "Relay resistance protocol performed",
    ]
    assert Tvr(bytes.fromhex("0004000000")).names() == ["RFU (byte 2 bit 3)"]


def test_tvr_rrp_field_and_reset() -> None:
    tvr = Tvr(contactless=True)
    tvr.rrp = RrpStatus.NOT_PERFORMED
    assert tvr.bytes() == bytes.fromhex("0000000001")
    tvr.set(TvrBit.RR_THRESHOLD_EXCEEDED)
    tvr.rrp = RrpStatus.PERFORMED
    assert tvr.bytes() == bytes.fromhex("000000000A")
    assert tvr.names() == [
        "Relay resistance threshold exceeded",
        "Relay resistance protocol performed",
    ]
    tvr.reset()
    assert tvr.bytes() == bytes(5)
    assert tvr.rrp is RrpStatus.NOT_SUPPORTED


def test_tvr_against_action_codes() -> None:
    """Terminal action analysis: any TVR bit also set in an IAC/TAC (Book 3, 10.7)."""
    tvr = Tvr()
    tvr.set(TvrBit.EXCEEDS_FLOOR_LIMIT)
    assert tvr.intersects(bytes.fromhex("0000008000"))
    assert not tvr.intersects(bytes.fromhex("FFFFFF7FFF"))


def test_tsi_bits() -> None:
    tsi = Tsi()
    for member in TsiBit:
        tsi.set(member)
    assert tsi.bytes() == bytes.fromhex("FC00")
    assert repr(tsi) == "Tsi(FC00)"


def test_aip_of_a_real_mastercard() -> None:
    aip = Aip(bytes.fromhex("5980"))  # from the M/Chip contactless transcript
    assert aip.sda_supported
    assert not aip.dda_supported
    assert aip.cv_supported
    assert aip.trm_required
    assert not aip.issuer_authentication_supported
    assert aip.cda_supported
    assert aip.emv_mode_supported
    assert not aip.rrp_supported
    assert not hasattr(aip, "set")  # card data is read-only


def test_auc_properties() -> None:
    auc = Auc(bytes.fromhex("FF00"))
    assert auc.domestic_cash
    assert auc.non_atm
    assert not auc.domestic_cashback
    auc2 = Auc(bytes.fromhex("AB40"))
    assert auc2.international_cashback
    assert not auc2.domestic_cashback
    assert auc2.domestic_goods
    assert not auc2.international_goods


def test_terminal_capabilities() -> None:
    caps = TerminalCapabilities(bytes.fromhex("E0F8C8"))
    assert caps.names() == [
        "Manual key entry", "Magnetic stripe", "IC with contacts",
        "Plaintext PIN for ICC verification", "Enciphered PIN for online verification",
        "Signature (paper)", "Enciphered PIN for offline verification", "No CVM required",
        "SDA", "DDA", "CDA",
    ]
    caps.clear(TerminalCapabilitiesBit.SIGNATURE)
    assert caps.bytes() == bytes.fromhex("E0D8C8")
    add = AdditionalTerminalCapabilities()
    add.set(AdditionalTerminalCapabilitiesBit.GOODS)
    add.set(AdditionalTerminalCapabilitiesBit.CODE_TABLE_1)
    assert add.bytes() == bytes.fromhex("4000000001")


def test_ttq_and_ctq() -> None:
    ttq = Ttq(bytes.fromhex("36004000"))
    assert ttq.is_set(TtqBit.EMV_MODE_SUPPORTED)
    assert ttq.is_set(TtqBit.CDCVM_SUPPORTED)
    assert not ttq.online_cryptogram_required
    ttq.set(TtqBit.ONLINE_CRYPTOGRAM_REQUIRED)
    ttq.set(TtqBit.CVM_REQUIRED)
    assert ttq.bytes() == bytes.fromhex("36C04000")
    assert ttq.online_cryptogram_required
    assert ttq.cvm_required
    ctq = Ctq(bytes.fromhex("8080"))
    assert ctq.online_pin_required
    assert ctq.cdcvm_performed
    assert not ctq.signature_required


def test_cid_every_value_round_trips() -> None:
    for value in range(256):
        cid = Cid.parse(bytes([value]))
        assert cid.bytes() == bytes([value])


def test_cid_fields() -> None:
    assert Cid.parse(b"\x80").cryptogram_type is CryptogramType.ARQC
    assert Cid.parse(b"\x40").cryptogram_type is CryptogramType.TC
    assert Cid.parse(b"\x00").cryptogram_type is CryptogramType.AAC
    advice = Cid.parse(b"\x09")
    assert advice.advice_required
    assert advice.reason is CidReason.SERVICE_NOT_ALLOWED
    assert Cid.parse(b"\x03").reason is CidReason.ISSUER_AUTHENTICATION_FAILED
    assert Cid.parse(b"\x05").reason is None
    assert Cid.parse(b"\x90").payment_system == 1
    assert Cid(CryptogramType.TC, advice_required=True).bytes() == b"\x48"
    with pytest.raises(CardDataError):
        Cid.parse(b"\x80\x00")


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=5, max_size=5))
def test_tvr_round_trip_and_names(data: bytes) -> None:
    tvr = Tvr(data)
    assert tvr.bytes() == data
    assert len(tvr.names()) == sum(bin(b).count("1") for b in data)
    copy = Tvr()
    for member in TvrBit:
        if member.scope != "contactless" and tvr.is_set(member):
            copy.set(member)
    # On the contact interface every bit is named but the RFU ones: byte 2 bit 3, and byte 5
    # bits 4 and 1 (reserved for the contactless specifications).
    named = bytes.fromhex("FFFBFFFFF6")
    assert copy.bytes() == bytes(a & b for a, b in zip(data, named, strict=True))
