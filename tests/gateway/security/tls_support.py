"""Helpers of the security daemon tests: the daemon on a real TLS listener, pinned clients.

* :func:`tls_config`: ``make_config`` with TLS (a self-signed certificate made at first start),
  manager logins on, and the lockout and limits the tests need.
* :func:`pinned_session`: an aiohttp session that trusts exactly the daemon's certificate
  (its SHA-256 fingerprint, as a till pins it), optionally sending a till token.
* :func:`add_manager`, :func:`login`, :func:`csrf_of`: a manager account and its session.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from gateway.daemon.daemon import Daemon
from gateway.security import CredentialStore
from tests.gateway.daemon_support import Till, make_config

PASSWORD = "manager password 1"


def tls_config(
    tmp_path: Path, acquirer_url: str, slots: list[str], **http: Any
) -> Any:
    """A daemon configuration with TLS, logins, a 3-failure lockout."""
    return make_config(
        tmp_path,
        acquirer_url,
        slots,
        http={"host": "127.0.0.1", "port": 0, "tls": True, "status_login": True, **http},
        security={"login_max_failures": 3, "login_cooldown": 600},
    )


@contextlib.asynccontextmanager
async def pinned_session(
    daemon: Daemon, token: str | None = None
) -> AsyncIterator[aiohttp.ClientSession]:
    """A session pinned to the daemon's certificate (and sending ``token`` when given)."""
    assert daemon.tls_fingerprint is not None
    digest = bytes.fromhex(daemon.tls_fingerprint.replace(":", ""))
    connector = aiohttp.TCPConnector(ssl=aiohttp.Fingerprint(digest))
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1 (an address, not a name)
    async with aiohttp.ClientSession(connector=connector, headers=headers, cookie_jar=jar) as s:
        yield s


def base_url(daemon: Daemon) -> str:
    """``https://127.0.0.1:PORT``."""
    return f"https://127.0.0.1:{daemon.http_port}"


def tls_till(session: aiohttp.ClientSession, daemon: Daemon) -> Till:
    """The till client over TLS."""
    till = Till(session, daemon.http_port or 0)
    till.base = base_url(daemon)
    return till


def add_manager(journal: Path, name: str, role: str = "manager") -> None:
    """A manager account (as ``posgw manager add`` makes it)."""
    store = CredentialStore.open(journal)
    try:
        store.add_manager(name, PASSWORD, role=role, actor="test")  # type: ignore[arg-type]
    finally:
        store.close()


async def login(
    session: aiohttp.ClientSession, daemon: Daemon, name: str, password: str = PASSWORD
) -> aiohttp.ClientResponse:
    """POST the login form (redirects not followed); the response."""
    async with session.post(
        f"{base_url(daemon)}/login",
        data={"name": name, "password": password},
        allow_redirects=False,
    ) as response:
        await response.read()
        return response


async def csrf_of(session: aiohttp.ClientSession, daemon: Daemon) -> str:
    """The session's CSRF token, read from the approvals page's forms."""
    async with session.get(f"{base_url(daemon)}/manager") as response:
        assert response.status == 200, await response.text()
        match = re.search(r'name=csrf value="([^"]+)"', await response.text())
    assert match is not None
    return match.group(1)
