"""The end of a payment: :func:`gateway.payments.settle` on a real journal, row by row of its
table, and the card-data helpers the lane keeps in memory (PAN capture, the sealed request)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.acquirer import (
    AcquirerClient,
    AcquirerHealth,
    AuthorisationRequest,
    ForwardingError,
    open_request,
    seal_request,
)
from gateway.journal import Journal, Payment, PaymentState, load_vault_key
from gateway.payments import LaneOutcome, Verdict, settle
from gateway.payments.carddata import PanCapture
from gateway.payments.online import aid_of
from gateway.recovery.reconciler import Reconciler
from terminal.tlv import encode
from tests.gateway.daemon_support import vault_key_file

S = PaymentState
PAN = "4761739001010010"


@pytest_asyncio.fixture(name="journal")
async def journal_fixture(tmp_path: Path) -> AsyncIterator[Journal]:
    key = load_vault_key(vault_key_file(tmp_path))
    async with Journal.open(tmp_path / "j.db", vault_key=key) as journal:
        yield journal


@pytest_asyncio.fixture(name="reconciler")
async def reconciler_fixture(journal: Journal) -> AsyncIterator[Reconciler]:
    async with AcquirerClient(base_url="http://127.0.0.1:9") as client:
        yield Reconciler(journal=journal, client=client, health=AcquirerHealth("x"))


async def _at(journal: Journal, state: S) -> Payment:
    payment = await journal.create_sale(lane="1", amount=100, currency="EUR", actor="t")
    if state is S.CREATED:
        return payment
    payment = await journal.card_read(
        payment.id, masked_pan="476173******0010", aid=None, actor="t"
    )
    if state is S.CARD_READ:
        return payment
    payment = await journal.request_auth(payment.id, actor="t")
    if state is S.APPROVED:
        payment = await journal.approve(payment.id, auth_code="123456", actor="t")
    return payment


@pytest.mark.parametrize(
    ("start", "verdict", "reason", "sealed", "end", "outcome", "queued"),
    [
        (
            S.CREATED,
            Verdict.NONE,
            "cancelled by the till",
            False,
            S.CANCELLED,
            LaneOutcome.CANCELLED,
            0,
        ),
        (
            S.CREATED,
            Verdict.FAILED_IN_FLIGHT,
            "CardRemoved",
            False,
            S.CANCELLED,
            LaneOutcome.ERROR,
            0,
        ),
        (S.CREATED, Verdict.DECLINED, "AAC", False, S.DECLINED, LaneOutcome.DECLINED, 0),
        (S.CREATED, Verdict.APPROVED, "TC", True, S.STORED_FOR_FORWARDING, LaneOutcome.APPROVED, 1),
        (S.CARD_READ, Verdict.APPROVED, "TC", False, S.DECLINED, LaneOutcome.DECLINED, 0),
        (
            S.AUTH_REQUESTED,
            Verdict.APPROVED,
            "Y3",
            True,
            S.STORED_FOR_FORWARDING,
            LaneOutcome.APPROVED,
            1,
        ),
        (S.AUTH_REQUESTED, Verdict.DECLINED, "Z3", False, S.DECLINED, LaneOutcome.DECLINED, 0),
        (
            S.AUTH_REQUESTED,
            Verdict.FAILED_IN_FLIGHT,
            "Timeout",
            False,
            S.UNKNOWN,
            LaneOutcome.UNKNOWN,
            1,
        ),
        (S.APPROVED, Verdict.APPROVED, "TC", False, S.COMPLETED, LaneOutcome.APPROVED, 0),
        (
            S.APPROVED,
            Verdict.DECLINED,
            "card AAC",
            False,
            S.REVERSAL_PENDING,
            LaneOutcome.DECLINED,
            1,
        ),
        (
            S.APPROVED,
            Verdict.FAILED_IN_FLIGHT,
            "CardRemoved",
            False,
            S.REVERSAL_PENDING,
            LaneOutcome.DECLINED,
            1,
        ),
    ],
)
async def test_settle_table(
    journal: Journal,
    reconciler: Reconciler,
    start: S,
    verdict: Verdict,
    reason: str,
    sealed: bool,
    end: S,
    outcome: LaneOutcome,
    queued: int,
) -> None:
    payment = await _at(journal, start)
    settled = await settle(
        journal,
        reconciler,
        payment.id,
        verdict=verdict,
        arc=b"Z1",
        masked_pan=None,
        aid=None,
        sealed=b'{"x":1}' if sealed else None,
        actor="lane[1]",
        reason=reason,
    )
    assert settled.payment.state is end
    assert (await journal.get(payment.id)).state is end
    assert settled.outcome is outcome
    assert reconciler.pending == queued


async def test_offline_approval_without_a_vault_key_is_declined(tmp_path: Path) -> None:
    async with (
        Journal.open(tmp_path / "nokey.db") as journal,
        AcquirerClient(base_url="http://127.0.0.1:9") as client,
    ):
        reconciler = Reconciler(journal=journal, client=client, health=AcquirerHealth("x"))
        payment = await _at(journal, S.CARD_READ)
        settled = await settle(
            journal,
            reconciler,
            payment.id,
            verdict=Verdict.APPROVED,
            arc=b"Y1",
            masked_pan=None,
            aid=None,
            sealed=b"{}",
            actor="t",
            reason="TC",
        )
        assert settled.payment.state is S.DECLINED and settled.outcome is LaneOutcome.DECLINED


class _Card:
    def __init__(self, answers: list[bytes]) -> None:
        self.answers = answers

    async def transceive(self, capdu: bytes) -> bytes:
        return self.answers.pop(0)


async def test_pan_capture_from_5a_or_track2_and_never_shown() -> None:
    record = encode(0x70, encode(0x5A, bytes.fromhex(PAN)) + encode(0x5F24, b"\x30\x12\x31"))
    capture = PanCapture(_Card([b"\x6a\x82", b"\x70\x01", record + b"\x90\x00"]))
    await capture.transceive(b"\x00\xa4\x04\x00")
    await capture.transceive(b"\x00\xb2\x01\x0c")  # not TLV: ignored
    assert capture.pan is None
    await capture.transceive(b"\x00\xb2\x01\x14")
    assert capture.pan == PAN and PAN not in repr(capture)
    track2 = encode(0x70, encode(0x57, bytes.fromhex("5413330089601521D2812201")))
    other = PanCapture(_Card([track2 + b"\x90\x00"]))
    await other.transceive(b"\x00\xb2\x01\x0c")
    assert other.pan == "5413330089601521"


def _request() -> AuthorisationRequest:
    return AuthorisationRequest(
        amount=1250,
        currency=978,
        transaction_type=0,
        icc_data=bytes.fromhex("9F0206000000001250"),
        pan=PAN,
        terminal_id="LANE0001",
        merchant_id="SHOP0001",
        stan=7,
        local_datetime=datetime(2026, 11, 25, 12, 0, 0),
    )


def test_sealed_request_round_trip_and_errors_without_card_data() -> None:
    request = _request()
    again = open_request(seal_request(request))
    assert again == request
    for blob in (
        b"[]",
        b"{}",
        b"not json",
        b'{"amount": "x"}',
        seal_request(request).replace(b'"stan":7', b'"stan":"x"'),
    ):
        with pytest.raises(ForwardingError) as caught:
            open_request(blob)
        assert PAN not in str(caught.value)


def test_aid_of_field55() -> None:
    assert aid_of(encode(0x84, bytes.fromhex("A0000000031010"))) == "A0000000031010"
    assert aid_of(b"\x9f") is None
    assert aid_of(b"") is None
