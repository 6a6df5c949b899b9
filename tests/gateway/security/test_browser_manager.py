"""A manager in a real browser (headless chromium, tests.fixtures.browser) against the real
daemon over TLS: redirected to the login form, logged in with a strict ``__Host-`` cookie,
approves a refund with the page's own form (its CSRF token), a token-less form post from the
page is refused, and logout ends the session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from gateway.daemon.daemon import Daemon
from gateway.security import CredentialStore
from tests.gateway.daemon_support import fixed_env, running, slot_name
from tests.gateway.security.tls_support import PASSWORD, add_manager, base_url, tls_config

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

            await page.goto(base + "/manager")
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
            assert refused is not None and refused.status == 403
            assert "csrf" in await page.content()
            await page.goto(base + "/manager")
            # the page's own form carries the token
            await page.locator(f"form[action$='/approvals/{first.id}'] button").click()
            await page.wait_for_url(base + "/manager")
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
