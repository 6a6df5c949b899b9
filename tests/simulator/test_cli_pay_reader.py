"""``posgw-sim pay --reader pcsc://...``: the kernel against a card in a real PC/SC reader.

The card is a virtual EMV card attached as a virtual ICC to vsmartcard's vpcd, inside the test
session's private pcscd; ``posgw-sim`` runs as a separate process and reaches it through pyscard
and pcscd exactly as it would reach a scheme test card on a desk reader.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from simulator.card import VirtualCard, default_pki
from simulator.gen_keys import DeterministicStream, generate_rsa
from simulator.keys import TestCa, TestPki, issuer_certificate
from terminal.config import DEFAULT_CONFIG_FILE

pytestmark = pytest.mark.pcsc

POSGW_SIM = str(Path(sys.executable).parent / "posgw-sim")


async def _pay(*args: str) -> tuple[int, dict[str, Any], str]:
    proc = await asyncio.create_subprocess_exec(
        POSGW_SIM, "pay", "--json", "--random-draw", "99", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, json.loads(out) if out.strip() else {}, err.decode()


@pytest.mark.parametrize(
    ("profile", "protocol", "oda"),
    [("visa_credit", "T=1", "DDA"), ("cda_card", "T=0", "CDA"), ("mastercard_debit", "T=1", "CDA")],
)
async def test_pay_through_pcscd_and_vpcd(
    attach_icc: Any, vpcd_readers: list[Any], profile: str, protocol: str, oda: str
) -> None:
    await attach_icc(VirtualCard.from_profile(profile), protocol=protocol)
    code, out, err = await _pay("--reader", f"pcsc://{vpcd_readers[0].name}", "--amount", "12.50")
    assert code == 0, err
    assert out["decision"] == "approved"
    assert out["oda_method"] == oda
    assert out["oda_verified"] is True
    assert out["masked_pan"].count("*") == 6
    commands = [entry["command"] for entry in out["trace"]]
    assert "GENERATE AC" in commands
    if protocol == "T=0":  # the virtual ICC answered 61xx and the kernel fetched the rest
        assert "GET RESPONSE" in commands


async def test_pay_reader_host_offline_takes_the_unable_to_go_online_path(
    attach_icc: Any, vpcd_readers: list[Any]
) -> None:
    await attach_icc(VirtualCard.from_profile("visa_credit"))
    code, out, err = await _pay("--reader", f"pcsc://{vpcd_readers[0].name}", "--amount", "12.50",
                                "--host", "offline")
    assert out["authorisation_response_code"] in ("Y3", "Z3"), err
    assert code == (0 if out["decision"] == "approved" else 1)


async def test_pay_reader_with_no_such_reader_fails_cleanly(vpcd_readers: list[Any]) -> None:
    code, out, err = await _pay("--reader", "pcsc://No Such Reader*", "--amount", "1.00")
    assert code == 3
    assert out == {}
    assert "error:" in err
    assert "Traceback" not in err


def _pki_of_another_ca() -> tuple[TestPki, dict[str, Any]]:
    """The simulator's PKI with the Visa issuer re-certified by a CA nobody ships (index F1).

    Returns the PKI and the CA key file (``capk_*.json`` layout) that names that CA: the card is
    "issued elsewhere", its CA public key is in no file the kernel loads by default.
    """
    base = default_pki()
    rid = bytes.fromhex("A000000003")
    key = generate_rsa(1152, 3, DeterministicStream("posgw-test-ca-issued-elsewhere"))
    ca = TestCa(rid, 0xF1, key)
    visa = base.issuers["visa"]
    cert = issuer_certificate(key, visa.key.public(), visa.issuer_id, visa.expiry, visa.serial)
    issuers = {**base.issuers, "visa": dataclasses.replace(visa, ca=ca, certificate=cert)}
    pki = dataclasses.replace(base, cas={**base.cas, (rid, 0xF1): ca}, issuers=issuers)
    checksum = hashlib.sha1(rid + b"\xf1" + key.modulus + key.exponent).hexdigest()
    capk = {"keys": [{"rid": rid.hex().upper(), "index": "F1", "modulus": key.modulus.hex().upper(),
                      "exponent": key.exponent.hex().upper(), "checksum": checksum.upper(),
                      "expiry": None}], "revoked": []}
    return pki, capk


async def test_terminal_config_brings_the_ca_key_of_a_card_issued_elsewhere(
    attach_icc: Any, vpcd_readers: list[Any], tmp_path: Path
) -> None:
    pki, capk = _pki_of_another_ca()
    keys_file = tmp_path / "capk_elsewhere.json"
    keys_file.write_text(json.dumps(capk), encoding="utf-8")
    config = json.loads(DEFAULT_CONFIG_FILE.read_text(encoding="utf-8"))
    config["ca_keys"] = [str(keys_file)]  # only this file: not the public EMV test keys
    config_file = tmp_path / "terminal_config.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    reader = f"pcsc://{vpcd_readers[0].name}"

    icc = await attach_icc(VirtualCard.from_profile("visa_credit", keys=pki))
    code, out, err = await _pay("--reader", reader, "--amount", "12.50")
    assert out["oda_method"] == "DDA", err
    assert out["oda_verified"] is False  # CA A000000003/F1 unknown to the default config
    await icc.disconnect()

    await attach_icc(VirtualCard.from_profile("visa_credit", keys=pki))
    code, out, err = await _pay("--reader", reader, "--amount", "12.50",
                                "--terminal-config", str(config_file))
    assert code == 0, err
    assert out["decision"] == "approved"
    assert out["oda_method"] == "DDA"
    assert out["oda_verified"] is True  # the issuer certificate checked under the file's key
