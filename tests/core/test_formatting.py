from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from babel.numbers import get_decimal_symbol, get_group_symbol
from hypothesis import given
from hypothesis import strategies as st

from dunning.core.formatting import format_day, format_money, format_month
from dunning.core.money import MAX_MINOR_UNITS, currency_codes, exponent, to_decimal

LOCALES = ["en", "en-US", "th", "th-TH", "ja-JP", "de-DE"]


def read_back(text: str, *, locale: str) -> str:
    """The digits of a formatted amount, with '.' as the decimal point."""
    group, point = (
        get_group_symbol(locale.replace("-", "_")),
        get_decimal_symbol(locale.replace("-", "_")),
    )
    number = re.search(r"\d[\d" + re.escape(group) + re.escape(point) + r"]*", text)
    assert number is not None, text
    return number.group().replace(group, "").replace(point, ".")


@given(
    minor=st.integers(min_value=0, max_value=MAX_MINOR_UNITS),
    currency=st.sampled_from(sorted(currency_codes())),
    locale=st.sampled_from(LOCALES),
)
def test_a_formatted_amount_reads_back_as_the_same_exact_amount(
    minor: int, currency: str, locale: str
) -> None:
    text = format_money(minor, currency, locale=locale)

    digits = read_back(text, locale=locale)

    assert digits == f"{to_decimal(minor, currency):f}"
    places = len(digits.partition(".")[2])
    assert places == exponent(currency)


def test_baht_reads_as_thai_customers_expect() -> None:
    assert format_money(123450, "THB", locale="th-TH") == "฿1,234.50"
    assert format_money(123450, "THB", locale="en") == "THB\u00a01,234.50"


def test_yen_has_no_decimals_and_dinar_has_three() -> None:
    assert format_money(4980, "JPY", locale="ja-JP") == "￥4,980"
    assert format_money(1, "KWD", locale="en") == "KWD\u00a00.001"


def test_thai_dates_are_in_the_buddhist_era() -> None:
    assert format_day(date(2026, 3, 15), locale="th-TH") == "15 มีนาคม พ.ศ. 2569"
    assert format_day(date(2026, 3, 15), locale="th", style="full") == "วันอาทิตย์ที่ 15 มีนาคม พ.ศ. 2569"
    assert format_day(date(2026, 3, 15), locale="en") == "March 15, 2026"


def test_one_instant_is_each_zone_s_own_day_whichever_zone_asked_first() -> None:
    # 03:00 UTC on 20 March is the 20th in London and still the 19th in Los Angeles.
    instant = datetime(2026, 3, 20, 3, 0, tzinfo=UTC)
    london = instant.astimezone(ZoneInfo("Europe/London"))
    los_angeles = instant.astimezone(ZoneInfo("America/Los_Angeles"))

    assert format_day(london, locale="en", style="medium") == "Mar 20, 2026"
    assert format_day(los_angeles, locale="en", style="medium") == "Mar 19, 2026"
    assert format_month(los_angeles.replace(day=1, hour=1), locale="en") == "March 2026"
