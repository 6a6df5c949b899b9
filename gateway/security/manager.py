"""Manager login, logout and refund approvals on the status page's listener (aiohttp routes).

====================================  =========================================================
``GET /login``                        the login form
``POST /login``                       ``name``, ``password`` (form) → 303 to ``/`` with the
                                      session cookie; 401 wrong; 429 locked (``Retry-After``)
``POST /logout``                      ends the session (CSRF) → 303 to ``/login``
``GET /manager``                      what waits for a manager: refund approvals, declined
                                      forwards, payment-terminal payments to settle by hand,
                                      and the day close (viewer and manager see the lists; the
                                      forms are the manager's: :mod:`.manager_work`)
``POST /manager/approvals/{id}``      a manager approves (CSRF) → 303 to
                                      ``/manager?done=approved&approval=ID``
====================================  =========================================================

The other forms of ``/manager`` post to the till part's manager routes
(``/manager/payments/{id}/acknowledge``, ``/manager/payments/{id}/settle``,
``/manager/days/close``), which answer a form post 303 back to ``/manager?done=...``. A form
post that is refused (by a route, or here: CSRF, role) goes back there too, as
``/manager?error=CODE`` (:mod:`.page_forms`); a form post whose session is gone goes to
``/login``. A JSON caller of the same routes gets the JSON answers below.

:func:`page_auth` guards every page route except ``/login`` (the till API under ``/api/`` has
its own credential): no live session → 303 to ``/login`` (401 for ``/status.json`` and
``/metrics``, which a script reads); a state-changing request needs the session's CSRF token
(form field ``csrf`` or header ``X-CSRF-Token``) → else 403 ``csrf``; acting needs the
``manager`` role → else 403 ``forbidden``. Cookie: ``Secure`` (on TLS), ``HttpOnly``,
``SameSite=Strict``, ``Path=/``, no ``Max-Age`` (the server ends it). Logins, lockouts, logouts
and approvals are audited; a password is never logged, audited or echoed.
"""

from __future__ import annotations

import datetime
import html
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.security.errors import UnknownPrincipal
from gateway.security.manager_work import (
    ManagerWork,
    WorkProvider,
    render_close_day,
    render_work,
    result_message,
)
from gateway.security.page_forms import (
    back_to_manager_page,
    error_back_to_manager_page,
    from_a_form,
)
from gateway.security.page_words import N_, PageWords, WordsFor, english_words
from gateway.security.service import SecurityService
from gateway.security.sessions import LoginThrottle, Session, SessionStore
from gateway.security.store import RefundApproval

__all__ = ["SESSION", "ManagerPages", "page_auth"]

log = logging.getLogger("gateway.security.manager")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The live session of a page request.
SESSION: web.RequestKey[Session] = web.RequestKey("posgw_session", Session)

_PUBLIC = frozenset({"/login"})
_MACHINE = frozenset({"/status.json", "/metrics"})
_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _POLICY,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # not no-referrer: with it a browser posts the forms with "Origin: null"
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _page(
    title: str, body: str, words: PageWords, status: int = 200, **headers: str
) -> web.Response:
    text = (
        f'<!doctype html><html lang="{html.escape(words.tag)}"><head><meta charset=utf-8>'
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
        f"{body}</body></html>"
    )
    return web.Response(
        text=text, content_type="text/html", status=status, headers={**_HEADERS, **headers}
    )


def _json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=_HEADERS)


class ManagerPages:
    """The login and approval routes (see the module docstring).

    Args:
        service: Credentials, approvals and the audit log.
        sessions: The server-side sessions.
        throttle: The login lockout.
        secure_cookie: Mark the cookie ``Secure`` (the listener has TLS).
        work: What waits for a manager besides refund approvals (the daemon's provider:
            declined forwards, payment-terminal payments left for the manager); None: the
            page says it is not available.
        words: The request -> its language (the daemon's: the status page's catalogue and
            locale choice, :mod:`.page_words`); English by default.
    """

    def __init__(
        self,
        service: SecurityService,
        sessions: SessionStore,
        throttle: LoginThrottle,
        *,
        secure_cookie: bool,
        work: WorkProvider | None = None,
        words: WordsFor = english_words,
    ) -> None:
        self.service = service
        self.work = work
        self.words = words
        self.sessions = sessions
        self.throttle = throttle
        self.secure = secure_cookie
        self.cookie = "__Host-posgw_session" if secure_cookie else "posgw_session"

    def add_routes(self, app: web.Application) -> None:
        """Mount the routes and the :func:`page_auth` middleware's helpers on ``app``."""
        app.router.add_get("/login", self.login_form)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/manager", self.approvals)
        app.router.add_post("/manager/approvals/{id}", self.approve)

    def _session(self, request: web.Request) -> Session | None:
        return self.sessions.get(request.cookies.get(self.cookie))

    async def login_form(self, request: web.Request) -> web.Response:
        """``GET /login``."""
        words = self.words(request)
        return _page(_title(words, N_("log in")), _login_form(words), words)

    async def login(self, request: web.Request) -> web.Response:
        """``POST /login``: check the lockout, then the password (Argon2id)."""
        form = await request.post()
        name, password = str(form.get("name", ""))[:64], str(form.get("password", ""))[:1024]
        address = request.remote or "?"
        words = self.words(request)
        left = self.throttle.locked_for(name, address)
        if left > 0:
            later = html.escape(words.gettext(N_("Too many failed logins. Try again later.")))
            return _page(
                _title(words, N_("locked")),
                f"<p>{later}</p>",
                words,
                status=429,
                **{"Retry-After": str(int(left) + 1)},
            )
        account = await self.service.check_password(name, password) if name else None
        if account is None:
            locked = self.throttle.failed(name, address)
            await self.service.record(
                actor=f"client:{address}",
                action="manager.login",
                subject=name if _printable(name) else "?",
                outcome="locked" if locked else "denied",
            )
            wrong = html.escape(words.gettext(N_("Wrong name or password.")))
            return _page(
                _title(words, N_("log in")), f"<p>{wrong}</p>{_login_form(words)}", words, 401
            )
        self.throttle.succeeded(name)
        session = self.sessions.create(account.name, account.role, account.changed_ms)
        await self.service.record(
            actor=account.actor, action="manager.login", subject=account.name, outcome="ok"
        )
        response = web.HTTPSeeOther("/")
        response.set_cookie(
            self.cookie,
            session.id,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="Strict",
        )
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        """``POST /logout`` (CSRF checked by :func:`page_auth`)."""
        session = request[SESSION]
        self.sessions.end(session.id)
        await self.service.record(
            actor=session.actor, action="manager.logout", subject=session.manager, outcome="ok"
        )
        response = web.HTTPSeeOther("/login")
        response.del_cookie(self.cookie, path="/")
        raise response

    async def approvals(self, request: web.Request) -> web.Response:
        """``GET /manager``: refunds to approve, then the rest waiting for a manager."""
        session = request[SESSION]
        words = self.words(request)
        tr = words.gettext
        pending = await self.service.pending_approvals()
        work = await self._work([item.sale_id for item in pending])
        currencies = {} if work is None else work.sale_currencies
        nothing = html.escape(tr(N_("Nothing waits for approval.")))
        rows = "".join(
            _approval_row(item, session, words, currencies.get(item.sale_id))
            for item in pending
        ) or f"<tr><td colspan=5>{nothing}</td></tr>"
        who = tr(N_("Logged in as %(name)s (%(role)s).")) % {
            "name": session.manager, "role": session.role}  # fmt: skip
        heads = "".join(
            f"<th>{html.escape(tr(h))}</th>"
            for h in (N_("Sale"), N_("Amount"), N_("Till"), N_("Asked"))
        )
        title = html.escape(tr(N_("Refunds to approve")))
        log_out = html.escape(tr(N_("Log out")))
        body = (
            f"<p>{html.escape(who)}</p>"
            f"{result_message(request.query, words)}"
            f"<h2>{title}</h2>"
            f"<table id=approvals><tr>{heads}<th></th></tr>{rows}</table>"
            f"{render_work(work, session, words)}"
            f"{render_close_day(session, words)}"
            f"<form method=post action=/logout>{_csrf_field(session)}"
            f"<button>{log_out}</button></form>"
        )
        return _page(_title(words, N_("waiting for a manager")), body, words)

    async def _work(self, sale_ids: list[str]) -> ManagerWork | None:
        if self.work is None:
            return None
        try:
            return await self.work(sale_ids)
        except Exception:  # the approvals still show; the lists say they are not available
            log.exception("the manager page could not read what waits for a manager")
            return None

    async def approve(self, request: web.Request) -> web.Response:
        """``POST /manager/approvals/{id}`` (manager role and CSRF checked by page_auth)."""
        session = request[SESSION]
        raw = request.match_info["id"]
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
            return _json_error(400, "invalid_request", "expected an approval number")
        try:
            approval = await self.service.approve(int(raw), manager=session.manager)
        except UnknownPrincipal:
            return _json_error(404, "not_found", "no such pending approval")
        log.info("refund of %s approved by manager %s", approval.sale_id, session.manager)
        if request.content_type == "application/json":
            return web.json_response({"approved": approval.id, "sale": approval.sale_id})
        raise back_to_manager_page(done="approved", approval=str(approval.id))


def _printable(text: str) -> bool:
    return bool(text) and text.isascii() and text.isprintable() and len(text) <= 32


def _csrf_field(session: Session) -> str:
    return f'<input type=hidden name=csrf value="{html.escape(session.csrf)}">'


def _title(words: PageWords, what: str) -> str:
    return f"posgw: {words.gettext(what)}"


def _approval_row(
    item: RefundApproval, session: Session, words: PageWords, currency: str | None
) -> str:
    approve = html.escape(words.gettext(N_("Approve")))
    button = (
        f"<form method=post action=/manager/approvals/{item.id}>{_csrf_field(session)}"
        f"<button>{approve}</button></form>"
        if session.role == "manager"
        else ""
    )
    # the sale's currency from the provider; unknown (the sale is gone): the minor units
    amount = str(item.amount) if currency is None else words.money(item.amount, currency)
    asked = words.datetime(datetime.datetime.fromtimestamp(item.requested_ms / 1000, datetime.UTC))
    return (
        f"<tr><td>{html.escape(item.sale_id)}</td><td>{html.escape(amount)}</td>"
        f"<td>{html.escape(item.till)}</td><td>{html.escape(asked)}</td><td>{button}</td></tr>"
    )


def _login_form(words: PageWords) -> str:
    tr = words.gettext
    name, password = html.escape(tr(N_("Name"))), html.escape(tr(N_("Password")))
    log_in = html.escape(tr(N_("Log in")))
    return (
        "<form method=post action=/login>"
        f"<label>{name} <input name=name autocomplete=username required></label> "
        f"<label>{password} <input name=password type=password"
        " autocomplete=current-password required></label> "
        f"<button>{log_in}</button></form>"
    )


def page_auth(pages: ManagerPages) -> Middleware:
    """Sessions, CSRF and roles on every page route (see the module docstring)."""

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/api/") or path in _PUBLIC:
            return await handler(request)
        session = pages._session(request)
        if session is not None:
            account = await pages.service.manager(session.manager)
            if account is None or (account.role, account.changed_ms) != (
                session.role,
                session.account_changed_ms,
            ):  # disabled, or its role or password changed, since this login
                pages.sessions.end(session.id)
                session = None
        form = from_a_form(request)
        if session is None:
            if form:  # the page's form, its session gone: log in again
                raise web.HTTPSeeOther("/login")
            if path in _MACHINE or request.method != "GET":
                return _json_error(401, "unauthorized", "log in at /login first")
            raise web.HTTPSeeOther("/login")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            token = request.headers.get("X-CSRF-Token")
            if token is None and request.content_type != "application/json":
                token_value = (await request.post()).get("csrf")
                token = token_value if isinstance(token_value, str) else None
            refusal = None
            if not session.csrf_ok(token):
                refusal = _json_error(403, "csrf", "missing or wrong CSRF token")
            elif path != "/logout" and session.role != "manager":
                refusal = _json_error(403, "forbidden", "a viewer cannot act")
            if refusal is not None:
                if form:
                    raise error_back_to_manager_page(request, refusal.text)
                return refusal
        request[SESSION] = session
        if not form:
            return await handler(request)
        # a form of /manager: whatever the route answers goes back to the page (page_forms)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            raise error_back_to_manager_page(request, exc.text) from None
        if response.status >= 400 and isinstance(response, web.Response):
            raise error_back_to_manager_page(request, response.text)
        return response

    return auth

