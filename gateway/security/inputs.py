"""Strict parsing of what the network sends: ids, JSON bodies, references (400, never 500).

* Numbers in paths and headers are ASCII digits only, with a length bound: ``str.isdigit()``
  is true for ``²`` and ``١`` (Unicode digits), which ``int()`` then either accepts as another
  number (``int("١") == 1``) or refuses with a ValueError (``int("²")``): the old 500.
* JSON is parsed with a body size bound (``client_max_size``), a read timeout, and a depth
  bound: Python's parser recurses once per nesting level, and 50,000 levels is a RecursionError
  (the old 500). Depth is counted on the raw text before parsing.
* A till's ``reference`` that looks like a card number (Luhn-valid 12-19 digits, the journal's
  guard) is refused without being echoed.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from aiohttp import web

from gateway.journal import CardDataRejected
from gateway.journal.guard import check_value
from gateway.security.errors import InputError

__all__ = [
    "BODY_TIMEOUT",
    "MAX_JSON_DEPTH",
    "InputError",
    "check_reference",
    "load_json_object",
    "parse_event_id",
    "parse_lane_id",
    "read_json_object",
]

MAX_JSON_DEPTH = 32
#: Seconds a request body may take to arrive (``request.app[BODY_TIMEOUT]``, ``[http]
#: body_timeout``; 10 s when the application does not say).
BODY_TIMEOUT: web.AppKey[float] = web.AppKey("posgw_body_timeout", float)
_LANE = re.compile(r"[1-9][0-9]{0,2}")
_SEQ = re.compile(r"[0-9]{1,19}")
_OPENERS = re.compile(rb"[\[\]{}\"\\]")


def parse_lane_id(raw: str) -> int:
    """A lane number, 1-999, ASCII digits only.

    Raises:
        InputError: Anything else (``²``, ``١``, 5,000 digits, ``01``).
    """
    if not _LANE.fullmatch(raw):
        raise InputError("lane", "expected a lane number (1-999)")
    return int(raw)


def parse_event_id(raw: str | None) -> tuple[bool, int | None]:
    """``Last-Event-ID``: (asked, sequence); a value that is no sequence number is (True, -1)."""
    if raw is None or raw.strip() == "":
        return False, None
    text = raw.strip()
    return True, int(text) if _SEQ.fullmatch(text) else -1


def _depth(raw: bytes) -> int:
    """The deepest nesting of ``[``/``{`` outside strings (no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for match in _OPENERS.finditer(raw):
        char = match.group()
        if in_string:
            if escaped:
                escaped = False
                # an escaped char right after the backslash: skip it when adjacent
                continue
            if char == b"\\":
                escaped = raw[match.end() : match.end() + 1] in (b'"', b"\\")
                if escaped:
                    continue
            elif char == b'"':
                in_string = False
            continue
        if char == b'"':
            in_string = True
        elif char in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif char in (b"]", b"}"):
            depth -= 1
    return deepest


def load_json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object from bytes, at most :data:`MAX_JSON_DEPTH` deep.

    Raises:
        InputError: Not UTF-8 JSON, not an object, or nested too deep.
    """
    if _depth(raw) > MAX_JSON_DEPTH:
        raise InputError("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InputError("body", "expected a JSON object") from None
    if not isinstance(body, dict):
        raise InputError("body", "expected a JSON object")
    return body


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, read within the application's :data:`BODY_TIMEOUT`.

    Raises:
        InputError: See :func:`load_json_object`; ``body`` when it took too long.
        aiohttp.web.HTTPRequestEntityTooLarge: Over ``client_max_size``.
    """
    if request.content.is_eof():  # the whole body came with the headers: nothing to wait for
        return load_json_object(await request.read())
    within = request.app.get(BODY_TIMEOUT, 10.0)
    try:
        async with asyncio.timeout(within):
            raw = await request.read()
    except TimeoutError:
        raise InputError("body", "the body took too long to arrive") from None
    return load_json_object(raw)


def check_no_card_data(field: str, text: str, hint: str = "card data is not kept") -> None:
    """Refuse a free text from the network that looks like a PAN or a track 2, before the
    journal's guard would refuse its write (the value is never echoed).

    Raises:
        InputError: On ``field``.
    """
    try:
        check_value(field, text)
    except CardDataRejected:
        raise InputError(field, f"looks like a card number; {hint}") from None


def check_reference(reference: str) -> None:
    """Refuse a till reference that looks like card data (the value is never echoed).

    Raises:
        InputError: On ``reference``.
    """
    check_no_card_data("reference", reference, "send the till's own reference")
