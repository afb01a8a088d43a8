"""When to retry a declined charge: the smart schedule and the fixed one it must beat.

`plan_retry` is pure: the decline, the attempts so far, the window the network
rules and the budget leave (`dunning.core.network_rules.earliest_retry`), the
customer's time zone and payment habits, and the tenant's own outcomes in;
the moment of the next retry (or none) and the reason, in words, out.

The smart schedule scores every daytime hour left in the window and keeps the
best one per day; of the days worth a try it takes the earliest.  What scores:

- **Money.**  For declines that mean "no money now" (insufficient funds, over
  a limit, or the issuer's catch-alls that usually hide it), the days just
  after the customer's paydays, learned from their past payments (the days a
  payment went through after a decline are the days money arrived: a day of
  the month such as the 25th, paid the Friday before when it falls on a
  weekend, the last business day, or a Friday every two weeks, in its own
  fortnight).  A payday gets one try: declined on or after its morning, its
  money did not come or is gone, and its days count as any other.  With no
  payday known, or none left before the window closes, the tries left are
  spread evenly over what is left of the window, up to its last daytime hour.
- **The hour.**  Issuers decline at night more than by day (maintenance and
  risk rules): daytime local hours score above night ones, and once the
  tenant has enough attempts of its own, each hour is scaled by how it fares
  against the tenant's other hours (learned online: `HourStats`), except on
  a payday, whose try keeps to mid-morning (see `_smart`).  Issuers differ,
  so the hours are learned for each card brand and country too, and a card
  follows the most specific of those that has seen enough retries
  (`card_segments`, `hours_for`): Visa cards from Thailand, then Visa cards,
  then cards from Thailand, then all.
- **Soon.**  Of two equal moments the sooner wins: recovery time matters.

The fixed schedule is the competent baseline of the simulator: the budget
spread evenly over the window, at the local time of the original charge.
Both respect the same window: neither may break a network rule or the budget.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from zoneinfo import ZoneInfo

from dunning.core.declines import Classification
from dunning.core.formatting import card_brand_name
from dunning.core.network_rules import RetryWindow
from dunning.core.policy import RetryBudget


class Strategy(StrEnum):
    SMART = "smart"
    FIXED = "fixed"


class CardChange(StrEnum):
    """What became of the card since the last decline."""

    NONE = "none"
    NEW = "new"  # another card is on file
    UPDATED = "updated"  # the same card with new details (a card updater, the customer)


# Declines that mostly mean "not enough money right now": the payday matters.
FUNDS_CODES = frozenset(
    {
        "insufficient_funds",
        "card_velocity_exceeded",
        "withdrawal_count_limit_exceeded",
        "do_not_honor",
        "generic_decline",
        "call_issuer",
        "no_action_taken",
        "try_again_later",
    }
)
# Declines that mean "the issuer could not answer": retry soon, by day.
AVAILABILITY_CODES = frozenset(
    {"issuer_not_available", "processing_error", "reenter_transaction", "approve_with_id"}
)

# Money paid in lasts a few days: the days after a payday are the ones to try.
FUNDS_LAST = timedelta(days=3)
DAY_HOURS = range(8, 21)  # local hours a retry may be planned at
PREFERRED_HOUR = 10  # mid-morning: issuers' batches are done, people are awake
NIGHT = range(0, 6)
MIN_HOUR_SAMPLES = 30  # a tenant's hour statistics count from this many attempts
# A brand's or country's own hours are followed once this many daytime hours count.
MIN_SEGMENT_HOURS = 6
DAILY_DECAY = 0.97  # a day later is worth this much of today, other things equal
WORTH_A_TRY = 0.5  # a day scoring less than this share of the best day is skipped
PAYDAY_MONEY = 1.0  # a day that may still see a payday's money
_HOUR_TIMES = {hour: time(hour) for hour in DAY_HOURS}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_HOUR_US = 3_600_000_000


@dataclass(frozen=True, slots=True)
class Paydays:
    """When money reaches the customer's account, as far as their history tells.

    `days_of_month` are local days on which past payments succeeded at least
    twice (once when there are few; a Friday counts for its weekend too, see
    `_days_of_month`); `last_business_day` and `fridays` (every other Friday)
    are the other two common rhythms.  `fortnight` is a Friday on which money arrived: with
    `fridays`, the paydays are the Fridays a multiple of two weeks from it (any
    Friday when it is not known).  A lone Friday arrival stands for both a day
    of the month and a fortnight (see `learn`).  Empty when there is no history
    to learn from.

    A day of the month that falls on a weekend is paid the Friday before, as
    salaries usually are (in Thailand and Japan, on the 25th, among others),
    and one past the end of a shorter month on its last day.
    """

    days_of_month: frozenset[int] = frozenset()
    last_business_day: bool = False
    fridays: bool = False
    fortnight: date | None = None

    @property
    def known(self) -> bool:
        return bool(self.days_of_month) or self.last_business_day or self.fridays

    @classmethod
    def learn(
        cls, successes: Sequence[datetime], zone: ZoneInfo, failures: Sequence[datetime] = ()
    ) -> Paydays:
        """Read the rhythm from the local dates of past payments.

        With declines on record, the telling successes are those that follow a
        decline within a few days: that is when money arrived.  A success with
        no decline before it says only that money was there that day.

        A date one rhythm explains is not evidence for another: Fridays that
        were month ends four weeks apart are read as the month end unless more
        Fridays, two weeks apart, say otherwise; and a payment on a rhythm's day
        says nothing of its day of the month (a fortnightly Friday is a
        different date every month; with few payments, once would count).
        """
        days = sorted(moment.astimezone(zone).date() for moment in successes)
        declined = sorted(moment.astimezone(zone).date() for moment in failures)
        arrivals = [day for day in days if any(day - FUNDS_LAST <= miss < day for miss in declined)]
        if arrivals:
            days = arrivals
        elif len(days) < 2:
            return cls()
        # Arrivals are sharp evidence: once is enough when there are few.
        enough = 1 if arrivals and len(arrivals) < 3 else 2
        month_ends = {day for day in days if day == _last_business_day(day.year, day.month)}
        fridays = [day for day in days if day.weekday() == 4]
        fortnights = (
            set(fridays)
            if len(fridays) >= 2
            and all((later - earlier).days % 14 == 0 for earlier, later in pairwise(fridays))
            and len(fridays) * 2 >= len(days)
            else set()
        )
        if len(month_ends) < 2:
            month_ends = set()
        # Month ends that were Fridays four weeks apart fit both rhythms: the one
        # that explains more of the payments wins, the month end when even.
        if month_ends and fortnights:
            if fortnights <= month_ends:
                fortnights = set()
            elif month_ends < fortnights:
                month_ends = set()
        explained = month_ends | fortnights
        rest = [day for day in days if day not in explained]
        # A lone Friday among a few arrivals, no other arrival's day of the month
        # explains, is as much a Friday every two weeks as a day of the month:
        # both are kept, one try each, until more payments tell them apart.
        # Read as a day of the month only, a fortnightly payday would be waited
        # for on the wrong date for months.
        lone = [day for day in rest if day.weekday() == 4]
        others = _days_of_month([day for day in rest if day not in lone], enough)
        hedge = (
            enough == 1
            and not fortnights
            and len(lone) == 1
            and all(due not in others for _, due in _due_days(lone[0]))
        )
        return cls(
            days_of_month=_days_of_month(rest, enough),
            last_business_day=bool(month_ends),
            fridays=bool(fortnights) or hedge,
            fortnight=max(fortnights) if fortnights else lone[0] if hedge else None,
        )

    def recent_payday(self, day: date) -> date | None:
        """The latest payday on or before `day` within FUNDS_LAST, if any."""
        for back in range(FUNDS_LAST.days + 1):
            candidate = day - timedelta(days=back)
            if self._is_payday(candidate):
                return candidate
        return None

    def _is_payday(self, day: date) -> bool:
        return (
            self._day_of_month(day) is not None
            or (self.last_business_day and day == _last_business_day(day.year, day.month))
            or self._fortnightly(day)
        )

    def _day_of_month(self, day: date) -> int | None:
        """The learned day of the month paid on `day`, if any.

        That day itself; on a Friday, also a day falling on the weekend after
        it; on a month's last day, a learned day the month is too short for
        (the 30th is paid on 28 February, or on the Friday before it).
        """
        if day.weekday() >= 5:
            return None
        ahead = range(3) if day.weekday() == 4 else range(1)
        for n in ahead:
            paid = day + timedelta(days=n)
            if n and paid.weekday() < 5:
                break
            if paid.day in self.days_of_month:
                return paid.day
            if (paid + timedelta(days=1)).day == 1:
                beyond = [due for due in self.days_of_month if due > paid.day]
                if beyond:
                    return min(beyond)
        return None

    def _fortnightly(self, day: date) -> bool:
        if not self.fridays or day.weekday() != 4:
            return False
        return self.fortnight is None or (day - self.fortnight).days % 14 == 0

    def describe(self, payday: date) -> str:
        due = self._day_of_month(payday)
        if due == payday.day:
            return f"funds usually arrive on the {_ordinal(due)}"
        if due is not None:
            return f"funds usually arrive on the {_ordinal(due)}, this month on {payday:%A %d %b}"
        if self.last_business_day and payday == _last_business_day(payday.year, payday.month):
            return "funds usually arrive on the last business day of the month"
        return "funds usually arrive on a Friday every two weeks"


@dataclass(frozen=True, slots=True)
class HourStats:
    """The tenant's retry outcomes per local hour: (successes, attempts), 24 entries;
    `segment` says of which cards (`card_segments`): "" for all of them."""

    hours: tuple[tuple[int, int], ...] = field(default=((0, 0),) * 24)
    segment: str = ""

    @property
    def known_hours(self) -> int:
        """How many daytime hours have enough attempts to count."""
        return sum(1 for hour in DAY_HOURS if self.hours[hour][1] >= MIN_HOUR_SAMPLES)

    @property
    def whose(self) -> str:
        """Whose retries these are, in words: "your retries", "your retries on Visa cards"."""
        brand, _, country = self.segment.partition("/")
        if not (brand or country):
            return "your retries"
        cards = f"{card_brand_name(brand)} cards" if brand else "cards"
        return f"your retries on {cards}" + (f" from {country}" if country else "")

    def rate(self, hour: int) -> float | None:
        successes, attempts = self.hours[hour]
        if attempts < MIN_HOUR_SAMPLES:
            return None
        # Laplace-smoothed, so a lucky streak does not dominate.
        return (successes + 1) / (attempts + 2)

    def average(self) -> float | None:
        """The mean rate of the hours with enough samples, or None."""
        rates = [rate for hour in range(24) if (rate := self.rate(hour)) is not None]
        return sum(rates) / len(rates) if rates else None

    def record(self, hour: int, *, succeeded: bool) -> HourStats:
        hours = list(self.hours)
        successes, attempts = hours[hour]
        hours[hour] = (successes + succeeded, attempts + 1)
        return HourStats(tuple(hours), self.segment)


def card_segments(brand: str, country: str) -> tuple[str, ...]:
    """The segments a card's retry outcomes are learned under, the most specific first:
    "visa/TH" (Visa cards from Thailand), "visa/", "/TH", and "" for every card.
    `brand` as the ledger has it (any case), `country` an ISO code; either may be blank."""
    brand = brand.strip().lower().replace(" ", "_")
    country = country.strip().upper()
    segments = [f"{brand}/{country}", f"{brand}/", f"/{country}"] if brand and country else []
    if not segments:
        segments = [f"{brand}/"] if brand else [f"/{country}"] if country else []
    return (*segments, "")


def hours_for(learned: Mapping[str, HourStats], segments: Sequence[str]) -> HourStats:
    """The statistics a card's retries follow: of its `segments`, the first (the most
    specific) with MIN_SEGMENT_HOURS daytime hours known, else those of every card."""
    for segment in segments[:-1]:
        found = learned.get(segment)
        if found is not None and found.known_hours >= MIN_SEGMENT_HOURS:
            return found
    return learned.get("", HourStats())


@dataclass(frozen=True, slots=True)
class RetryContext:
    now: datetime
    zone: ZoneInfo
    decline_code: str
    classification: Classification
    first_failure_at: datetime
    original_charge_at: datetime  # the first charge: the fixed schedule keeps its hour
    retries_done: int  # attempts after the first failure
    budget: RetryBudget
    window: RetryWindow  # what the network rules and the budget allow
    paydays: Paydays = Paydays()
    hours: HourStats = HourStats()
    card_change: CardChange = CardChange.NONE


@dataclass(frozen=True, slots=True)
class RetryPlan:
    at: datetime | None  # None: no retry will happen
    reason: str


def plan_retry(context: RetryContext, strategy: Strategy) -> RetryPlan:
    window = context.window
    if window.allowed_at is None:
        return RetryPlan(None, "; ".join(window.reasons) or "no retry allowed")
    if context.card_change is not CardChange.NONE:
        # Whatever the old card's decline said, the new card deserves a try now,
        # or as soon as the networks allow.
        changed = (
            "a new card is on file"
            if context.card_change is CardChange.NEW
            else "the card on file was updated"
        )
        if not window.reasons:
            return RetryPlan(window.allowed_at, f"{changed}: retry at once")
        return RetryPlan(
            window.allowed_at,
            f"{changed}, but {'; '.join(window.reasons)}: {_on(window.allowed_at, context)}",
        )
    if not context.classification.allows_retry:
        return RetryPlan(None, f"{context.decline_code}: not retried on the same card")
    closes_at = context.first_failure_at + context.budget.within
    if strategy is Strategy.FIXED:
        return _fixed(context, earliest=window.allowed_at, closes_at=closes_at)
    return _smart(context, earliest=window.allowed_at, closes_at=closes_at)


def _fixed(context: RetryContext, *, earliest: datetime, closes_at: datetime) -> RetryPlan:
    budget = context.budget
    step = budget.within / max(budget.max_attempts, 1)
    nth = context.retries_done + 1
    target = context.first_failure_at + step * nth
    zone = context.zone
    clock = context.original_charge_at.astimezone(zone).timetz().replace(tzinfo=None)
    at = datetime.combine(target.astimezone(zone).date(), clock, tzinfo=zone)
    # Never past the window: a charge clock later than the failure's would
    # otherwise push the last try out of it.
    at = min(max(at, earliest), closes_at)
    if at < earliest:
        return RetryPlan(None, "the retry window has closed")
    return RetryPlan(at, f"fixed schedule: retry {nth} of {budget.max_attempts}")


def _smart(context: RetryContext, *, earliest: datetime, closes_at: datetime) -> RetryPlan:
    zone = context.zone
    remaining = context.budget.max_attempts - context.retries_done
    if remaining <= 0:
        return RetryPlan(None, "the retry budget is spent")
    best_per_day: list[tuple[float, datetime]] = []
    day = earliest.astimezone(zone).date()
    today = context.now.astimezone(zone)
    if day == today.date() and today.hour >= DAY_HOURS.start:
        # One try per day: a charge declined by day (the engine plans right after
        # each decline) is not tried again that same day, let alone at once.
        day += timedelta(days=1)
    last_day = closes_at.astimezone(zone).date()
    spread = context.decline_code in FUNDS_CODES and not _payday_in_reach(context, day, last_day)
    if spread:
        # No payday known, or none before the window closes: the remaining
        # tries spread evenly over what is left of it, each on the best hour
        # of its day.  Up to the last daytime moment, not the window's end: a
        # last try planned for a night the window closes in would never be made.
        start = max(earliest, context.now)
        horizon = _last_daytime(zone, earliest=earliest, closes_at=closes_at) or closes_at
        step = max(horizon - start, timedelta(0)) / remaining
        day = max(day, (start + step).astimezone(zone).date())
    # A slot's score: the day's chance of money (`_money`) times the hour's
    # weight, decayed by how far off it is.  On a payday the hour is the prior's
    # alone (mid-morning, the sooner of equals): the tenant's hour statistics
    # count every retry, and payday tries succeed more wherever they are made,
    # so an hour chosen for paydays by those statistics would only confirm itself
    # (they drifted to 20:00 in the simulator).  Other days follow the statistics.
    # Both scaled to a best hour of 1: the hour orders a day's slots, the day's
    # money orders the days.
    average = context.hours.average()
    learned = _scaled({hour: _hour(context, hour, average) for hour in DAY_HOURS})
    prior = _scaled({hour: _hour_prior(hour) for hour in DAY_HOURS})
    window = (_micros(earliest), _micros(closes_at))
    while day <= last_day:
        money = _money(context, day)
        weights = prior if money >= PAYDAY_MONEY else learned
        best = _best_slot(day, zone, money, weights, now=context.now, window=window)
        if best is not None:
            best_per_day.append(best)
        day += timedelta(days=1)
    if not best_per_day:
        return RetryPlan(None, "no daytime moment is left in the retry window")
    # Days worth a try score at least half the best day: a day before the payday
    # is not worth spending an attempt on when the payday is in reach.  Of those,
    # keep the `remaining` best; the next retry is the earliest of them.
    top = max(entry[0] for entry in best_per_day)
    worth = [entry for entry in best_per_day if entry[0] >= top * WORTH_A_TRY]
    kept = sorted(worth, key=lambda entry: -entry[0])[:remaining]
    _, at = min(kept, key=lambda entry: entry[1])
    # The first moment the networks allow, chosen: their wait is the reason.
    held = context.window.reasons if at == earliest else ()
    why = "; ".join(held) if held else _why(context, at)
    return RetryPlan(at, f"{why}: {_on(at, context)}")


def _on(at: datetime, context: RetryContext) -> str:
    # Named, not "local": an operator reads the reason beside `next_retry_at` in UTC,
    # in their own zone, and cannot tell whose local 09:00 is meant without it.
    local = at.astimezone(context.zone)
    return f"retry on {local:%d %b} at {local:%H:%M} {context.zone.key}"


def _best_slot(
    day: date,
    zone: ZoneInfo,
    money: float,
    weights: dict[int, float],
    *,
    now: datetime,
    window: tuple[int, int],
) -> tuple[float, datetime] | None:
    """The day's best daytime slot within `window` (microseconds since the epoch) and its
    score; of equal scores the sooner.  The hot loop of planning, run for every day of
    every plan: reckoned in whole microseconds of real time, so the answer is the same
    whatever zone `now` is given in (Python would subtract two datetimes of one zone
    on the wall clock, an hour off across a clock change).  The day's hours are an hour
    apart but on a day whose clocks change in daytime, where each is reckoned alone."""
    opens = datetime.combine(day, _HOUR_TIMES[DAY_HOURS.start], tzinfo=zone)
    closes = datetime.combine(day, _HOUR_TIMES[DAY_HOURS[-1]], tzinfo=zone)
    steady = opens.utcoffset() == closes.utcoffset()
    first, now_us = _micros(opens), _micros(now)
    best_hour, best_score = None, 0.0
    for hour in DAY_HOURS:
        if steady:
            at = first + (hour - DAY_HOURS.start) * _HOUR_US
        else:
            at = _micros(datetime.combine(day, _HOUR_TIMES[hour], tzinfo=zone))
        if window[0] <= at <= window[1]:
            # Days of real time, as (slot - now).total_seconds() / 86_400 gives in UTC.
            score = money * weights[hour] * DAILY_DECAY ** ((at - now_us) / 10**6 / 86_400)
            if best_hour is None or score > best_score:
                best_hour, best_score = hour, score
    if best_hour is None:
        return None
    return best_score, datetime.combine(day, _HOUR_TIMES[best_hour], tzinfo=zone)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _last_daytime(zone: ZoneInfo, *, earliest: datetime, closes_at: datetime) -> datetime | None:
    """The last daytime hour at or before `closes_at` (and not before `earliest`), if any."""
    day = closes_at.astimezone(zone).date()
    while datetime.combine(day, time(DAY_HOURS.stop - 1), tzinfo=zone) >= earliest:
        for hour in reversed(DAY_HOURS):
            slot = datetime.combine(day, time(hour), tzinfo=zone)
            if earliest <= slot <= closes_at:
                return slot
        day -= timedelta(days=1)
    return None


def _payday_in_reach(context: RetryContext, first: date, last: date) -> bool:
    if not context.paydays.known:
        return False
    return any(
        _fresh_payday(context, first + timedelta(days=n)) is not None
        for n in range((last - first).days + 1)
    )


def _fresh_payday(context: RetryContext, day: date) -> date | None:
    """The payday whose money `day` may still see, unless the decline says it is gone.

    The engine plans right after each decline, so `now` is when the card was
    last declined.  Declined for want of money on or after a payday's morning
    (funds arrive overnight), the card says that payday brought nothing, or
    that it was spent: the days after it are ordinary days for this charge,
    not worth the tries a payday is, and the tries left go elsewhere.
    """
    payday = context.paydays.recent_payday(day)
    if payday is None:
        return None
    morning = datetime.combine(payday, time(DAY_HOURS.start), tzinfo=context.zone)
    return payday if context.now < morning else None


def _missed_payday(context: RetryContext) -> date | None:
    """The payday this decline came on or after (within FUNDS_LAST), if any."""
    payday = context.paydays.recent_payday(context.now.astimezone(context.zone).date())
    if payday is None or _fresh_payday(context, payday) is not None:
        return None
    return payday


def _money(context: RetryContext, day: date) -> float:
    code = context.decline_code
    if code in AVAILABILITY_CODES:
        return 0.9
    if code not in FUNDS_CODES:
        return 0.5
    if not context.paydays.known:
        return 0.5  # no payday known: the spacing decides (see _smart)
    if _fresh_payday(context, day) is not None:
        return PAYDAY_MONEY
    return 0.15


def _scaled(weights: dict[int, float]) -> dict[int, float]:
    best = max(weights.values())
    return {hour: weight / best for hour, weight in weights.items()} if best > 0 else weights


def _hour_prior(hour: int) -> float:
    return 0.3 if hour in NIGHT else 1.0 if 9 <= hour <= 11 else 0.9


def _hour(context: RetryContext, hour: int, average: float | None) -> float:
    """The prior for the hour, scaled by how it fared against the tenant's other hours.

    Relative, so an hour with many (mostly failed, as retries are) attempts is
    not beaten by one nobody tried: an hour without enough samples counts as
    average.
    """
    prior = _hour_prior(hour)
    learned = context.hours.rate(hour)
    if learned is None or not average:
        return prior
    return prior * learned / average


def _why(context: RetryContext, slot: datetime) -> str:
    local = slot.astimezone(context.zone)
    code = context.decline_code
    if code in FUNDS_CODES:
        left = _spread_text(context.budget.max_attempts - context.retries_done)
        if not context.paydays.known:
            return f"{code}, no payday known: {left}"
        payday = _fresh_payday(context, local.date())
        if payday is not None:
            return context.paydays.describe(payday)
        missed = _missed_payday(context)
        if missed is not None:
            return (
                f"{code} after the payday of {missed:%d %b} "
                f"({context.paydays.describe(missed)}): {left}"
            )
        return f"{code}, no payday before the window closes: {left}"
    if code in AVAILABILITY_CODES:
        return f"{code}: the issuer could not answer; retry by day"
    if context.hours.rate(local.hour) is not None:
        return f"{code}: {context.hours.whose} succeed most at {local.hour:02d}:00"
    if 9 <= local.hour <= 11:
        return f"{code}: retry mid-morning, when issuers decline least"
    return f"{code}: retry by day, when issuers decline less than at night"


def _spread_text(left: int) -> str:
    """What becomes of the tries left when no payday decides: their share of the window."""
    if left == 1:
        return "the last try kept for the end of the window"
    return f"the {left} tries left spread over the window"


def _days_of_month(days: Sequence[date], enough: int) -> frozenset[int]:
    """The days of the month that explain the payments on `days`, at least `enough` each.

    A payday on a weekend is paid the Friday before (see `Paydays`), so a
    payment on a Friday is evidence for the Saturday's and Sunday's dates too:
    Friday 23 Jan 2026 may be the 25th paid early.  Each payment explains one
    day only, the best supported first; otherwise the 25th paid on Friday the
    23rd would also teach "the 23rd", wrong in most months.  Of two days as
    well supported, the later wins (it reads more Friday payments as early
    ones): money lasts a few days, so a try a day late still finds it, and a
    try a day early never does.
    """
    left = list(days)
    found: set[int] = set()
    while left:
        support: Counter[int] = Counter()
        early: Counter[int] = Counter()  # days by which the payments came before the date
        for paid in left:
            for ahead, due in _due_days(paid):
                support[due] += 1
                early[due] += ahead
        best = max(support, key=lambda due: (support[due], early[due], due))
        if support[best] < enough:
            break
        found.add(best)
        left = [paid for paid in left if all(due != best for _, due in _due_days(paid))]
    return frozenset(found)


def _due_days(paid: date) -> list[tuple[int, int]]:
    """(days early, day of the month) for each date a payment on `paid` may have been due."""
    ahead = 3 if paid.weekday() == 4 else 1
    return [(n, (paid + timedelta(days=n)).day) for n in range(ahead)]


def _last_business_day(year: int, month: int) -> date:
    following = date(year + month // 12, month % 12 + 1, 1)
    day = following - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
