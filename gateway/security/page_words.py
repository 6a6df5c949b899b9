"""The manager pages' words: English msgids marked ``N_``, translated per request.

The manager's pages (``/login``, ``/manager``) speak the manager's language like the status
page. The catalogue and the locale choice live in :mod:`gateway.web.i18n` (Babel), which the
security part may not import (it sits below ``web``: docs/architecture.md), so the daemon hands
:class:`~gateway.security.manager.ManagerPages` a :data:`WordsFor`: the request (its
``Accept-Language``) -> :class:`PageWords` (a ``gateway.web.i18n.PageLocale`` fits). The
messages marked here are in the same catalogue (``gateway/web/locale/``), extracted with
``pybabel extract -k N_ gateway/web gateway/security``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from aiohttp import web

__all__ = ["ENGLISH", "N_", "PageWords", "WordsFor", "english_words"]


class PageWords(Protocol):
    """One request's language: its BCP 47 tag and the translation of a msgid."""

    @property
    def tag(self) -> str: ...

    def gettext(self, message: str) -> str: ...


#: The request -> its words.
WordsFor = Callable[[web.Request], PageWords]


def N_(message: str) -> str:
    """Mark ``message`` for translation (returned unchanged)."""
    return message


class _English:
    """The msgids themselves."""

    tag = "en"

    def gettext(self, message: str) -> str:
        return message


#: No catalogue: English.
ENGLISH: PageWords = _English()


def english_words(_request: web.Request) -> PageWords:
    """The default :data:`WordsFor`: English whatever the browser asks."""
    return ENGLISH
