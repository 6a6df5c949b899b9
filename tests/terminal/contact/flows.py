"""Run the whole contact flow against the model card, for tests."""

from __future__ import annotations

from datetime import datetime

from terminal.config import TerminalConfig
from terminal.contact.flow import OnlineResponse, run_contact_transaction
from terminal.environment import Environment, TransactionRequest
from terminal.result import TransactionResult
from tests.terminal.contact.model_card import ModelCard, capk
from tests.terminal.contact.replay import Authoriser, TestPinPad

WHEN = datetime(2025, 6, 1, 10, 0, 0)


async def flow(
    card: ModelCard,
    *,
    amount: int = 1000,
    config: TerminalConfig | None = None,
    answer: OnlineResponse | None = None,
    authoriser: Authoriser | None = None,
    request: TransactionRequest | None = None,
    pinpad: TestPinPad | None = None,
    percent: int = 99,
) -> TransactionResult:
    return await run_contact_transaction(
        card,
        config=config or TerminalConfig.default(),
        request=request or TransactionRequest(amount=amount),
        env=Environment.fixed(WHEN, bytes.fromhex("11223344"), percent),
        online=authoriser or Authoriser(answer or OnlineResponse(approved=True)),
        pinpad=pinpad or TestPinPad(),
        capk=capk(),
    )
