"""The status page in the manager's language: locale choice, catalogues, money and time formats.

Built on Babel (CLDR data and gettext catalogues), not on hand-written tables:

* :func:`choose_locale` picks the page's locale from the browser's ``Accept-Language``
  (RFC 9110, 12.5.4: language ranges with ``q`` weights) unless the configuration forces one;
  the *language* selects the catalogue (French or English), the full tag selects the formats
  (``fr-CH`` writes ``1 234,50 CHF``, ``en-GB`` writes ``€1,234.50``).
* Catalogues are the ``.po`` sources shipped in ``gateway/web/locale/<lang>/LC_MESSAGES/``,
  compiled in memory with :mod:`babel.messages.mofile` the first time a language is used (no
  compiled ``.mo`` file to keep in step with its source). A message missing from a catalogue
  falls back to its English msgid.
* :class:`PageLocale` formats amounts from minor units with the ISO 4217 exponent, percentages,
  durations and times in the shop's zone, all per locale. Amounts and times are formatted once
  per locale and value and kept in a bounded cache (a page shows the same amounts and the same
  rows poll after poll; Babel's formatting was a third of the page's time under load,
  docs/performance.md), and so is the choice of locale for an ``Accept-Language`` header.
  A locale carries only the CLDR tables the page formats with (:mod:`gateway.web.cldr`);
  :func:`prepare_locale` makes the page's usual one at start.

Messages in code are marked with :func:`N_` so ``pybabel extract -k N_`` finds them
(docs/status-page.md, "Translations").
"""

from __future__ import annotations

import functools
import gettext
import io
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime, format_time, tokenize_pattern
from babel.numbers import format_decimal, format_percent
from babel.units import format_unit

from gateway.daemon.config import PAGE_LANGUAGES
from gateway.web.cldr import format_money, page_cldr_locale

__all__ = [
    "CATALOGUES",
    "DEFAULT_LOCALE",
    "LOCALE_DIR",
    "N_",
    "PageLocale",
    "choose_locale",
    "configured_locale",
    "parse_accept_language",
    "prepare_locale",
    "translations",
]

#: Where the ``.po`` sources live.
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
#: Languages with a catalogue (the msgids are English, so ``en`` needs no translation).
CATALOGUES = PAGE_LANGUAGES
#: When nothing in Accept-Language matches.
DEFAULT_LOCALE = "en_GB"
DOMAIN = "posgw"

_RANGE = re.compile(r"^(?:\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)$")
_WEIGHT = re.compile(r"^[qQ]=(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")


def N_(message: str) -> str:  # the gettext name for "translate later"
    """Mark ``message`` for extraction; translated when the page is rendered."""
    return message


def parse_accept_language(header: str | None, *, limit: int = 20) -> list[str]:
    """The language ranges of an ``Accept-Language`` header, most preferred first.

    Malformed entries are skipped (a bad header never fails the page); ``q=0`` means "not
    acceptable" and is dropped; ties keep the header's order. At most ``limit`` entries are read.
    """
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:limit]):
        fields = [f.strip() for f in part.split(";")]
        tag = fields[0]
        if not _RANGE.match(tag):
            continue
        weight = 1.0
        if len(fields) > 1:
            match = _WEIGHT.match(fields[1].replace(" ", ""))
            if match is None:
                continue
            weight = float(match.group(1))
        if weight > 0:
            ranked.append((-weight, index, tag))
    return [tag for _, _, tag in sorted(ranked)]


def _locale_for(tag: str) -> Locale | None:
    if tag == "*":
        return None
    try:
        locale = Locale.parse(tag.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        try:  # "fr-XX": an unknown region still names a language we may have
            locale = Locale.parse(tag.split("-", maxsplit=1)[0])
        except (ValueError, UnknownLocaleError):
            return None
    return locale if locale.language in CATALOGUES else None


def configured_locale(value: str) -> Locale:
    """The locale a configuration names (``fr_FR``, ``fr-CH``, ``en``), formats filled in.

    Raises:
        ValueError: Not a locale, or its language has no catalogue.
    """
    locale = _locale_for(value.strip())
    if locale is None:
        raise ValueError(
            f"{value!r}: expected a locale in {', '.join(CATALOGUES)} (such as fr_FR or en_GB)"
        )
    return _with_formats(locale)


def _with_formats(locale: Locale) -> Locale:
    if locale.territory is None:  # "fr" alone: the language's main formats
        return Locale.parse(_LIKELY.get(locale.language, DEFAULT_LOCALE))
    return locale


@functools.lru_cache(maxsize=64)
def choose_locale(accept_language: str | None, *, override: str | None = None) -> Locale:
    """The page's locale: the configured ``override``, else the browser's first usable choice.

    Cached per header (a shop has few browsers; the bound keeps odd headers from growing it).
    The locale carries only the CLDR tables the page formats with
    (:func:`gateway.web.cldr.page_cldr_locale`: Babel's full data is not kept).

    Args:
        accept_language: The request's ``Accept-Language`` header, if any.
        override: ``[http] locale`` from the configuration (e.g. ``"fr_FR"``), if set.
    """
    return page_cldr_locale(_chosen(accept_language, override))


def _chosen(accept_language: str | None, override: str | None) -> Locale:
    for tag in ([override] if override else []) + parse_accept_language(accept_language):
        locale = _locale_for(tag)
        if locale is not None:
            return _with_formats(locale)
    return Locale.parse(DEFAULT_LOCALE)


def prepare_locale(override: str | None = None) -> Locale:
    """Make the page's usual locale now (at start) rather than at the first page.

    The configured ``override``, else the default for a browser that names no language. Its
    CLDR tables are cut out of Babel's data now (:func:`gateway.web.cldr.page_cldr_locale`,
    about 12 ms), while the daemon is small: the memory Babel's full data held for a moment is
    reused by what comes after rather than added on top at the first page under load
    (docs/performance.md, "Session 6"). A configured translated language's catalogue is
    compiled now too (every page uses it).
    """
    locale = choose_locale(None, override=override)
    if override is not None and locale.language != "en":
        translations(str(locale.language))
    return locale


#: A language without a region gets these formats (the shop's market first).
_LIKELY = {"fr": "fr_FR", "en": "en_GB"}


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``language`` (English msgids: a null catalogue for ``en``).

    Raises:
        FileNotFoundError: A language of :data:`CATALOGUES` whose ``.po`` is missing (a packaging
            error, found by the tests).
    """
    if language == "en":
        return gettext.NullTranslations()
    # the catalogue tools (and difflib under them) load with the first translated page only
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    source = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with source.open("rb") as file:
        catalog = read_po(file, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


#: Formatted values kept per locale (a page has a few dozen; several pages and both languages fit).
FORMAT_CACHE = 4096


@functools.lru_cache(maxsize=FORMAT_CACHE)
def _money_text(locale: Locale, minor_units: int, currency: str) -> str:
    return format_money(minor_units, currency, locale)


@functools.lru_cache(maxsize=FORMAT_CACHE)
def _time_text(locale: Locale, zone: tzinfo, moment: datetime) -> str:
    return format_time(moment, "short", tzinfo=zone, locale=locale)


#: Fields of a CLDR date pattern that read the seconds (UTS #35, "Date Field Symbol Table").
_SECOND_FIELDS = frozenset("sSA")


@functools.lru_cache(maxsize=64)
def _short_time_shows_seconds(locale: Locale) -> bool:
    pattern = locale.time_formats["short"].pattern
    return any(kind == "field" and value[0] in _SECOND_FIELDS
               for kind, value in tokenize_pattern(pattern))  # fmt: skip


def _time_key(locale: Locale, zone: tzinfo, moment: datetime) -> datetime:
    """The moment the cache of times is read with: in the shop's zone, to the minute when the
    locale's short time shows no seconds (the same text: every payment of a minute shares one
    entry, where each new payment's own microsecond was a new Babel call)."""
    if moment.tzinfo is None or _short_time_shows_seconds(locale):
        return moment  # naive: Babel reads it as UTC, as before
    return moment.astimezone(zone).replace(second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class PageLocale:
    """Translation and formats of one locale, in the shop's time zone."""

    locale: Locale
    zone: tzinfo

    @property
    def tag(self) -> str:
        """The BCP 47 tag for ``<html lang>`` (``fr-FR``)."""
        return str(self.locale).replace("_", "-")

    @property
    def language(self) -> str:
        """The catalogue's language (``fr``)."""
        return str(self.locale.language)

    def gettext(self, message: str) -> str:
        """``message`` (an English msgid) in this locale's language."""
        return translations(self.language).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The plural form for ``n`` (the catalogue's Plural-Forms rule)."""
        return translations(self.language).ngettext(singular, plural, n)

    def money(self, minor_units: int, currency: str) -> str:
        """An amount in minor units as the locale writes it (``12,50 €``, ``€12.50``).

        An unknown currency code is written as a plain number followed by the code.
        """
        return _money_text(self.locale, minor_units, currency)

    def number(self, value: int | float) -> str:
        """A number with the locale's separators."""
        return format_decimal(value, locale=self.locale)

    def percent(self, ratio: float) -> str:
        """A ratio (0.9712) as a percentage to one decimal, in the locale's pattern (``97,1 %``)."""
        return format_percent(round(ratio, 3), locale=self.locale, decimal_quantization=False)

    def milliseconds(self, value: float) -> str:
        """A duration in ms (``412 ms``)."""
        return format_unit(round(value), "duration-millisecond", locale=self.locale, length="short")

    def time(self, moment: datetime) -> str:
        """A time of day in the shop's zone (``19:30``)."""
        return _time_text(self.locale, self.zone, _time_key(self.locale, self.zone, moment))

    def datetime(self, moment: datetime) -> str:
        """A date and time in the shop's zone (``05/12/2026 19:30``)."""
        return format_datetime(moment, "short", tzinfo=self.zone, locale=self.locale)
