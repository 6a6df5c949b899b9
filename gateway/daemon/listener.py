"""The daemon's HTTP listener with its security wired in (docs/security.md).

One :class:`Listener` per daemon run builds the aiohttp application with its middlewares, in
this order: the connection limiter's busy marker, the Host/Origin/Content-Type guard, the till
credential on ``/api/``, and (with ``[http] status_login``) manager sessions, CSRF and roles on
every page. It mounts the login and approval pages, then listens with TLS (the configured
certificate, or a self-signed one made beside the journal at first start) behind the
accept-level connection caps. aiohttp's own bounds come from ``[http]``: ``client_max_size``
(``max_body``) and ``keepalive_timeout`` (``idle_timeout``, which also bounds the wait for a
first request). Connection-error logs of aiohttp and asyncio pass a rate limiter.
"""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.daemon.config import DaemonConfig
from gateway.security.guard import HostPolicy, request_guard, till_auth
from gateway.security.inputs import BODY_TIMEOUT
from gateway.security.limits import ConnectionLimiter, LimitedSite, RateLimitedLog
from gateway.security.manager import ManagerPages, page_auth
from gateway.security.manager_work import WorkProvider
from gateway.security.page_words import PageWords, WordsFor
from gateway.security.service import SECURITY, SecurityService
from gateway.security.sessions import LoginThrottle, SessionStore
from gateway.security.tls import ensure_self_signed, fingerprint, server_context

__all__ = ["Listener", "tls_files"]

log = logging.getLogger("gateway.daemon.listener")
#: The shop's time zone (the machine's), as for the status page.
_ZONE = datetime.now().astimezone().tzinfo or UTC

#: Loggers whose per-connection errors a flood would multiply.
NOISY_LOGGERS = ("aiohttp.server", "aiohttp.access", "aiohttp.web", "asyncio")


def tls_files(config: DaemonConfig) -> tuple[Path, Path]:
    """The listener's certificate and key: configured, or ``http.crt``/``http.key`` beside
    the journal (made at first start)."""
    http = config.http
    if http.cert_file is not None and http.key_file is not None:
        return http.cert_file, http.key_file
    directory = config.journal.path.parent
    return directory / "http.crt", directory / "http.key"


def page_words(locale: str | None) -> WordsFor:
    """The manager pages' language per request: the status page's catalogue and choice
    (``[http] locale``, else the browser's Accept-Language; gateway/web/i18n.py)."""

    def words(request: web.Request) -> PageWords:
        from gateway.web.i18n import PageLocale, choose_locale  # Babel: at the first page

        chosen = choose_locale(request.headers.get("Accept-Language"), override=locale)
        return PageLocale(chosen, _ZONE)

    return words


class Listener:
    """The till API's and status page's listener (see the module docstring).

    Args:
        config: The daemon's configuration.
        security: Credentials, approvals and the audit log.
        work: What waits for a manager, for the manager page (declined forwards, payment-
            terminal payments left for the manager: :mod:`gateway.daemon.manager_work`).
    """

    def __init__(
        self, config: DaemonConfig, security: SecurityService, *, work: WorkProvider | None = None
    ) -> None:
        self.config = config
        self.security = security
        http = config.http
        self.scheme = "https" if http.tls else "http"
        self.limiter = ConnectionLimiter(
            per_client=http.max_connections_per_client, total=http.max_connections
        )
        self.policy = HostPolicy(
            [*http.allowed_hosts, socket.gethostname()], http.host, self.scheme, http.port
        )
        sec = config.security
        self.sessions = SessionStore(idle=sec.session_idle, lifetime=sec.session_lifetime)
        self.throttle = LoginThrottle(
            max_failures=sec.login_max_failures,
            window=sec.login_window,
            cooldown=sec.login_cooldown,
        )
        self.pages = ManagerPages(
            security, self.sessions, self.throttle, secure_cookie=http.tls, work=work,
            words=page_words(http.locale),
        )  # fmt: skip
        self.fingerprint: str | None = None
        self.port: int | None = None
        self._log_filter = RateLimitedLog()
        self._site: LimitedSite | None = None

    def application(self) -> web.Application:
        """An application with the security middlewares and the manager pages mounted."""
        http = self.config.http
        middlewares: list[Middleware] = [
            self.limiter.middleware,
            request_guard(self.policy),
            till_auth(self.security),
        ]
        if http.status_login:
            middlewares.append(page_auth(self.pages))
        app = web.Application(client_max_size=http.max_body, middlewares=middlewares)
        app[SECURITY] = self.security
        app[BODY_TIMEOUT] = http.body_timeout
        if http.status_login:
            self.pages.add_routes(app)
        return app

    def runner(self, app: web.Application) -> web.AppRunner:
        """The app runner with the configured idle time-out."""
        return web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            keepalive_timeout=self.config.http.idle_timeout,
        )

    async def start(self, runner: web.AppRunner) -> int:
        """Listen; return the bound port.

        Raises:
            gateway.security.TlsSetupError: The certificate or key cannot be made or used.
            OSError: The address cannot be bound.
        """
        http = self.config.http
        context = None
        if http.tls:
            cert, key = tls_files(self.config)
            if http.cert_file is None and ensure_self_signed(
                cert, key, common_name=self.config.shop, names=self._names()
            ):
                log.info("made a self-signed certificate %s for the till API", cert)
            context = server_context(cert, key, client_ca_file=http.client_ca_file)
            self.fingerprint = fingerprint(cert)
            log.info("till API certificate SHA-256 fingerprint: %s", self.fingerprint)
        site = LimitedSite(
            runner,
            http.host,
            http.port,
            limiter=self.limiter,
            ssl_context=context,
            handshake_timeout=http.idle_timeout,
        )
        await site.start()
        self._site = site
        self.port = site.port
        self.policy.port = site.port
        for name in NOISY_LOGGERS:
            logging.getLogger(name).addFilter(self._log_filter)
        return site.port

    def stop(self) -> None:
        """Remove the log filters (the runner's cleanup closes the site)."""
        for name in NOISY_LOGGERS:
            logging.getLogger(name).removeFilter(self._log_filter)

    def _names(self) -> list[str]:
        names = ["localhost", "127.0.0.1", "::1", *self.config.http.allowed_hosts]
        host = self.config.http.host
        if host not in ("0.0.0.0", "::"):  # noqa: S104 (wildcards are not names)
            names.append(host)
        names.append(socket.gethostname())
        return names
