"""The day's manager actions through the security part (over TLS, as in production).

A viewer cannot close the day; a manager logged in to the status page closes it from
``/manager/days/close`` with the session's CSRF token and the form's box ticked (the journal
names the manager): a form post goes back to the manager page (303), refused or done, and the
page says which; a JSON caller gets the day's record or the JSON refusal; a form without the
token or the box closes nothing; a till, whatever its token, is refused on ``/api/days/close``
(``403 manager_login_required``); the till's void names the till.
"""

from __future__ import annotations

from pathlib import Path

from gateway.daemon.daemon import Daemon
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import acquirer_fixture, fixed_env, running, slot_name
from tests.gateway.security.tls_support import (
    add_manager,
    base_url,
    csrf_of,
    login,
    pinned_session,
    tls_config,
)

__all__ = ["acquirer_fixture"]


async def test_a_logged_in_manager_closes_the_day_a_till_cannot(
    tmp_path: Path, acquirer: AcquirerHost
) -> None:
    assert acquirer.url is not None
    daemon = Daemon(tls_config(tmp_path, acquirer.url, [slot_name()]), env=fixed_env, environ={})
    add_manager(tmp_path / "journal.db", "vera", "viewer")
    add_manager(tmp_path / "journal.db", "mona", "manager")
    async with running(daemon):
        base = base_url(daemon)
        async with pinned_session(daemon) as viewer:
            assert (await login(viewer, daemon, "vera")).status == 303
            csrf = await csrf_of(viewer, daemon)
            form = {"csrf": csrf, "confirm": "yes"}
            async with viewer.post(
                f"{base}/manager/days/close", data=form, allow_redirects=False
            ) as r:  # the page's form, refused: back to the page, which says why
                assert (r.status, r.headers["Location"]) == (303, "/manager?error=forbidden")
            async with viewer.post(
                f"{base}/manager/days/close", json={}, headers={"X-CSRF-Token": csrf}
            ) as r:  # a script: the JSON refusal
                assert (r.status, (await r.json())["error"]) == (403, "forbidden")
        async with pinned_session(daemon) as manager:
            assert (await login(manager, daemon, "mona")).status == 303
            async with manager.post(
                f"{base}/manager/days/close", data={"confirm": "yes"}, allow_redirects=False
            ) as r:
                assert (r.status, r.headers["Location"]) == (303, "/manager?error=csrf")
            async with manager.post(f"{base}/manager/days/close", json={}) as r:
                assert (r.status, (await r.json())["error"]) == (403, "csrf")
            csrf = await csrf_of(manager, daemon)
            # the form without its box ticked closes nothing: back to the page, which says so
            async with manager.post(
                f"{base}/manager/days/close", data={"csrf": csrf}, allow_redirects=False
            ) as r:
                location = r.headers["Location"]
                assert (r.status, location) == (303, "/manager?error=invalid_request&field=confirm")
            async with manager.get(f"{base}{location}") as page:
                assert "Tick the box to confirm" in await page.text()
            # a path typed with a card number: refused, and the number goes nowhere
            settle = {"csrf": csrf, "outcome": "declined", "reason": "receipt says declined"}
            async with manager.post(
                f"{base}/manager/payments/4761739001010010/settle", data=settle,
                allow_redirects=False,
            ) as r:
                assert (r.status, r.headers["Location"]) == (303, "/manager?error=not_found")
            assert await _last_close(daemon) is None
            # the manager page's form: 303 back to the page, which says the day closed
            form = {"csrf": csrf, "confirm": "yes"}
            async with manager.post(
                f"{base}/manager/days/close", data=form, allow_redirects=False
            ) as r:
                assert (r.status, r.headers["Location"]) == (303, "/manager?done=closed&day=1")
            async with manager.get(f"{base}{r.headers['Location']}") as page:
                assert "Day 1 closed." in await page.text()
            # a script with the session: the JSON answer, as the contract documents it
            async with manager.post(
                f"{base}/manager/days/close", json={}, headers={"X-CSRF-Token": csrf}
            ) as r:
                day = await r.json()
                assert r.status == 201, day
            assert (day["day"], day["closed_by"]) == (2, "manager:mona")
            # a manager's browser has no till token: the till API is not its way in
            async with manager.post(f"{base}/api/days/close", json={}) as r:
                assert r.status == 401
    closed = await _last_close(daemon)
    assert closed == "manager:mona"


async def _last_close(daemon: Daemon) -> str | None:
    import sqlite3

    conn = sqlite3.connect(daemon.config.journal.path)
    try:
        row = conn.execute("SELECT closed_by FROM days ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])
