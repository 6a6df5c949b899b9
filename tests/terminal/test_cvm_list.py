"""Tests of the CVM List and CVM Results codecs (terminal.cvm_list)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.cvm_list import (
    CvmCondition,
    CvmList,
    CvmMethod,
    CvmResult,
    CvmResults,
    CvmRule,
    condition_text,
    method_text,
    parse_cvm_list,
)
from terminal.errors import CardDataError
from tests.conftest import load_conformance

# How the vector's descriptions name the conditions (two spellings for '03').
VECTOR_CONDITIONS = {
    "if unattended cash": CvmCondition.UNATTENDED_CASH,
    "if terminal supports CVM": CvmCondition.TERMINAL_SUPPORTS_CVM,
    "if supported": CvmCondition.TERMINAL_SUPPORTS_CVM,
}


def _cvm_vectors() -> list[dict[str, object]]:
    return [v for v in load_conformance("emv", "dol_cvm_vectors.json") if "cvm_list" in v]


def test_conformance_vector() -> None:
    vectors = _cvm_vectors()
    assert vectors
    for vector in vectors:
        raw = bytes.fromhex(str(vector["cvm_list"]))
        expected = vector["expected"]
        assert isinstance(expected, dict)
        cvm = parse_cvm_list(raw)
        assert cvm.amount_x == expected["amount_x"]
        assert cvm.amount_y == expected["amount_y"]
        assert len(cvm.rules) == len(expected["rules"])
        for rule, (code, cond, text) in zip(cvm.rules, expected["rules"], strict=True):
            assert rule.code == int(code, 16)
            assert rule.condition_code == int(cond, 16)
            method_part, condition_part = text.split(", ", 1)
            assert rule.describe().split(", ", 1)[0].lower() == method_part.lower()
            assert rule.condition is VECTOR_CONDITIONS[condition_part]
            assert rule.apply_next == ("(apply next)" in method_part)
        assert cvm.encode() == raw


def test_vector_methods() -> None:
    raw = bytes.fromhex(str(_cvm_vectors()[0]["cvm_list"]))
    methods = [rule.method for rule in parse_cvm_list(raw).rules]
    assert methods == [
        CvmMethod.ENCIPHERED_PIN_ONLINE,
        CvmMethod.ENCIPHERED_PIN_ICC,
        CvmMethod.PLAINTEXT_PIN_ICC,
        CvmMethod.SIGNATURE,
        CvmMethod.ENCIPHERED_PIN_ONLINE,
        CvmMethod.NO_CVM_REQUIRED,
    ]


def test_amounts_are_big_endian_binary() -> None:
    raw = bytes.fromhex("000003E8" "00002710" "0206" "1F00")
    cvm = parse_cvm_list(raw)
    assert (cvm.amount_x, cvm.amount_y) == (1000, 10000)
    assert cvm.rules == (CvmRule(0x02, 0x06), CvmRule(0x1F, 0x00))
    assert cvm.rules[0].condition is CvmCondition.UNDER_X
    assert not cvm.rules[0].apply_next
    assert cvm.rules[0].describe() == (
        "enciphered PIN online, if transaction is in the application currency and is under X value"
    )


@pytest.mark.parametrize(
    ("raw", "offset"),
    [
        (b"", 0),
        (bytes(8), 8),
        (bytes(9), 9),
        (bytes(11), 10),
        (bytes(13), 12),
    ],
)
def test_malformed_lists_raise_a_typed_error(raw: bytes, offset: int) -> None:
    with pytest.raises(CardDataError) as info:
        parse_cvm_list(raw)
    assert info.value.tag == 0x8E
    assert info.value.offset == offset


def test_rule_code_bits() -> None:
    rule = CvmRule(0x5E, 0x03)  # b7 set: apply next; method 1E signature
    assert rule.apply_next
    assert rule.method_code == 0x1E
    assert rule.method is CvmMethod.SIGNATURE
    assert rule.bytes() == b"\x5e\x03"
    rfu_b8 = CvmRule(0x82, 0x00)  # b8 is RFU: the method is still b6-b1
    assert rfu_b8.method is CvmMethod.ENCIPHERED_PIN_ONLINE
    assert not rfu_b8.apply_next


@pytest.mark.parametrize(
    ("code", "recognised", "text"),
    [
        (0x00, True, "fail CVM processing"),
        (0x03, True, "plaintext PIN offline and signature"),
        (0x05, True, "enciphered PIN offline and signature"),
        (0x08, True, "finger biometric offline"),
        (0x0F, True, "voice biometric online"),
        (0x10, False, "RFU CVM 10"),
        (0x1D, False, "RFU CVM 1D"),
        (0x20, False, "payment system CVM 20"),
        (0x2F, False, "payment system CVM 2F"),
        (0x30, False, "issuer CVM 30"),
        (0x3E, False, "issuer CVM 3E"),
        (0x3F, False, "no CVM performed"),
    ],
)
def test_method_ranges(code: int, recognised: bool, text: str) -> None:
    rule = CvmRule(code, 0x00)
    assert (rule.method is not None) == recognised
    assert method_text(code) == text


def test_condition_ranges() -> None:
    assert condition_text(0x00) == "always"
    assert condition_text(0x02) == (
        "if not unattended cash and not manual cash and not purchase with cashback"
    )
    assert condition_text(0x0A) == "RFU condition 0A"
    assert condition_text(0x80) == "payment system condition 80"
    assert CvmRule(0x1F, 0x0A).condition is None
    assert CvmRule(0x1F, 0x09).condition is CvmCondition.OVER_Y


def test_cvm_results() -> None:
    rule = CvmRule(0x42, 0x03)
    assert CvmResults.for_rule(rule, CvmResult.UNKNOWN).bytes() == bytes.fromhex("420300")
    assert CvmResults.no_cvm_performed().bytes() == bytes.fromhex("3F0001")
    assert CvmResults.no_cvm_performed(CvmResult.UNKNOWN).bytes() == bytes.fromhex("3F0000")
    parsed = CvmResults.parse(bytes.fromhex("1E0302"))
    assert parsed == CvmResults(0x1E, 0x03, CvmResult.SUCCESSFUL)
    with pytest.raises(CardDataError):
        CvmResults.parse(b"\x1e\x03")
    with pytest.raises(CardDataError) as info:
        CvmResults.parse(bytes.fromhex("1E0307"))
    assert info.value.offset == 2


def test_errors_carry_no_card_data() -> None:
    secret = bytes.fromhex("5413330089601034")  # a PAN-like payload must not be echoed
    with pytest.raises(CardDataError) as info:
        parse_cvm_list(secret + b"\x01")
    assert "5413" not in str(info.value)
    assert secret.hex() not in str(info.value).lower()


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_parsed_or_typed_error(data: bytes) -> None:
    if len(data) < 10 or len(data) % 2:
        with pytest.raises(CardDataError) as info:
            parse_cvm_list(data)
        assert info.value.tag == 0x8E
        assert info.value.offset is not None
        assert 0 <= info.value.offset <= len(data)
        return
    cvm = parse_cvm_list(data)  # anything else must parse, and nothing else may escape
    assert len(cvm.rules) == (len(data) - 8) // 2
    assert cvm.encode() == data
    for rule in cvm.rules:
        rule.describe()
        _ = rule.method, rule.condition


@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), min_size=1, max_size=20),
)
def test_encode_parse_round_trip(x: int, y: int, rules: list[tuple[int, int]]) -> None:
    cvm = CvmList(x, y, tuple(CvmRule(c, k) for c, k in rules))
    assert parse_cvm_list(cvm.encode()) == cvm
