"""Public holidays per country, from the `holidays` package, cached per (country, year)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date
from types import MappingProxyType

import holidays


def holiday_name(country: str, day: date) -> str | None:
    """The English name of the public holiday on `day` in `country`, or None."""
    return holidays_in(country, day.year).get(day)


@functools.cache
def holidays_in(country: str, year: int) -> Mapping[date, str]:
    """Every public holiday of `country` in `year`; empty for an unknown or empty country.

    `language="en_US"` always: without it the names follow the process locale
    (English under C.UTF-8, Thai under th_TH), see reference/stack.md item 4.
    The mapping is read-only because it is shared by every caller through the cache.
    """
    if not country:
        return MappingProxyType({})
    try:
        found = holidays.country_holidays(country, years=year, language="en_US")
    except NotImplementedError:  # the package knows no such country: no holidays to honour
        return MappingProxyType({})
    return MappingProxyType(dict(found.items()))
