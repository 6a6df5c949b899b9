"""``posgw-sim pay`` and ``posgw-sim replay``: every profile and every transcript end to end.

In process: virtual card (simulator/card) -> the real kernel (terminal/) -> the simulated issuer
(simulator/issuer.py verifying the ARQC and answering with an ARPC). Nothing is mocked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import simulator
from simulator.cli import main
from tests.conftest import conformance_path

PROFILES = Path(simulator.__file__).resolve().parent / "profiles"


def _profiles(kind: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(PROFILES.glob("[a-z]*.json")):
        expected = json.loads(path.read_text())["expected"]
        if kind in expected and "config" not in expected:
            out.append((path.stem, expected))
    return out


def _pay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["pay", "--json", "--random-draw", "99", *args])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


@pytest.mark.parametrize(("name", "expected"), _profiles("contact"), ids=lambda v: str(v)[:30])
def test_contact_profile_reaches_expected_outcome(
    capsys: pytest.CaptureFixture[str], name: str, expected: dict[str, Any]
) -> None:
    args = ["--card", name, "--amount", expected.get("amount", "12.50")]
    if "aid" in expected:
        args += ["--brand", expected["aid"]]
    code, out = _pay(capsys, *args)
    want = expected["contact"].lower()
    assert out["decision"] == want, out["reason"]
    assert code == (0 if want == "approved" else 1)
    if "oda" in expected:
        assert out["oda_method"] == expected["oda"]
        assert out["oda_verified"] is expected.get("oda_ok", True)
    if "aid" in expected:
        assert out["aid"] == expected["aid"]
    if expected.get("online"):
        assert out["authorisation_response_code"] == "00"
    elif want == "approved":
        assert out["authorisation_response_code"] == "Y1"
    # Card data rules: nothing but the masked PAN leaves the kernel.
    text = json.dumps(out)
    assert "*" in (out["masked_pan"] or "*")
    for entry in out["trace"]:
        assert entry["command"] != "VERIFY" or "*" in entry["capdu"]
    assert "1234" not in "".join(e["capdu"] for e in out["trace"] if e["command"] == "VERIFY")
    assert out["masked_pan"] is None or out["masked_pan"].replace("*", "") not in text.replace(
        out["masked_pan"], ""
    )


@pytest.mark.parametrize(("name", "expected"), _profiles("contactless"), ids=lambda v: str(v)[:30])
def test_contactless_profile_reaches_expected_outcome(
    capsys: pytest.CaptureFixture[str], name: str, expected: dict[str, Any]
) -> None:
    code, out = _pay(
        capsys,
        "--interface",
        "contactless",
        "--latency-ms",
        "0",
        "--card",
        name,
        "--amount",
        expected.get("amount", "12.50"),
    )
    want = expected["contactless"]
    if want == "APPROVED":
        assert out["decision"] == "approved" and code == 0
        assert out["outcome"] == ("ONLINE REQUEST" if expected.get("online") else "APPROVED")
        if expected.get("online"):
            assert out["authorisation_response_code"] == "00"
    else:
        assert out["outcome"] == want.replace("_", " ") and code == 1
    if "cvm" in expected:
        assert out["cvm"] == expected["cvm"].replace("_", " ").replace(
            "CONFIRMATION", "CONFIRMATION"
        )


def test_contact_host_decline_and_offline_paths(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _pay(capsys, "--card", "visa_credit", "--amount", "12.50", "--host", "decline")
    assert (code, out["decision"], out["authorisation_response_code"]) == (1, "declined", "05")
    code, out = _pay(capsys, "--card", "visa_credit", "--amount", "12.50", "--host", "offline")
    # Unable to go online: the default action codes decide (Book 3, 10.7), Y3 or Z3 in 8A.
    assert out["authorisation_response_code"] in ("Y3", "Z3")
    assert code == (0 if out["decision"] == "approved" else 1)


def test_pay_bad_input_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pay", "--amount", "12.505", "--currency", "EUR"]) == 2
    assert main(["pay", "--amount", "1", "--currency", "XXX"]) == 2
    assert "unknown currency" in capsys.readouterr().err


def test_pay_in_a_three_decimal_currency(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _pay(capsys, "--card", "visa_credit", "--amount", "12.345", "--currency", "KWD")
    assert (code, out["decision"]) == (0, "approved"), out["reason"]
    assert out["authorisation_response_code"] == "00"  # online: above the card's 10.000 limit
    assert main(["pay", "--amount", "12.3456", "--currency", "KWD"]) == 2
    assert "KWD has 3 decimals" in capsys.readouterr().err


def test_pay_prints_decoded_masked_trace(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pay", "--card", "visa_credit", "--amount", "12.50"]) == 0
    out = capsys.readouterr().out
    assert "decision: approved" in out
    assert "5A Application Primary Account Number (PAN) [8]: 476173******0010" in out
    assert "4761739001010010" not in out
    assert "GENERATE AC" in out


# The six recorded contactless transcripts: (file, outcome, kernel, ODA method, verified, CID)
TRANSCRIPTS = [
    ("mock-msc-offline.json", "APPROVED", 2, "CDA", True, "40"),
    ("mock-msc-offline-2.json", "ONLINE REQUEST", 2, "CDA", True, "80"),
    ("mock-msc-online.json", "ONLINE REQUEST", 2, "CDA", True, "80"),
    ("mock-visa-offline.json", "APPROVED", 3, "fDDA", True, "40"),
    ("mock-visa-online.json", "ONLINE REQUEST", 3, None, None, "80"),
    ("mock-msc-ms-mode.json", "END APPLICATION", 2, None, None, None),
]


@pytest.mark.parametrize(("name", "outcome", "kernel", "oda", "verified", "cid"), TRANSCRIPTS)
def test_replay_transcript(
    capsys: pytest.CaptureFixture[str],
    name: str,
    outcome: str,
    kernel: int,
    oda: str | None,
    verified: bool | None,
    cid: str | None,
) -> None:
    path = conformance_path("emv", "contactless_traces", name)
    assert main(["replay", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["outcome"], out["kernel"], out["oda_method"], out["oda_verified"], out["cid"]) == (
        outcome,
        kernel,
        oda,
        verified,
        cid,
    )
    recorded = len(json.loads(path.read_text())["apdus"])
    assert out["commands_recorded"] == recorded
    if outcome != "END APPLICATION":
        assert out["commands_matching"] == recorded == out["commands_sent"]
    verified_here = json.loads(path.read_text()).get("_verified_here", {})
    if verified_here:
        assert out["oda_verified"] in (True, None)


def test_replay_missing_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["replay", str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
