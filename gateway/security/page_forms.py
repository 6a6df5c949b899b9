"""The manager page's form posts: their outcome goes back to the page as one sentence.

A browser posting a form of ``/manager`` must land on ``/manager`` again and read what
happened there, whether the action was done or refused; a script calling the same route with
JSON gets the route's JSON answer (docs/security.md, "Manager page"). So a form post's answer is
``303 See Other`` (RFC 9110, 15.4.4) to ``/manager?...``: ``done=...`` with the result, or
``error=CODE`` (and ``field=NAME``, ``payment=ID``) when the route refused it. The page turns
these parameters into a fixed sentence (:func:`gateway.security.manager_work.result_message`);
they are checked there, never echoed as given, and they carry no message text.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from aiohttp import web

from gateway.security.errors import InputError
from gateway.security.inputs import check_no_card_data

__all__ = ["FORM_TYPES", "back_to_manager_page", "error_back_to_manager_page", "from_a_form"]

#: What a browser's form post is sent as (HTML Living Standard, "form submission").
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def from_a_form(request: web.Request) -> bool:
    """A manager page's form post (``/manager/...``, a form body), not a JSON caller's."""
    return request.path.startswith("/manager/") and request.content_type in FORM_TYPES


def back_to_manager_page(**result: str) -> web.HTTPException:
    """``303 See Other`` to ``/manager?...`` with the action's result (raise it)."""
    return web.HTTPSeeOther(f"/manager?{urlencode(result)}")


def error_back_to_manager_page(request: web.Request, body: str | None) -> web.HTTPException:
    """The 303 for a form post its route refused with a JSON error ``body`` (raise it).

    The error's code and field go back to the page (``invalid`` when the body is not the
    till API's error shape), with the payment the form was about when the route names one.
    """
    result = {"error": "invalid"}
    try:
        error = json.loads(body or "")
    except ValueError:
        error = None
    if isinstance(error, dict):
        if isinstance(error.get("error"), str):
            result["error"] = error["error"]
        if isinstance(error.get("field"), str):
            result["field"] = error["field"]
    payment = request.match_info.get("payment")
    if payment:
        try:  # a path typed with a card number in it is not carried into the next URL
            check_no_card_data("payment", payment)
            result["payment"] = payment
        except InputError:
            pass
    return back_to_manager_page(**result)
