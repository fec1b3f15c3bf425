"""Telephone numbers as AutoCall stores and compares them: E.164 through the phonenumbers library.

Contact lists, the do-not-call list and ``optout`` all go through
``to_e164``, so two spellings of one number (``333 123 4567`` with country
IT, ``+39 333 1234567``, ``0039 333 1234567``) are one contact and one
do-not-call entry. A number written with its country code (``+`` or ``00``)
needs no country; a national one needs ``country`` (``--country IT``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult
from phonenumbers import timezone as number_zones

NOT_A_NUMBER = "not a phone number (digits, with + or 00 before a country code)"
_DIGITS = re.compile(r"^\+?[0-9]+$")
_POSSIBLE = {
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "a length no number of that country has",
    ValidationResult.INVALID_COUNTRY_CODE: "no country has that country code",
}
_PARSE = {
    NumberParseException.INVALID_COUNTRY_CODE: "no country code (write it with + or 00, or set --country)",
    NumberParseException.NOT_A_NUMBER: NOT_A_NUMBER,
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
_SAMPLE_DAYS = (datetime(2026, 1, 15, tzinfo=timezone.utc), datetime(2026, 7, 15, tzinfo=timezone.utc))


class NumberError(ValueError):
    """A number that cannot be used; the message says why, in a few words."""


def check_country(country: str | None) -> str | None:
    """``"it"`` -> ``"IT"``; None stays None; an unknown region raises NumberError."""
    if not country:
        return None
    code = country.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise NumberError(f"country {country!r} is not a two-letter country code phonenumbers knows (e.g. IT, FR, US)")
    return code


def _parse(text: str, country: str | None) -> phonenumbers.PhoneNumber:
    raw = (text or "").strip()
    if not raw:
        raise NumberError("empty number")
    compact = re.sub(r"[\s\-.()/\u00a0]", "", raw)
    if not _DIGITS.match(compact):
        raise NumberError(NOT_A_NUMBER)
    if country is None and compact.startswith("00"):
        compact = "+" + compact[2:]
    if country is None and not compact.startswith("+"):
        raise NumberError("a national number without its country code; set --country (e.g. --country IT) "
                          "or write it with + and the country code")
    try:
        return phonenumbers.parse(compact, country)
    except NumberParseException as exc:
        raise NumberError(_PARSE.get(exc.error_type, NOT_A_NUMBER)) from None


def read_number(text: str, country: str | None = None) -> tuple[str, str | None]:
    """The number in E.164 and the callee's time zone when the number decides it (``number_timezone``).

    **Reading**: a number is refused when it is impossible for its country
    (its length, per phonenumbers' metadata: ``339 12`` is too short for
    IT), not when it merely falls outside the ranges the metadata lists as
    assigned: those tables lag behind new ranges, and a refused real customer
    is worse than one failed dial (which the dialer reports as ``failed``).
    """
    number = _parse(text, country)
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != ValidationResult.IS_POSSIBLE and possible != ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        region = phonenumbers.region_code_for_country_code(number.country_code)
        region = region if region != phonenumbers.UNKNOWN_REGION else (country or "its country")
        raise NumberError(f"{_POSSIBLE.get(possible, 'not a possible number')} for {region}")
    zones = tuple(number_zones.time_zones_for_geographical_number(number))
    return phonenumbers.format_number(number, PhoneNumberFormat.E164), _one_clock(zones)


def to_e164(text: str, country: str | None = None) -> str:
    """The number in E.164 (``+393331234567``); NumberError says why it cannot be one."""
    return read_number(text, country)[0]


def try_e164(text: str, country: str | None = None) -> str | None:
    """The E.164 form, or None when it is not a usable number (for callers that only compare)."""
    try:
        return to_e164(text, country)
    except NumberError:
        return None


def number_timezone(e164: str) -> str | None:
    """The callee's time zone when the number decides it (one zone, or several that keep the same clock)."""
    try:
        return read_number(e164)[1]
    except NumberError:
        return None


@lru_cache(maxsize=4096)
def _one_clock(zones: tuple[str, ...]) -> str | None:
    zones = tuple(name for name in zones if name != "Etc/Unknown")
    if not zones:
        return None
    try:
        offsets = {tuple(day.astimezone(ZoneInfo(name)).utcoffset() for day in _SAMPLE_DAYS) for name in zones}
    except ZoneInfoNotFoundError:
        return None
    return zones[0] if len(offsets) == 1 else None


def caller_id_number(caller_id: str) -> str:
    """``"Acme <5551234>"`` -> ``5551234``; a bare number stays as it is (the ``called`` built-in)."""
    match = re.search(r"<([^>]*)>", caller_id or "")
    return (match.group(1) if match else caller_id or "").strip()
