"""The transcript card on the six recorded contactless exchanges: it replays their own commands,
reports the recording used up, and fails with a typed error (masked hex) when left."""

from __future__ import annotations

import json

import pytest

from simulator.transcript_card import (
    TranscriptCard,
    TranscriptError,
    TranscriptExhausted,
    TranscriptNotUsedUp,
    UnexpectedCommand,
)
from tests.conftest import load_conformance

TRACES = ["mock-msc-ms-mode", "mock-msc-offline-2", "mock-msc-offline", "mock-msc-online",
          "mock-visa-offline", "mock-visa-online"]


def trace(name: str) -> dict:
    return load_conformance("emv", "contactless_traces", f"{name}.json")


@pytest.mark.parametrize("name", TRACES)
def test_replaying_the_recorded_commands_uses_the_recording_up(name):
    document = trace(name)
    card = TranscriptCard.from_json(document, name=name)
    for item in document["apdus"]:
        assert card.process(bytes.fromhex(item["cmd"])) == bytes.fromhex(item["resp"])
    assert card.used_up
    card.finish()
    assert card.exact_matches == len(document["apdus"])
    with pytest.raises(TranscriptExhausted):
        card.process(bytes.fromhex(document["apdus"][0]["cmd"]))


@pytest.mark.parametrize("name", TRACES)
async def test_a_different_command_fails_with_masked_hex(name):
    document = trace(name)
    card = TranscriptCard.from_json(document, name=name)
    first = bytes.fromhex(document["apdus"][0]["cmd"])
    await card.transceive(first)
    pan = bytes.fromhex("5A084761739001010010")
    wrong = bytes.fromhex(document["apdus"][-1]["cmd"]) + pan
    with pytest.raises(UnexpectedCommand) as info:
        card.process(wrong)
    message = str(info.value)
    assert "command 2" in message
    assert "4761739001010010" not in message.upper()
    with pytest.raises(TranscriptNotUsedUp, match="not played"):
        card.finish()


@pytest.mark.parametrize("name", TRACES)
def test_header_matching_accepts_other_terminal_data(name):
    document = trace(name)
    card = TranscriptCard.from_json(document, match="header")
    for item in document["apdus"]:
        cmd = bytes.fromhex(item["cmd"])
        altered = cmd[:5] + bytes(b ^ 0xFF for b in cmd[5:]) if len(cmd) > 5 else cmd
        card.process(altered)
    assert card.used_up
    assert card.exact_matches == sum(len(bytes.fromhex(i["cmd"])) <= 5 for i in document["apdus"])


def test_exact_mode_rejects_altered_data():
    document = trace("mock-visa-online")
    card = TranscriptCard.from_json(document)
    card.process(bytes.fromhex(document["apdus"][0]["cmd"]))
    card.process(bytes.fromhex(document["apdus"][1]["cmd"]))
    gpo = bytearray.fromhex(document["apdus"][2]["cmd"])
    gpo[-2] ^= 1
    with pytest.raises(UnexpectedCommand):
        card.process(bytes(gpo))
    card.rewind()
    assert card.position == 0


def test_bad_recordings_are_typed_errors(tmp_path):
    with pytest.raises(TranscriptError, match="non-empty"):
        TranscriptCard.from_json({"apdus": []})
    with pytest.raises(TranscriptError, match="hex"):
        TranscriptCard.from_json({"apdus": [{"cmd": "zz", "resp": "9000"}]})
    with pytest.raises(TranscriptError, match="too short"):
        TranscriptCard.from_json({"apdus": [{"cmd": "00", "resp": "9000"}]})
    with pytest.raises(TranscriptError, match="match"):
        TranscriptCard([], match="fuzzy")  # type: ignore[arg-type]
    path = tmp_path / "t.json"
    path.write_text("{")
    with pytest.raises(TranscriptError, match="cannot read"):
        TranscriptCard.from_file(path)
    path.write_text(json.dumps({"apdus": [{"cmd": "00A4040000", "resp": "6A82"}], "date": "1"}))
    card = TranscriptCard.from_file(path)
    assert card.meta == {"date": "1"}
    assert repr(card) == "TranscriptCard('t.json', 0/1)"
