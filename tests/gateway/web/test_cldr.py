"""The page's trimmed CLDR locales write exactly what Babel's full data writes, and keep less.

Every French and English locale Babel knows (the only languages the page can choose) formats
amounts in currencies of 0, 2, 3 and 4 digits and an unknown code, numbers, percentages,
durations, times and dates through both :class:`gateway.web.cldr.PageCldrLocale` and a
plain ``babel.Locale``: the texts must be equal. Then Babel's caches must be empty (the
trimmed locales' formats reload nothing), and a trimmed locale must hold a small part of the
objects of a full one.
"""

from __future__ import annotations

import datetime as dt
import gc
import tracemalloc
from decimal import Decimal
from zoneinfo import ZoneInfo

import babel.core
import pytest
from babel import Locale, localedata
from babel.dates import format_datetime, format_time
from babel.numbers import format_currency, format_decimal, format_percent
from babel.units import format_unit

from gateway.web import i18n
from gateway.web.cldr import (
    PAGE_TABLES,
    PageCldrLocale,
    currency_tables,
    format_money,
    page_cldr_locale,
    release_babel_data,
)

PAGE_LOCALES = sorted(
    name for name in localedata.locale_identifiers() if name.split("_")[0] in i18n.CATALOGUES
)
AMOUNTS = (0, 1, 5, 99, 1250, -1250, 100_000, 123_456_789, -10**15)
CURRENCIES = ("EUR", "CHF", "GBP", "USD", "JPY", "BHD", "CLF", "XOF", "XYZ")
ZONES = (dt.UTC, ZoneInfo("Europe/Paris"), ZoneInfo("America/Montreal"))
MOMENTS = tuple(
    dt.datetime(2026, month, 6, hour, 5, 7, 120_000, tzinfo=dt.UTC)
    for month in (1, 7) for hour in (0, 9, 11, 12, 13, 23)
)  # fmt: skip


def _babel_money(minor_units: int, currency: str, locale: Locale) -> str:
    """The page's amount as it was written before the trimmed tables (Babel's own calls)."""
    from babel.numbers import UnknownCurrencyError, get_currency_precision, validate_currency

    try:
        validate_currency(currency)
        value = Decimal(minor_units).scaleb(-get_currency_precision(currency))
        return format_currency(value, currency, locale=locale)
    except UnknownCurrencyError:
        return f"{format_decimal(minor_units, locale=locale)} {currency}"


def _texts(locale: Locale) -> list[str]:
    out = [format_money(a, c, locale) for a in AMOUNTS for c in CURRENCIES]
    out += [format_decimal(a, locale=locale) for a in AMOUNTS]
    out += [format_percent(round(r, 3), locale=locale, decimal_quantization=False)
            for r in (0.0, 0.5, 0.9712, 1.0)]  # fmt: skip
    out += [format_unit(round(v), "duration-millisecond", locale=locale, length="short")
            for v in (0, 1, 2, 412.4, 1500)]  # fmt: skip
    for zone in ZONES:
        for moment in MOMENTS:
            out.append(format_time(moment, "short", tzinfo=zone, locale=locale))
            out.append(format_datetime(moment, "short", tzinfo=zone, locale=locale))
    return out


def test_the_page_locales_are_the_french_and_english_ones() -> None:
    assert "fr_FR" in PAGE_LOCALES and "en_GB" in PAGE_LOCALES and "fr_CH" in PAGE_LOCALES
    assert len(PAGE_LOCALES) > 100
    assert not any(name.startswith("de") for name in PAGE_LOCALES)


@pytest.mark.parametrize("name", PAGE_LOCALES)
def test_trimmed_locale_writes_what_babel_writes(name: str) -> None:
    full = Locale.parse(name)
    trimmed = page_cldr_locale(Locale.parse(name))
    assert isinstance(trimmed, PageCldrLocale) and trimmed == full and str(trimmed) == name
    expected = _texts(full)
    assert [_babel_money(a, c, full) for a in AMOUNTS for c in CURRENCIES] == expected[
        : len(AMOUNTS) * len(CURRENCIES)
    ]
    release_babel_data()
    assert _texts(trimmed) == expected
    # the trimmed locale's formats read nothing of Babel's own data again
    assert localedata._cache == {}
    assert babel.core._global_data is None


def test_known_texts() -> None:
    fr = page_cldr_locale(Locale.parse("fr_FR"))
    gb = page_cldr_locale(Locale.parse("en_GB"))
    assert format_money(123450, "EUR", fr) == "1\u202f234,50\xa0€"
    assert format_money(123450, "EUR", gb) == "€1,234.50"
    assert format_money(1234, "JPY", gb) == "JP¥1,234"
    assert format_money(1234, "BHD", gb) == "BHD1.234"
    assert format_money(1234, "XYZ", fr) == "1\u202f234 XYZ"


def test_currency_tables_are_babels() -> None:
    from babel.numbers import get_currency_precision, list_currencies

    tables = currency_tables()
    assert tables.codes == frozenset(list_currencies())
    for code in ("EUR", "JPY", "BHD", "CLF", "XYZ"):
        assert tables.digits(code) == get_currency_precision(code)


def test_choose_locale_gives_a_trimmed_locale_and_releases_babel() -> None:
    i18n.choose_locale.cache_clear()
    loc = i18n.choose_locale("fr-CH,fr;q=0.9")
    assert isinstance(loc, PageCldrLocale) and str(loc) == "fr_CH"
    page = i18n.PageLocale(loc, ZoneInfo("Europe/Zurich"))
    assert page.money(123450, "CHF") == "1\u202f234,50\xa0CHF"
    assert localedata._cache == {}
    assert babel.core._global_data is None


def test_trimmed_locale_keeps_a_small_part_of_the_data() -> None:
    release_babel_data()
    page_cldr_locale.cache_clear()
    gc.collect()
    tracemalloc.start()
    try:
        full = Locale.parse("en_GB")
        full.currency_formats  # noqa: B018 - loads the chain and global.dat
        with_babel = tracemalloc.get_traced_memory()[0]
        del full
        release_babel_data()
        gc.collect()
        released = tracemalloc.get_traced_memory()[0]
        trimmed = page_cldr_locale(Locale.parse("en_GB"))
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - released
    finally:
        tracemalloc.stop()
    assert set(trimmed._data) == set(PAGE_TABLES)
    assert with_babel > 3_000_000  # Babel's data for en_GB, global.dat with it
    assert kept < with_babel / 20  # about 70 KiB of 3.9 MB


SECONDS = tuple(
    dt.datetime(2026, month, 6, hour, 5, second, micro, tzinfo=dt.UTC)
    for month in (3, 10) for hour in (0, 1, 2, 12, 23) for second, micro in ((0, 0), (59, 999_999))
)  # fmt: skip


@pytest.mark.parametrize("name", PAGE_LOCALES)
def test_page_times_are_babels_short_times(name: str) -> None:
    full = Locale.parse(name)
    page = page_cldr_locale(Locale.parse(name))
    for zone in (*ZONES, ZoneInfo("Europe/London")):
        shown = i18n.PageLocale(page, zone)
        for moment in (*SECONDS, SECONDS[1].replace(tzinfo=None)):  # naive: read as UTC
            assert shown.time(moment) == format_time(moment, "short", tzinfo=zone, locale=full)


def test_a_short_time_with_seconds_keeps_them() -> None:
    from babel.dates import parse_pattern

    base = page_cldr_locale(Locale.parse("en_GB"))
    tables = {key: base._data[key] for key in PAGE_TABLES}
    tables["time_formats"] = {**base._data["time_formats"], "short": parse_pattern("HH:mm:ss")}
    with_seconds = PageCldrLocale(Locale.parse("en_GB"), tables)
    shown = i18n.PageLocale(with_seconds, dt.UTC)
    first, last = SECONDS[0], SECONDS[0].replace(second=59)
    # the caches know a locale by its name: this one is en_GB with another pattern
    caches = (i18n._short_time_shows_seconds, i18n._time_text)
    for cache in caches:
        cache.cache_clear()
    try:
        assert (shown.time(first), shown.time(last)) == ("00:05:00", "00:05:59")
    finally:
        for cache in caches:
            cache.cache_clear()


def test_prepare_locale_makes_the_configured_locale_and_its_catalogue() -> None:
    i18n.choose_locale.cache_clear()
    i18n.translations.cache_clear()
    release_babel_data()  # what other tests' plain Babel calls loaded
    try:
        default = i18n.prepare_locale(None)
        assert isinstance(default, PageCldrLocale) and str(default) == i18n.DEFAULT_LOCALE
        assert i18n.translations.cache_info().currsize == 0  # English: no catalogue to compile
        french = i18n.prepare_locale("fr_FR")
        assert isinstance(french, PageCldrLocale) and str(french) == "fr_FR"
        assert i18n.translations.cache_info().currsize == 1
        assert i18n.choose_locale("en-GB", override="fr_FR") is french  # the page's, made once
        assert localedata._cache == {} and babel.core._global_data is None  # let go again
    finally:
        i18n.choose_locale.cache_clear()
        page_cldr_locale.cache_clear()


def test_currency_names_are_kept_when_the_pattern_shows_them() -> None:
    from babel.numbers import parse_pattern

    from gateway.web.cldr import page_tables

    full = Locale.parse("en_GB")
    named = parse_pattern("#,##0.00 ¤¤¤")
    data = localedata.LocaleDataDict({**full._data._data})
    data["currency_formats"] = {**full.currency_formats, "standard": named}
    tables = page_tables(data)
    assert tables["currency_names_plural"] and tables["currency_names"]
    shown = PageCldrLocale(full, tables)
    expected = named.apply(Decimal("1.50"), full, currency="EUR")
    assert format_money(150, "EUR", shown) == expected == "1.50 euros"
    assert page_tables(full._data)["currency_names"] == {}  # the usual pattern: none kept


def test_adding_the_status_routes_makes_the_page_locale_and_lets_babel_go() -> None:
    from aiohttp import web

    from gateway.web import add_status_routes

    page_cldr_locale.cache_clear()
    i18n.choose_locale.cache_clear()
    release_babel_data()
    try:
        add_status_routes(web.Application(), dict, locale="fr_CH")
        made = page_cldr_locale.cache_info()
        assert made.currsize == 1 and made.misses == 1  # fr_CH, made when the routes are added
        assert str(i18n.choose_locale(None, override="fr_CH")) == "fr_CH"
        assert page_cldr_locale.cache_info().misses == 1  # the page takes the one made then
        assert localedata._cache == {} and babel.core._global_data is None
    finally:
        page_cldr_locale.cache_clear()
        i18n.choose_locale.cache_clear()
