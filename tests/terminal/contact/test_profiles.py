"""Every contact profile of the simulator's virtual cards runs through the kernel to the outcome
its profile expects, with the simulated issuer host checking ARQCs and answering with ARPCs."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from terminal.bits import Tvr, TvrBit
from terminal.capk import CapkStore
from terminal.config import TerminalConfig
from terminal.contact.flow import OnlineRequest, OnlineResponse, run_contact_transaction
from terminal.environment import Environment, TransactionRequest
from terminal.result import Decision
from terminal.tlv import encode
from tests.terminal.contact.replay import TestPinPad

card_mod = pytest.importorskip("simulator.card")
issuer_mod = pytest.importorskip("simulator.issuer")

WHEN = datetime(2026, 11, 25, 12, 0, 0)
CVM_CODES = {
    "OFFLINE_PLAINTEXT_PIN": 0x01,
    "ONLINE_PIN": 0x02,
    "OFFLINE_ENCIPHERED_PIN": 0x04,
    "SIGNATURE": 0x1E,
    "NO_CVM": 0x1F,
}


def expected_of(name: str) -> dict[str, Any]:
    path = card_mod.PROFILES_DIR / f"{name}.json"
    return json.loads(path.read_text()).get("expected", {})


def contact_profiles() -> list[str]:
    return [name for name in card_mod.list_profiles() if "contact" in expected_of(name)]


class Host:
    """The simulator's issuer host behind the kernel's authoriser port."""

    def __init__(self) -> None:
        self.host = issuer_mod.IssuerHost()
        self.calls = 0

    async def __call__(self, request: OnlineRequest) -> OnlineResponse | None:
        self.calls += 1
        data = request.icc_data + encode(0x5A, bytes.fromhex(request.pan or ""))
        answer = self.host.authorise(data)
        if answer is None:
            return None
        return OnlineResponse(
            approved=answer.approved,
            authorisation_response_code=answer.arc,
            issuer_authentication_data=answer.issuer_auth_data or None,
            scripts=answer.scripts or None,
        )


@pytest.mark.parametrize("name", contact_profiles())
async def test_profile_runs_to_its_expected_outcome(name: str) -> None:
    expected = expected_of(name)
    store = CapkStore()
    store.load_file(card_mod.default_pki().capk_file)
    card = card_mod.VirtualCard.from_profile(name, rng=lambda n: bytes(range(n)))

    class Channel:
        async def transceive(self, capdu: bytes) -> bytes:
            return card.process(capdu)

    host = Host()
    amount = round(float(expected.get("amount", "12.50")) * 100)
    result = await run_contact_transaction(
        Channel(),
        config=TerminalConfig.default(),
        request=TransactionRequest(amount=amount),
        env=Environment.fixed(WHEN, bytes.fromhex("12345678")),
        online=host,
        pinpad=TestPinPad(),
        capk=store,
    )
    assert result.decision is Decision(expected["contact"].lower()), result.reason
    if "online" in expected:
        assert (host.calls > 0) is expected["online"]
    if "oda" in expected:
        assert result.oda_method == expected["oda"]
    if "oda_ok" in expected:
        assert result.oda_verified is expected["oda_ok"]
    if "aid" in expected:
        assert result.aid == expected["aid"]
    if "cvm" in expected:
        assert result.cvm_results[0] & 0x3F == CVM_CODES[expected["cvm"]]
    # Terminal 9F09 and card 9F08 agree for every scheme (Book 3, 10.4.1).
    assert not Tvr(result.tvr).is_set(TvrBit.DIFFERENT_APPLICATION_VERSIONS)
    for bit in expected.get("tvr_bits", []):
        assert Tvr(result.tvr).is_set(TvrBit[bit])
