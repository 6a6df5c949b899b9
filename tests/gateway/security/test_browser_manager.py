"""A manager in a real browser (headless chromium, tests.fixtures.browser) against the real
daemon over TLS: redirected to the login form, logged in with a strict ``__Host-`` cookie,
approves a refund with the page's own form (its CSRF token), a token-less form post from the
page is refused, and logout ends the session.

The second test clears, with the page's own forms, what waits for a manager: a sale the bank
declined after an offline approval (a ``sim://`` lane with a virtual card while the acquirer
is down, then the revived simulated acquirer declining the forward), a Concert V2 payment its
terminal could not tell about (a virtual terminal on a pty, the link cut before its answer:
docs/tpe.md), and the day close. A viewer sees the same lists without a form.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

import drivers.sim as drivers_sim
from gateway.daemon.daemon import Daemon
from gateway.journal import PaymentState
from gateway.security import CredentialStore
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import (
    Till,
    fixed_env,
    insert_card,
    make_config,
    running,
    slot_name,
    till_token,
)
from tests.gateway.day.day_support import wait_until
from tests.gateway.security.tls_support import (
    PASSWORD,
    add_manager,
    base_url,
    pinned_session,
    tls_config,
    tls_till,
)
from tests.gateway.tpe_support import start_rig

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: Nothing in these tests reaches the acquirer (no payment is made): a closed port will do.
NO_ACQUIRER = "http://127.0.0.1:9"


async def test_a_manager_logs_in_approves_and_logs_out(browser: Any, tmp_path: Path) -> None:
    daemon = Daemon(tls_config(tmp_path, NO_ACQUIRER, [slot_name()]), env=fixed_env, environ={})
    journal = tmp_path / "journal.db"
    add_manager(journal, "grace", "manager")
    store = CredentialStore.open(journal)
    first = store.request_approval("pay_browsersale1", 4200, "front-9")
    second = store.request_approval("pay_browsersale2", 5100, "front-9")
    store.close()
    context = await browser.new_context(ignore_https_errors=True)  # the self-signed certificate
    try:
        page = await context.new_page()
        async with running(daemon):
            base = base_url(daemon)
            await page.goto(base + "/")
            assert page.url == base + "/login"  # no session: the login form
            await page.fill("input[name=name]", "grace")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button")
            await page.wait_for_url(base + "/")
            assert "payment gateway status" in await page.title()
            [cookie] = await context.cookies()
            assert cookie["name"] == "__Host-posgw_session"
            assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (
                True, True, "Strict")  # fmt: skip

            # the status page links to the manager's page
            await page.locator("header nav a", has_text="Manager page").click()
            await page.wait_for_url(base + "/manager")
            await expect(page.locator("body")).to_contain_text("pay_browsersale1")
            # a form without the CSRF token, submitted from the page itself: refused
            async with page.expect_navigation() as navigation:
                await page.evaluate(
                    """(url) => { const form = document.createElement("form");
                       form.method = "post"; form.action = url;
                       document.body.appendChild(form); form.submit(); }""",
                    f"/manager/approvals/{second.id}",
                )
            refused = await navigation.value
            assert refused is not None and refused.status == 200  # back on the page
            await page.wait_for_url(base + "/manager?error=csrf")
            await expect(page.locator("p.refused")).to_contain_text("nothing was done")
            # the page's own form carries the token
            await page.locator(f"form[action$='/approvals/{first.id}'] button").click()
            await page.wait_for_url(f"{base}/manager?done=approved&approval={first.id}")
            await expect(page.locator("p.result")).to_have_text(
                f"Refund approval {first.id} approved."
            )
            await expect(page.locator("body")).not_to_contain_text("pay_browsersale1")
            await expect(page.locator("body")).to_contain_text("pay_browsersale2")

            await page.locator("form[action='/logout'] button").click()
            await page.wait_for_url(base + "/login")
            response = await page.goto(base + "/status.json")
            assert response is not None and response.status == 401
    finally:
        await context.close()
    store = CredentialStore.open(journal)
    assert [a.id for a in store.pending_approvals()] == [second.id]
    actions = [(e.actor, e.action, e.outcome) for e in store.audit_entries()]
    store.close()
    assert ("manager:grace", "refund.approve", "ok") in actions
    assert ("manager:grace", "manager.logout", "ok") in actions


async def test_the_manager_pages_speak_french_to_a_french_browser(
    browser: Any, tmp_path: Path
) -> None:
    """The login form, the manager's page, a refused form and an approval's sentence, in the
    language the browser asks for (the status page's catalogue: gateway/web/locale)."""
    daemon = Daemon(tls_config(tmp_path, NO_ACQUIRER, [slot_name()]), env=fixed_env, environ={})
    journal = tmp_path / "journal.db"
    add_manager(journal, "gaston", "manager")
    store = CredentialStore.open(journal)
    asked = store.request_approval("pay_fr1", 1500, "front-1")
    store.close()
    context = await browser.new_context(ignore_https_errors=True, locale="fr-FR")
    try:
        page = await context.new_page()
        async with running(daemon):
            base = base_url(daemon)
            await page.goto(base + "/login")
            assert await page.locator("html").get_attribute("lang") == "fr-FR"
            await expect(page.locator("button")).to_have_text("Se connecter")
            await page.fill("input[name=name]", "gaston")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button")
            await page.wait_for_url(base + "/")
            await page.locator("header nav a", has_text="Espace du responsable").click()
            await page.wait_for_url(base + "/manager")
            await expect(page.locator("h2").first).to_have_text("Remboursements à approuver")
            close = page.locator("form.close-day")
            await expect(close).to_contain_text("Les caisses sont comptées")
            async with page.expect_navigation():
                await page.evaluate(
                    """(url) => { const form = document.createElement("form");
                       form.method = "post"; form.action = url;
                       document.body.appendChild(form); form.submit(); }""",
                    f"/manager/approvals/{asked.id}",
                )
            await expect(page.locator("p.refused")).to_have_text(
                "La page n'était plus à jour : rien n'a été fait. Rechargez-la et réessayez."
            )
            await page.locator(f"form[action$='/approvals/{asked.id}'] button").click()
            await page.wait_for_url(f"{base}/manager?done=approved&approval={asked.id}")
            await expect(page.locator("p.result")).to_have_text(
                f"Demande de remboursement {asked.id} approuvée."
            )
            assert "Refund" not in await page.locator("body").inner_text()
    finally:
        await context.close()


S = PaymentState


async def _log_in(page: Page, base: str, name: str) -> None:
    await page.goto(base + "/login")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button")
    await page.wait_for_url(base + "/")


async def _card_sale(till: Till, slot: str, amount: int) -> dict[str, Any]:
    """A card sale on lane 1 (the sim slot ``slot``), to its end."""
    status, body = await till.pay(1, amount, currency="EUR")
    assert status == 202, body
    await till.wait_prompt(1, "PRESENT CARD", within=10)
    insert_card(slot)
    try:
        return await till.get(str(body["id"]), wait=15)
    finally:
        drivers_sim.slot(slot).remove()


async def _terminal_ready(till: Till) -> None:
    """Wait (bounded) until lane 2's payment terminal is set up."""
    async with asyncio.timeout(10):
        while (await till.lanes())["lanes"][1]["device"]["state"] != "ready":  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # polls another part's published state over HTTP


async def test_a_manager_clears_what_waits_with_the_page_forms(
    browser: Any, tmp_path: Path
) -> None:
    down = AcquirerHost()
    url = await down.start()
    port = int(url.rsplit(":", 1)[1])
    await down.stop()  # nothing listens: the card approves offline (unable to go online)
    rig = await start_rig("pty-concert-v2", answer_timeout=0.8)
    slot = slot_name()
    config = make_config(
        tmp_path,
        url,
        [],
        http={"host": "127.0.0.1", "port": 0, "tls": True, "status_login": True},
        acquirer={"retry_interval": 0.2},
        timeouts={"transaction": 10.0},
        lanes=[
            {"id": 1, "reader": f"sim://{slot}", "interface": "auto", "pin_pad": "none"},
            {"id": 2, "reader": rig.url},
        ],
    )
    daemon = Daemon(config, env=fixed_env, environ={})
    journal = tmp_path / "journal.db"
    add_manager(journal, "grace", "manager")
    add_manager(journal, "val", "viewer")
    revived = AcquirerHost()
    revived.faults.decline_all = True  # the issuer declines the forwarded sale
    viewer = await browser.new_context(ignore_https_errors=True)  # the self-signed certificate
    manager = await browser.new_context(ignore_https_errors=True)
    try:
        async with running(daemon), pinned_session(daemon, till_token(tmp_path)) as http:
            base = base_url(daemon)
            till = tls_till(http, daemon)
            await _terminal_ready(till)
            rig.faults.cut = 1  # the terminal charges 42.00; its answer never arrives
            status, body = await till.pay(2, 4200, currency="EUR")
            assert status == 202, body
            cut = await till.get(str(body["id"]), wait=15)
            assert cut["state"] == "UNKNOWN", cut
            sale = await _card_sale(till, slot, 4321)
            assert sale["state"] == "STORED_FOR_FORWARDING", sale
            await revived.start(port=port)
            declined_id, cut_id = str(sale["id"]), str(cut["id"])

            async def declined() -> bool:
                return (await daemon.journal.get(declined_id)).state is S.FORWARD_DECLINED

            await wait_until(declined)

            # a viewer sees both lists, and no form but the logout button
            page = await viewer.new_page()
            await _log_in(page, base, "val")
            await page.goto(base + "/manager")
            declined_row = page.locator(f"tr.declined-forward[data-payment='{declined_id}']")
            await expect(declined_row).to_contain_text("€43.21")  # the browser's en-US way
            await expect(declined_row).to_contain_text("476173******0010")
            left_row = page.locator(f"tr.for-manager[data-payment='{cut_id}']")
            await expect(left_row).to_contain_text("€42.00")
            await expect(left_row).to_contain_text("UNKNOWN")
            viewer_forms = await page.locator("form").evaluate_all(
                "forms => forms.map(f => f.getAttribute('action'))"
            )
            assert viewer_forms == ["/logout"]
            assert "4761739001010010" not in await page.content()

            page = await manager.new_page()
            await _log_in(page, base, "grace")
            await page.goto(base + "/manager")
            # a form without the CSRF token, submitted from the page itself: refused
            async with page.expect_navigation() as navigation:
                await page.evaluate(
                    """(url) => { const form = document.createElement("form");
                       form.method = "post"; form.action = url;
                       document.body.appendChild(form); form.submit(); }""",
                    f"/manager/payments/{declined_id}/acknowledge",
                )
            refused = await navigation.value
            assert refused is not None and refused.status == 200  # back on the page
            await page.wait_for_url(re.compile(r"/manager\?error=csrf"))
            await expect(page.locator("p.refused")).to_have_text(
                f"Payment {declined_id}: The page was out of date: nothing was done. "
                "Reload it and try again."
            )
            assert (await daemon.journal.get(declined_id)).state is S.FORWARD_DECLINED

            # acknowledge the declined forward with the page's form
            await page.goto(base + "/manager")
            acknowledge = page.locator(
                f"form[action='/manager/payments/{declined_id}/acknowledge']"
            )
            await acknowledge.locator("input[name=reason]").fill("customer paid cash instead")
            async with page.expect_response(lambda r: r.request.method == "POST") as answer:
                await acknowledge.locator("button").click()
            assert (await answer.value).status == 303  # the contract's form answer
            await page.wait_for_url(re.compile(r"/manager\?done=acknowledged"))
            await expect(page.locator("p.result")).to_have_text(
                f"Payment {declined_id} acknowledged."
            )
            await expect(page.locator(f"tr[data-payment='{declined_id}']")).to_have_count(0)

            # a settle the route refuses (an auth code with "declined"): back to the page,
            # which says which field and that nothing was done
            settle = page.locator(f"form[action='/manager/payments/{cut_id}/settle']")
            await settle.locator("input[name=outcome][value=declined]").check()
            await settle.locator("input[name=auth_code]").fill("A1B2C3")
            await settle.locator("input[name=reason]").fill("terminal receipt unreadable")
            async with page.expect_response(lambda r: r.request.method == "POST") as answer:
                await settle.locator("button").click()
            assert (await answer.value).status == 303
            await page.wait_for_url(re.compile(r"/manager\?error=invalid_request&field=auth_code"))
            await expect(page.locator("p.refused")).to_contain_text(
                f"Payment {cut_id}: The auth code is 1 to 12 letters or digits, given only with"
                " approved"
            )
            assert (await daemon.journal.get(cut_id)).state is S.UNKNOWN

            # settle the terminal's payment from its receipt
            settle = page.locator(f"form[action='/manager/payments/{cut_id}/settle']")
            await settle.locator("input[name=outcome][value=approved]").check()
            await settle.locator("input[name=auth_code]").fill("A1B2C3")
            await settle.locator("input[name=reason]").fill("terminal receipt: 42,00 EUR accepted")
            async with page.expect_response(lambda r: r.request.method == "POST") as answer:
                await settle.locator("button").click()
            assert (await answer.value).status == 303
            await page.wait_for_url(re.compile(r"/manager\?done=settled"))
            await expect(page.locator("p.result")).to_have_text(
                f"Payment {cut_id} settled by hand: COMPLETED."
            )
            await expect(page.locator(f"tr[data-payment='{cut_id}']")).to_have_count(0)

            # close the day: the browser does not send the form until its box is ticked
            close = page.locator("form[action='/manager/days/close']")
            assert not await close.evaluate("form => form.checkValidity()")
            await close.locator("input[name=confirm]").check()
            async with page.expect_response(lambda r: r.request.method == "POST") as answer:
                await close.locator("button").click()
            assert (await answer.value).status == 303
            await page.wait_for_url(re.compile(r"/manager\?done=closed&day=\d+"))
            await expect(page.locator("p.result")).to_contain_text("closed.")

            acknowledged = (await daemon.journal.events(declined_id))[-1]
            settled = await daemon.journal.events(cut_id)
            after = await daemon.journal.get(cut_id)
            day = await daemon.journal.last_day_close()
    finally:
        await viewer.close()
        await manager.close()
        await revived.stop()
        await rig.tpe.stop()
    assert (acknowledged.to_state, acknowledged.actor) == (
        S.DECLINE_ACKNOWLEDGED, "manager:grace")  # fmt: skip
    assert "customer paid cash" in acknowledged.reason
    assert [(e.to_state, e.actor) for e in settled[-2:]] == [
        (S.APPROVED, "manager:grace"), (S.COMPLETED, "manager:grace")]  # fmt: skip
    assert (after.state, after.auth_code) == (S.COMPLETED, "A1B2C3")
    assert day is not None and day.closed_by == "manager:grace"
