"""AES DUKPT (ANSI X9.24-3-2017) against the standard's published test vectors.

Vectors: X9.24-3-2017 Annex B / Supplement Test Vectors, AES-128 BDK
FEDCBA9876543210F1F1F1F1F1F1F1F1, initial key ID 1234567890123456 (as reproduced by several
independent implementations; the figures are the standard's)."""

from __future__ import annotations

import pytest

from terminal.dukpt import (
    DukptError,
    KeyType,
    KeyUsage,
    Ksn,
    derivation_data,
    derive_initial_key,
    derive_working_key,
    host_working_key,
    intermediate_derivation_key,
    next_counter,
)

h = bytes.fromhex
BDK = h("FEDCBA9876543210F1F1F1F1F1F1F1F1")
IKID = h("1234567890123456")
IK = h("1273671EA26AC29AFA4D1084127652A1")

#: Transaction counter -> intermediate derivation key (the Supplement's AES-128 pages).
DERIVATION_KEYS = {
    0x00000001: "4F21B565BAD9835E112B6465635EAE44",
    0x00000002: "2F34D68DE10F68D38091A73B9E7C437C",
    0x00000003: "031504E530365CF81264238540518318",
    0x00000004: "0EEFC7ADA628BA68878DA9165A8A1887",
    0x00000005: "C2A7AC328A5DA2D6002D62465BFC028B",
    0x00000006: "D30F7D9351DA58448A2F5E92B4EE3B7D",
    0x00000007: "A8253CEED9AC042C54F75D35C8352278",
    0x00000008: "718EE6CF0B27E53D5F7AF99C4D8146A2",
    0x0001FFFE: "E21E8C8D347F8561A2BE752DAA85A111",
    0x00020000: "F7AE9025468A25D37B7249CFFED224C8",
    0x00020001: "692C8EA4013645135B36497131DF9D2C",
    0xFFFE2000: "48E585B694EB0B18D5C35443E163C0BA",
    0xFFFE4000: "396C2C7CA1EA701C03B86B7D41F0C562",
    0xFFFE8000: "0387625F189B58AE03EF0E8CCA41105E",
    0xFFFF0000: "F6BA59389BD14A9855BE9727E7C52E3C",
}

#: Transaction counter -> AES-128 PIN encryption key.
PIN_KEYS = {
    1: "AF8CB133A78F8DC2D1359F18527593FB",
    2: "D30BDC73EC9714B000BEC66BDB7B6D09",
    8: "4D9DF3FBEE3448FC3E676D04320A90F5",
}


def test_initial_key() -> None:
    assert derive_initial_key(BDK, IKID) == IK


def test_derivation_data_layout() -> None:
    assert derivation_data(KeyUsage.KEY_DERIVATION_INITIAL, KeyType.AES128, IKID, 0) == h(
        "01018001000200801234567890123456")
    assert derivation_data(KeyUsage.PIN_ENCRYPTION, KeyType.AES128, IKID, 1) == h(
        "01011000000200809012345600000001")
    assert derivation_data(KeyUsage.PIN_ENCRYPTION, KeyType.TDEA2, IKID, 1) == h(
        "01011000000000809012345600000001")


@pytest.mark.parametrize(("counter", "key"), DERIVATION_KEYS.items(),
                         ids=[f"{c:08X}" for c in DERIVATION_KEYS])
def test_intermediate_derivation_keys(counter: int, key: str) -> None:
    assert intermediate_derivation_key(IK, Ksn(IKID, counter)) == h(key)


@pytest.mark.parametrize(("counter", "key"), PIN_KEYS.items())
def test_pin_encryption_keys_device_and_host_agree(counter: int, key: str) -> None:
    ksn = Ksn(IKID, counter)
    assert derive_working_key(IK, ksn, KeyUsage.PIN_ENCRYPTION) == h(key)
    assert host_working_key(BDK, ksn.to_bytes(), KeyUsage.PIN_ENCRYPTION) == h(key)


def test_other_usages_give_other_keys() -> None:
    ksn = Ksn(IKID, 1)
    assert derive_working_key(IK, ksn, KeyUsage.MAC_GENERATION) == h(
        "A2DC23DE6FDE0824A2BC321E08E4B8B7")
    assert derive_working_key(IK, ksn, KeyUsage.DATA_ENCRYPT) == h(
        "A35C412EFD41FDB98B69797C02DCD08F")
    tdes = derive_working_key(IK, ksn, KeyUsage.PIN_ENCRYPTION, KeyType.TDEA2)
    assert len(tdes) == 16 and tdes != h(PIN_KEYS[1])


def test_counter_advance_skips_counters_with_more_than_16_bits() -> None:
    assert next_counter(0) == 1
    assert next_counter(0x1FFFE) == 0x20000  # 0x1FFFF has 17 bits set
    assert next_counter(0xFFFE2000) == 0xFFFE4000
    assert next_counter(0xFFFE8000) == 0xFFFF0000
    with pytest.raises(DukptError, match="exhausted"):
        next_counter(0xFFFF0000)


@pytest.mark.parametrize("counter", [0, 0x1FFFF])
def test_invalid_counter_is_refused(counter: int) -> None:
    with pytest.raises(DukptError, match="counter"):
        intermediate_derivation_key(IK, Ksn(IKID, counter))


def test_malformed_inputs_are_typed_errors_without_key_material() -> None:
    with pytest.raises(DukptError) as info:
        Ksn.parse(h("FFFF9876543210E00001"))  # a 10-byte TDES DUKPT KSN
    assert "12 bytes" in str(info.value)
    with pytest.raises(DukptError) as info:
        derive_initial_key(BDK[:15], IKID)
    assert BDK[:15].hex() not in str(info.value).lower()
    with pytest.raises(DukptError):
        derive_working_key(IK, Ksn(IKID, 1), KeyUsage.PIN_ENCRYPTION, KeyType.AES256)
    with pytest.raises(DukptError):
        Ksn(IKID[:7], 1)
    assert Ksn.parse(h("123456789012345600000008")) == Ksn(IKID, 8)
