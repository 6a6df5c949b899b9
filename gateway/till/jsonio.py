"""The till API's JSON errors and request bodies, shared by its route modules.

Every error is ``{"error": CODE, "message": TEXT}`` (plus ``field`` for ``invalid_request``),
served as ``application/json`` with the HTTP status that says what kind of failure it is
(docs/daemon.md, "Till API"). Messages never quote a request body.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

__all__ = ["bad_request", "error", "json_body"]


def error(
    status: type[web.HTTPException], code: str, message: str, **extra: Any
) -> web.HTTPException:
    """An HTTP error with the till API's JSON body (raise it)."""
    body = json.dumps({"error": code, "message": message, **extra})
    return status(text=body, content_type="application/json")


def bad_request(field: str, message: str) -> web.HTTPException:
    """``400 invalid_request`` naming the field at fault."""
    return error(web.HTTPBadRequest, "invalid_request", message, field=field)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (``400 invalid_request`` on ``body`` otherwise)."""
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("body", "expected a JSON object") from None
    if not isinstance(body, dict):
        raise bad_request("body", "expected a JSON object")
    return body
