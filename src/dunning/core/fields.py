"""Normalisation of the facts that describe a customer.

Each function takes what an integrator sent and returns the stored form, or
raises `FieldError` with a message meant for that integrator.  The API and the
CSV import share them, so a value means the same whichever way it came in.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, date, datetime, time
from functools import cache

import idna
import phonenumbers
import pycountry
from babel import Locale, UnknownLocaleError
from babel.core import get_global

# Dates outside this range are typing errors, and far-future years overflow
# when converted between time zones.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# The mailbox name as SMTP carries it without SMTPUTF8: an RFC 5321 dot-string of
# RFC 5322 atext.  Quoted names and comments are refused: a To header reads
# "a(note)@x.com" as a@x.com and "a@x,y.com" as a@x, so what was stored would
# not be where the mail went.
_MAILBOX = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
# A host name label (RFC 1035 2.3.1, RFC 5890 for the xn-- form of a Unicode one).
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NOT_A_DATE = "not a date: use 2026-03-15 or 2026-03-15T09:30:00+07:00"


class FieldError(ValueError):
    """A value that cannot be accepted; the message says why, never echoes secrets."""


def normalize_country(value: str) -> str:
    code = value.strip().upper()
    if pycountry.countries.get(alpha_2=code) is None:
        raise FieldError("unknown country: use an ISO 3166 alpha-2 code such as TH")
    return code


def normalize_locale(value: str) -> str:
    """A BCP 47 tag in canonical case: 'th', 'th-TH', 'en-US'."""
    try:
        locale = Locale.parse(value.strip().replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        raise FieldError("unknown locale: use a tag such as th, th-TH or en-US") from None
    return "-".join(part for part in (locale.language, locale.script, locale.territory) if part)


def normalize_time_zone(value: str) -> str:
    name = value.strip()
    if name not in _time_zones():
        raise FieldError("unknown time zone: use an IANA name such as Asia/Bangkok")
    return name


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


# Where a customer's hours are reckoned when their stored zone is unknown (`known_zone`).
UTC_ZONE = zoneinfo.ZoneInfo("UTC")


def known_zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The time zone stored as `name`, or None when this machine knows no such zone.

    Names are checked on the way in (`normalize_time_zone`), but a stored one may
    predate the check, or name a zone another machine's tz database lacks (old
    aliases such as US/Eastern are a separate package on some systems): the
    engine must not stop on it, for that customer or for everyone after them.
    """
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def default_time_zone(country: str) -> str | None:
    """The country's time zone when it has only one (TH -> Asia/Bangkok), else None."""
    zones = get_global("territory_zones").get(country, [])
    return zones[0] if len(zones) == 1 else None


def normalize_phone(value: str, *, country: str = "") -> str:
    """E.164 form: '+66812345678'.  A national number needs the customer's country."""
    text = value.strip()
    try:
        number = phonenumbers.parse(text, country or None)
    except phonenumbers.NumberParseException:
        hint = "" if text.startswith("+") or country else " (or set the country)"
        raise FieldError(f"not a phone number: write it as +66812345678{hint}") from None
    if not phonenumbers.is_valid_number(number):
        raise FieldError("not a valid phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(value: str) -> str:
    """The address as stored: the mailbox name as given, the domain in lower case.

    Only addresses the email channel can send to: a mailbox name (before @) in
    ASCII, since one in another script needs SMTPUTF8 (RFC 6531), which the
    channel does not speak; a domain may be in any script (it goes on the wire
    in its IDNA 2008 form, `dunning.channels.email.message.wire_address`).
    """
    text = value.strip()
    if len(text) > 254 or not _EMAIL.match(text):
        raise FieldError("not an email address")
    local, _, domain = text.rpartition("@")
    if not local.isascii():
        raise FieldError(
            "the part before @ must be ASCII: "
            "the email channel cannot send to it without SMTPUTF8 (RFC 6531)"
        )
    if len(local) > 64 or not _MAILBOX.match(local):
        raise FieldError("not an email address")
    domain = domain.lower()
    if _wire_domain(domain) is None:
        raise FieldError("not an email address: the domain is not a valid domain name")
    return f"{local}@{domain}"


def _wire_domain(domain: str) -> str | None:
    """`domain` as DNS and SMTP carry it (IDNA 2008 with UTS 46), or None if it is not one."""
    try:
        ascii_domain = domain if domain.isascii() else idna.encode(domain, uts46=True).decode()
    except idna.IDNAError:
        return None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > 253 or len(labels) < 2:
        return None
    return ascii_domain if all(_LABEL.match(label) for label in labels) else None


def parse_instant(value: str | datetime | date) -> datetime:
    """An aware datetime in UTC from ISO 8601 text, a date (midnight UTC) or a datetime.

    A datetime without a UTC offset is refused: guessing the zone of a due date
    shifts it by up to a day.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time(0), tzinfo=UTC)
    elif isinstance(value, str):
        text = value.strip()
        if _DATE_ONLY.match(text):
            text += "T00:00:00+00:00"
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise FieldError(_NOT_A_DATE) from None
    else:
        # JSON numbers, null, lists: pydantic hands a BeforeValidator anything.
        raise FieldError(_NOT_A_DATE)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise FieldError("add a UTC offset, such as 2026-03-15T09:30:00+07:00 or ...Z")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:00-14:00 or 0001-01-01T00:00+14:00 leave datetime's range.
        raise FieldError(f"must be between {EARLIEST.year} and {LATEST.year}") from None
    if not EARLIEST <= moment < LATEST:
        raise FieldError(f"must be between {EARLIEST.year} and {LATEST.year}")
    return moment


def check_text(value: str, *, max_length: int) -> str:
    """Text that every database can store: no NUL, valid Unicode, bounded length."""
    if "\x00" in value:
        raise FieldError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise FieldError("must be valid Unicode text") from None
    if len(value) > max_length:
        raise FieldError(f"at most {max_length} characters")
    return value
