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

from gateway.till.jsonio import error

__all__ = ["Authorise", "Role", "allow_as", "provisional"]

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


def allow_as(actor: str) -> Authorise:
    """A hook that allows everything as ``actor`` (tests, and ``posgw close-day`` in process)."""

    async def allow(request: web.Request, role: Role) -> str:
        return actor

    return allow
