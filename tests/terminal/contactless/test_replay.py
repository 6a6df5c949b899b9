"""The six recorded contactless transcripts replay through the Entry Point (issue 4)."""

from __future__ import annotations

import json

import pytest

from terminal.contactless import L2Error, Outcome
from terminal.contactless.replay import ReplayError, replay_transcript_async
from tests.conftest import conformance_path
from tests.terminal.contactless.helpers import TRACES, replay, set_response, trace

EXPECTED = {
    # name: (outcome, kernel, AID, ODA method, verified, CID, TVR, matched, recorded)
    "mock-msc-ms-mode.json": (Outcome.END_APPLICATION, 2, "A0000000041010", None, None, None,
                              "0000000000", 3, 5),
    "mock-msc-offline-2.json": (Outcome.ONLINE_REQUEST, 2, "A0000000041010", "CDA", True, "80",
                                "0000000001", 9, 9),
    "mock-msc-offline.json": (Outcome.APPROVED, 2, "A0000000041010", "CDA", True, "40",
                              "0000000001", 9, 9),
    "mock-msc-online.json": (Outcome.ONLINE_REQUEST, 2, "A0000000041010", "CDA", True, "80",
                             "0000040001", 10, 10),
    "mock-visa-offline.json": (Outcome.APPROVED, 3, "A0000000031010", "fDDA", True, "40",
                               "0000000000", 6, 6),
    "mock-visa-online.json": (Outcome.ONLINE_REQUEST, 3, "A0000000031010", None, None, "80",
                              "0000000000", 3, 3),
}


@pytest.mark.parametrize("name", TRACES)
async def test_transcript_replays_byte_for_byte(name: str) -> None:
    result = await replay_transcript_async(conformance_path("emv", "contactless_traces", name))
    outcome, kernel, aid, oda, verified, cid, tvr, matched, recorded = EXPECTED[name]
    assert result.outcome is outcome
    assert result.kernel_id == kernel
    assert result.aid is not None
    assert result.aid.hex().upper() == aid
    assert result.oda_method == oda
    assert result.oda_verified is verified
    assert (result.cid.hex() if result.cid else None) == cid
    assert result.tvr is not None
    assert result.tvr.hex() == tvr
    assert result.replay is not None
    assert (result.replay.matched, result.replay.recorded) == (matched, recorded)
    assert result.replay.sent == matched


@pytest.mark.parametrize("name", [n for n in TRACES if "_verified_here" in trace(n)])
async def test_oda_verified_where_the_file_says(name: str) -> None:
    recorded = trace(name)
    result = await replay_transcript_async(recorded)
    verified = recorded["_verified_here"]
    assert result.oda_verified is bool(verified.get("cda_sdad_ok") or verified.get("fdda_ok"))
    if "cid" in verified:
        assert result.cid is not None
        assert result.cid.hex() == verified["cid"]


async def test_book_c2_s3_mag_stripe_card_ends_with_defined_outcome() -> None:
    result, channel, _ = await replay(trace("mock-msc-ms-mode.json"))
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.MAGSTRIPE_NOT_SUPPORTED
    assert channel.stats().unconsumed == 2  # READ RECORD and COMPUTE CRYPTOGRAPHIC CHECKSUM


async def test_replay_fails_clearly_on_a_command_not_recorded() -> None:
    recorded = trace("mock-msc-online.json")
    recorded["apdus"] = [a for a in recorded["apdus"] if not a["cmd"].startswith("80AE")]
    with pytest.raises(ReplayError, match="not in the recording"):
        await replay(recorded)


async def test_replay_counts_a_differing_command_as_unmatched() -> None:
    # Another amount: the GPO and GENERATE AC data differ; they are answered, not matched,
    # and the CDA transaction data hash no longer verifies.
    recorded = trace("mock-msc-offline.json")
    recorded["transaction-req"] = "9F02060000000000025F2A0209789C0100"
    result, channel, _ = await replay(recorded)
    assert channel.stats().matched == 8
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.CAM_FAILED


async def test_result_json_never_shows_the_pan() -> None:
    recorded = trace("mock-msc-online.json")
    result, _, _ = await replay(recorded)
    text = json.dumps(result.to_json()) + repr(result)
    assert "5413330089601034" not in text
    assert result.masked_pan == "541333******1034"
    assert "541333******1034" in text
    assert result.to_json()["icc_data"]["9F34"] == "020300"


async def test_tampered_sdad_fails_cda() -> None:
    recorded = trace("mock-msc-offline.json")
    genac = recorded["apdus"][-1]
    resp = bytearray(bytes.fromhex(genac["resp"]))
    resp[20] ^= 0x01  # inside the SDAD
    set_response(recorded, "80AE", resp.hex())
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.END_APPLICATION
    assert result.oda_verified is False
    assert result.tvr is not None
    assert result.tvr[0] & 0x04
