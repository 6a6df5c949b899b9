"""The status page's locales (gateway.web.i18n): Accept-Language, catalogues, CLDR formats.

The French catalogue is the shipped ``.po`` source compiled by Babel in memory; every message
marked ``N_`` under gateway/web and gateway/security (the manager's pages) must have a French
translation (extracted with Babel's own extractor, as ``pybabel extract`` would).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from babel import Locale
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from gateway.daemon.config import parse_config
from gateway.errors import ConfigError
from gateway.web.i18n import (
    LOCALE_DIR,
    PageLocale,
    choose_locale,
    configured_locale,
    parse_accept_language,
    translations,
)
from gateway.web.words import PAYMENT_STATES

PARIS = ZoneInfo("Europe/Paris")
WEB = LOCALE_DIR.parent
SECURITY = WEB.parent / "security"


def _plain(text: str) -> str:
    """CLDR uses no-break and narrow no-break spaces; compare with plain ones."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def test_accept_language_is_ranked_by_weight_then_order() -> None:
    header = "de-DE;q=0.7, fr-CH, en;q=0.8, fr;q=0.9, *;q=0.1, es;q=0"
    assert parse_accept_language(header) == ["fr-CH", "fr", "en", "de-DE", "*"]


@pytest.mark.parametrize(
    "header", ["", None, ";;;", "fr;q=abc", "12345678901", "fr;q=2", "<script>", "a" * 5000]
)
def test_malformed_accept_language_never_fails(header: str | None) -> None:
    assert str(choose_locale(header)) == "en_GB"


@pytest.mark.parametrize(
    ("header", "override", "chosen"),
    [
        ("fr-FR,fr;q=0.9,en;q=0.8", None, "fr_FR"),
        ("fr", None, "fr_FR"),
        ("fr-CH", None, "fr_CH"),
        ("de-DE, fr;q=0.5", None, "fr_FR"),  # no German catalogue: the next usable choice
        ("en-US", None, "en_US"),
        ("en", None, "en_GB"),
        ("fr-XX", None, "fr_FR"),  # unknown region, known language
        ("en-US", "fr_BE", "fr_BE"),  # the configuration wins
        (None, None, "en_GB"),
    ],
)
def test_locale_choice(header: str | None, override: str | None, chosen: str) -> None:
    assert str(choose_locale(header, override=override)) == chosen


def test_money_follows_the_locale_and_the_currency_exponent() -> None:
    fr = PageLocale(Locale.parse("fr_FR"), PARIS)
    en = PageLocale(Locale.parse("en_GB"), PARIS)
    ch = PageLocale(Locale.parse("fr_CH"), PARIS)
    assert _plain(fr.money(123450, "EUR")) == "1 234,50 €"
    assert en.money(123450, "EUR") == "€1,234.50"
    assert _plain(ch.money(123450, "CHF")) == "1 234,50 CHF"
    assert _plain(fr.money(500, "JPY")) == "500 JPY"  # no minor unit: 500 yen
    assert en.money(1234, "KWD") == "KWD1.234"  # three decimals
    assert _plain(fr.money(7, "XXQ")) == "7 XXQ"  # unknown code: never an exception


def test_numbers_percent_durations_and_times_per_locale() -> None:
    fr = PageLocale(Locale.parse("fr_FR"), PARIS)
    en = PageLocale(Locale.parse("en_GB"), PARIS)
    moment = datetime(2026, 12, 5, 18, 30, tzinfo=UTC)  # 19:30 in Paris
    assert _plain(fr.percent(0.9712)) == "97,1 %"
    assert en.percent(0.9712) == "97.1%"
    assert _plain(fr.milliseconds(412.4)) == _plain(en.milliseconds(412.4)) == "412 ms"
    assert fr.time(moment) == en.time(moment) == "19:30"
    assert fr.datetime(moment) == "05/12/2026 19:30"
    assert en.datetime(moment) == "05/12/2026, 19:30"
    assert _plain(fr.number(1234567)) == "1 234 567"
    assert fr.tag == "fr-FR" and en.language == "en"


def test_french_catalogue_translates_and_english_is_the_msgid() -> None:
    fr = PageLocale(Locale.parse("fr_FR"), PARIS)
    en = PageLocale(Locale.parse("en_GB"), PARIS)
    label = PAYMENT_STATES["FORWARDED"]
    assert fr.gettext(label) == "Envoyé à la banque"
    assert en.gettext(label) == "Sent to the bank"
    assert fr.gettext("a message nobody translated") == "a message nobody translated"
    assert translations("fr") is translations("fr")  # compiled once


def test_every_marked_message_has_a_french_translation() -> None:
    marked = {
        message
        for folder in (WEB, SECURITY)
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(folder), method_map=[("**.py", "python")], keywords={"N_": None}
        )
    }
    assert len(marked) >= 100
    with (LOCALE_DIR / "fr" / "LC_MESSAGES" / "posgw.po").open("rb") as file:
        catalog = read_po(file, locale="fr")
    translated = {m.id: m.string for m in catalog if m.id and not m.fuzzy}
    missing = sorted(m for m in marked if not translated.get(m))
    assert missing == []
    obsolete = sorted(set(translated) - marked)
    assert obsolete == []


def test_the_configuration_can_force_a_locale() -> None:
    base = {
        "shop": "s1",
        "acquirer": {"url": "http://127.0.0.1:1", "merchant_id": "M1"},
        "lanes": [{"id": 1, "reader": "sim://lane1"}],
    }
    assert parse_config({**base, "http": {"locale": "fr_FR"}}).http.locale == "fr_FR"
    assert str(configured_locale("fr")) == "fr_FR"
    with pytest.raises(ConfigError, match=r"http\.locale: .*'de_DE': expected a locale in en, fr"):
        parse_config({**base, "http": {"locale": "de_DE"}})
