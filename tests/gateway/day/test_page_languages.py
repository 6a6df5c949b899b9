"""The status page speaks money, in French and in English, in Chromium (Playwright, Debian's).

A real daemon (in process, ``sim://`` lane, virtual card) and the simulated acquirer: a day is
closed with a planted extra charge at the acquirer, then the new day takes two online sales and
one offline sale whose forward the bank declines. The page is then opened twice in headless
Chromium, with the browser's language set to French and to English (``Accept-Language`` comes
from the browser context's locale): the words come from the catalogue, the amounts, percentages
and times from the locale's CLDR formats. Screenshots are written to the test's output
directory (``tmp_path``; also to ``$POSGW_TEST_OUTPUT`` when set).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from gateway.journal import PaymentState
from gateway.till.authority import allow_as
from simulator.acquirer_host import AcquirerHost, LedgerEntry
from tests.gateway.daemon_support import running, slot_name
from tests.gateway.day.day_support import day_daemon, pay, post, till_session, wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")

S = PaymentState
FULL_PAN = "4761739001010010"
LIMITS = {"max_transaction": "150.00", "max_total": "500.00", "max_count": 20, "max_age_hours": 24}


def _keep(shot: Path) -> None:
    out = os.environ.get("POSGW_TEST_OUTPUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(out) / shot.name)


async def _open(browser: Any, url: str, locale: str) -> Any:
    context = await browser.new_context(locale=locale, viewport={"width": 1280, "height": 1000})
    page = await context.new_page()
    await page.goto(url)
    return context, page


async def test_the_page_in_french_and_in_english(browser: Any, tmp_path: Path) -> None:
    acquirer = AcquirerHost()
    await acquirer.start()
    assert acquirer.url is not None
    slot = slot_name()
    daemon = day_daemon(tmp_path, acquirer.url, [slot], store_and_forward={"EUR": LIMITS})
    daemon.authorise = allow_as("manager:claire")
    try:
        async with till_session(tmp_path) as http, running(daemon):
            await pay(daemon, http, slot, 1300)
            acquirer.ledger.append(LedgerEntry("charge", "auth_planted", 999, 978, "planted"))
            status, day = await post(daemon, http, "/api/days/close")
            assert status == 201 and day["differences"] == 1
            for amount in (1250, 2000):
                assert (await pay(daemon, http, slot, amount))["state"] == "COMPLETED"
            acquirer.faults.decline_all = True  # the issuer declines the forward (planted)
            offline = await pay(daemon, http, slot, 500)  # below the floor limit: the card's TC
            assert offline["state"] == "STORED_FOR_FORWARDING", offline

            async def forwarded() -> bool:
                state = (await daemon.journal.get(str(offline["id"]))).state
                return state is not S.STORED_FOR_FORWARDING

            await wait_until(forwarded)
            if (await daemon.journal.get(str(offline["id"]))).state is not S.FORWARD_DECLINED:
                pytest.fail("the planted decline did not decline the forward")
            url = f"http://127.0.0.1:{daemon.http_port}/"

            context, page = await _open(browser, url, "fr-FR")
            try:
                assert await page.locator("html").get_attribute("lang") == "fr-FR"
                takings = page.locator("#takings")
                await expect(takings).to_contain_text("Recette du jour")
                await expect(takings).to_contain_text("32,50\u00a0€")
                await expect(takings).to_contain_text("Taux d'acceptation")
                await expect(takings).to_contain_text("66,7\u00a0%")  # 2 of 3 decided sales
                await expect(takings).to_contain_text("Temps médian d'autorisation")
                declined = page.locator("#declined-forwards")
                await expect(declined).to_contain_text("Action d'un responsable requise")
                await expect(declined).to_contain_text("5,00\u00a0€")
                await expect(declined).to_contain_text("Refusé par la banque après la vente")
                color = await declined.locator("tr").first.evaluate(
                    "e => getComputedStyle(e).color"
                )
                assert color == "rgb(179, 38, 30)"  # --bad: red
                await expect(page.locator("#day")).to_contain_text(
                    "Journée clôturée — les totaux de la banque diffèrent"
                )
                await expect(page.locator("#day")).to_contain_text("9,99\u00a0€")
                await expect(page.locator("#offline")).to_contain_text(
                    "Ventes hors ligne en attente d'envoi"
                )
                await expect(page.locator("#last-payments")).to_contain_text("476173******0010")
                # the rest of the page in French too: the banner, the lane, the health cards
                await expect(page.locator("#headline")).to_contain_text("Prêt à encaisser")
                await expect(page.locator("#lane-1")).to_contain_text("Lecteur prêt depuis")
                await expect(page.locator("#lane-1")).to_contain_text("Écran client")
                await expect(page.locator("body")).to_contain_text(
                    "Prestataire de paiement joignable"
                )
                assert "Reader ready" not in await page.content()
                # no manager login on this listener: no link to a page that is not there
                await expect(page.locator("header nav")).to_have_count(0)
                assert FULL_PAN not in await page.content()
                shot = tmp_path / "status-fr.png"
                await page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                _keep(shot)
            finally:
                await context.close()

            context, page = await _open(browser, url, "en-GB")
            try:
                assert await page.locator("html").get_attribute("lang") == "en-GB"
                await expect(page.locator("#takings")).to_contain_text("Today's takings")
                await expect(page.locator("#takings")).to_contain_text("€32.50")
                await expect(page.locator("#takings")).to_contain_text("66.7%")
                await expect(page.locator("#declined-forwards")).to_contain_text("€5.00")
                await expect(page.locator("#day")).to_contain_text(
                    "Day closed — the bank's totals differ"
                )
                await expect(page.locator("#headline")).to_contain_text("Ready to take payments")
                await expect(page.locator("#lane-1")).to_contain_text("Reader ready since")
                assert FULL_PAN not in await page.content()
                shot = tmp_path / "status-en.png"
                await page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                _keep(shot)
            finally:
                await context.close()
    finally:
        await acquirer.stop()
