"""Every outcome of docs/sandbox.md, and every fault option, through ``posgw-sim acquirer``.

The acquirer runs as a process on a free port (tests/simulator/sandbox_support.py); requests
carry a real ARQC from a virtual card run through the kernel in process, with the amount (and
the PAN) the table names. The table is read from the document, so the document and
simulator/sandbox_rules.py cannot disagree.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulator.card import VirtualCard
from simulator.cli_pay import _SyncChannel, fixed_environment, kernel_config
from simulator.pinpad import VirtualPinPad
from simulator.sandbox_rules import AMOUNT_RULES, PAN_SUFFIX_RULES, Outcome
from terminal.contact.flow import run_contact_transaction
from terminal.contact.online import OnlineRequest, OnlineResponse
from terminal.environment import TransactionRequest
from tests.simulator.sandbox_support import ROOT, acquirer

PROFILES = ROOT / "simulator" / "profiles"
ROW = re.compile(r"^\| (\d{4}|-) \| (\d{4}|-) \| `([^`]+)` \|")


def documented_rows() -> list[tuple[int | None, str | None, str]]:
    """(amount, PAN suffix, outcome) of each row of the outcome table in docs/sandbox.md."""
    rows = []
    for line in (ROOT / "docs" / "sandbox.md").read_text().splitlines():
        match = ROW.match(line)
        if match:
            amount, suffix, outcome = match.groups()
            rows.append((None if amount == "-" else int(amount),
                         None if suffix == "-" else suffix, outcome))  # fmt: skip
    return rows


def test_the_document_and_the_rules_are_one_table() -> None:
    rows = documented_rows()
    assert {amount: Outcome(o) for amount, _, o in rows if amount} == AMOUNT_RULES
    assert {suffix: Outcome(o) for _, suffix, o in rows if suffix} == PAN_SUFFIX_RULES


async def authorisation(
    amount: int, tmp_path: Path | None = None, pan: str | None = None
) -> dict[str, Any]:
    """A valid authorisation body with a real ARQC for ``amount`` (and ``pan``, if given)."""
    seen: list[OnlineRequest] = []

    async def capture(request: OnlineRequest) -> OnlineResponse | None:
        seen.append(request)
        return None

    card = VirtualCard.from_profile("visa_credit")
    if pan is not None:
        assert tmp_path is not None
        profile = tmp_path / f"card_{pan}.json"
        profile.write_text(json.dumps({"base": "visa_credit", "applications": [{"pan": pan}]}))
        card = VirtualCard.from_profile(profile, directory=PROFILES)
    await run_contact_transaction(
        _SyncChannel(card), config=kernel_config(), request=TransactionRequest(amount=amount),
        env=fixed_environment(), online=capture, pinpad=VirtualPinPad("1234"),
    )  # fmt: skip
    request = seen[0]
    return {
        "amount": request.amount, "currency": request.currency, "transaction_type": "00",
        "icc_data": request.icc_data.hex(), "card": {"pan": request.pan},
        "terminal_id": "LANE0001", "merchant_id": "SHOP0001", "stan": amount % 999_999 or 1,
        "local_datetime": "2026-11-25T12:00:00",
    }  # fmt: skip


async def post(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], key: str | None = None,
    limit_s: float = 30,
) -> tuple[int, dict[str, Any]]:
    headers = {"Idempotency-Key": key or uuid.uuid4().hex}
    async with session.post(f"{url}/v1/authorisations", json=body, headers=headers,
                            timeout=aiohttp.ClientTimeout(total=limit_s)) as answer:  # fmt: skip
        return answer.status, await answer.json()


async def status(session: aiohttp.ClientSession, url: str, key: str) -> dict[str, Any]:
    async with session.get(f"{url}/v1/authorisations", params={"idempotency_key": key}) as answer:
        assert answer.status == 200
        payload: dict[str, Any] = await answer.json()
        return payload


async def ledger(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(f"{url}/sim/ledger") as answer:
        assert answer.status == 200
        payload: dict[str, Any] = await answer.json()
        return payload


async def check_issuer_code(session: aiohttp.ClientSession, url: str, body: dict[str, Any],
                            code: str) -> None:  # fmt: skip
    got, answer = await post(session, url, body)
    assert got == 201
    assert answer["response_code"] == code
    assert answer["status"] == "declined"
    if code == "91":
        assert answer["issuer_response"] == ""  # no issuer data
    else:
        assert "91" in answer["issuer_response"]  # 91 tag: a valid ARPC for the card


async def check_outcome(session: aiohttp.ClientSession, url: str, body: dict[str, Any],
                        outcome: str) -> None:  # fmt: skip
    """Reach ``outcome`` with ``body`` and check what the table says happens."""
    if outcome in ("05", "51", "55", "91"):
        await check_issuer_code(session, url, body, outcome)
        return
    key = uuid.uuid4().hex
    if outcome == "timeout":
        with pytest.raises(TimeoutError):
            await post(session, url, body, key, limit_s=0.5)
        found = await status(session, url, key)  # waits for the request in flight
        assert found["status"] == "approved"
    elif outcome == "5xx":
        for _ in range(2):
            got, answer = await post(session, url, body, key)
            assert (got, answer["error"]) == (503, "unavailable")
        async with session.get(f"{url}/v1/authorisations", params={"idempotency_key": key}) as a:
            assert a.status == 404  # never processed
    elif outcome == "5xx-once":
        got, _ = await post(session, url, body, key)
        assert got == 503
        got, answer = await post(session, url, body, key)
        assert (got, answer["status"]) == (201, "approved")
    elif outcome == "answer-lost":
        with pytest.raises(aiohttp.ClientError):
            await post(session, url, body, key)
        found = await status(session, url, key)
        assert found["status"] == "approved"
        got, answer = await post(session, url, body, key)  # the retry is a replay
        assert (got, answer["id"]) == (200, found["id"])
        charges = [e for e in (await ledger(session, url))["entries"]
                   if e["idempotency_key"] == key and e["kind"] == "charge"]  # fmt: skip
        assert len(charges) == 1
    else:
        raise AssertionError(f"outcome {outcome} not covered by this test")


async def test_every_documented_outcome_through_the_cli(tmp_path: Path) -> None:
    rows = documented_rows()
    assert len(rows) >= 8
    async with acquirer("--slow-seconds", "3") as url, aiohttp.ClientSession() as session:
        got, answer = await post(session, url, await authorisation(1250))
        assert (got, answer["response_code"]) == (201, "00")
        for amount, suffix, outcome in rows:
            if amount is not None:
                await check_outcome(session, url, await authorisation(amount), outcome)
            if suffix is not None:
                body = await authorisation(1250, tmp_path, f"476173900101{suffix}")
                await check_outcome(session, url, body, outcome)
        report = await ledger(session, url)
        assert report["possible_double_charges"] == []
        assert "4761739" not in json.dumps(report)  # no PAN in the ledger


@pytest.mark.parametrize(
    ("options", "outcome"),
    [(["--decline-all"], "05"), (["--response-code", "51"], "51"),
     (["--response-code", "55"], "55"), (["--response-code", "91"], "91"),
     (["--issuer-delay", "3"], "timeout"), (["--always-5xx"], "5xx"),
     (["--server-errors", "1"], "5xx-once"), (["--drop-after-processing", "1"], "answer-lost")],
)  # fmt: skip
async def test_every_fault_as_a_cli_option(options: list[str], outcome: str) -> None:
    async with acquirer(*options) as url, aiohttp.ClientSession() as session:
        await check_outcome(session, url, await authorisation(1250), outcome)


async def test_no_test_rules_and_the_ledger_nets_each_payment() -> None:
    async with acquirer("--no-test-rules") as url, aiohttp.ClientSession() as session:
        got, sale = await post(session, url, await authorisation(9905))
        assert (got, sale["response_code"]) == (201, "00")  # the table is off
        got, other = await post(session, url, await authorisation(1250))
        assert got == 201
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        refund = {"authorisation_id": sale["id"], "amount": 905, "currency": 978}
        async with session.post(f"{url}/v1/refunds", json=refund, headers=headers) as a:
            assert a.status == 201
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        async with session.post(f"{url}/v1/authorisations/{other['id']}/reversal", json={},
                                headers=headers) as a:  # fmt: skip
            assert a.status == 200
        report = await ledger(session, url)
    kinds = [entry["kind"] for entry in report["entries"]]
    assert kinds == ["charge", "charge", "refund", "reversal"]
    by_id = {p["authorisation_id"]: p for p in report["payments"]}
    assert (by_id[sale["id"]]["net"], by_id[sale["id"]]["refunded"]) == (9000, 905)
    assert (by_id[other["id"]]["net"], by_id[other["id"]]["reversed"]) == (0, 1250)
    assert report["totals"]["978"] == {"authorised": 11155, "reversed": 1250, "refunded": 905,
                                       "net": 9000}  # fmt: skip


async def test_the_pin_check_hook_answers_55_for_a_pin_the_issuer_refuses() -> None:
    """The hook simulator/pin_check.py fills: called only for an issuer with a ``pin`` section."""
    from simulator.acquirer_host import AcquirerHost
    from simulator.issuer import IssuerHost
    from simulator.issuer_profiles import PinCheckModel, default_issuers

    calls: list[tuple[PinCheckModel, dict[str, Any]]] = []

    def refuse(section: PinCheckModel, pin: dict[str, Any], pan: str) -> bool:
        calls.append((section, pin))
        return pan.startswith("476173") is False

    visa, *others = default_issuers().issuers
    with_pin = visa.model_copy(update={"pin": PinCheckModel(expected_pin="1234")})
    body = await authorisation(1250)
    body["pin"] = {"block": "00" * 8, "ksn": "00" * 10, "format": 0}
    for issuers, code, called in (((with_pin, *others), "55", 1), ((visa, *others), "00", 0)):
        calls.clear()
        host = AcquirerHost(issuer=IssuerHost(issuers=issuers), pin_verifier=refuse)
        async with host, aiohttp.ClientSession() as session:
            assert host.url is not None
            got, answer = await post(session, host.url, body)
        assert (got, answer["response_code"]) == (201, code)
        assert len(calls) == called
        if called:
            assert calls[0][0].expected_pin == "1234" and calls[0][1]["format"] == 0
            assert "91" in answer["issuer_response"]  # still a valid ARPC for the card
