"""The kernel's online step over HTTP: virtual card + contact kernel + client + simulated host.

EMV 4.4 Book 3, 10.9: the ARQC goes to the host, whose ARPC the card verifies (issuer
authentication performed, not failed); an answer that never came is resolved by status query;
a host that cannot be reached is "unable to go online" (10.7, 8A Y3/Z3). Logs at DEBUG never
hold the PAN, the PIN block or the track 2.
"""

from __future__ import annotations

import logging

import pytest

from gateway.acquirer import (
    AcquirerClient,
    AcquirerOnlineAuthoriser,
    AcquirerRejected,
    AnswerLost,
    AuthorisationRequest,
    online_authoriser,
)
from simulator.acquirer_host import AcquirerHost
from simulator.card import VirtualCard
from simulator.cli_pay import _SyncChannel, fixed_environment, kernel_config
from simulator.pinpad import VirtualPinPad
from terminal.bits import Tsi, TsiBit, Tvr, TvrBit
from terminal.contact.flow import run_contact_transaction
from terminal.environment import TransactionRequest
from terminal.pinpad import OnlinePinBlock
from terminal.result import Decision, TransactionResult
from tests.gateway.acquirer_support import (
    FIXED_NOW,
    Keys,
    captured_request,
    client_fixture,  # noqa: F401 - fixture "client"
    client_sleeps_fixture,  # noqa: F401 - fixture "client_sleeps"
    free_port,
    host_fixture,  # noqa: F401 - fixture "host"
    make_client,
    wire_request,
)


async def _pay(
    client: AcquirerClient, keys: Keys, amount: int = 1250
) -> tuple[TransactionResult, AcquirerOnlineAuthoriser]:
    online = online_authoriser(
        client, terminal_id="LANE0001", merchant_id="SHOP0001", key_factory=keys,
        clock=lambda: FIXED_NOW,
    )
    result = await run_contact_transaction(
        _SyncChannel(VirtualCard.from_profile("visa_credit")),
        config=kernel_config(),
        request=TransactionRequest(amount=amount),
        env=fixed_environment(),
        online=online,
        pinpad=VirtualPinPad("1234"),
    )
    return result, online


async def test_contact_payment_approved_online_with_a_valid_arpc(
    host: AcquirerHost, client: AcquirerClient
) -> None:
    keys = Keys()
    result, online = await _pay(client, keys)
    assert result.decision is Decision.APPROVED, result.reason
    assert result.authorisation_response_code == b"00"
    assert Tsi(result.tsi).is_set(TsiBit.ISSUER_AUTHENTICATION_PERFORMED)
    assert not Tvr(result.tvr).is_set(TvrBit.ISSUER_AUTHENTICATION_FAILED)
    assert keys.made == ["test-1"]
    assert [(e.kind, e.idempotency_key, e.amount) for e in host.ledger] == [
        ("charge", "test-1", 1250)
    ]
    assert online.last is not None and online.last.id == host.charges[0].id


async def test_contact_payment_declined_by_the_host(
    host: AcquirerHost, client: AcquirerClient
) -> None:
    host.faults.decline_all = True
    result, _ = await _pay(client, Keys())
    assert result.decision is Decision.DECLINED
    assert result.authorisation_response_code == b"05"
    assert not Tvr(result.tvr).is_set(TvrBit.ISSUER_AUTHENTICATION_FAILED)  # ARPC still valid
    assert host.charges == []


async def test_answer_lost_mid_transaction_is_resolved_and_approved(
    host: AcquirerHost, client: AcquirerClient
) -> None:
    host.faults.drop_after_processing = 1
    keys = Keys()
    result, online = await _pay(client, keys)
    assert result.decision is Decision.APPROVED, result.reason
    assert not Tvr(result.tvr).is_set(TvrBit.ISSUER_AUTHENTICATION_FAILED)
    assert len(host.charges) == 1 and online.unresolved == []


async def test_each_transaction_gets_a_fresh_key(
    host: AcquirerHost, client: AcquirerClient
) -> None:
    keys = Keys()
    online = online_authoriser(client, terminal_id="L1", merchant_id="M1", key_factory=keys)
    request = await captured_request()
    await online(request)
    await online(request)
    assert keys.made == ["test-1", "test-2"]
    assert [e.idempotency_key for e in host.charges] == ["test-1", "test-2"]


async def test_host_down_is_unable_to_go_online() -> None:
    async with make_client(f"http://127.0.0.1:{free_port()}", []) as down:
        result, online = await _pay(down, Keys())
    assert result.authorisation_response_code in (b"Y3", b"Z3")  # Book 4, Annex A6
    assert "unable to go online" in result.reason
    assert online.last is None


async def test_a_request_the_host_refuses_is_declined_not_approved_offline(
    host: AcquirerHost, client: AcquirerClient
) -> None:
    online = online_authoriser(
        client, terminal_id="TERMINAL-ID-TOO-LONG", merchant_id="M1", key_factory=Keys()
    )
    answer = await online(await captured_request())
    assert answer is not None and not answer.approved
    assert answer.authorisation_response_code == b"Z3"
    assert host.ledger == []


async def test_logs_never_hold_pan_pin_block_or_track2(
    caplog: pytest.LogCaptureFixture, host: AcquirerHost, client: AcquirerClient
) -> None:
    caplog.set_level(logging.DEBUG)
    base = await wire_request()
    digits = base.pan + "D3012201" + "1234567890"
    track2 = bytes.fromhex(digits + ("F" if len(digits) % 2 else ""))
    pin = OnlinePinBlock(bytes.fromhex("0412AC89ABCDEF67"), bytes.fromhex("FFFF9876543210E00001"))
    request = AuthorisationRequest(
        amount=base.amount, currency=base.currency, transaction_type=base.transaction_type,
        icc_data=base.icc_data + bytes.fromhex("57") + bytes([len(track2)]) + track2,
        pan=base.pan, terminal_id="LANE0001", merchant_id="SHOP0001", stan=9,
        local_datetime=FIXED_NOW, pin=pin,
    )
    printed = [repr(request), str(request)]
    printed.append(repr(await client.authorise(request, idempotency_key="k-log")))
    host.faults.drop_after_processing = 1
    try:
        await client.authorise(request, idempotency_key="k-log-lost")
    except AnswerLost as exc:
        printed.append(repr(exc) + str(exc))
    printed.append(repr(await client.resolve_unknown("k-log-lost")))
    other = AuthorisationRequest(**{
        name: getattr(request, name) for name in AuthorisationRequest.__slots__
    } | {"stan": 10})
    with pytest.raises(AcquirerRejected) as conflict:
        await client.authorise(other, idempotency_key="k-log")
    printed.append(repr(conflict.value) + str(conflict.value))
    host.faults.decline_all = True
    result, _ = await _pay(client, Keys("pay"))
    printed.append(repr(result))
    text = caplog.text + "\n".join(printed)
    assert "k-log-lost" in caplog.text  # the logs do say what happened
    for secret in (base.pan, pin.block.hex(), track2.hex()):
        assert secret.upper() not in text.upper()
    assert base.pan[:6] in caplog.text  # masked PAN: first 6 + last 4
