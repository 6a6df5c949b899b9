"""Who may do what on the till API's day routes: one small authorisation hook.

Every money move names who asked for it (ARCHITECTURE.md). The day routes (void, day close,
acknowledging a declined forward) call an :class:`Authorise` hook with the role the action
needs and get back the actor to journal (``till``, ``manager:alice``), or the hook raises an
HTTP error (401/403 with the till API's JSON body).

Until the manager login with roles and CSRF (issue 11) is connected, the daemon uses
:func:`provisional`: till actions are allowed as ``till`` (like the other till routes today) and
manager actions are refused with ``403 manager_login_required``; ``posgw close-day`` closes the
day from the shop's box instead. The lead connects the login by setting
:attr:`gateway.daemon.daemon.Daemon.authorise`.
"""

from __future__ import annotations

from typing import Literal, Protocol

from aiohttp import web

from gateway.security.guard import TILL
from gateway.security.manager import SESSION
from gateway.till.jsonio import error

__all__ = ["Authorise", "Role", "allow_as", "provisional", "secured"]

Role = Literal["till", "manager"]


class Authorise(Protocol):
    """``await authorise(request, "manager")`` -> the actor, or raises an HTTP error."""

    async def __call__(self, request: web.Request, role: Role) -> str: ...


async def provisional(request: web.Request, role: Role) -> str:
    """Till actions as ``till``; manager actions refused until the manager login is connected."""
    if role == "till":
        return "till"
    raise error(
        web.HTTPForbidden,
        "manager_login_required",
        "this action needs a manager; the manager login is not connected on this gateway",
    )


async def secured(request: web.Request, role: Role) -> str:
    """The security part's answer: the till's or the logged-in manager's actor, or 401/403."""
    if role == "till":
        till = request.get(TILL)
        if till is None:
            raise error(web.HTTPUnauthorized, "unauthorized", "a till credential is required")
        return str(till.actor)
    session = request.get(SESSION)
    if session is None or session.role != "manager":
        raise error(
            web.HTTPForbidden,
            "manager_login_required",
            "this action needs a manager logged in to the status page (/manager/...),"
            " or posgw close-day on the shop's box",
        )
    return str(session.actor)


def allow_as(actor: str) -> Authorise:
    """A hook that allows everything as ``actor`` (tests, and ``posgw close-day`` in process)."""

    async def allow(request: web.Request, role: Role) -> str:
        return actor

    return allow
