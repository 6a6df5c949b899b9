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

import datetime
from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from terminal.currency import CurrencyError, currency

__all__ = ["ENGLISH", "N_", "PageWords", "WordsFor", "english_words"]


class PageWords(Protocol):
    """One request's language: its BCP 47 tag, the translation of a msgid, and how it writes
    an amount and a moment."""

    @property
    def tag(self) -> str: ...

    def gettext(self, message: str) -> str: ...

    def money(self, minor_units: int, currency: str) -> str: ...

    def datetime(self, moment: datetime.datetime) -> str: ...


#: The request -> its words.
WordsFor = Callable[[web.Request], PageWords]


def N_(message: str) -> str:
    """Mark ``message`` for translation (returned unchanged)."""
    return message


class _English:
    """The msgids themselves; amounts as ``12.50 EUR`` (the ISO 4217 exponent: ``12.345
    KWD``), moments in UTC."""

    tag = "en"

    def gettext(self, message: str) -> str:
        return message

    def money(self, minor_units: int, currency_code: str) -> str:
        try:
            exponent = currency(currency_code).exponent
        except CurrencyError:
            return f"{minor_units} {currency_code}"
        sign = "-" if minor_units < 0 else ""
        units, fraction = divmod(abs(minor_units), 10**exponent)
        decimals = f".{fraction:0{exponent}d}" if exponent else ""
        return f"{sign}{units}{decimals} {currency_code}"

    def datetime(self, moment: datetime.datetime) -> str:
        return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


#: No catalogue: English.
ENGLISH: PageWords = _English()


def english_words(_request: web.Request) -> PageWords:
    """The default :data:`WordsFor`: English whatever the browser asks."""
    return ENGLISH
