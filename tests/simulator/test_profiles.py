"""Profiles: every file loads, personalises, and runs through the real kernel (``posgw-sim cards
--check``) to the outcome its ``expected`` field states."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.card import PROFILES_DIR, ProfileError, VirtualCard, list_profiles, load_profile
from simulator.cli_cards import check_profile_outcome

PROFILES = list_profiles()

CONTACT_REQUIRED = {
    "visa_credit", "mastercard_debit", "cb_visa_cobadged", "amex", "sda_legacy", "dda_card",
    "cda_card", "expired_issuer_cert", "blocked_application", "pin_blocked",
    "signature_above_amount",
}
CONTACTLESS_REQUIRED = {
    "ctls_visa_online", "ctls_visa_offline_fdda", "ctls_mc_cda_online", "ctls_mc_cda_offline",
    "ctls_phone_wallet", "ctls_visa_online_pin", "ctls_switch_interface", "ctls_blocked",
}


def test_every_required_profile_exists_and_abstract_bases_are_not_listed():
    assert set(PROFILES) >= CONTACT_REQUIRED | CONTACTLESS_REQUIRED
    assert not any(name.startswith("_") for name in PROFILES)


@pytest.mark.parametrize("name", PROFILES)
def test_profile_runs_to_its_expected_outcome(name):
    ok, got = check_profile_outcome(name)
    expected = load_profile(name).expected
    assert ok, (name, got["mismatches"])
    assert got["outcome"] == expected[got["interface"]]
    if "oda" in expected:
        assert (got["oda"], got["oda_ok"]) == (expected["oda"], expected.get("oda_ok", True))
    if "cvm" in expected:
        assert got["cvm"] == expected["cvm"]
    if "aid" in expected:
        assert got["aid"] == expected["aid"]
    if got["interface"] == "contact" and got["tvr"]:
        # The card's 9F08 and the terminal's 9F09 agree for every scheme (Book 3, 10.4.1).
        assert not bytes.fromhex(got["tvr"])[1] & 0x80


def test_cobadged_card_lists_both_brands_in_the_pse():
    card = VirtualCard.from_profile("cb_visa_cobadged")
    rapdu = card.process(bytes.fromhex("00A404000E315041592E5359532E444446303100"))
    assert rapdu[-2:] == b"\x90\x00"
    record = card.process(bytes.fromhex("00B2010C00"))
    assert record[-2:] == b"\x90\x00"
    assert bytes.fromhex("4F07A0000000421010") in record
    assert bytes.fromhex("4F07A0000000031010") in record


def test_expected_outcome_is_checked_for_real(tmp_path):
    # A card with its PIN blocked cannot approve: the check must report every mismatch.
    base = PROFILES_DIR / "_visa_contact.json"
    (tmp_path / base.name).write_text(base.read_text())
    doc = json.loads((PROFILES_DIR / "pin_blocked.json").read_text())
    doc["expected"] = {"contact": "APPROVED", "online": True, "oda": "SDA", "cvm": "SIGNATURE",
                       "tvr_bits": ["EXPIRED_APPLICATION"], "amount": "12.50"}
    ok, got = check_profile_outcome(_write(tmp_path, "pin_blocked_wrong", doc), tmp_path)
    assert not ok
    assert got["outcome"] == "DECLINED"
    assert [m.split()[0] for m in got["mismatches"]] == ["outcome", "online", "ODA", "CVM", "TVR"]
    # Offline PIN was the only CVM and failed (CVM Results 01 00 01, Book 3, C3).
    assert got["cvm"] == "OFFLINE_PLAINTEXT_PIN"


def _write(tmp_path: Path, name: str, document: object) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(document))
    return path


GOOD_APP = {"aid": "A0000000031010", "pan": "4761739001010010", "master_keys": "visa"}


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"aid": "A00Z"}, "aid"),
        ({"pan": "12"}, "pan"),
        ({"cvn": "visa-99"}, "cvn"),
        ({"mode": "magstripe"}, "mode"),
        ({"oda": ["XDA"]}, "oda"),
        ({"master_keys": 3}, "master_keys"),
        ({"gpo_format": 3}, "gpo_format"),
        ({"risk": {"denial_mask": "00"}}, "denial_mask"),
        ({"tags": {"9F": "zz"}}, "tags"),
    ],
)
def test_invalid_fields_name_the_field(tmp_path, patch, message):
    doc = {"expected": {"contact": "APPROVED"}, "applications": [GOOD_APP | patch]}
    with pytest.raises(ProfileError, match=message):
        load_profile(_write(tmp_path, "bad", doc), tmp_path)


def test_unknown_issuer_and_key_index_fail_at_personalisation(tmp_path):
    doc = {"expected": {}, "applications": [GOOD_APP | {"issuer": "nobody", "oda": ["SDA"]}]}
    with pytest.raises(ProfileError, match="issuer"):
        VirtualCard.from_profile(_write(tmp_path, "a", doc), directory=tmp_path)
    doc = {"expected": {}, "applications": [GOOD_APP | {"icc_key": 60}]}
    with pytest.raises(ProfileError, match="icc_key"):
        VirtualCard.from_profile(_write(tmp_path, "b", doc), directory=tmp_path)


def test_base_inheritance_merges_applications_and_detects_cycles(tmp_path):
    _write(tmp_path, "parent", {"abstract": True, "applications": [GOOD_APP | {"label": "P"}]})
    child = _write(tmp_path, "child", {"base": "parent", "expected": {},
                                       "applications": [{"label": "C"}]})
    profile = load_profile(child, tmp_path)
    assert profile.applications[0].label == "C"
    assert profile.applications[0].pan == "4761739001010010"
    with pytest.raises(ProfileError, match="abstract"):
        load_profile("parent", tmp_path)
    _write(tmp_path, "x", {"base": "y"})
    _write(tmp_path, "y", {"base": "x"})
    with pytest.raises(ProfileError, match="circular"):
        load_profile("x", tmp_path)


def test_missing_profile_and_bad_json(tmp_path):
    with pytest.raises(ProfileError, match="no profile"):
        load_profile("does_not_exist", tmp_path)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile("broken", tmp_path)


def test_profile_repr_hides_the_pin():
    profile = load_profile("visa_credit")
    assert profile.pin not in repr(profile)
    assert "4761739001010010" not in repr(VirtualCard.from_profile("visa_credit").applications)


def test_cards_command_lists_every_profile(capsys):
    import argparse

    from simulator import cli_cards

    parser = argparse.ArgumentParser()
    cli_cards.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["cards", "--json"])
    assert args.func(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == PROFILES
    text = json.dumps(rows)
    assert "4761739001010010" not in text


def test_cards_check_runs_every_profile_through_the_kernel(capsys):
    from simulator.cli import main

    assert main(["cards", "--check", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == PROFILES
    assert all(row["check"]["ok"] and not row["check"]["mismatches"] for row in rows)
    by_name = {row["name"]: row["check"] for row in rows}
    assert by_name["visa_credit"]["online"] is True
    assert by_name["ctls_phone_wallet"]["cvm"] == "CONFIRMATION_CODE_VERIFIED"
    assert main(["cards", "--check"]) == 0
    text = capsys.readouterr().out
    assert text.count("check: ok") == len(PROFILES)
    assert "4761739001010010" not in text
