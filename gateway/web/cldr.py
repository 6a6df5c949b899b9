"""The few CLDR tables the status page formats with, cut out of Babel's data once per locale.

Babel loads a locale's whole CLDR chain (for ``en_GB``: root, en, en_001, en_GB, with the names
of every language, territory, time zone and unit) and all of its ``global.dat`` the first time
a locale formats anything, and keeps both for the life of the process: 3.9 MB of Python
objects for the page's English, 1.1 MB more for French (``benchmarks/rss.py --tracemalloc``,
docs/performance.md, "Memory"). The page reads a few dozen patterns and symbols of them.

:func:`page_cldr_locale` loads a locale through Babel once, keeps only the tables that the
page's formats read (:data:`PAGE_TABLES`, aliases resolved) in a :class:`PageCldrLocale` (a
Babel ``Locale`` whose data is those tables, passed to the same Babel functions, so the text is
Babel's), copies the two global tables that amounts need (:class:`CurrencyTables`) and then
empties Babel's caches, which Babel has no public call for (:func:`release_babel_data`).
:func:`format_money` writes an amount as ``babel.numbers.format_currency`` does, from those
copies: Babel's own currency-precision lookup would read ``global.dat`` again. Freed, Babel's
data does not all go back to the system (the allocator keeps arenas that still hold other
objects), so the page's usual locale is made at start (:func:`gateway.web.i18n.prepare_locale`),
while the daemon is small, rather than at the first page under load.

``tests/gateway/web/test_cldr.py`` compares every format of every French and English locale
Babel knows (the only ones the page can choose) with Babel's full data.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import babel.core
from babel import Locale, localedata
from babel.numbers import NumberPattern, format_decimal

__all__ = [
    "PAGE_TABLES",
    "PAGE_UNITS",
    "CurrencyTables",
    "PageCldrLocale",
    "currency_tables",
    "format_money",
    "page_cldr_locale",
    "page_tables",
    "release_babel_data",
]

#: The locale tables Babel's number, currency, time and unit formats read for the page's calls
#: (``format_currency``, ``format_decimal``, ``format_percent``, ``format_time`` and
#: ``format_datetime`` "short", ``format_unit``). ``currency_names*`` are read by every
#: currency format (for the ``¤¤¤`` placeholder) even when its pattern has none: they are
#: kept empty unless the locale's standard currency pattern shows the name.
PAGE_TABLES = (
    "currency_formats",
    "currency_names",
    "currency_names_plural",
    "currency_symbols",
    "date_formats",
    "datetime_formats",
    "day_periods",
    "decimal_formats",
    "number_symbols",
    "percent_formats",
    "plural_form",
    "time_formats",
    "unit_display_names",
    "unit_patterns",
)
#: The unit tables are kept for these units only (all of CLDR's units are most of them).
PAGE_UNITS = ("duration-millisecond",)
_UNIT_TABLES = ("unit_display_names", "unit_patterns")


def _plain(value: Any) -> Any:
    """``value`` with every nested mapping a plain dict, Babel's aliases resolved."""
    if type(value) is dict or type(value) is localedata.LocaleDataDict:
        return {key: _plain(value[key]) for key in value}
    return value


class PageCldrLocale(Locale):
    """A Babel ``Locale`` that carries only :data:`PAGE_TABLES` (equal to the full one).

    Babel's formatting functions read a locale's data through its ``_data`` mapping; this one
    answers from the tables it was given, so nothing else of CLDR stays in memory.
    """

    def __init__(self, locale: Locale, tables: dict[str | int | None, Any]) -> None:
        super().__init__(locale.language, locale.territory, locale.script, locale.variant,
                         locale.modifier)  # fmt: skip
        self._page_tables = localedata.LocaleDataDict(tables)

    @property
    def _data(self) -> localedata.LocaleDataDict:
        return self._page_tables


@dataclass(frozen=True, slots=True)
class CurrencyTables:
    """The currency codes CLDR knows and their minor-unit digits (``global.dat``)."""

    codes: frozenset[str]
    fractions: dict[str, tuple[int, ...]]

    def digits(self, currency: str) -> int:
        """The digits after the decimal point (``babel.numbers.get_currency_precision``)."""
        return self.fractions.get(currency, self.fractions["DEFAULT"])[0]


@functools.cache
def currency_tables() -> CurrencyTables:
    """The codes ``validate_currency`` accepts and the digits ``get_currency_precision``
    gives, copied from Babel's global data once."""
    fractions = babel.core.get_global("currency_fractions")
    return CurrencyTables(
        frozenset(babel.core.get_global("all_currencies")),
        {code: tuple(value) for code, value in fractions.items()},
    )


def release_babel_data() -> None:
    """Empty Babel's caches of locale data and of ``global.dat`` (both reload when needed).

    Babel keeps every locale it loaded and all its global data for the life of the process and
    has no public way to let them go; a later Babel call that needs them reads them again.
    """
    cache = getattr(localedata, "_cache", None)
    lock = getattr(localedata, "_cache_lock", None)
    if isinstance(cache, dict) and lock is not None:
        with lock:
            cache.clear()
    if hasattr(babel.core, "_global_data"):
        setattr(babel.core, "_global_data", None)  # noqa: B010 - a library's private cache


def page_tables(data: Mapping[Any, Any]) -> dict[str | int | None, Any]:
    """The tables of :data:`PAGE_TABLES` out of a locale's data (Babel's ``Locale._data``):
    plain dicts, aliases resolved, the unit tables for :data:`PAGE_UNITS` only, and the
    currency names only when the standard currency pattern shows them (``¤¤¤``)."""
    tables: dict[str | int | None, Any] = {
        key: _plain(data[key]) for key in PAGE_TABLES if key in data
    }
    for key in _UNIT_TABLES:
        units = tables.get(key, {})
        tables[key] = {unit: units[unit] for unit in PAGE_UNITS if unit in units}
    if "¤¤¤" not in tables["currency_formats"]["standard"].pattern:
        # read by every currency format, shown only by a pattern with the name placeholder
        tables["currency_names"] = tables["currency_names_plural"] = {}
    return tables


@functools.lru_cache(maxsize=16)
def page_cldr_locale(locale: Locale) -> PageCldrLocale:
    """``locale`` with only the page's tables, loaded through Babel once; Babel's caches are
    emptied afterwards (:func:`release_babel_data`)."""
    if isinstance(locale, PageCldrLocale):
        return locale
    currency_tables()  # while global.dat is loaded for the locale anyway
    full = Locale(locale.language, locale.territory, locale.script, locale.variant,
                  locale.modifier)  # fmt: skip
    data = full._data  # Babel's own mapping of the locale's CLDR data
    tables = page_tables(data)
    del full, data
    release_babel_data()
    return PageCldrLocale(locale, tables)


@functools.lru_cache(maxsize=256)
def _currency_pattern(pattern: NumberPattern, digits: int) -> NumberPattern:
    """The locale's currency pattern with the currency's digits as its own precision."""
    fixed = copy.copy(pattern)
    fixed.frac_prec = (digits, digits)
    return fixed


def format_money(minor_units: int, currency: str, locale: Locale) -> str:
    """An amount in minor units as ``format_currency(Decimal, currency, locale=locale)`` writes
    it (CLDR's digits for the currency); a code CLDR does not know as a number and the code.

    Babel would look the digits up in ``global.dat`` on each call; they come from
    :func:`currency_tables`, and the pattern is given them as its own precision.
    """
    tables = currency_tables()
    if currency not in tables.codes:
        return f"{format_decimal(minor_units, locale=locale)} {currency}"
    digits = tables.digits(currency)
    value = Decimal(minor_units).scaleb(-digits)
    pattern = _currency_pattern(locale.currency_formats["standard"], digits)
    return str(pattern.apply(value, locale, currency=currency, currency_digits=False))
