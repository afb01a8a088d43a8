"""Money: an integer count of minor units plus an ISO 4217 currency.

Amounts never pass through `float`.  Parsing and formatting go through
`Decimal`, scaled by the currency's ISO 4217 exponent (JPY 0, THB 2, KWD 3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache

from iso4217 import Currency as _Iso4217

# Largest amount the ledger accepts, in minor units.  It fits a signed 64-bit
# column with room for sums, and is far beyond any real invoice (10^13 minor
# units is 100 billion in a two-decimal currency).
MAX_MINOR_UNITS = 10**13 - 1

_DECIMAL = re.compile(r"^(?P<int>\d+)(?:\.(?P<frac>\d+))?$")


class MoneyError(ValueError):
    """An amount or currency that cannot be accepted; the message says why."""


@cache
def _exponents() -> dict[str, int]:
    # Funds, precious metals and test codes (XAU, XDR, XTS ...) have no minor
    # unit in ISO 4217 and cannot be invoiced in, so they are left out.
    return {c.code: c.exponent for c in _Iso4217 if c.exponent is not None}


def currency_codes() -> frozenset[str]:
    """Every ISO 4217 code an invoice can be in."""
    return frozenset(_exponents())


def exponent(currency: str) -> int:
    """The number of decimal places of `currency` (JPY 0, THB 2, KWD 3)."""
    try:
        return _exponents()[currency]
    except KeyError:
        raise MoneyError("unknown currency: use an ISO 4217 code such as THB") from None


def normalize_currency(value: str) -> str:
    """Return the upper-case ISO 4217 code for `value`, or raise MoneyError."""
    code = value.strip().upper()
    exponent(code)
    return code


def parse_major(text: str, currency: str) -> int:
    """Parse a decimal string in major units ("1234.50") into minor units (123450).

    Accepts digits with an optional fraction no longer than the currency's
    exponent; thousands separators, signs, exponents and spaces are refused so
    that a spreadsheet's "1,234.50" or "-5" is an error, not a guess.
    """
    places = exponent(currency)
    match = _DECIMAL.match(text.strip())
    if match is None:
        if text.strip().startswith("-"):
            raise MoneyError("must not be negative")
        raise MoneyError("not a decimal amount: write it like 1234.50, without separators")
    fraction = match.group("frac") or ""
    if len(fraction) > places:
        if places == 0:
            raise MoneyError(f"{currency} has no minor unit: write the amount without decimals")
        raise MoneyError(f"{currency} has {places} decimal places at most, got {len(fraction)}")
    try:
        minor = int(Decimal(text.strip()).scaleb(places))
    except InvalidOperation:  # pragma: no cover - the regex admits only digits
        raise MoneyError("not a decimal amount") from None
    check_minor(minor)
    return minor


def check_minor(minor: int) -> int:
    """Return `minor` if it is a storable non-negative amount, else raise MoneyError."""
    if minor < 0:
        raise MoneyError("must not be negative")
    if minor > MAX_MINOR_UNITS:
        raise MoneyError(f"too large: at most {MAX_MINOR_UNITS} minor units")
    return minor


def to_decimal(minor: int, currency: str) -> Decimal:
    """Minor units as a Decimal in major units: (123450, "THB") -> Decimal("1234.50")."""
    return Decimal(minor).scaleb(-exponent(currency))


def format_major(minor: int, currency: str) -> str:
    """Minor units as a plain decimal string, the inverse of `parse_major`.

    (123450, "THB") -> "1234.50"; (5000, "JPY") -> "5000"; (1, "KWD") -> "0.001".
    """
    places = exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**places)
    if places == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:0{places}d}"


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units of one currency."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        exponent(self.currency)
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise MoneyError("minor units must be an int")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor - other.minor, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot mix {self.currency} and {other.currency}")

    @property
    def major(self) -> Decimal:
        return to_decimal(self.minor, self.currency)

    def __str__(self) -> str:
        return f"{format_major(self.minor, self.currency)} {self.currency}"
