"""A card whose issuer only an issuers file knows, paid through ``posgw-sim`` processes.

``posgw-sim acquirer --issuers FILE`` runs as a process on a free port; ``posgw-sim pay
--card-module FILE.py:card --acquirer URL`` runs the real kernel against a virtual card
personalised with keys the shipped issuers do not have (a BIN no shipped issuer serves, the
EMV common session key derivation instead of a scheme CVN). Approved means the card verified
the ARPC: it answers the second GENERATE AC with an AAC when issuer authentication fails
(simulator/card/genac.py), and the kernel then declines.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.simulator.sandbox_support import acquirer, pay_json

CARD_KEY = "8A4F1C2D3E5B6A7980F1E2D3C4B5A697"
WRONG_KEY = "8A4F1C2D3E5B6A7980F1E2D3C4B5A698"
PAN = "4999990000000018"

CARD_MODULE = '''
"""An integrator's test card: personalised with its own issuer's keys."""
from pathlib import Path

from simulator.card import VirtualCard
from simulator.issuer import IssuerHost
from simulator.issuer_profiles import load_issuers

HERE = Path(__file__).parent


def card():
    keys = IssuerHost(issuers=load_issuers(HERE / "card_issuer.toml").issuers).keys
    return VirtualCard.from_profile(HERE / "acme_card.json", master_keys=keys)
'''


def _issuers(key: str, method: int) -> str:
    return (
        "[[issuers]]\n"
        'name = "acme"\n'
        'aid_prefix = "A000000003"\n'
        'pan_ranges = [{low = "499999", high = "499999"}]\n'
        f'keys = {{ac = "{key}"}}\n'
        f'cryptogram = {{version = "emv-csk", arpc_method = {method}}}\n'
    )


def _write_card(tmp_path: Path, method: int) -> str:
    (tmp_path / "card_issuer.toml").write_text(_issuers(CARD_KEY, method))
    profile = {
        "base": "_visa_contact", "abstract": False,
        "description": "Test card of an issuer known only from an issuers file",
        "expected": {"contact": "APPROVED"},
        "applications": [{
            "pan": PAN, "master_keys": "acme", "oda": [],
            "cvm_list": "000000000000000000001F00",
            "risk": {"always_online": True},
            "cryptogram": {"version": "emv-csk", "arpc_method": method},
        }],
    }  # fmt: skip
    (tmp_path / "acme_card.json").write_text(json.dumps(profile))
    (tmp_path / "acme_module.py").write_text(CARD_MODULE)
    return f"{tmp_path / 'acme_module.py'}:card"


@pytest.mark.parametrize("method", [1, 2])
async def test_issuer_from_file_approves_with_arpc_the_card_verifies(
    tmp_path: Path, method: int
) -> None:
    module = _write_card(tmp_path, method)
    host_file = tmp_path / "host_issuers.toml"
    host_file.write_text(_issuers(CARD_KEY, method))

    # the shipped issuers do not know this card: response code 14
    async with acquirer() as url:
        code, out = await pay_json("--card-module", module, "--acquirer", url, "--amount", "12.50")
    assert code == 1
    assert out["authorisation_response_code"] == "14"

    async with acquirer("--issuers", str(host_file)) as url:
        code, out = await pay_json("--card-module", module, "--acquirer", url, "--amount", "12.50")
    assert code == 0, out.get("reason")
    assert out["decision"] == "approved"
    assert out["authorisation_response_code"] == "00"
    assert out["interface"] == "contact"
    tvr = bytes.fromhex(out["tvr"])
    assert not tvr[4] & 0x40  # TVR byte 5 bit 7: issuer authentication failed - not set
    commands = [entry["command"] for entry in out["trace"]]
    assert "EXTERNAL AUTHENTICATE" in commands, commands
    external = out["trace"][commands.index("EXTERNAL AUTHENTICATE")]
    assert external["sw"] == "9000"  # the card verified the ARPC (6300 otherwise)
    assert PAN not in json.dumps(out)


async def test_issuer_file_with_the_wrong_key_declines(tmp_path: Path) -> None:
    module = _write_card(tmp_path, 1)
    host_file = tmp_path / "host_issuers.json"
    host_file.write_text(json.dumps({"issuers": [{
        "name": "acme", "aid_prefix": "A000000003",
        "pan_ranges": [{"low": "499999", "high": "499999"}], "keys": {"ac": WRONG_KEY},
        "cryptogram": {"version": "emv-csk", "arpc_method": 1}}]}))  # fmt: skip
    async with acquirer("--issuers", str(host_file)) as url:
        code, out = await pay_json("--card-module", module, "--acquirer", url, "--amount", "12.50")
    assert code == 1
    assert out["decision"] == "declined"
    assert out["authorisation_response_code"] == "05"  # the ARQC does not verify


async def test_acquirer_refuses_an_invalid_issuers_file(tmp_path: Path) -> None:
    from tests.simulator.sandbox_support import run_sim

    bad = tmp_path / "bad.toml"
    bad.write_text('[[issuers]]\nname = "x"\npan_ranges = []\nkeys = {ac = "00"}\n')
    code, _out, err = await run_sim("acquirer", "--port", "0", "--issuers", str(bad))
    assert code == 2
    assert "pan_ranges" in err and "keys.ac" in err
