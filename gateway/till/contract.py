"""``GET /api/openapi.json``: the till API's own contract, served as the daemon has it.

The document is ``gateway/contracts/till-api.openapi.json`` (OpenAPI 3.1, its schemas JSON
Schema 2020-12): every route, its answers, the error shape and the Server-Sent Event types.
``tests/gateway/till/test_openapi.py`` checks it against the routes the daemon mounts and
against live answers, so it cannot drift from the code unnoticed (docs/contracts.md).
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from aiohttp import web

__all__ = ["add_contract_route", "till_api_document"]


@functools.cache
def _text() -> str:
    return resources.files("gateway.contracts").joinpath("till-api.openapi.json").read_text("utf-8")


def till_api_document() -> dict[str, Any]:
    """The parsed OpenAPI document (a fresh copy)."""
    document: dict[str, Any] = json.loads(_text())
    return document


def add_contract_route(app: web.Application) -> None:
    """Mount ``GET /api/openapi.json``."""

    async def openapi(_request: web.Request) -> web.Response:
        return web.Response(text=_text(), content_type="application/json")

    app.router.add_get("/api/openapi.json", openapi)
