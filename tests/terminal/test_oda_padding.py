"""ODA over records padded with ``00`` bytes (EMV 4.4 Book 3, Annex B; issue 14), through the
contact kernel (a virtual card personalised with padded records) and the contactless kernel (the
public M/Chip transcript that has padding inside its ODA record, and the same transcript with
padding added after the templates of an ODA and a non-ODA record)."""

from __future__ import annotations

from datetime import datetime

import pytest

from simulator.card import VirtualCard, default_pki
from simulator.card.personalise import PADDING_AFTER
from terminal.bits import Tvr, TvrBit
from terminal.capk import CapkStore
from terminal.config import TerminalConfig
from terminal.contact.flow import run_contact_transaction
from terminal.contactless import Outcome
from terminal.environment import Environment, TransactionRequest
from terminal.result import Decision
from tests.terminal.contact.replay import TestPinPad
from tests.terminal.contactless.helpers import replay, set_response, trace

WHEN = datetime(2026, 11, 25, 12, 0, 0)
ODA_FAILED = (TvrBit.CDA_FAILED, TvrBit.DDA_FAILED, TvrBit.SDA_FAILED,
              TvrBit.ODA_NOT_PERFORMED)


class _Channel:
    def __init__(self, card: VirtualCard) -> None:
        self.card = card
        self.records: list[bytes] = []
        self.after_gpo = False

    async def transceive(self, capdu: bytes) -> bytes:
        rapdu = self.card.process(capdu)
        self.after_gpo |= capdu[:2] == b"\x80\xa8"
        if self.after_gpo and capdu[1] == 0xB2 and rapdu[-2:] == b"\x90\x00":
            self.records.append(rapdu[:-2])
        return rapdu


async def test_contact_card_with_padded_records_approves_offline_with_cda() -> None:
    store = CapkStore()
    store.load_file(default_pki().capk_file)
    channel = _Channel(VirtualCard.from_profile("cda_padded_records", rng=bytes))
    result = await run_contact_transaction(
        channel, config=TerminalConfig.default(), request=TransactionRequest(amount=1250),
        env=Environment.fixed(WHEN, bytes.fromhex("12345678")), online=None,
        pinpad=TestPinPad(), capk=store)
    # Every application record read ends with padding after its template and has padding inside it.
    assert channel.records
    for record in channel.records:
        assert record.endswith(bytes(PADDING_AFTER))
        assert b"\x00\x00" in record[:-PADDING_AFTER]
    assert result.decision is Decision.APPROVED, result.reason
    assert result.oda_method == "CDA"
    assert result.oda_verified is True
    tvr = Tvr(result.tvr)
    assert not any(tvr.is_set(bit) for bit in ODA_FAILED)


# mock-msc-offline-2: AFL 18010201 20010300 - SFI 3 records 1-2 (record 1 for ODA), SFI 4
# records 1-3 (none for ODA). SFI 3 record 1 already has padding inside its template.
ODA_RECORD = "00B2011C00"
NON_ODA_RECORD = "00B2022400"


def _pad_after(transcript: dict[str, object], cmd: str, padding: str) -> None:
    for apdu in transcript["apdus"]:  # type: ignore[attr-defined]
        if apdu["cmd"] == cmd:
            resp = apdu["resp"]
            set_response(transcript, cmd, resp[:-4] + padding + resp[-4:])
            return
    raise AssertionError(cmd)


async def test_contactless_transcript_with_padding_inside_the_oda_record() -> None:
    recorded = trace("mock-msc-offline-2.json")
    oda_record = next(a["resp"] for a in recorded["apdus"] if a["cmd"] == ODA_RECORD)
    assert oda_record.startswith("7081FB0000")  # padding inside the template
    result, _, _ = await replay(recorded)
    assert result.oda_method == "CDA"
    assert result.oda_verified is True


@pytest.mark.parametrize("cmd", [ODA_RECORD, NON_ODA_RECORD], ids=["oda-record", "non-oda-record"])
async def test_contactless_padding_after_a_template(cmd: str) -> None:
    recorded = trace("mock-msc-offline-2.json")
    _pad_after(recorded, cmd, "000000")
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.ONLINE_REQUEST  # as recorded (the card asked for ARQC)
    assert result.oda_method == "CDA"
    assert result.oda_verified is True
    assert result.tvr is not None
    assert not result.tvr[0] & 0x04  # CDA failed (Book 3, Annex C1)


async def test_contactless_byte_after_the_oda_template_is_not_padding() -> None:
    recorded = trace("mock-msc-offline-2.json")
    _pad_after(recorded, ODA_RECORD, "0001")
    result, _, _ = await replay(recorded)
    assert result.oda_verified is not True
