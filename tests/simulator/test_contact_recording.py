"""``pay --record`` then ``replay``: contact recordings replay byte for byte through the kernel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import simulator
from simulator.cli import main
from simulator.contact_recording import redact_verify

PROFILES = Path(simulator.__file__).resolve().parent / "profiles"
CONTACT = sorted(
    p.stem
    for p in PROFILES.glob("[a-z]*.json")
    if "contact" in json.loads(p.read_text())["expected"]
)


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    code = main(argv)
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


@pytest.mark.parametrize("profile", CONTACT)
def test_recorded_contact_payment_replays_byte_for_byte(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, profile: str
) -> None:
    expected = json.loads((PROFILES / f"{profile}.json").read_text())["expected"]
    record = tmp_path / "rec.json"
    argv = ["pay", "--json", "--card", profile, "--amount", expected.get("amount", "12.50"),
            "--pin", "987654", "--record", str(record)]  # fmt: skip
    if "aid" in expected:
        argv += ["--brand", expected["aid"]]
    pay_code, paid = _json(capsys, argv)
    code, replayed = _json(capsys, ["replay", "--json", str(record)])
    assert code == 0
    assert replayed["outcome"] == paid["decision"].upper()
    assert (replayed["tvr"], replayed["cid"], replayed["aid"]) == (
        paid["tvr"],
        paid["cid"],
        paid["aid"],
    )
    assert replayed["oda_verified"] == paid["oda_verified"]
    assert replayed["commands_matching"] == replayed["commands_recorded"] == len(paid["trace"])
    assert replayed["commands_unconsumed"] == 0
    document = json.loads(record.read_text())
    assert document["interface"] == "contact"
    assert "987654" not in record.read_text()  # the PIN block never reaches the file
    for apdu in document["apdus"]:
        if apdu["cmd"][2:4] == "20":
            assert set(apdu["cmd"][10:-2] if len(apdu["cmd"]) > 12 else apdu["cmd"][10:]) == {"F"}
    assert pay_code in (0, 1)


def test_tampered_recording_no_longer_matches(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    record = tmp_path / "rec.json"
    assert main(["pay", "--card", "cda_card", "--amount", "12.50", "--random-draw", "99",
                 "--record", str(record)]) == 0  # fmt: skip
    capsys.readouterr()
    document = json.loads(record.read_text())
    genac = next(a for a in document["apdus"] if a["cmd"].startswith("80AE"))
    body, sw = genac["resp"][:-4], genac["resp"][-4:]
    flipped = "0" if body[-1] != "0" else "1"
    genac["resp"] = body[:-1] + flipped + sw  # last byte of the SDAD (9F4B) altered
    record.write_text(json.dumps(document))
    code, replayed = _json(capsys, ["replay", "--json", str(record)])
    assert code == 0
    assert replayed["oda_method"] == "CDA"
    assert replayed["oda_verified"] is False  # Book 2, 6.6: the SDAD no longer verifies
    assert replayed["outcome"] != "APPROVED"


def test_record_refused_for_a_reader_and_for_contactless(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    record = tmp_path / "rec.json"
    assert main(["pay", "--reader", "pcsc://x", "--amount", "1", "--record", str(record)]) == 2
    assert "real card's PAN" in capsys.readouterr().err
    assert main(["pay", "--interface", "contactless", "--card", "ctls_visa_online",
                 "--amount", "1", "--record", str(record)]) == 2  # fmt: skip
    assert not record.exists()


def test_malformed_recording_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"interface": "contact", "apdus": []}))
    assert main(["replay", str(bad)]) == 2
    assert "malformed contact recording" in capsys.readouterr().err
    bad.write_text("{not json")
    assert main(["replay", str(bad)]) == 2


def test_redact_verify_keeps_header_and_length() -> None:
    cmd = bytes.fromhex("0020008008241234FFFFFFFFFF")
    assert redact_verify(cmd) == bytes.fromhex("0020008008") + b"\xff" * 8
    select = bytes.fromhex("00A4040007A000000003101000")
    assert redact_verify(select) == select
