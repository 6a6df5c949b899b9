"""The end of a payment: the state policy table of :mod:`gateway.payments.settle`, walked whole
on a real journal, a few rows with their details, and the sealed store-and-forward request."""

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
from gateway.journal import (
    HostApproval,
    InvalidRecord,
    Journal,
    Payment,
    PaymentState,
    load_vault_key,
)
from gateway.payments.online import aid_of
from gateway.payments.settle import (
    MAX_PIN_ENTRIES,
    POLICY,
    RESULT,
    LaneOutcome,
    Step,
    Verdict,
    may_retry_pin,
    settle,
)
from gateway.recovery.reconciler import Reconciler
from terminal.tlv import encode
from tests.gateway.daemon_support import vault_key_file
from tests.gateway.journal_support import drive_to

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
            Verdict.STOPPED,
            "cancelled by the till",
            False,
            S.CANCELLED,
            LaneOutcome.CANCELLED,
            0,
        ),
        (
            S.CREATED,
            Verdict.IN_DOUBT,
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
            Verdict.IN_DOUBT,
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
            Verdict.IN_DOUBT,
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
        payment.id,
        verdict=verdict,
        arc=b"Z1",
        masked_pan=None,
        aid=None,
        sealed=b'{"x":1}' if sealed else None,
        actor="lane[1]",
        reason=reason,
        recover=reconciler.add,
    )
    assert settled.payment.state is end
    assert (await journal.get(payment.id)).state is end
    assert settled.outcome is outcome
    assert reconciler.pending == queued


@pytest.mark.parametrize("start", [S.CARD_READ, S.CREATED])
async def test_offline_approval_without_a_vault_key_is_declined(tmp_path: Path, start: S) -> None:
    # from CREATED the card step shares the store's request: that request fails whole, and the
    # card is still journaled before the decline
    async with (
        Journal.open(tmp_path / "nokey.db") as journal,
        AcquirerClient(base_url="http://127.0.0.1:9") as client,
    ):
        reconciler = Reconciler(journal=journal, client=client, health=AcquirerHealth("x"))
        payment = await _at(journal, start)
        settled = await settle(
            journal, payment.id, verdict=Verdict.APPROVED, arc=b"Y1",
            masked_pan="476173******0010", aid=None, sealed=b"{}", actor="lane[1]", reason="TC",
            recover=reconciler.add, interface="contactless",
        )  # fmt: skip
        assert settled.payment.state is S.DECLINED and settled.outcome is LaneOutcome.DECLINED
        assert settled.payment.masked_pan == "476173******0010"
        assert [e.to_state for e in await journal.events(payment.id)] == [
            S.CREATED, S.CARD_READ, S.DECLINED,
        ]  # fmt: skip
        if start is S.CREATED:
            assert settled.payment.interface == "contactless"


@pytest.mark.parametrize("start", list(PaymentState))
@pytest.mark.parametrize("verdict", list(Verdict))
async def test_the_policy_table_is_whole_and_is_what_settle_does(
    journal: Journal, start: S, verdict: Verdict
) -> None:
    """Every (state, verdict) has a rule, and settle leaves the journal where the rule says."""
    rule = POLICY[start, verdict]
    payment = await drive_to(journal, start)
    handed: list[str] = []
    settled = await settle(
        journal,
        payment.id,
        verdict=verdict,
        arc=None,
        masked_pan=None,
        aid=None,
        sealed=b'{"x":1}',
        actor="lane[1]",
        reason="walk",
        recover=handed.append,
    )
    expected = RESULT[rule.step] or start
    assert (await journal.get(payment.id)).state is expected
    assert settled.outcome is rule.outcome
    assert (handed == [payment.id]) is (
        rule.step in (Step.STORE, Step.MARK_UNKNOWN, Step.REVERSE, Step.RECOVER)
    )


def test_the_policy_has_no_extra_rows() -> None:
    assert set(POLICY) == {(state, verdict) for state in PaymentState for verdict in Verdict}


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


@pytest.mark.parametrize(
    ("code", "interface", "entries", "pins_left", "retry"),
    [
        ("55", "contact", 1, 1, True),
        ("55", "contact", MAX_PIN_ENTRIES - 1, 1, True),
        ("55", "contact", MAX_PIN_ENTRIES, 1, False),  # the third wrong PIN ends it
        ("55", "contactless", 1, 1, False),  # the card has left the field
        ("55", "terminal", 1, 1, False),
        ("55", "contact", 1, 0, False),  # the PIN pad has nothing left to type
        ("75", "contact", 1, 1, False),  # PIN tries exceeded: declined
        ("05", "contact", 1, 1, False),
        (None, "contact", 1, 1, False),
    ],
)
def test_the_one_step_back_is_a_wrong_pin_on_a_contact_card_with_entries_left(
    code: str | None, interface: str, entries: int, pins_left: int, retry: bool
) -> None:
    assert (
        may_retry_pin(
            response_code=code, interface=interface, entries=entries, pins_left=pins_left
        )
        is retry
    )


async def test_an_offline_approval_settled_from_created_journals_the_card_with_the_store(
    journal: Journal, reconciler: Reconciler
) -> None:
    payment = await _at(journal, S.CREATED)
    commits = journal.commit_counts()[0]
    settled = await settle(
        journal, payment.id, verdict=Verdict.APPROVED, arc=b"Y1", masked_pan="476173******0010",
        aid="A0000000031010", sealed=b'{"x":1}', actor="lane[1]", reason="TC",
        recover=reconciler.add, card_read_reason="cardholder's choice", interface="contact",
    )  # fmt: skip
    assert journal.commit_counts()[0] == commits + 1  # CARD_READ and the store: one COMMIT
    assert settled.payment.state is S.STORED_FOR_FORWARDING and settled.offline
    assert settled.payment.masked_pan == "476173******0010"
    assert settled.payment.interface == "contact"
    events = await journal.events(payment.id)
    assert [(e.to_state, e.actor) for e in events[1:]] == [
        (S.CARD_READ, "lane[1]"), (S.STORED_FOR_FORWARDING, "lane[1]"),
    ]  # fmt: skip
    assert events[1].reason == "cardholder's choice"
    assert reconciler.pending == 1


HELD = HostApproval(auth_code="AB12CD")


@pytest.mark.parametrize("start", [S.AUTH_REQUESTED, S.UNKNOWN])
@pytest.mark.parametrize(
    ("verdict", "end", "outcome"),
    [
        (Verdict.APPROVED, S.COMPLETED, LaneOutcome.APPROVED),
        (Verdict.DECLINED, S.REVERSAL_PENDING, LaneOutcome.DECLINED),  # the card's AAC
        (Verdict.IN_DOUBT, S.REVERSAL_PENDING, LaneOutcome.DECLINED),  # card removed
        (Verdict.FAILED, S.REVERSAL_PENDING, LaneOutcome.DECLINED),
        (Verdict.STOPPED, S.REVERSAL_PENDING, LaneOutcome.DECLINED),
    ],
)
async def test_a_held_host_approval_is_journaled_with_the_step_after_it(
    journal: Journal,
    reconciler: Reconciler,
    start: S,
    verdict: Verdict,
    end: S,
    outcome: LaneOutcome,
) -> None:
    """The reader path holds the host's approval until the card has answered: settle reads
    the payment as APPROVED and journals APPROVED and the next state in one request."""
    payment = await drive_to(journal, start)
    commits = journal.commit_counts()[0]
    settled = await settle(
        journal, payment.id, verdict=verdict, arc=b"00", masked_pan=None, aid=None, sealed=None,
        actor="lane[1]", reason="card", recover=reconciler.add, approval=HELD,
    )  # fmt: skip
    assert journal.commit_counts()[0] == commits + 1
    assert (settled.payment.state, settled.outcome) == (end, outcome)
    assert (await journal.get(payment.id)).state is end
    assert (settled.payment.auth_code, settled.payment.response_code) == ("AB12CD", "00")
    events = await journal.events(payment.id)
    assert [(e.from_state, e.to_state, e.actor) for e in events[-2:]] == [
        (start, S.APPROVED, "acquirer"), (S.APPROVED, end, "lane[1]"),
    ]  # fmt: skip
    assert reconciler.pending == (0 if end is S.COMPLETED else 1)
    assert len(await journal.claim_batch(10)) == (1 if end is S.COMPLETED else 0)


@pytest.mark.parametrize("start", [S.DECLINED, S.CANCELLED, S.COMPLETED])
async def test_a_held_approval_does_not_override_a_state_the_journal_already_moved_to(
    journal: Journal, start: S
) -> None:
    payment = await drive_to(journal, start)
    handed: list[str] = []
    settled = await settle(
        journal, payment.id, verdict=Verdict.APPROVED, arc=None, masked_pan=None, aid=None,
        sealed=None, actor="lane[1]", reason="late", recover=handed.append, approval=HELD,
    )  # fmt: skip
    assert settled.payment.state is start and (await journal.get(payment.id)).state is start
    assert settled.outcome is POLICY[start, Verdict.APPROVED].outcome
    assert handed == []


@pytest.mark.parametrize("then", [S.DECLINED, S.APPROVED, S.STORED_FOR_FORWARDING])
async def test_approve_then_takes_only_completed_or_reversal_pending(
    journal: Journal, then: S
) -> None:
    payment = await drive_to(journal, S.AUTH_REQUESTED)
    with pytest.raises(InvalidRecord, match="then"):
        await journal.approve_then(payment.id, HELD, then, actor="lane[1]")
    with pytest.raises(InvalidRecord, match="auth_code"):
        await journal.approve_then(
            payment.id, HostApproval(auth_code="not a code"), S.COMPLETED, actor="lane[1]"
        )
    assert (await journal.get(payment.id)).state is S.AUTH_REQUESTED
    assert [e.to_state for e in await journal.events(payment.id)][-1] is S.AUTH_REQUESTED
