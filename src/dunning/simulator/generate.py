"""Synthetic scenarios with the habits that make failed payments recoverable, or not.

`generate(n, seed, start=...)` returns scenario data (a JSON-ready dict, valid
against scenario.schema.json) for `n` customers over `days` days.  The same
arguments always give the same scenario.  What it models (docs/simulator.md,
"What the generator models"):

- Who: mostly Thai customers (Thai locale, Asia/Bangkok, THB), some in the US,
  Europe (DE, FR, NL, GB) and Japan, each with its currency, card brands and
  a monthly subscription billed on a fixed day of the month at a fixed hour.
- Tight budgets: for some customers money arrives on payday (the 25th, the last
  business day of the month, or every other Friday) and lasts only a few days;
  outside those days every charge fails with insufficient_funds.
- Issuer outages: some issuers are down on some nights, 00:00-05:00 local time
  (issuer_not_available).
- Expiring cards: the card on file expires before one of the invoices is due.
- Hard declines: a few cards are reported lost or stolen, or must be picked up
  (advice do_not_try_again) from some day on.
- New cards: card-updater events for expiring cards, and customers who put in a
  new card some hours after the k-th reminder.
- History: the months before `start`, charged by a naive schedule, so the
  successes cluster just after each customer's payday: what a smart strategy
  can learn from.

Decline windows are listed hard declines first, then outages, then missing
funds: the first window holding a moment decides the outcome.
"""

from __future__ import annotations

import calendar
import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
HISTORY_MONTHS = (3, 6)  # months of past charges per customer, inclusive range
FUNDS_ARRIVE_HOUR = 6  # salaries are credited overnight; spendable from 06:00 local
MONEY_LASTS_DAYS = (2, 6)  # "money that lasts only a few days after payday"
OUTAGE_HOURS = (0, 5)  # issuer maintenance at night, local time
HARD_DECLINE_CODES = ("lost_card", "stolen_card", "pickup_card")
HISTORY_RETRIES = 10  # the naive past schedule: daily, up to ten days

# Shares of customers with each habit (independent draws).
TIGHT_BUDGET_SHARE = {"TH": 0.40, "US": 0.35, "JP": 0.25}
TIGHT_BUDGET_SHARE_DEFAULT = 0.25
EXPIRING_CARD_SHARE = 0.08
HARD_DECLINE_SHARE = 0.02
CARD_UPDATER_SHARE = 0.5  # of expiring cards, the updater delivers the new one
UPDATES_AFTER_REMINDERS = {"expiring": 0.7, "hard": 0.7, "tight": 0.25}


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    weight: int
    currency: str
    locales: tuple[tuple[str, int], ...]  # (locale, weight)
    time_zones: tuple[str, ...]
    prices: tuple[int, ...]  # monthly price in minor units
    brands: tuple[tuple[str, int], ...]  # (brand, weight)
    paydays: tuple[tuple[str, int], ...]  # (pattern, weight)
    issuers: tuple[str, ...]
    given_names: tuple[tuple[str, str], ...]  # (as written, romanised for the email)
    family_names: tuple[tuple[str, str], ...]
    family_first: bool = False


def _same(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, name) for name in names)


COUNTRIES = (
    Country(
        code="TH",
        weight=60,
        currency="THB",
        locales=(("th", 85), ("en", 15)),
        time_zones=("Asia/Bangkok",),
        prices=(19900, 29900, 49900, 99900, 159000),
        brands=(("visa", 50), ("mastercard", 35), ("jcb", 8), ("unionpay", 7)),
        # Thai salaries: the 25th or the last working day; a few paid fortnightly.
        paydays=(("25th", 50), ("last_business_day", 45), ("biweekly_friday", 5)),
        issuers=("kbank", "scb", "bbl", "ktb", "krungsri", "ttb"),
        given_names=(
            ("สมชาย", "somchai"),
            ("สมหญิง", "somying"),
            ("นภา", "napa"),
            ("วิชัย", "wichai"),
            ("กมล", "kamon"),
            ("ปิยะ", "piya"),
            ("อรุณ", "arun"),
            ("สุดา", "suda"),
            ("ธนา", "thana"),
            ("พิมพ์", "pim"),
        ),
        family_names=(
            ("ใจดี", "jaidee"),
            ("ศรีสุข", "srisuk"),
            ("วงศ์สวัสดิ์", "wongsawat"),
            ("สุขสันต์", "suksan"),
            ("แก้วมณี", "kaewmanee"),
            ("บุญมา", "boonma"),
            ("ทองดี", "thongdee"),
        ),
    ),
    Country(
        code="US",
        weight=20,
        currency="USD",
        locales=(("en", 1),),
        time_zones=("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"),
        prices=(999, 1499, 2900, 4900, 9900),
        brands=(("visa", 52), ("mastercard", 28), ("amex", 13), ("discover", 7)),
        paydays=(("biweekly_friday", 60), ("last_business_day", 25), ("25th", 15)),
        issuers=("chase", "bofa", "citi", "wells", "capone"),
        given_names=_same("James", "Mary", "Robert", "Linda", "Michael", "Emily", "David", "Maria"),
        family_names=_same("Smith", "Johnson", "Garcia", "Brown", "Miller", "Davis", "Lopez"),
    ),
    Country(
        code="DE",
        weight=5,
        currency="EUR",
        locales=(("de", 1),),
        time_zones=("Europe/Berlin",),
        prices=(999, 1900, 4900),
        brands=(("visa", 50), ("mastercard", 45), ("amex", 5)),
        paydays=(("last_business_day", 75), ("25th", 20), ("biweekly_friday", 5)),
        issuers=("sparkasse", "dkb", "comdirect"),
        given_names=_same("Lukas", "Anna", "Jonas", "Lea", "Felix", "Marie"),
        family_names=_same("Mueller", "Schmidt", "Schneider", "Fischer", "Weber"),
    ),
    Country(
        code="FR",
        weight=3,
        currency="EUR",
        locales=(("fr", 1),),
        time_zones=("Europe/Paris",),
        prices=(999, 1900, 4900),
        brands=(("visa", 55), ("mastercard", 42), ("amex", 3)),
        paydays=(("last_business_day", 80), ("25th", 20)),
        issuers=("bnp", "socgen", "credit_agricole"),
        given_names=_same("Camille", "Louis", "Chloe", "Hugo", "Manon", "Jules"),
        family_names=_same("Martin", "Bernard", "Dubois", "Thomas", "Robert"),
    ),
    Country(
        code="NL",
        weight=2,
        currency="EUR",
        locales=(("nl", 1),),
        time_zones=("Europe/Amsterdam",),
        prices=(999, 1900, 4900),
        brands=(("visa", 50), ("mastercard", 50)),
        paydays=(("25th", 50), ("last_business_day", 50)),
        issuers=("ing", "rabobank", "abn_amro"),
        given_names=_same("Daan", "Emma", "Sem", "Julia", "Lucas", "Sophie"),
        family_names=_same("de Jong", "Jansen", "de Vries", "Bakker", "Visser"),
    ),
    Country(
        code="GB",
        weight=2,
        currency="GBP",
        locales=(("en", 1),),
        time_zones=("Europe/London",),
        prices=(799, 1599, 3900),
        brands=(("visa", 60), ("mastercard", 35), ("amex", 5)),
        paydays=(("last_business_day", 70), ("25th", 20), ("biweekly_friday", 10)),
        issuers=("barclays", "hsbc", "lloyds", "natwest"),
        given_names=_same("Oliver", "Amelia", "George", "Isla", "Harry", "Ava"),
        family_names=_same("Jones", "Taylor", "Williams", "Wilson", "Evans"),
    ),
    Country(
        code="JP",
        weight=8,
        currency="JPY",
        locales=(("ja", 1),),
        time_zones=("Asia/Tokyo",),
        prices=(980, 1980, 4980, 9800),  # JPY has no minor unit
        brands=(("jcb", 40), ("visa", 35), ("mastercard", 20), ("amex", 5)),
        # Japanese salaries are customarily paid on the 25th.
        paydays=(("25th", 80), ("last_business_day", 20)),
        issuers=("mufg", "smbc", "mizuho", "rakuten"),
        given_names=(
            ("花子", "hanako"),
            ("太郎", "taro"),
            ("健", "ken"),
            ("由美", "yumi"),
            ("翔", "sho"),
            ("陽菜", "hina"),
        ),
        family_names=(
            ("佐藤", "sato"),
            ("鈴木", "suzuki"),
            ("高橋", "takahashi"),
            ("田中", "tanaka"),
            ("伊藤", "ito"),
        ),
        family_first=True,
    ),
)


def generate(
    n: int, seed: int, *, start: datetime = DEFAULT_START, days: int = 90
) -> dict[str, Any]:
    """A scenario of `n` customers over `days` days from `start`, the same for the same seed."""
    if n < 0:
        raise ValueError(f"n must be at least 0, not {n}")
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError(f"start {start!r} must be aware")
    start = start.astimezone(UTC)
    end = start + timedelta(days=days)
    # Random, not secrets: reproducible test data from a seed, nothing to protect.
    rng = random.Random(seed)  # noqa: S311
    world = _World(rng=rng, start=start, end=end)
    customers = [world.customer(i) for i in range(1, n + 1)]
    return {
        "description": (
            f"generated by dunning simulate --generate {n} --seed {seed} --days {days}"
        ),
        "start": _utc_text(start),
        "end": _utc_text(end),
        "customers": customers,
    }


class _World:
    """The scenario being drawn: the clock range, the issuers' outage nights, the counters."""

    def __init__(self, *, rng: random.Random, start: datetime, end: datetime) -> None:
        self.rng = rng
        self.start = start
        self.end = end
        self.invoice_seq = 0
        first_day = (start - timedelta(days=1)).date()
        self.days = [
            first_day + timedelta(days=d) for d in range((end.date() - first_day).days + 2)
        ]
        # Most issuers are reliable; a few run maintenance some nights.
        self.outage_nights: dict[str, tuple[date, ...]] = {}
        for country in COUNTRIES:
            for issuer in country.issuers:
                chance = rng.choice((0.0, 0.0, 0.02, 0.05, 0.12))
                self.outage_nights[issuer] = tuple(d for d in self.days if rng.random() < chance)
        self.weights = [c.weight for c in COUNTRIES]

    def customer(self, index: int) -> dict[str, Any]:
        rng = self.rng
        country = rng.choices(COUNTRIES, weights=self.weights)[0]
        zone = _zone(rng.choice(country.time_zones))
        local_start, local_end = self.start.astimezone(zone), self.end.astimezone(zone)
        locale = _pick(rng, country.locales)
        given, family = rng.choice(country.given_names), rng.choice(country.family_names)
        parts = (family[0], given[0]) if country.family_first else (given[0], family[0])
        name = " ".join(parts)
        email = f"{given[1]}.{family[1]}.{index}@example.com".replace(" ", "").lower()
        price = rng.choice(country.prices)
        billing_day = rng.randint(1, 28)
        billing_at = (rng.randint(0, 23), rng.choice((0, 0, 15, 30, 45)))

        tight = rng.random() < TIGHT_BUDGET_SHARE.get(country.code, TIGHT_BUDGET_SHARE_DEFAULT)
        expiring = rng.random() < EXPIRING_CARD_SHARE
        hard = rng.random() < HARD_DECLINE_SHARE
        issuer = rng.choice(country.issuers)

        due_dates = self.billing_dates(zone, billing_day, billing_at)
        invoices = []
        for due in due_dates:
            self.invoice_seq += 1
            invoices.append(
                {
                    "id": f"in_{self.invoice_seq:07d}",
                    "number": f"INV-{self.invoice_seq:07d}",
                    "amount_due": price,
                    "currency": country.currency,
                    "due_at": due.isoformat(),
                    "collection_method": "charge_automatically",
                }
            )

        money: list[tuple[datetime, datetime]] | None = None
        if tight:
            pattern = _pick(rng, country.paydays)
            lasts = rng.randint(*MONEY_LASTS_DAYS)
            # Paydays from well before the history starts to the end of the run.
            first = (self.start - timedelta(days=31 * (HISTORY_MONTHS[1] + 1))).date()
            paydays = _paydays(pattern, country.code, first, self.end.date(), rng.randint(0, 13))
            money = _money_windows(paydays, zone, lasts)

        expires = _card_expiry(rng, due_dates) if expiring else None
        if expires is None:
            exp_year, exp_month = self.end.year + rng.randint(1, 5), rng.randint(1, 12)
        else:
            exp_year, exp_month = expires
        brand = _pick(rng, country.brands)

        hard_window: dict[str, Any] | None = None
        if hard and due_dates:
            due = rng.choice(due_dates)
            lost_from = max(due - timedelta(days=rng.randint(0, 20)), local_start)
            hard_window = {
                "from": lost_from.isoformat(),
                "until": local_end.isoformat(),
                "decline_code": rng.choice(HARD_DECLINE_CODES),
                "advice_code": "do_not_try_again",
                "card": "original",
            }

        replacement, same_account = self.replacement(
            zone,
            tight=tight,
            expiring=expires is not None,
            hard=hard_window is not None,
            exp=(exp_year, exp_month),
        )
        cards = ["original", "replacement"] if replacement is not None else ["original"]
        declines: list[dict[str, Any]] = []
        if hard_window is not None:
            declines.append(hard_window)
        nights = self.outage_nights[issuer]
        for card in cards:
            for night in nights:
                down = datetime(night.year, night.month, night.day, OUTAGE_HOURS[0], tzinfo=zone)
                declines.append(
                    {
                        "from": down.isoformat(),
                        "until": down.replace(hour=OUTAGE_HOURS[1]).isoformat(),
                        "decline_code": "issuer_not_available",
                        "advice_code": "try_again_later",
                        "card": card,
                    }
                )
        funds_cards = cards if same_account else ["original"]
        gaps = [] if money is None else _gaps(money, local_start, local_end)
        for gap_from, gap_until in gaps:
            for card in funds_cards:
                declines.append(
                    {
                        "from": gap_from.isoformat(),
                        "until": gap_until.isoformat(),
                        "decline_code": "insufficient_funds",
                        "advice_code": None,
                        "card": card,
                    }
                )

        return {
            "id": f"cus_{index:06d}",
            "name": name,
            "email": email,
            "locale": locale,
            "time_zone": zone.key,
            "country": country.code,
            "card": {"brand": brand, "exp_month": exp_month, "exp_year": exp_year},
            "history": self.history(zone, billing_day, billing_at, price, country.currency, money),
            "invoices": invoices,
            "declines": declines,
            "replacement_card": replacement,
        }

    def billing_dates(self, zone: ZoneInfo, day: int, at: tuple[int, int]) -> list[datetime]:
        """The monthly billing moments inside [start, end), in local time."""
        local_start, local_end = self.start.astimezone(zone), self.end.astimezone(zone)
        found = []
        for year, month in _months(
            local_start.year, local_start.month, local_end.year, local_end.month
        ):
            moment = datetime(year, month, day, at[0], at[1], tzinfo=zone)
            if local_start <= moment < local_end:
                found.append(moment)
        return found

    def replacement(
        self, zone: ZoneInfo, *, tight: bool, expiring: bool, hard: bool, exp: tuple[int, int]
    ) -> tuple[dict[str, Any] | None, bool]:
        """The replacement card, and whether it draws on the same account (same budget)."""
        rng = self.rng
        at: datetime | None = None
        if expiring and rng.random() < CARD_UPDATER_SHARE:
            year, month = (exp[0] + 1, 1) if exp[1] == 12 else (exp[0], exp[1] + 1)
            expired = datetime(year, month, 1, tzinfo=zone)
            # The updater may know the new card before the old one lapses, or weeks later.
            at = expired + timedelta(hours=rng.randint(-10 * 24, 20 * 24))
            latest = self.end.astimezone(zone) - timedelta(hours=1)
            at = min(max(at, self.start.astimezone(zone)), latest)
        reason = "expiring" if expiring else "hard" if hard else "tight" if tight else None
        after: int | None = None
        delay: int | None = None
        if reason is not None and rng.random() < UPDATES_AFTER_REMINDERS[reason]:
            after = rng.choices((1, 2, 3, 4), weights=(35, 35, 20, 10))[0]
            delay = rng.choice((1, 2, 4, 8, 12, 24, 36, 48, 72, 120))
        if at is None and after is None:
            return None, False
        # A reissued card draws on the same account; a customer who switches cards
        # because the money ran out picks one that has some.
        same_account = expiring or hard
        card = {
            "at": None if at is None else at.isoformat(),
            "after_messages": after,
            "delay_hours": delay,
        }
        return card, same_account

    def history(
        self,
        zone: ZoneInfo,
        billing_day: int,
        at: tuple[int, int],
        price: int,
        currency: str,
        money: Sequence[tuple[datetime, datetime]] | None,
    ) -> list[dict[str, Any]]:
        """Past months as a naive schedule charged them: at the billing time, then daily
        at 10:00 for up to ten days.  `money` is None when funds never run out."""
        rng = self.rng
        local_start = self.start.astimezone(zone)
        months = rng.randint(*HISTORY_MONTHS)
        billed: list[datetime] = []
        year, month = local_start.year, local_start.month
        while len(billed) < months:
            moment = datetime(year, month, billing_day, at[0], at[1], tzinfo=zone)
            if moment < local_start:
                billed.append(moment)
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        charges: list[dict[str, Any]] = []
        for moment in reversed(billed):
            if money is None or _has_money(moment, money):
                charges.append(_charge(moment, price, currency))
                continue
            charges.append(_charge(moment, price, currency, declined="insufficient_funds"))
            retry = moment
            for _ in range(HISTORY_RETRIES):
                retry = (retry + timedelta(days=1)).replace(hour=10, minute=0)
                if retry >= local_start:
                    break
                if _has_money(retry, money):
                    charges.append(_charge(retry, price, currency))
                    break
                charges.append(_charge(retry, price, currency, declined="insufficient_funds"))
        return charges


def _charge(
    at: datetime, amount: int, currency: str, *, declined: str | None = None
) -> dict[str, Any]:
    charge: dict[str, Any] = {"at": at.isoformat(), "amount": amount, "currency": currency}
    if declined is None:
        charge["outcome"] = "succeeded"
    else:
        charge["outcome"] = "failed"
        charge["decline_code"] = declined
    return charge


def _utc_text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@functools.cache
def _zone(key: str) -> ZoneInfo:
    return ZoneInfo(key)


def _pick(rng: random.Random, weighted: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def _months(year: int, month: int, last_year: int, last_month: int) -> list[tuple[int, int]]:
    """Every (year, month) from the first to the last, inclusive."""
    found = []
    while (year, month) <= (last_year, last_month):
        found.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


@functools.cache
def _holidays(country: str, year: int) -> frozenset[date]:
    try:
        return frozenset(holidays.country_holidays(country, years=year, language="en_US"))
    except NotImplementedError:
        return frozenset()


def _is_business_day(day: date, country: str) -> bool:
    return day.weekday() < 5 and day not in _holidays(country, day.year)


def _previous_business_day(day: date, country: str) -> date:
    while not _is_business_day(day, country):
        day -= timedelta(days=1)
    return day


def _paydays(pattern: str, country: str, first: date, last: date, phase: int) -> list[date]:
    """Paydays from `first` to `last`: on the 25th (the working day before, if it is not
    one), on the last business day of the month, or every other Friday."""
    if pattern == "biweekly_friday":
        # Fridays 14 days apart; `phase` (0..13) picks which fortnight.
        friday = first + timedelta(days=(4 - first.weekday()) % 7)
        if phase >= 7:
            friday += timedelta(days=7)
        found = []
        while friday <= last:
            found.append(friday)
            friday += timedelta(days=14)
        return found
    found = []
    for year, month in _months(first.year, first.month, last.year, last.month):
        if pattern == "25th":
            day = _previous_business_day(date(year, month, 25), country)
        elif pattern == "last_business_day":
            day = _previous_business_day(
                date(year, month, calendar.monthrange(year, month)[1]), country
            )
        else:
            raise ValueError(f"unknown payday pattern {pattern!r}")
        if first <= day <= last:
            found.append(day)
    return found


def _money_windows(
    paydays: Sequence[date], zone: ZoneInfo, lasts: int
) -> list[tuple[datetime, datetime]]:
    """When a customer living payday to payday can pay: from payday morning for `lasts` days."""
    windows = []
    for payday in paydays:
        arrives = datetime(payday.year, payday.month, payday.day, FUNDS_ARRIVE_HOUR, tzinfo=zone)
        windows.append((arrives, arrives + timedelta(days=lasts)))
    return windows


def _has_money(at: datetime, money: Sequence[tuple[datetime, datetime]]) -> bool:
    return any(start <= at < end for start, end in money)


def _gaps(
    money: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) outside every money window: when funds are insufficient."""
    gaps = []
    cursor = start
    for has_from, has_until in sorted(money):
        if has_from > cursor:
            gaps.append((cursor, min(has_from, end)))
        cursor = max(cursor, has_until)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append((cursor, end))
    return [(a, b) for a, b in gaps if a < b]


def _card_expiry(rng: random.Random, due_dates: Sequence[datetime]) -> tuple[int, int] | None:
    """(year, month) of a card that lapses before one of the invoices is due."""
    if not due_dates:
        return None
    due = rng.choice(due_dates)
    return (due.year - 1, 12) if due.month == 1 else (due.year, due.month - 1)
