"""The till API's JSON errors and request bodies, shared by its route modules.

Every error is ``{"error": CODE, "message": TEXT}`` (plus ``field`` for ``invalid_request``),
served as ``application/json`` with the HTTP status that says what kind of failure it is
(docs/daemon.md, "Till API"). Messages never quote a request body.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.security.errors import InputError
from gateway.security.inputs import check_no_card_data, read_json_object
from gateway.security.page_forms import FORM_TYPES, back_to_manager_page, from_a_form

__all__ = [
    "FORM_TYPES",
    "back_to_manager_page",
    "bad_request",
    "error",
    "from_a_form",
    "json_body",
    "no_card_data",
]


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
    """The request's JSON object (``400 invalid_request`` on ``body`` otherwise).

    Read within the body time-out and at most 32 levels deep
    (:func:`gateway.security.inputs.read_json_object`): a body nested 50,000 deep is a 400,
    not the RecursionError it was.
    """
    try:
        return await read_json_object(request)
    except InputError as exc:
        raise bad_request(exc.field, exc.message) from None


def no_card_data(field: str, text: str) -> str:
    """``text`` as given, unless it is shaped like a PAN or a track 2 (then ``400``).

    A free text the journal keeps (a reason, an auth code) passes the journal's card-data guard
    there; refused here first, the caller hears which field, instead of a failed write.
    """
    try:
        check_no_card_data(field, text)
    except InputError as exc:
        raise bad_request(exc.field, exc.message) from None
    return text
