from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dunning.core import money
from dunning.core.money import (
    MAX_MINOR_UNITS,
    Money,
    MoneyError,
    check_minor,
    currency_codes,
    exponent,
    format_major,
    normalize_currency,
    parse_major,
    to_decimal,
)

CURRENCIES = sorted(currency_codes())
minor_units = st.integers(min_value=0, max_value=MAX_MINOR_UNITS)
currencies = st.sampled_from(CURRENCIES)


# --- currencies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "places"),
    [
        ("JPY", 0),
        ("KRW", 0),
        ("THB", 2),
        ("USD", 2),
        ("EUR", 2),
        ("KWD", 3),
        ("BHD", 3),
        ("CLF", 4),
    ],
)
def test_each_currency_has_its_iso_4217_exponent(currency: str, places: int) -> None:
    assert exponent(currency) == places


def test_every_active_iso_4217_currency_with_a_minor_unit_is_known() -> None:
    assert len(CURRENCIES) > 150
    assert {"THB", "JPY", "KWD", "USD", "EUR", "SGD", "VND", "IDR"} <= set(CURRENCIES)


@pytest.mark.parametrize("code", ["XAU", "XDR", "XTS", "XXX"])
def test_codes_without_a_minor_unit_cannot_be_invoiced_in(code: str) -> None:
    with pytest.raises(MoneyError):
        exponent(code)


def test_a_currency_code_is_normalised_to_upper_case() -> None:
    assert normalize_currency(" thb ") == "THB"
    assert normalize_currency("Jpy") == "JPY"


@pytest.mark.parametrize("value", ["", "TH", "BAHT", "XYZ", "฿", "T\x00B", "4111111111111111"])
def test_an_unknown_currency_is_refused_without_repeating_it(value: str) -> None:
    with pytest.raises(MoneyError) as raised:
        normalize_currency(value)

    assert str(raised.value) == "unknown currency: use an ISO 4217 code such as THB"


# --- formatting and parsing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (123450, "THB", "1234.50"),
        (5000, "JPY", "5000"),
        (1, "KWD", "0.001"),
        (0, "THB", "0.00"),
        (7, "THB", "0.07"),
        (-1234, "THB", "-12.34"),
        (MAX_MINOR_UNITS, "JPY", "9999999999999"),
        (12345, "CLF", "1.2345"),
    ],
)
def test_it_formats_minor_units_as_a_plain_decimal(minor: int, currency: str, text: str) -> None:
    assert format_major(minor, currency) == text


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("1234.50", "THB", 123450),
        ("1234.5", "THB", 123450),
        ("1234", "THB", 123400),
        ("  12.00\n", "THB", 1200),
        ("5000", "JPY", 5000),
        ("0.001", "KWD", 1),
        ("0.1", "KWD", 100),
        ("0", "USD", 0),
        ("007.10", "USD", 710),
        ("9999999999999", "JPY", MAX_MINOR_UNITS),
    ],
)
def test_it_parses_a_decimal_in_major_units(text: str, currency: str, minor: int) -> None:
    assert parse_major(text, currency) == minor


@given(minor=minor_units)
def test_parse_undoes_format_for_every_currency(minor: int) -> None:
    for currency in CURRENCIES:
        assert parse_major(format_major(minor, currency), currency) == minor


@given(minor=minor_units, currency=currencies)
def test_format_undoes_parse_of_a_canonical_amount(minor: int, currency: str) -> None:
    text = format_major(minor, currency)

    assert format_major(parse_major(text, currency), currency) == text
    assert to_decimal(minor, currency) == Decimal(text)


@given(
    whole=st.integers(min_value=0, max_value=10**6),
    currency=currencies,
    extra=st.integers(min_value=1, max_value=4),
    digits=st.data(),
)
def test_it_refuses_more_decimals_than_the_currency_has(
    whole: int, currency: str, extra: int, digits: st.DataObject
) -> None:
    places = exponent(currency)
    fraction = digits.draw(st.text("0123456789", min_size=places + extra, max_size=places + extra))

    with pytest.raises(MoneyError):
        parse_major(f"{whole}.{fraction}", currency)


@pytest.mark.parametrize(
    ("text", "currency"), [("1.5", "JPY"), ("1.234", "THB"), ("0.0001", "KWD"), ("1.00", "JPY")]
)
def test_it_refuses_a_fraction_the_currency_cannot_hold(text: str, currency: str) -> None:
    with pytest.raises(MoneyError, match=currency):
        parse_major(text, currency)


@given(minor=st.integers(min_value=1, max_value=MAX_MINOR_UNITS), currency=currencies)
def test_it_refuses_a_negative_amount(minor: int, currency: str) -> None:
    with pytest.raises(MoneyError, match="negative"):
        parse_major("-" + format_major(minor, currency), currency)


@given(
    minor=st.integers(min_value=1000, max_value=MAX_MINOR_UNITS),
    currency=currencies,
    separator=st.sampled_from([",", " ", "_", "'", "\u00a0", "\u202f", "\u066c"]),
    data=st.data(),
)
def test_it_refuses_thousands_separators(
    minor: int, currency: str, separator: str, data: st.DataObject
) -> None:
    text = format_major(minor, currency)
    whole = text.split(".")[0]
    at = data.draw(st.integers(min_value=1, max_value=len(whole) - 1)) if len(whole) > 1 else 1
    with_separator = text[:at] + separator + text[at:]

    with pytest.raises(MoneyError):
        parse_major(with_separator, currency)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "1,234.50",
        "1.234,50",
        "1 234.50",
        "+5",
        "-5",
        "-0",
        "1e3",
        "1E3",
        ".5",
        "5.",
        "NaN",
        "Infinity",
        "0x10",
        "฿100",
        "100฿",
        "100 THB",
        "1..2",
        "1.2.3",
        "\u0661\u0662\u0663.\u0664\u0665x",
    ],
)
def test_it_refuses_anything_but_digits_and_one_point(text: str) -> None:
    with pytest.raises(MoneyError) as raised:
        parse_major(text, "THB")

    if text.strip():
        assert repr(text.strip()) not in str(raised.value)


def test_it_refuses_an_amount_beyond_the_ledger_limit() -> None:
    with pytest.raises(MoneyError, match="too large"):
        parse_major("100000000000", "THB")  # 10^13 minor units


def test_parse_refuses_an_unknown_currency() -> None:
    with pytest.raises(MoneyError):
        parse_major("1.00", "XYZ")


def test_check_minor_bounds_amounts() -> None:
    assert check_minor(0) == 0
    assert check_minor(MAX_MINOR_UNITS) == MAX_MINOR_UNITS
    with pytest.raises(MoneyError):
        check_minor(-1)
    with pytest.raises(MoneyError):
        check_minor(MAX_MINOR_UNITS + 1)


def test_the_ledger_limit_fits_a_64_bit_column_with_room_for_sums() -> None:
    assert MAX_MINOR_UNITS * 100_000 < 2**63


# --- Money ---------------------------------------------------------------------------------


amounts = st.integers(min_value=-MAX_MINOR_UNITS, max_value=MAX_MINOR_UNITS)


@given(a=amounts, b=amounts, c=amounts, currency=currencies)
def test_money_adds_and_subtracts_like_integers_in_one_currency(
    a: int, b: int, c: int, currency: str
) -> None:
    x, y, z = Money(a, currency), Money(b, currency), Money(c, currency)

    assert x + y == y + x == Money(a + b, currency)
    assert (x + y) + z == x + (y + z)
    assert (x + y) - y == x
    assert x - x == Money(0, currency)
    assert (x + y).major == x.major + y.major


@given(a=amounts, b=amounts, pair=st.lists(currencies, min_size=2, max_size=2, unique=True))
def test_money_refuses_to_mix_currencies(a: int, b: int, pair: list[str]) -> None:
    first, second = Money(a, pair[0]), Money(b, pair[1])

    with pytest.raises(MoneyError, match="cannot mix"):
        first + second
    with pytest.raises(MoneyError, match="cannot mix"):
        first - second


def test_money_shows_its_amount_in_major_units() -> None:
    assert str(Money(123450, "THB")) == "1234.50 THB"
    assert str(Money(4980, "JPY")) == "4980 JPY"
    assert str(Money(1, "KWD")) == "0.001 KWD"
    assert Money(123450, "THB").major == Decimal("1234.50")


@pytest.mark.parametrize("minor", [1.5, 100.0, "100", True, None, Decimal("1")])
def test_money_is_only_ever_an_integer_count_of_minor_units(minor: object) -> None:
    with pytest.raises(MoneyError):
        Money(minor, "THB")  # type: ignore[arg-type]


def test_money_needs_a_known_currency() -> None:
    with pytest.raises(MoneyError):
        Money(100, "XYZ")
    with pytest.raises(MoneyError):
        Money(100, "thb")  # codes are normalised before they reach Money


def test_money_is_immutable_and_hashable() -> None:
    amount = Money(100, "THB")

    with pytest.raises(AttributeError):
        amount.minor = 5  # type: ignore[misc]
    assert {amount, Money(100, "THB")} == {amount}


def test_no_amount_ever_passes_through_float() -> None:
    # 0.1 + 0.2 != 0.3 in float; in minor units it is exact.
    assert parse_major("0.10", "THB") + parse_major("0.20", "THB") == parse_major("0.30", "THB")
    assert money.to_decimal(parse_major("1234.56", "THB"), "THB") == Decimal("1234.56")
