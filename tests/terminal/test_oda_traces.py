"""ODA replayed from the contactless transcripts (conformance/emv/contactless_traces).

Each transcript is parsed with :mod:`terminal.tlv` as a kernel would: the AFL and the records
feed the static data collector, the test CA keys shipped by :mod:`terminal.capk` recover the
issuer and ICC keys, then CDA (M/Chip) or fDDA (Visa qVSDC) is verified from the GENERATE AC
or GPO response. ``_verified_here`` in each file holds the independently recomputed results.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import pytest

from terminal import tlv
from terminal.capk import CapkStore
from terminal.oda import (
    IccPublicKey,
    OdaFailure,
    StaticDataCollector,
    fdda_terminal_data,
    recover_icc_public_key,
    verify_cda_response,
    verify_fdda,
)
from tests.conftest import load_conformance

h = bytes.fromhex


@dataclass
class Replay:
    """What a kernel would have gathered from the transcript."""

    rid: bytes = b""
    pdol_data: bytes = b""
    card: dict[int, bytes] = field(default_factory=dict)
    records: list[tuple[int, int, bytes]] = field(default_factory=list)
    genac_cmd_data: bytes = b""
    genac_resp: bytes = b""


def replay(trace: dict[str, Any]) -> Replay:
    out = Replay()
    for apdu in trace["apdus"]:
        cmd, resp = h(apdu["cmd"]), h(apdu["resp"])
        data, sw = resp[:-2], resp[-2:]
        assert sw == b"\x90\x00"
        ins, p1, p2 = cmd[1], cmd[2], cmd[3]
        body = cmd[5 : 5 + cmd[4]] if len(cmd) > 5 else b""
        if ins == 0xA4 and not body.startswith(b"2PAY"):
            out.rid = body[:5]
        elif ins == 0xA8:
            (template,) = tlv.decode(body)
            assert template.tag == 0x83
            out.pdol_data = template.value
            tlv.flatten(tlv.decode(data), out.card)
        elif ins == 0xB2:
            out.records.append((p2 >> 3, p1, data))
            tlv.flatten(tlv.decode(data), out.card)
        elif ins == 0xAE:
            out.genac_cmd_data, out.genac_resp = body, data
    return out


def _today(trace: dict[str, Any]) -> datetime.date:
    d = trace["date"]
    return datetime.date(2000 + int(d[:2]), int(d[2:4]), int(d[4:]))


def _icc_key(trace: dict[str, Any], r: Replay) -> tuple[IccPublicKey, bytes]:
    collector = StaticDataCollector(r.card[0x94])
    for sfi, number, record in r.records:
        collector.add_record(sfi, number, record)
    static = collector.finish(r.card.get(0x9F4A), r.card)
    assert isinstance(static, bytes), static
    assert static.hex().upper() == trace["_verified_here"]["static_data"]
    icc = recover_icc_public_key(CapkStore.default(), r.rid, r.card, static, _today(trace))
    assert isinstance(icc, IccPublicKey), icc
    return icc, static


@pytest.mark.parametrize(
    "name", ["mock-msc-offline.json", "mock-msc-offline-2.json", "mock-msc-online.json"]
)
def test_mchip_cda_from_transcript(name: str) -> None:
    trace = load_conformance("emv", "contactless_traces", name)
    expected = trace["_verified_here"]
    r = replay(trace)
    assert r.rid == h("A000000004")
    icc, _ = _icc_key(trace, r)
    un = h(trace["randoms"])
    assert un in r.genac_cmd_data
    result = verify_cda_response(icc, r.genac_resp, unpredictable_number=un,
                                 pdol_data=r.pdol_data, cdol1_data=r.genac_cmd_data)
    assert not isinstance(result, OdaFailure), result
    assert result.icc_dynamic_number.hex().upper() == expected["idn"]
    assert result.application_cryptogram is not None
    assert result.application_cryptogram.hex().upper() == expected["ac"]
    assert result.cid is not None
    assert result.cid.hex() == expected["cid"]
    # Another unpredictable number or another amount in CDOL1: CDA fails.
    other_un = verify_cda_response(icc, r.genac_resp, unpredictable_number=b"\x00" * 4,
                                   pdol_data=r.pdol_data, cdol1_data=r.genac_cmd_data)
    assert isinstance(other_un, OdaFailure)
    altered = bytearray(r.genac_cmd_data)
    altered[5] ^= 0x01
    other_amount = verify_cda_response(icc, r.genac_resp, unpredictable_number=un,
                                       pdol_data=r.pdol_data, cdol1_data=bytes(altered))
    assert isinstance(other_amount, OdaFailure)
    assert other_amount.check.name == "TRANSACTION_DATA_HASH"


def test_visa_fdda_from_transcript() -> None:
    trace = load_conformance("emv", "contactless_traces", "mock-visa-offline.json")
    expected = trace["_verified_here"]
    r = replay(trace)
    assert r.rid == h("A000000003")
    icc, _ = _icc_key(trace, r)
    request = tlv.flatten(tlv.decode(h(trace["transaction-req"])))
    un = h(trace["randoms"])
    # The reader put the same amount, currency and UN in the PDOL data it sent.
    assert request[0x9F02] in r.pdol_data
    assert un in r.pdol_data
    card_auth = r.card.get(0x9F69)
    assert fdda_terminal_data(un, request[0x9F02], request[0x5F2A], card_auth).hex().upper() == \
        expected["fdda_terminal_data"]
    result = verify_fdda(icc, r.card.get(0x9F4B), unpredictable_number=un,
                         amount_authorised=request[0x9F02], currency_code=request[0x5F2A],
                         card_auth_data=card_auth)
    assert not isinstance(result, OdaFailure), result
    assert result.raw.hex().upper() == expected["icc_dynamic_data"]
    wrong_amount = verify_fdda(icc, r.card.get(0x9F4B), unpredictable_number=un,
                               amount_authorised=h("000000000201"),
                               currency_code=request[0x5F2A], card_auth_data=card_auth)
    assert isinstance(wrong_amount, OdaFailure)
    assert wrong_amount.check.name == "HASH"
