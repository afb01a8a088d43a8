"""Money, dates and numbers as a customer reads them, in their locale.

Babel (CLDR) does the work.  Two things it does not do are done here: the Thai
Buddhist era (Babel 2.18 has no Buddhist calendar, see
shared/reference/stack.md) and exact decimal money (amounts stay `Decimal`,
scaled by the ISO 4217 exponent, never `float`).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from functools import cache, lru_cache
from typing import Literal

from babel import Locale
from babel.dates import format_date as _babel_date
from babel.dates import format_skeleton
from babel.numbers import format_currency, format_decimal, get_currency_symbol

from dunning.core.money import exponent, to_decimal

DateStyle = Literal["long", "medium", "full"]

# Thai dates use the Buddhist era: 2026 CE is 2569 BE.
BUDDHIST_ERA_OFFSET = 543
_THAI_PATTERNS = {
    "full": "EEEEที่ d MMMM 'พ.ศ.' ",
    "long": "d MMMM 'พ.ศ.' ",
    "medium": "d MMM ",
}


@cache
def locale_for(tag: str) -> Locale:
    """A cached Babel Locale for a BCP 47 tag ('th-TH', 'en')."""
    return Locale.parse(tag.replace("-", "_"))


# Amounts and dates repeat (one price per plan, one due date per billing run),
# and Babel is most of a message's render time: remember recent answers.
@lru_cache(maxsize=8192)
def format_money(minor: int, currency: str, *, locale: str) -> str:
    """123450 THB in th-TH -> '฿1,234.50'; 4980 JPY in ja-JP -> '￥4,980'; KWD keeps 3 places."""
    babel_locale = locale_for(locale)
    return format_currency(
        to_decimal(minor, currency),
        currency,
        format=_money_pattern(babel_locale, currency),
        locale=babel_locale,
        currency_digits=False,
    )


@cache
def _money_pattern(babel_locale: Locale, currency: str) -> str:
    # The locale's own pattern with the ISO 4217 number of decimals in place of
    # CLDR's, which shows JPY as 4,980.00 under a pattern written for cents.
    pattern = babel_locale.currency_formats["standard"].pattern.split(";")[0]
    places = exponent(currency)
    fraction = "." + "0" * places if places else ""
    pattern = re.sub(r"0(\.0+)?", "0" + fraction, pattern, count=1)
    symbol = get_currency_symbol(currency, locale=babel_locale)
    if symbol.isalpha() and symbol.isascii() and re.search(r"¤[#0]", pattern):
        # CLDR glues a code to the number ("THB1,234.50"); a no-break space reads better.
        pattern = pattern.replace("¤", "¤\u00a0", 1)
    return pattern


def format_number(value: int | Decimal, *, locale: str) -> str:
    return format_decimal(value, locale=locale_for(locale), decimal_quantization=False)


def format_day(day: date | datetime, *, locale: str, style: DateStyle = "long") -> str:
    """15 March 2026 in en; '15 มีนาคม พ.ศ. 2569' in th (Buddhist era).

    A datetime gives the day of its own wall clock: put it in the customer's time
    zone first.  The cache is keyed by the day, never by the datetime: two
    datetimes of one instant in different zones are equal (and hash alike), so
    keyed by them the first zone's day would be every zone's.
    """
    return _format_day(_day_of(day), locale, style)


def _day_of(day: date | datetime) -> date:
    return day.date() if isinstance(day, datetime) else day


@lru_cache(maxsize=8192)
def _format_day(day: date, locale: str, style: DateStyle) -> str:
    babel_locale = locale_for(locale)
    if babel_locale.language == "th":
        return _babel_date(day, _THAI_PATTERNS[style], locale=babel_locale) + str(
            day.year + BUDDHIST_ERA_OFFSET
        )
    return _babel_date(day, style, locale=babel_locale)


def format_month(day: date | datetime, *, locale: str) -> str:
    """The month of `day`: 'July 2026' in en; 'กรกฎาคม พ.ศ. 2569' in th (Buddhist era).

    Cached by the day, as `format_day` is, for the same reason."""
    return _format_month(_day_of(day), locale)


@lru_cache(maxsize=1024)
def _format_month(day: date, locale: str) -> str:
    babel_locale = locale_for(locale)
    if babel_locale.language == "th":
        # The format-context month (MMMM): Babel's stand-alone Thai names (LLLL)
        # came out as "M07" in some runs.
        return _babel_date(day, "MMMM 'พ.ศ.' ", locale=babel_locale) + str(
            day.year + BUDDHIST_ERA_OFFSET
        )
    return format_skeleton("yMMMM", day, locale=babel_locale)


# Card brands as the gateways spell them ("visa", "american_express"), as people read them.
_CARD_BRANDS = {
    "amex": "American Express",
    "american_express": "American Express",
    "diners": "Diners Club",
    "diners_club": "Diners Club",
    "discover": "Discover",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}


def card_brand_name(brand: str) -> str:
    """'visa' -> 'Visa', 'american_express' -> 'American Express'; another one title-cased.

    Empty when the gateway could not tell ("unknown", Stripe's word for it): a
    message then speaks of "the card ending in ...", in any language.
    """
    key = brand.strip().lower().replace(" ", "_")
    if key == "unknown":
        return ""
    return _CARD_BRANDS.get(key) or key.replace("_", " ").title()
