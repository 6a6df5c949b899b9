"""Managers on the real daemon over TLS: login and its cookie, CSRF on every form, lockout,
roles, logout, and a refund above a till's limit refused until a manager approves it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.daemon.daemon import Daemon
from gateway.security import CredentialStore
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import (
    acquirer_fixture,
    fixed_env,
    insert_card,
    register_till,
    running,
    slot_name,
)
from tests.gateway.security.tls_support import (
    PASSWORD,
    add_manager,
    base_url,
    csrf_of,
    login,
    pinned_session,
    tls_config,
    tls_till,
)

__all__ = ["acquirer_fixture"]


def _daemon(tmp_path: Path, acquirer: AcquirerHost, slots: list[str] | None = None) -> Daemon:
    assert acquirer.url is not None
    config = tls_config(tmp_path, acquirer.url, slots or [slot_name()])
    return Daemon(config, env=fixed_env, environ={})


async def test_login_sets_a_strict_cookie_and_the_page_needs_it(
    tmp_path: Path, acquirer: AcquirerHost
) -> None:
    daemon = _daemon(tmp_path, acquirer)
    add_manager(tmp_path / "journal.db", "alice", "viewer")
    async with running(daemon), pinned_session(daemon) as browser:
        async with browser.get(f"{base_url(daemon)}/", allow_redirects=False) as response:
            assert (response.status, response.headers["Location"]) == (303, "/login")
        async with browser.get(f"{base_url(daemon)}/status.json") as response:
            assert response.status == 401
        response = await login(browser, daemon, "alice")
        assert response.status == 303
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("__Host-posgw_session=")
        for attribute in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
            assert attribute.lower() in cookie.lower(), attribute
        async with browser.get(f"{base_url(daemon)}/") as response:
            assert response.status == 200 and "<html" in await response.text()
        async with browser.get(f"{base_url(daemon)}/status.json") as response:
            assert response.status == 200
        # a viewer sees, but cannot act, even with the right CSRF token
        csrf = await csrf_of(browser, daemon)
        async with browser.post(
            f"{base_url(daemon)}/manager/approvals/1", data={"csrf": csrf}
        ) as response:  # the page's form: back to the page, which says why (after the 303)
            assert response.status == 200 and str(response.url).endswith("?error=forbidden")
            assert "Only a manager can do this: nothing was done." in await response.text()
        async with browser.post(
            f"{base_url(daemon)}/manager/approvals/1", json={}, headers={"X-CSRF-Token": csrf}
        ) as response:  # a script: the JSON refusal
            assert (response.status, (await response.json())["error"]) == (403, "forbidden")
        # logout needs the CSRF token too, then the session is gone
        async with browser.post(f"{base_url(daemon)}/logout", data={}) as response:
            assert response.status == 403
        async with browser.post(
            f"{base_url(daemon)}/logout", data={"csrf": csrf}, allow_redirects=False
        ) as response:
            assert response.status == 303
        async with browser.get(f"{base_url(daemon)}/status.json") as response:
            assert response.status == 401


async def test_a_form_without_its_csrf_token_does_nothing(
    tmp_path: Path, acquirer: AcquirerHost
) -> None:
    """A form post without the session's CSRF token goes back to the page, which says the
    page was out of date; a script without it gets ``403 csrf``; nothing is approved."""
    daemon = _daemon(tmp_path, acquirer)
    add_manager(tmp_path / "journal.db", "bob", "manager")
    store = CredentialStore.open(tmp_path / "journal.db")
    asked = store.request_approval("pay_x", 9000, "front-1")
    store.close()
    async with running(daemon), pinned_session(daemon) as browser:
        assert (await login(browser, daemon, "bob")).status == 303
        url = f"{base_url(daemon)}/manager/approvals/{asked.id}"
        for form in ({}, {"csrf": "forged"}):
            async with browser.post(url, data=form, allow_redirects=False) as response:
                assert (response.status, response.headers["Location"]) == (
                    303, "/manager?error=csrf")  # fmt: skip
        async with browser.post(url, json={}, headers={"X-CSRF-Token": "forged"}) as response:
            assert (response.status, (await response.json())["error"]) == (403, "csrf")
        # another origin is refused before the CSRF check even runs
        csrf = await csrf_of(browser, daemon)
        evil = {"Origin": "https://evil.example"}
        async with browser.post(url, data={"csrf": csrf}, headers=evil) as response:
            assert response.status == 403
        store = CredentialStore.open(tmp_path / "journal.db")
        assert [a.id for a in store.pending_approvals()] == [asked.id]  # nothing approved
        store.close()


async def test_lockout_after_repeated_failures_per_account_and_address(
    tmp_path: Path, acquirer: AcquirerHost
) -> None:
    daemon = _daemon(tmp_path, acquirer)  # login_max_failures = 3
    add_manager(tmp_path / "journal.db", "carol", "manager")
    add_manager(tmp_path / "journal.db", "dave", "manager")
    async with running(daemon), pinned_session(daemon) as browser:
        statuses = [(await login(browser, daemon, "carol", "wrong password!")).status
                    for _ in range(3)]  # fmt: skip
        assert statuses == [401, 401, 401]
        locked = await login(browser, daemon, "carol", PASSWORD)  # the right one, too late
        assert locked.status == 429 and int(locked.headers["Retry-After"]) > 0
        # the address is locked too: another account from here waits as well
        assert (await login(browser, daemon, "dave", PASSWORD)).status == 429
    store = CredentialStore.open(tmp_path / "journal.db")
    outcomes = [e.outcome for e in store.audit_entries() if e.action == "manager.login"]
    assert outcomes == ["denied", "denied", "locked"]
    assert PASSWORD not in repr(store.audit_entries())
    store.close()


async def _settled_sale(till: Any, slot: str) -> str:
    status, body = await till.pay(1, 2000, reference="S-9")
    assert status == 202, body
    await till.wait_prompt(1, "PRESENT CARD")
    insert_card(slot)
    assert (await till.get(body["id"], wait=10))["state"] == "COMPLETED"
    return str(body["id"])


async def test_a_refund_above_the_limit_waits_for_a_manager(
    tmp_path: Path, acquirer: AcquirerHost
) -> None:
    slot = slot_name()
    daemon = _daemon(tmp_path, acquirer, [slot])
    token = "pgt_" + "b" * 52
    register_till(tmp_path / "journal.db", "front-2", token, refund_limit=500)
    register_till(tmp_path / "journal.db", "no-refunds", "pgt_" + "c" * 52, refunds=False)
    add_manager(tmp_path / "journal.db", "erin", "manager")
    async with running(daemon), pinned_session(daemon, token) as session:
        till = tls_till(session, daemon)
        sale = await _settled_sale(till, slot)
        url = f"{till.base}/api/payments/{sale}/refunds"
        async with session.post(url, json={"amount": 400, "reference": "R-small"}) as response:
            assert response.status == 201  # within the limit
        big = {"amount": 1200, "reference": "R-big"}
        for _ in range(2):  # asked twice: still one approval request, still refused
            async with session.post(url, json=big) as response:
                body = await response.json()
                assert (response.status, body["error"]) == (403, "manager_approval_required")
        approval = body["approval"]
        other = {"Authorization": "Bearer pgt_" + "c" * 52}
        async with session.post(url, json=big, headers=other) as response:
            assert (await response.json())["error"] == "refunds_not_allowed"
        async with pinned_session(daemon) as browser:
            assert (await login(browser, daemon, "erin")).status == 303
            csrf = await csrf_of(browser, daemon)
            async with browser.get(
                f"{base_url(daemon)}/manager", headers={"Accept-Language": "fr-FR"}
            ) as response:
                page = await response.text()
                assert sale in page
                assert "<td>12,00\u00a0€</td>" in page  # the sale's currency, from the journal
            async with browser.post(
                f"{base_url(daemon)}/manager/approvals/{approval}",
                data={"csrf": csrf},
                allow_redirects=False,
            ) as response:
                assert (response.status, response.headers["Location"]) == (
                    303, f"/manager?done=approved&approval={approval}")  # fmt: skip
        async with session.post(url, json=big) as response:
            refund = await response.json()
            assert response.status == 201, refund
        async with session.post(url, json={**big, "reference": "R-big-2"}) as response:
            assert response.status == 403  # one approval, used once
        events = await daemon.journal.events(refund["id"])
        assert events[0].actor == "till:front-2"
    store = CredentialStore.open(tmp_path / "journal.db")
    rows = [(e.actor, e.action, e.outcome) for e in store.audit_entries()]
    assert ("manager:erin", "refund.approve", "ok") in rows
    assert ("till:front-2", "refund", "approval_required") in rows
    assert ("till:front-2", "refund", "COMPLETED") in rows
    assert ("till:no-refunds", "refund", "denied") in rows
    assert store.verify_audit().ok
    store.close()


@pytest.mark.parametrize("change", ["disable", "password"])
async def test_a_disabled_account_or_a_new_password_ends_the_session(
    tmp_path: Path, acquirer: AcquirerHost, change: str
) -> None:
    daemon = _daemon(tmp_path, acquirer)
    add_manager(tmp_path / "journal.db", "frank", "manager")
    async with running(daemon), pinned_session(daemon) as browser:
        assert (await login(browser, daemon, "frank")).status == 303
        async with browser.get(f"{base_url(daemon)}/status.json") as response:
            assert response.status == 200
        store = CredentialStore.open(tmp_path / "journal.db")
        if change == "disable":
            store.disable_manager("frank", actor="test")
        else:
            store.set_password("frank", "a new long password", actor="test")
        store.close()
        async with browser.get(f"{base_url(daemon)}/status.json") as response:
            assert response.status == 401
