"""Co-badged cards through the daemon (issue 14; EU IFR 2015/751 art. 8): the lane offers the
brands in a ``brand`` event with the merchant's default, the till (or customer display) answers
``POST /api/payments/{id}/brand`` within ``timeouts.brand_choice``, else the default is taken;
how the brand was chosen is journaled with CARD_READ. Card: cb_visa_cobadged (CB A0000000421010
and Visa A0000000031010 in one PSE); the shipped terminal configuration's brand priority makes
CB the default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from gateway.daemon.daemon import Daemon
from gateway.journal import PaymentState
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import (
    Till,
    acquirer_fixture,
    fixed_env,
    http_fixture,
    insert_card,
    make_config,
    running,
    slot_name,
)
from tests.gateway.till.test_events import _events_until, _final, _read_event

__all__ = ["acquirer_fixture", "http_fixture"]

S = PaymentState
CB, VISA = "A0000000421010", "A0000000031010"


async def _brand(till: Till, payment_id: str, body: Any) -> tuple[int, dict[str, Any]]:
    async with till.session.post(f"{till.base}/api/payments/{payment_id}/brand",
                                 json=body) as response:
        return response.status, await response.json()


async def _pay(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, *,
    answer: str | None, brand_choice: float = 10.0,
) -> tuple[dict[str, Any], list[Any], dict[str, Any], list[tuple[int, dict[str, Any]]]]:
    assert acquirer.url is not None
    slot = slot_name()
    config = make_config(tmp_path, acquirer.url, [slot], pin_pad="virtual:1234",
                         timeouts={"brand_choice": brand_choice})
    async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
        till = Till(http, daemon.http_port or 0)
        async with http.get(f"{till.base}/api/lanes/1/events") as stream:
            assert await _read_event(stream.content) is not None
            _, body = await till.pay(1, 1250)
            payment_id = str(body["id"])
            await till.wait_prompt(1, "PRESENT CARD")
            before = [await _brand(till, payment_id, {"aid": VISA})]  # nothing offered yet
            insert_card(slot, "cb_visa_cobadged")
            seen = await _events_until(stream.content, lambda e: e.event == "brand")
            offer = seen[-1].data
            answers = []
            if answer is not None:
                answers.append(await _brand(till, payment_id, {"aid": "A0000000041010"}))
                answers.append(await _brand(till, payment_id, {"aid": answer.lower()}))
                answers.append(await _brand(till, payment_id, {"aid": answer}))  # too late
            seen += await _events_until(stream.content, _final)
        result = await till.get(payment_id, wait=15)
        events = await daemon.journal.events(payment_id)
    return result, events, offer, before + answers


async def test_the_cardholder_overrides_the_default_brand(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    result, events, offer, answers = await _pay(tmp_path, acquirer, http, answer=VISA)
    assert offer["brands"] == [{"aid": CB, "label": "CB"}, {"aid": VISA, "label": "VISA"}]
    assert offer["default"] == CB and offer["timeout"] == 10.0
    assert offer["payment"] == result["id"]
    statuses = [(status, body.get("error"), body.get("aid")) for status, body in answers]
    assert statuses == [
        (409, "no_brand_choice", None),  # before the card: no choice open
        (400, "invalid_request", None),  # an AID that was not offered
        (200, None, VISA),  # the choice (hex case does not matter)
        (409, "no_brand_choice", None),  # already chosen
    ]
    assert result["outcome"] == "approved" and result["aid"] == VISA, result
    card_read = next(e for e in events if e.to_state is S.CARD_READ)
    assert card_read.reason == f"brand {VISA} chosen by the cardholder (merchant default {CB})"


async def test_no_answer_takes_the_merchant_default(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    result, events, offer, _ = await _pay(tmp_path, acquirer, http, answer=None,
                                          brand_choice=0.3)
    assert offer["default"] == CB and offer["timeout"] == 0.3
    assert result["outcome"] == "approved" and result["aid"] == CB, result
    card_read = next(e for e in events if e.to_state is S.CARD_READ)
    assert card_read.reason == (
        f"brand {CB} merchant default, no choice within 0.3 s (merchant default {CB})")
