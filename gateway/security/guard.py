"""The HTTP listener's request checks, as aiohttp middlewares (docs/security.md).

In this order, for every request:

1. **Host** (every method): the ``Host`` header's name must be one the gateway answers to:
   the configured ``[http] allowed_hosts``, the listener's own address and the machine's host
   name, ``localhost`` and the loopback addresses, or the address the connection arrived on.
   Anything else is ``421 unknown_host`` (RFC 9110, 15.5.20): a page on ``evil.example`` whose
   name an attacker re-pointed at the gateway's address (DNS rebinding) reaches a listener that
   refuses it.
2. **Origin** (POST, PUT, PATCH, DELETE): a present ``Origin`` must be the listener's own
   (scheme, allowed host or arrival address, port); ``Sec-Fetch-Site: cross-site`` or
   ``same-site`` is refused too (``403 cross_origin``). A browser always sends ``Origin`` on
   a cross-origin POST (WHATWG Fetch, 3.2); a till sends none. ``Origin: null`` (what a
   browser sends for a form on a ``no-referrer`` page) passes only with ``Sec-Fetch-Site:
   same-origin``, a header page scripts cannot set.
3. **Content-Type** (same methods): ``application/json`` under ``/api/``, form or JSON
   elsewhere; anything else (``text/plain``, the one a cross-site form or ``fetch`` may send
   without a preflight) is ``415 unsupported_media_type``.
4. **Till credential** (every ``/api/`` route): ``Authorization: Bearer <token>`` of an active
   till, or a client certificate (verified by the TLS layer against ``[http] client_ca_file``)
   bound to an active till with ``posgw till add --cert``; else ``401`` with
   ``WWW-Authenticate: Bearer`` (RFC 6750, 3). Both given and naming different tills: 401. The
   till is then ``request[TILL]``.

Errors are the till API's JSON shape ``{"error": CODE, "message": TEXT}``; nothing echoes a
header's value.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.security.page_forms import FORM_TYPES
from gateway.security.store import TillCredential

__all__ = [
    "TILL",
    "HostPolicy",
    "TillAuthenticator",
    "host_name",
    "request_guard",
    "requesting_till",
    "till_auth",
]

log = logging.getLogger("gateway.security.guard")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Where the authenticated till is kept on a request.
TILL: web.RequestKey[TillCredential] = web.RequestKey("posgw_till", TillCredential)

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _fail(
    status: type[web.HTTPException], code: str, message: str, **headers: str
) -> web.HTTPException:
    body = json.dumps({"error": code, "message": message})
    return status(text=body, content_type="application/json", headers=headers or None)


def host_name(header: str) -> str | None:
    """The host name of a ``Host`` header (lower case, no port, no IPv6 brackets), or None."""
    text = header.strip().lower()
    if not text or any(c in text for c in "/@ \t\\"):
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (text[end + 1 :] and not text[end + 1 :].startswith(":")):
            return None
        return text[1:end]
    name, _, port = text.partition(":")
    if port and not port.isascii():
        return None
    return name.rstrip(".") or None


class HostPolicy:
    """Which host names and origins the listener answers to.

    Args:
        allowed: Configured names and addresses (``[http] allowed_hosts``).
        listen_host: The address the listener binds (added unless it is a wildcard).
        scheme: ``https`` or ``http`` (origins must use it).
        port: The listener's port (origins must use it; set after binding port 0).
    """

    def __init__(self, allowed: Iterable[str], listen_host: str, scheme: str, port: int) -> None:
        names = {name.lower().rstrip(".").strip("[]") for name in allowed}
        names.update(_LOOPBACK)
        if listen_host not in ("0.0.0.0", "::", ""):  # noqa: S104 (a wildcard names no host)
            names.add(listen_host.lower().strip("[]"))
        self.names = frozenset(names)
        self.scheme = scheme
        self.port = port

    def host_ok(self, header: str | None, local_address: str | None = None) -> bool:
        """True when the ``Host`` header names this gateway: an allowed name, or the very
        address the connection arrived on (a till that reaches a wildcard listener by IP; a
        rebound name is never an address)."""
        if header is None:
            return False
        name = host_name(header)
        if name is None:
            return False
        return name in self.names or (local_address is not None and name == local_address)

    def origin_ok(self, origin: str, local_address: str | None = None) -> bool:
        """True when ``origin`` is the listener's own (scheme, allowed host or the arrival
        address, port)."""
        try:
            parts = urlsplit(origin)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return False
        host = (parts.hostname or "").lower()
        known = host in self.names or (local_address is not None and host == local_address)
        return parts.scheme == self.scheme and known and port == self.port


def is_loopback(address: str) -> bool:
    """True for ``localhost`` and loopback addresses."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def request_guard(policy: HostPolicy) -> Middleware:
    """The Host, Origin and Content-Type middleware (points 1-3 of the module docstring)."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        sockname = None if transport is None else transport.get_extra_info("sockname")
        local = str(sockname[0]).lower() if isinstance(sockname, tuple) and sockname else None
        if not policy.host_ok(request.headers.get("Host"), local):
            raise _fail(
                web.HTTPMisdirectedRequest, "unknown_host", "this gateway has no such name"
            )
        if request.match_info.http_exception is not None:  # no such route: 404/405 as usual
            return await handler(request)
        if request.method in _UNSAFE:
            origin = request.headers.get("Origin")
            fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
            # a browser sends "Origin: null" for a form of a no-referrer page; the browser-set
            # Sec-Fetch-Site then says whether it came from this origin
            opaque_but_ours = origin == "null" and fetch_site == "same-origin"
            if origin is not None and not opaque_but_ours and not policy.origin_ok(origin, local):
                raise _fail(web.HTTPForbidden, "cross_origin", "cross-origin request refused")
            if fetch_site in ("cross-site", "same-site"):
                raise _fail(web.HTTPForbidden, "cross_origin", "cross-site request refused")
            kind = request.content_type.lower()
            api = request.path.startswith("/api/")
            allowed = kind == "application/json" or (not api and kind in FORM_TYPES)
            if not allowed:
                raise _fail(
                    web.HTTPUnsupportedMediaType,
                    "unsupported_media_type",
                    "expected application/json" if api else "expected a form or JSON",
                )
        return await handler(request)

    return guard


class TillAuthenticator(Protocol):
    """What :func:`till_auth` needs: the till of a token or a client certificate (the daemon's
    SecurityService)."""

    async def till_for(self, token: str) -> TillCredential | None:
        """The active till holding ``token``."""
        ...

    async def till_for_certificate(self, sha256: str) -> TillCredential | None:
        """The active till bound to the client certificate with this SHA-256."""
        ...


def client_certificate_sha256(request: web.Request) -> str | None:
    """SHA-256 (hex) of the client certificate the TLS layer verified, or None."""
    transport = request.transport
    ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return None if not der else hashlib.sha256(der).hexdigest()


def _unauthorized(message: str, *, invalid: bool) -> web.HTTPException:
    challenge = 'Bearer realm="posgw"' + (', error="invalid_token"' if invalid else "")
    return _fail(
        web.HTTPUnauthorized, "unauthorized", message, **{"WWW-Authenticate": challenge}
    )


def till_auth(credentials: TillAuthenticator) -> Middleware:
    """The till credential middleware (point 4 of the module docstring)."""

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        fingerprint = client_certificate_sha256(request)
        by_certificate = (
            None if fingerprint is None else await credentials.till_for_certificate(fingerprint)
        )
        header = request.headers.get("Authorization")
        if header is None:
            if by_certificate is None:
                raise _unauthorized(
                    "a till credential is required (Authorization: Bearer, or a client "
                    "certificate bound to a till)",
                    invalid=fingerprint is not None,
                )
            request[TILL] = by_certificate
            return await handler(request)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("expected Authorization: Bearer <token>", invalid=False)
        till = await credentials.till_for(token.strip())
        if till is None:
            raise _unauthorized("unknown or revoked till credential", invalid=True)
        if by_certificate is not None and by_certificate.name != till.name:
            raise _unauthorized("the token and the certificate name different tills", invalid=True)
        request[TILL] = till
        return await handler(request)

    return auth


def requesting_till(request: web.Request) -> TillCredential:
    """The till :func:`till_auth` authenticated (fail closed: none is a 401)."""
    till: TillCredential | None = request.get(TILL)
    if till is None:
        raise _fail(
            web.HTTPUnauthorized,
            "unauthorized",
            "a till credential is required (Authorization: Bearer)",
            **{"WWW-Authenticate": 'Bearer realm="posgw"'},
        )
    return till
