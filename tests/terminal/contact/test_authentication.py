"""Offline data authentication in the flow (EMV 4.4 Book 3, 10.3; Book 2, 5-6): TVR byte 1."""

from __future__ import annotations

from terminal.bits import Tsi, TsiBit, Tvr, TvrBit
from terminal.config import TerminalConfig
from terminal.oda.results import OdaMethod
from terminal.result import Decision
from terminal.tlv import decode, encode
from tests.terminal.contact.flows import flow
from tests.terminal.contact.model_card import ModelCard, pki
from tests.terminal.contact.replay import h

NO_CVM = bytes(8) + h("1F00")


def byte1(result) -> set[TvrBit]:
    tvr = Tvr(result.tvr)
    return {b for b in TvrBit if b.byte == 1 and tvr.is_set(b)}


def caps(value: str) -> TerminalConfig:
    return TerminalConfig.default().model_copy(update={"terminal_capabilities": value})


async def test_book3_10_3_sda_success_stores_dac() -> None:
    result = await flow(ModelCard(oda="SDA", cvm_list=NO_CVM))
    assert result.oda_method == "SDA"
    assert result.oda_verified is True
    assert byte1(result) == {TvrBit.SDA_SELECTED}
    assert Tsi(result.tsi).is_set(TsiBit.ODA_PERFORMED)


async def test_book3_10_3_sda_failed_on_tampered_static_data() -> None:
    card = ModelCard(oda="SDA", cvm_list=NO_CVM)
    record = card.records[(2, 1)]
    card.records[(2, 1)] = record.replace(h("5F2403301231"), h("5F2403301230"))
    result = await flow(card)
    assert byte1(result) == {TvrBit.SDA_SELECTED, TvrBit.SDA_FAILED}
    assert result.oda_verified is False


async def test_book3_10_3_sda_failed_expired_issuer_certificate() -> None:
    result = await flow(ModelCard(oda="SDA", issuer="visa_expired", cvm_list=NO_CVM))
    assert TvrBit.SDA_FAILED in byte1(result)


async def test_book3_10_3_icc_data_missing_without_ca_index() -> None:
    card = ModelCard(oda="SDA", cvm_list=NO_CVM)
    children = decode(card.records[(3, 1)])[0].children or ()
    card.records[(3, 1)] = encode(0x70, b"".join(c.encode() for c in children if c.tag != 0x8F))
    result = await flow(card)
    assert {TvrBit.SDA_FAILED, TvrBit.ICC_DATA_MISSING} <= byte1(result)


async def test_book3_10_3_dda_success_stores_icc_dynamic_number() -> None:
    card = ModelCard(oda="DDA", cvm_list=NO_CVM)
    result = await flow(card)
    assert result.oda_method == "DDA"
    assert result.oda_verified is True
    assert byte1(result) == set()
    assert any(c[1] == 0x88 and c[5:9] == h("11223344") for c in card.log)


async def test_book3_10_3_dda_failed() -> None:
    card = ModelCard(oda="DDA", cvm_list=NO_CVM)
    card.icc = pki().icc_keys[1]  # certificate for key 0, SDAD signed with key 1
    result = await flow(card)
    assert byte1(result) == {TvrBit.DDA_FAILED}


async def test_book3_10_3_dda_ddol_without_unpredictable_number_fails() -> None:
    card = ModelCard(oda="DDA", cvm_list=NO_CVM, extra={0x9F49: h("9F0206")})
    result = await flow(card)
    assert TvrBit.DDA_FAILED in byte1(result)
    assert not any(c[1] == 0x88 for c in card.log)


async def test_book3_10_3_default_ddol_used_when_card_has_none() -> None:
    card = ModelCard(oda="DDA", cvm_list=NO_CVM, extra={0x9F49: None})
    result = await flow(card)
    assert result.oda_verified is True
    assert any(c[1] == 0x88 for c in card.log)


async def test_book3_6_5_9_internal_authenticate_error_terminates() -> None:
    card = ModelCard(oda="DDA", cvm_list=NO_CVM)
    original = card.process

    def failing(c: bytes) -> bytes:
        return h("6985") if c[1] == 0x88 else original(c)

    card.process = failing  # type: ignore[method-assign]
    result = await flow(card)
    assert result.decision is Decision.TERMINATED


async def test_book2_6_6_cda_success_on_both_generate_ac() -> None:
    card = ModelCard(oda="CDA", cvm_list=NO_CVM)
    result = await flow(card, amount=9000)  # above the floor limit: ARQC
    assert result.decision is Decision.APPROVED
    assert result.oda_method == "CDA"
    assert result.oda_verified is True
    assert [c[2] for c in card.log if c[1] == 0xAE] == [0x90, 0x50]  # ARQC+CDA, TC+CDA
    assert byte1(result) == set()


async def test_book2_6_6_cda_failed_declines() -> None:
    card = ModelCard(oda="CDA", cvm_list=NO_CVM, corrupt_cda=True)
    result = await flow(card, amount=9000)
    assert result.decision is Decision.DECLINED
    assert byte1(result) == {TvrBit.CDA_FAILED}
    assert [c[2] for c in card.log if c[1] == 0xAE] == [0x90, 0x00]


async def test_book2_6_6_cda_key_recovery_failure_requests_without_cda() -> None:
    card = ModelCard(oda="CDA", cvm_list=NO_CVM, issuer="visa_expired")
    result = await flow(card)
    assert TvrBit.CDA_FAILED in byte1(result)
    assert all(not c[2] & 0x10 for c in card.log if c[1] == 0xAE)


async def test_book3_10_3_terminal_without_cda_falls_back_to_dda() -> None:
    card = ModelCard(oda="CDA", cvm_list=NO_CVM)
    card.aip = bytes((card.aip[0] | 0x20, 0))
    card._build()
    result = await flow(card, config=caps("E0F8C0"))
    assert result.oda_method == OdaMethod.DDA.value


async def test_book3_10_3_oda_not_performed() -> None:
    result = await flow(ModelCard(oda="", cvm_list=NO_CVM))
    assert byte1(result) == {TvrBit.ODA_NOT_PERFORMED}
    assert result.oda_method is None
    assert not Tsi(result.tsi).is_set(TsiBit.ODA_PERFORMED)
