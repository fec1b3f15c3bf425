"""Spoken forms inside strings: ``{x|digits}``, ``{x|money}``, ``{x|date}``, ``{x|time}`` in the voice's language.

Babel gives the currency names, the weekday and month names and each
language's time format; num2words gives the names of a currency's cents. The
few joining words (``and``/``e``, ``minus``/``meno``) are per language in
``_WORDS``; an amount in a language without them is said in English. A value that is not a
number, date or time is spoken as it is: ``render`` returns None and the
caller notes it in the call's log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

from autocall.engine import decimals

DEFAULT_CURRENCY = "EUR"
DEFAULT_LANGUAGE = "en"
FORMS = ("digits", "money", "date", "time")
NOT_SPOKEN = {"money": "an amount", "date": "a date (YYYY-MM-DD)", "time": "a time (HH:MM)"}


@dataclass(frozen=True)
class SpeechDefaults:
    """What a script that declares no ``voice``/``currency`` speaks in (from the configuration)."""

    voice: str = "en-us"
    currency: str = DEFAULT_CURRENCY


# Joining words: (between units and cents, before a negative amount).
_WORDS = {"en": ("and", "minus"), "it": ("e", "meno")}
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?\Z")


def language_of(voice: str | None) -> str:
    """``"en-us"`` -> ``"en"``, ``"roa/it"`` -> ``"it"``; a language Babel does not know is English."""
    if not voice:
        return DEFAULT_LANGUAGE
    code = voice.rsplit("/", 1)[-1].replace("_", "-").split("-", 1)[0].lower()
    return code if _known_language(code) else DEFAULT_LANGUAGE


@lru_cache(maxsize=64)
def _known_language(code: str) -> bool:
    from babel import Locale, UnknownLocaleError
    try:
        Locale.parse(code)
    except (UnknownLocaleError, ValueError):
        return False
    return True


def is_currency(code: str) -> bool:
    from babel.numbers import list_currencies
    return code in list_currencies()


def render(form: str, value, text: str, language: str, currency: str) -> str | None:
    """The words for ``value`` (whose text is ``text``) in ``form``; None when it is not such a value."""
    if form == "money":
        number = value if not isinstance(value, str) else decimals.read_number(text.strip())
        return None if number is None else money(number, language, currency)
    if form == "date":
        try:
            day = date.fromisoformat(text.strip()[:10])
        except ValueError:
            return None
        return spoken_date(day, language)
    found = _TIME.match(text.strip())
    if found is None:
        return None
    hour, minute, second = int(found[1]), int(found[2]), int(found[3] or 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return spoken_time(time(hour, minute), language)


def money(amount: int | Decimal, language: str, currency: str) -> str:
    """``12.05`` -> ``12 euros and 5 cents``; ``-3`` -> ``minus 3 euros`` (rounded half-even to the cents)."""
    if language not in _WORDS:          # no joining words of its own: the whole amount in English
        language = DEFAULT_LANGUAGE
    joining, minus = _WORDS[language]
    places = _precision(currency)
    exact = Decimal(amount).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    negative = exact < 0
    units = int(abs(exact))
    cents = int((abs(exact) - units).scaleb(places))
    major, minor = _currency_words(currency, language)
    words = f"{units} {major[0] if units == 1 else major[1]}"
    if cents and minor is not None:
        cent_words = f"{cents} {minor[0] if cents == 1 else minor[1]}"
        words = f"{words} {joining} {cent_words}" if units else cent_words
    elif cents:
        words = f"{decimals.text(abs(exact))} {major[1]}"
    return f"{minus} {words}" if negative and (units or cents) else words


def spoken_date(day: date, language: str) -> str:
    """``2026-03-02`` -> ``Monday, March 2`` / ``lunedì 2 marzo``: the language's full date without the year."""
    from babel.dates import format_date
    return format_date(day, _date_pattern(language), locale=language)


def spoken_time(moment: time, language: str) -> str:
    """``14:30`` -> ``2:30 PM`` / ``14 e 30``: Italian says hours and minutes, others the short time format."""
    if language == "it":
        return f"{moment.hour}" if moment.minute == 0 else f"{moment.hour} e {moment.minute}"
    from babel.dates import format_time
    return format_time(moment, "short", locale=language).replace("\u202f", " ").replace("\u00a0", " ")


@lru_cache(maxsize=64)
def _date_pattern(language: str) -> str:
    from babel import Locale
    pattern = Locale.parse(language).date_formats["full"].pattern
    # Drop the year and what joins it to the rest ("EEEE, MMMM d, y" -> "EEEE, MMMM d").
    without = re.sub(r"(?:\s*'[^']*')?[\s,.]*y+[\s.]*(?:'[^']*')?", "", pattern).strip(" ,")
    return without or pattern


@lru_cache(maxsize=64)
def _precision(currency: str) -> int:
    from babel.numbers import get_currency_precision
    return get_currency_precision(currency)


@lru_cache(maxsize=256)
def _currency_words(currency: str, language: str) -> tuple[tuple[str, str], tuple[str, str] | None]:
    """(one, many) names of the currency and of its cents in ``language``.

    Babel's names qualify some currencies (``US dollars``, ``dollari statunitensi``); where num2words
    has the plain noun and it is one of Babel's words, the plain noun is said (``dollars``, ``dollari``).
    """
    from babel.numbers import get_currency_name
    from num2words import CONVERTER_CLASSES

    forms = getattr(CONVERTER_CLASSES.get(language), "CURRENCY_FORMS", {}).get(currency)
    fallback = getattr(CONVERTER_CLASSES.get(DEFAULT_LANGUAGE), "CURRENCY_FORMS", {}).get(currency)
    names = []
    for count, index in ((1, 0), (2, 1)):
        name = get_currency_name(currency, count=count, locale=language)
        if forms is not None and forms[0][index] in name.split():
            name = forms[0][index]
        names.append(name)
    minor = forms[1] if forms is not None else fallback[1] if fallback is not None and language == "en" else None
    return (names[0], names[1]), (tuple(minor) if minor is not None else None)
