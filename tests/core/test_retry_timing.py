"""When to retry a declined charge: paydays, daytime hours, the window, and the fixed baseline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dunning.core.declines import DECLINE_CODES, UNKNOWN_DECLINE, Brand, classify_decline
from dunning.core.network_rules import Card, Charge, PastAttempt, RetryWindow, earliest_retry
from dunning.core.policy import RETRY_WINDOWS, RetryBudget
from dunning.core.retry_timing import (
    DAILY_DECAY,
    DAY_HOURS,
    MIN_HOUR_SAMPLES,
    MIN_SEGMENT_HOURS,
    CardChange,
    HourStats,
    Paydays,
    RetryContext,
    RetryPlan,
    Strategy,
    _best_slot,
    _micros,
    card_segments,
    hours_for,
    plan_retry,
)

BANGKOK = ZoneInfo("Asia/Bangkok")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
VISA = Card("fp_visa", Brand.VISA)
INVOICE = Charge("in_1", 99000, "THB")
DEFAULT = RetryBudget(max_attempts=8, within=timedelta(weeks=2))
NO_PAYDAYS = Paydays()
NO_HOURS = HourStats()


def bkk(text: str) -> datetime:
    """A Bangkok wall-clock time, as the UTC instant the engine would hold."""
    return datetime.fromisoformat(text).replace(tzinfo=BANGKOK).astimezone(UTC)


def local(moment: datetime | None, zone: ZoneInfo = BANGKOK) -> str:
    assert moment is not None
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def declined(at: datetime, code: str = "insufficient_funds") -> PastAttempt:
    return PastAttempt(
        at, VISA, INVOICE, succeeded=False, classification=classify_decline(code, brand=VISA.brand)
    )


def context(
    *,
    now: datetime,
    code: str = "insufficient_funds",
    first_failure_at: datetime | None = None,
    original_charge_at: datetime | None = None,
    retries: Sequence[datetime] = (),
    zone: ZoneInfo = BANGKOK,
    budget: RetryBudget = DEFAULT,
    window: RetryWindow | None = None,
    paydays: Paydays = NO_PAYDAYS,
    hours: HourStats = NO_HOURS,
) -> RetryContext:
    """A context whose window comes from the network rules over the failure and `retries`."""
    first = first_failure_at or now
    attempts = [declined(first, code), *(declined(at, code) for at in retries)]
    if window is None:
        window = earliest_retry(
            now=now,
            card=VISA,
            charge=INVOICE,
            attempts=attempts,
            budget=budget,
            first_failure_at=first,
        )
    return RetryContext(
        now=now,
        zone=zone,
        decline_code=code,
        classification=classify_decline(code, brand=VISA.brand),
        first_failure_at=first,
        original_charge_at=original_charge_at or first,
        retries_done=len(retries),
        budget=budget,
        window=window,
        paydays=paydays,
        hours=hours,
    )


def stats(**hours: tuple[int, int]) -> HourStats:
    """HourStats from h9=(successes, attempts) ..."""
    table = [(0, 0)] * 24
    for name, pair in hours.items():
        table[int(name.removeprefix("h"))] = pair
    return HourStats(tuple(table))


# ---------------------------------------------------------------- paydays


def test_it_learns_the_25th_from_local_dates() -> None:
    # 03:00 on the 25th in Bangkok is still the 24th in UTC: the local date counts.
    successes = [
        datetime(2026, 1, 24, 20, 0, tzinfo=UTC),
        datetime(2026, 2, 25, 3, 0, tzinfo=UTC),
        datetime(2026, 3, 24, 22, 30, tzinfo=UTC),
    ]

    paydays = Paydays.learn(successes, BANGKOK)

    assert paydays == Paydays(days_of_month=frozenset({25}))
    assert paydays.known
    assert Paydays.learn(successes, ZoneInfo("UTC")).days_of_month == frozenset({24})


def test_it_learns_the_last_business_day_of_the_month() -> None:
    # 30 Jan and 27 Feb 2026 are Fridays before a weekend month end; 31 Mar is a Tuesday.
    successes = [bkk("2026-01-30T11:00"), bkk("2026-02-27T11:00"), bkk("2026-03-31T11:00")]

    paydays = Paydays.learn(successes, BANGKOK)

    assert paydays.last_business_day
    assert paydays.days_of_month == frozenset()
    assert paydays.recent_payday(date(2026, 4, 2)) == date(2026, 3, 31)
    assert paydays.describe(date(2026, 3, 31)) == (
        "funds usually arrive on the last business day of the month"
    )


def test_it_learns_fridays_every_two_weeks() -> None:
    successes = [bkk(f"2026-{day}T09:00") for day in ("01-02", "01-16", "01-30", "02-13")]

    paydays = Paydays.learn(successes, BANGKOK)

    assert paydays.fridays and not paydays.days_of_month
    assert paydays.describe(date(2026, 2, 27)) == (
        "funds usually arrive on a Friday every two weeks"
    )


def test_weekly_fridays_are_not_a_two_week_rhythm() -> None:
    successes = [bkk(f"2026-01-{day:02d}T09:00") for day in (2, 9, 16, 23)]

    assert not Paydays.learn(successes, BANGKOK).fridays


@pytest.mark.parametrize(
    "successes",
    [
        [],
        [bkk("2026-01-25T09:00")],
        [bkk("2026-01-25T09:00"), bkk("2026-02-12T09:00")],
    ],
    ids=["none", "one", "two different days"],
)
def test_too_little_history_teaches_nothing(successes: list[datetime]) -> None:
    assert not Paydays.learn(successes, BANGKOK).known


def test_fridays_every_two_weeks_keep_their_fortnight() -> None:
    # Money came on Fridays 19 Sep and 17 Oct (after declines): the paydays are
    # every other Friday from those, not every Friday, and the 19th and the 17th
    # are no days of the month.
    declines = [bkk("2025-09-18T10:00"), bkk("2025-10-16T10:00")]
    paid = [bkk("2025-09-19T10:00"), bkk("2025-10-17T10:00")]

    paydays = Paydays.learn(paid, BANGKOK, failures=declines)

    assert paydays.fridays
    assert paydays.fortnight == date(2025, 10, 17)
    assert paydays.days_of_month == frozenset()
    assert paydays.recent_payday(date(2026, 1, 16)) is None  # the other Friday
    assert paydays.recent_payday(date(2026, 1, 23)) == date(2026, 1, 23)


def test_smart_waits_for_the_fortnights_friday_not_the_next_friday() -> None:
    paydays = Paydays(fridays=True, fortnight=date(2025, 10, 17))
    ctx = context(now=bkk("2026-01-14T11:00"), paydays=paydays)

    plan = plan_retry(ctx, Strategy.SMART)

    assert local(plan.at) == "2026-01-23 09:00"
    assert plan.reason.startswith("funds usually arrive on a Friday every two weeks")


def test_a_month_end_friday_is_read_as_the_month_end_not_a_fortnight() -> None:
    # Two month ends that were Fridays (31 Oct, 28 Nov), four weeks apart, and
    # 30 Dec: the last business day explains the Fridays.
    declines = [bkk(f"2025-{day}T10:00") for day in ("10-30", "11-27", "12-29")]
    paid = [bkk(f"2025-{day}T10:00") for day in ("10-31", "11-28", "12-30")]

    paydays = Paydays.learn(paid, BANGKOK, failures=declines)

    assert paydays == Paydays(last_business_day=True)
    assert paydays.recent_payday(date(2026, 1, 23)) is None
    assert paydays.recent_payday(date(2026, 1, 30)) == date(2026, 1, 30)


def test_more_fridays_two_weeks_apart_outweigh_two_month_ends() -> None:
    # 31 Oct and 28 Nov were month ends and Fridays; 26 Dec was neither a month
    # end nor the 31st: every other Friday explains all three.
    declines = [bkk(f"2025-{day}T10:00") for day in ("10-30", "11-27", "12-25")]
    paid = [bkk(f"2025-{day}T10:00") for day in ("10-31", "11-28", "12-26")]

    paydays = Paydays.learn(paid, BANGKOK, failures=declines)

    assert paydays == Paydays(fridays=True, fortnight=date(2025, 12, 26))
    assert paydays.recent_payday(date(2026, 1, 23)) == date(2026, 1, 23)
    assert paydays.recent_payday(date(2026, 1, 30)) is None


def test_a_friday_payment_counts_for_the_weekend_after_it() -> None:
    # The 25th, paid on Friday 24 Oct (the 25th a Saturday) and on Friday 23 Jan
    # (a Sunday), and on 24 Dec (a holiday): the 24th, seen twice, is not learned,
    # and neither are the 23rd and the 24th beside the 25th.
    paid = [bkk(f"{day}T10:00") for day in ("2025-10-24", "2025-11-25", "2025-12-24", "2026-01-23")]
    declines = [moment - timedelta(days=1) for moment in paid]

    paydays = Paydays.learn(paid, BANGKOK, failures=declines)

    assert paydays == Paydays(days_of_month=frozenset({25}))


def test_a_lone_friday_payment_is_read_as_the_latest_day_it_may_stand_for() -> None:
    # Paid on Friday 24 Oct after a decline: the 24th, 25th or 26th.  Money
    # lasts a few days, so a try on the 26th still finds money that came on the
    # 24th, where a try on the 24th misses money that comes on the 26th.
    paydays = Paydays.learn([bkk("2025-10-24T10:00")], BANGKOK, failures=[bkk("2025-10-23T10:00")])

    assert paydays.days_of_month == frozenset({26})


def test_a_lone_friday_arrival_is_also_read_as_a_fortnight() -> None:
    # Declined daily from Friday 19 Dec, paid on Friday 26 Dec: the 28th paid
    # early, or a Friday every two weeks.  Both are kept until more payments tell.
    declines = [datetime(2025, 12, day, 10, tzinfo=NEW_YORK) for day in range(19, 26)]

    paydays = Paydays.learn(
        [datetime(2025, 12, 26, 10, tzinfo=NEW_YORK)], NEW_YORK, failures=declines
    )

    assert paydays == Paydays(
        days_of_month=frozenset({28}), fridays=True, fortnight=date(2025, 12, 26)
    )


def test_a_friday_another_arrivals_day_of_month_explains_is_no_fortnight() -> None:
    # The 24th, paid on Wednesday 24 Dec and on Friday 23 Jan (the 24th a
    # Saturday): the Friday is the 24th paid early, not a fortnight.
    paid = [datetime(2025, 12, 24, 10, tzinfo=NEW_YORK), datetime(2026, 1, 23, 10, tzinfo=NEW_YORK)]
    declines = [moment - timedelta(days=1) for moment in paid]

    paydays = Paydays.learn(paid, NEW_YORK, failures=declines)

    assert paydays == Paydays(days_of_month=frozenset({24}))


def test_smart_tries_the_lone_fridays_fortnight_before_its_day_of_month() -> None:
    declines = [datetime(2025, 12, day, 10, tzinfo=NEW_YORK) for day in range(19, 26)]
    paydays = Paydays.learn(
        [datetime(2025, 12, 26, 10, tzinfo=NEW_YORK)], NEW_YORK, failures=declines
    )
    failed = datetime(2026, 2, 19, 5, tzinfo=NEW_YORK)  # a Thursday

    plan = plan_retry(context(now=failed, zone=NEW_YORK, paydays=paydays), Strategy.SMART)

    # Friday 20 Feb is eight weeks after 26 Dec; the 28th (paid Friday 27 Feb) comes later.
    assert local(plan.at, NEW_YORK) == "2026-02-20 09:00"
    assert plan.reason.startswith("funds usually arrive on a Friday every two weeks")


def test_a_day_the_month_is_too_short_for_is_paid_on_its_last_day() -> None:
    thirtieth = Paydays(days_of_month=frozenset({30}))

    # 28 Feb 2026 is a Saturday: the 30th is paid on Friday the 27th.
    assert thirtieth.recent_payday(date(2026, 2, 26)) is None
    assert thirtieth.recent_payday(date(2026, 2, 27)) == date(2026, 2, 27)
    assert thirtieth.describe(date(2026, 2, 27)) == (
        "funds usually arrive on the 30th, this month on Friday 27 Feb"
    )
    # In April on the 30th itself (a Thursday); in May, the 30th a Saturday, on
    # Friday the 29th, and the 31st is no payday of its own.
    assert thirtieth.recent_payday(date(2026, 4, 30)) == date(2026, 4, 30)
    assert thirtieth.recent_payday(date(2026, 5, 31)) == date(2026, 5, 29)


def test_a_weekend_day_of_the_month_is_paid_the_friday_before() -> None:
    # 25 Jan 2026 is a Sunday: the money comes on Friday the 23rd.
    ctx = context(now=bkk("2026-01-20T10:00"), paydays=TWENTY_FIFTH)

    plan = plan_retry(ctx, Strategy.SMART)

    assert TWENTY_FIFTH.recent_payday(date(2026, 1, 23)) == date(2026, 1, 23)
    assert TWENTY_FIFTH.recent_payday(date(2026, 1, 22)) is None
    assert local(plan.at) == "2026-01-23 09:00"
    assert plan.reason == (
        "funds usually arrive on the 25th, this month on Friday 23 Jan: "
        "retry on 23 Jan at 09:00 Asia/Bangkok"
    )


# ---------------------------------------------------------------- smart


TWENTY_FIFTH = Paydays(days_of_month=frozenset({25}))


def test_smart_waits_for_the_payday_after_insufficient_funds() -> None:
    # Six retries made since the 16th; two left, and the 25th is four days away.
    first = bkk("2026-03-16T10:00")
    retries = [bkk(f"2026-03-{day}T10:00") for day in (16, 17, 18, 19, 20, 20)]
    ctx = context(
        now=bkk("2026-03-21T10:00"), first_failure_at=first, retries=retries, paydays=TWENTY_FIFTH
    )

    plan = plan_retry(ctx, Strategy.SMART)

    assert local(plan.at) == "2026-03-25 09:00"
    assert plan.reason.startswith("funds usually arrive on the 25th")
    assert "25 Mar at 09:00 Asia/Bangkok" in plan.reason


def test_smart_does_not_spend_a_fresh_budget_before_a_learned_payday() -> None:
    # Declined on the 20th with all eight retries left: the 25th is in reach.
    ctx = context(now=bkk("2026-03-20T10:00"), paydays=TWENTY_FIFTH)

    plan = plan_retry(ctx, Strategy.SMART)

    assert local(plan.at) == "2026-03-25 09:00"
    assert plan.reason == "funds usually arrive on the 25th: retry on 25 Mar at 09:00 Asia/Bangkok"


def test_smart_spreads_the_tries_when_no_payday_is_in_reach() -> None:
    # Declined on the 2nd, the window closes on the 16th, and the customer is
    # paid on the 25th: eight tries every 1.75 days, not one a day until spent.
    ctx = context(now=bkk("2026-03-02T21:00"), paydays=TWENTY_FIFTH)

    plan = plan_retry(ctx, Strategy.SMART)

    assert local(plan.at) == "2026-03-04 09:00"
    assert plan.reason.startswith("insufficient_funds, no payday before the window closes")


def test_without_a_known_payday_the_tries_left_spread_over_the_window() -> None:
    first = bkk("2026-03-16T10:00")
    retries = [bkk(f"2026-03-{day}T10:00") for day in (16, 17, 18, 19, 20, 20, 21)]
    ctx = context(now=bkk("2026-03-22T10:00"), first_failure_at=first, retries=retries)

    plan = plan_retry(ctx, Strategy.SMART)

    # One try left and eight days of window: it goes on the last day, by morning.
    assert local(plan.at) == "2026-03-30 09:00"
    assert "no payday known" in plan.reason


def test_a_payday_learned_from_a_payment_days_after_a_decline() -> None:
    zone = ZoneInfo("Asia/Bangkok")
    declines = [bkk("2026-01-10T10:00"), bkk("2026-02-10T10:00")]
    paid = [bkk("2026-01-13T10:00"), bkk("2026-02-13T10:00"), bkk("2025-12-02T10:00")]

    paydays = Paydays.learn(paid, zone, failures=declines)

    # The 13th follows a decline; the 2nd does not, so it says nothing of paydays.
    assert paydays.days_of_month == frozenset({13})


def test_a_payday_declined_after_its_morning_gets_no_more_tries() -> None:
    # The try on the 25th at 09:00 was declined: that payday brought nothing
    # (or it is spent), so the 26th to 28th are ordinary days and the three
    # tries left spread over the rest of the window (to 3 Apr 10:00).
    first = bkk("2026-03-20T10:00")
    ctx = context(
        now=bkk("2026-03-25T09:00"),
        first_failure_at=first,
        retries=[bkk("2026-03-25T09:00")],
        paydays=TWENTY_FIFTH,
        budget=RetryBudget(max_attempts=4, within=timedelta(weeks=2)),
    )

    plan = plan_retry(ctx, Strategy.SMART)

    # Three tries over 9 days: the first of them 3 days on, not on the 26th.
    assert local(plan.at) == "2026-03-28 09:00"
    assert plan.reason == (
        "insufficient_funds after the payday of 25 Mar (funds usually arrive on the 25th): "
        "the 3 tries left spread over the window: retry on 28 Mar at 09:00 Asia/Bangkok"
    )


def test_a_first_charge_declined_days_after_the_payday_is_not_retried_in_its_days() -> None:
    # Charged and declined on the 27th at 14:00: the money of the 25th is gone.
    # Before, the 28th scored as a payday's day.
    ctx = context(now=bkk("2026-03-27T14:00"), paydays=TWENTY_FIFTH)

    plan = plan_retry(ctx, Strategy.SMART)

    # Eight tries over the 14 days: every 1.75 days, the first on the 29th.
    assert local(plan.at) == "2026-03-29 09:00"
    assert "after the payday of 25 Mar" in plan.reason


def test_a_decline_before_the_paydays_morning_leaves_the_payday_to_try() -> None:
    # Declined at 03:00 on the 25th: the money may come by morning.
    ctx = context(now=bkk("2026-03-25T03:00"), paydays=TWENTY_FIFTH)

    plan = plan_retry(ctx, Strategy.SMART)

    assert local(plan.at) == "2026-03-25 09:00"
    assert plan.reason.startswith("funds usually arrive on the 25th")


def test_the_last_spread_try_lands_on_the_windows_last_daytime_hour() -> None:
    # The window closes at 02:00 on 2 Mar: the last try goes on 1 Mar by day,
    # not on the night of the 2nd, which would leave it unmade.
    first = bkk("2026-02-16T02:00")
    retries = [bkk("2026-02-19T09:00"), bkk("2026-02-22T09:00"), bkk("2026-02-26T09:00")]
    ctx = context(
        now=bkk("2026-02-26T09:00"),
        first_failure_at=first,
        retries=retries,
        budget=RetryBudget(max_attempts=4, within=timedelta(weeks=2)),
    )

    plan = plan_retry(ctx, Strategy.SMART)

    assert local(plan.at) == "2026-03-01 09:00"
    assert plan.reason == (
        "insufficient_funds, no payday known: the last try kept for the end of the window: "
        "retry on 01 Mar at 09:00 Asia/Bangkok"
    )


def test_smart_retries_an_unavailable_issuer_the_next_morning() -> None:
    # 22:00 in Bangkok: nothing more today, and the money is not the problem.
    now = bkk("2026-03-16T22:00")
    ctx = context(now=now, code="issuer_not_available", paydays=TWENTY_FIFTH)

    plan = plan_retry(ctx, Strategy.SMART)

    assert local(plan.at) == "2026-03-17 09:00"
    assert "issuer could not answer" in plan.reason


def test_smart_tries_once_a_day_never_again_the_day_of_a_daytime_decline() -> None:
    # Declined at 09:00 on payday itself: the next try is the 26th, not 10:00.
    first = bkk("2026-03-20T10:00")
    payday = context(
        now=bkk("2026-03-25T09:00"),
        first_failure_at=first,
        retries=[bkk("2026-03-25T09:00")],
        paydays=TWENTY_FIFTH,
    )
    # Declined at 03:00: the day has not begun, so its morning is still free.
    night = context(now=bkk("2026-03-17T03:00"), code="issuer_not_available")

    assert local(plan_retry(payday, Strategy.SMART).at) == "2026-03-26 09:00"
    assert local(plan_retry(night, Strategy.SMART).at) == "2026-03-17 09:00"


def test_smart_never_plans_before_the_window_opens() -> None:
    now = bkk("2026-03-16T10:00")
    opens = bkk("2026-03-20T15:30")
    ctx = context(now=now, code="issuer_not_available", window=RetryWindow(opens))

    plan = plan_retry(ctx, Strategy.SMART)

    assert local(plan.at) == "2026-03-20 16:00"


def test_smart_plans_nothing_when_no_daytime_hour_is_left_before_the_window_closes() -> None:
    first = bkk("2026-03-16T21:30")  # the window closes at 21:30 on the 30th
    ctx = context(
        now=bkk("2026-03-30T20:30"),
        first_failure_at=first,
        code="issuer_not_available",
        window=RetryWindow(bkk("2026-03-30T20:30")),
    )

    plan = plan_retry(ctx, Strategy.SMART)

    assert plan.at is None
    assert plan.reason == "no daytime moment is left in the retry window"


def test_a_learned_hour_changes_the_chosen_hour_only_from_enough_samples() -> None:
    now = bkk("2026-03-16T22:00")
    unlearned = plan_retry(context(now=now, code="issuer_not_available"), Strategy.SMART)
    few = stats(h9=(0, MIN_HOUR_SAMPLES - 1), h10=(15, MIN_HOUR_SAMPLES - 1))
    enough = stats(h9=(0, MIN_HOUR_SAMPLES), h10=(15, MIN_HOUR_SAMPLES))

    too_few = plan_retry(context(now=now, code="issuer_not_available", hours=few), Strategy.SMART)
    learned = plan_retry(
        context(now=now, code="issuer_not_available", hours=enough), Strategy.SMART
    )

    assert local(unlearned.at) == local(too_few.at) == "2026-03-17 09:00"
    assert local(learned.at) == "2026-03-17 10:00"


def test_an_hour_is_judged_against_the_other_learned_hours_not_the_untried_ones() -> None:
    # Retries mostly fail: 09:00 at 20% is the tenant's best hour, and an
    # untried hour is not preferred to it.
    hours = stats(h9=(20, 100), h10=(5, 100), h11=(5, 100))
    ctx = context(now=bkk("2026-03-16T22:00"), code="issuer_not_available", hours=hours)

    assert local(plan_retry(ctx, Strategy.SMART).at) == "2026-03-17 09:00"


def test_with_every_daytime_hour_learned_the_best_one_wins() -> None:
    hours = {f"h{hour}": (10, 100) for hour in range(8, 21)}
    hours["h15"] = (60, 100)
    ctx = context(now=bkk("2026-03-16T22:00"), code="an_unknown_code", hours=stats(**hours))

    plan = plan_retry(ctx, Strategy.SMART)

    assert local(plan.at) == "2026-03-17 15:00"
    assert "your retries succeed most at 15:00" in plan.reason


def test_a_card_s_hours_are_learned_by_brand_and_country_the_most_specific_first() -> None:
    assert card_segments("Visa", "th") == ("visa/TH", "visa/", "/TH", "")
    assert card_segments("mastercard", "") == ("mastercard/", "")
    assert card_segments("", "JP") == ("/JP", "")
    assert card_segments("", "") == ("",)


def _learned(segment: str, best: int, *, known: int = 13) -> HourStats:
    """A segment's hours: `known` daytime hours at 10%, `best` at 60%."""
    table = [(0, 0)] * 24
    for hour in list(range(8, 21))[:known]:
        table[hour] = (10, 100)
    table[best] = (60, 100)
    return HourStats(tuple(table), segment)


def test_a_card_follows_the_most_specific_segment_that_has_seen_enough_retries() -> None:
    segments = card_segments("visa", "TH")
    everyone, visa, thai = _learned("", 9), _learned("visa/", 14), _learned("/TH", 16)
    learned = {s.segment: s for s in (everyone, visa, thai)}

    assert hours_for(learned, segments) is visa
    # Thai Visa cards have a few hours of their own: not enough to follow yet.
    learned["visa/TH"] = _learned("visa/TH", 12, known=MIN_SEGMENT_HOURS - 1)
    assert hours_for(learned, segments) is visa
    learned["visa/TH"] = few = _learned("visa/TH", 12, known=MIN_SEGMENT_HOURS)
    assert hours_for(learned, segments) is few
    assert hours_for({"": everyone}, segments) is everyone
    assert hours_for({}, segments) == HourStats()


def test_the_reason_names_the_cards_whose_hours_were_followed() -> None:
    ctx = context(
        now=bkk("2026-03-16T22:00"), code="an_unknown_code", hours=_learned("visa/TH", 15)
    )

    plan = plan_retry(ctx, Strategy.SMART)

    assert local(plan.at) == "2026-03-17 15:00"
    assert "your retries on Visa cards from TH succeed most at 15:00" in plan.reason


def test_a_payday_s_try_keeps_to_mid_morning_whatever_the_hour_statistics_say() -> None:
    # Payday tries made at 20:00 succeeded often: because they were payday tries.
    hours = {f"h{hour}": (5, 100) for hour in range(8, 21)}
    hours["h20"] = (40, 100)
    ctx = context(now=bkk("2026-03-20T10:00"), paydays=TWENTY_FIFTH, hours=stats(**hours))

    plan = plan_retry(ctx, Strategy.SMART)

    assert local(plan.at) == "2026-03-25 09:00"
    # Other days still follow the statistics.
    other = context(now=bkk("2026-03-16T22:00"), code="an_unknown_code", hours=stats(**hours))
    assert local(plan_retry(other, Strategy.SMART).at) == "2026-03-17 20:00"


def test_hour_stats_record_outcomes() -> None:
    recorded = HourStats().record(9, succeeded=True).record(9, succeeded=False)

    assert recorded.hours[9] == (1, 2)
    assert recorded.rate(9) is None  # too few to count
    assert stats(h9=(14, 30)).rate(9) == pytest.approx(15 / 32)


# ---------------------------------------------------------------- never


def test_nothing_is_planned_when_the_network_rules_say_never() -> None:
    window = RetryWindow(None, ("invoice in_1 is already paid",))
    ctx = context(now=bkk("2026-03-16T10:00"), window=window)

    for strategy in Strategy:
        assert plan_retry(ctx, strategy) == RetryPlan(None, "invoice in_1 is already paid")


@pytest.mark.parametrize("code", ["expired_card", "lost_card", "stolen_card", "do_not_try_again"])
def test_a_decline_that_forbids_retrying_the_card_is_never_retried(code: str) -> None:
    now = bkk("2026-03-16T10:00")
    # Even if a caller's window wrongly allowed it.
    ctx = context(now=now, code=code, window=RetryWindow(now))

    for strategy in Strategy:
        plan = plan_retry(ctx, strategy)
        assert plan.at is None
        assert plan.reason == f"{code}: not retried on the same card"
    assert plan_retry(context(now=now, code=code), Strategy.SMART).at is None


def test_a_spent_budget_is_never_retried() -> None:
    first = bkk("2026-03-16T10:00")
    retries = [first + timedelta(days=day) for day in range(1, 9)]
    ctx = context(now=bkk("2026-03-25T10:00"), first_failure_at=first, retries=retries)

    assert ctx.window.never
    assert plan_retry(ctx, Strategy.SMART).at is None
    assert plan_retry(ctx, Strategy.FIXED).at is None


# ---------------------------------------------------------------- fixed


def test_fixed_spreads_the_budget_evenly_at_the_original_charges_local_time() -> None:
    original = bkk("2026-03-16T07:17")
    first = bkk("2026-03-16T07:17")
    plans = []
    for done in range(8):
        retries = [first + timedelta(days=day) for day in range(1, done + 1)]
        ctx = context(
            now=first + timedelta(days=done),
            first_failure_at=first,
            original_charge_at=original,
            retries=retries,
        )
        plans.append(plan_retry(ctx, Strategy.FIXED))

    at = [plan.at for plan in plans]
    assert all(moment is not None for moment in at)
    assert [local(moment)[-5:] for moment in at] == ["07:17"] * 8
    # 14 days / 8 retries: every 1.75 days, on the local date of each step.
    assert [local(moment)[:10] for moment in at] == [
        "2026-03-18",
        "2026-03-19",
        "2026-03-21",
        "2026-03-23",
        "2026-03-25",
        "2026-03-26",
        "2026-03-28",
        "2026-03-30",
    ]
    assert plans[2].reason == "fixed schedule: retry 3 of 8"


def test_fixed_waits_for_the_window_and_gives_up_after_it() -> None:
    first = bkk("2026-03-16T10:00")
    opens = bkk("2026-03-22T12:00")
    waiting = context(now=first, first_failure_at=first, window=RetryWindow(opens))
    late = context(now=first, first_failure_at=first, window=RetryWindow(bkk("2026-03-30T10:30")))

    assert plan_retry(waiting, Strategy.FIXED).at == opens
    assert plan_retry(late, Strategy.FIXED) == RetryPlan(None, "the retry window has closed")


# ---------------------------------------------------------------- properties


ZONES = [BANGKOK, NEW_YORK, BERLIN]
CODES = sorted(DECLINE_CODES)


@st.composite
def contexts(draw: st.DrawFn) -> RetryContext:
    zone = draw(st.sampled_from(ZONES))
    first = draw(
        st.datetimes(
            min_value=datetime(2025, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
            max_value=datetime(2027, 12, 31),  # noqa: DTZ001
            timezones=st.just(UTC),
        )
    )
    budget = RetryBudget(
        max_attempts=draw(st.integers(1, 15)), within=draw(st.sampled_from(RETRY_WINDOWS))
    )
    now = first + timedelta(minutes=draw(st.integers(0, int(budget.within.total_seconds()) // 60)))
    allowed = draw(
        st.none() | st.integers(0, 20 * 24 * 60).map(lambda m: now + timedelta(minutes=m))
    )
    code = draw(st.sampled_from(CODES))
    brand = draw(st.sampled_from(list(Brand)))
    advice = draw(st.sampled_from(["", "try_again_later", "do_not_try_again"]))
    days = draw(st.frozensets(st.integers(1, 31), max_size=3))
    hours = draw(
        st.lists(
            st.tuples(st.integers(0, 60), st.integers(0, 60)).map(lambda p: (min(p), max(p))),
            min_size=24,
            max_size=24,
        )
    )
    return RetryContext(
        now=now,
        zone=zone,
        decline_code=code,
        classification=classify_decline(code, advice_code=advice, brand=brand),
        first_failure_at=first,
        original_charge_at=first - timedelta(minutes=draw(st.integers(0, 3 * 24 * 60))),
        retries_done=draw(st.integers(0, budget.max_attempts + 1)),
        budget=budget,
        window=RetryWindow(allowed, () if allowed else ("never",)),
        paydays=Paydays(
            days,
            draw(st.booleans()),
            draw(st.booleans()),
            draw(st.none() | st.dates(date(2024, 1, 1), date(2027, 12, 31))),
        ),
        hours=HourStats(tuple(hours)),
    )


@settings(max_examples=300, deadline=None)
@given(contexts())
def test_smart_plans_only_by_day_inside_the_window(ctx: RetryContext) -> None:
    plan = plan_retry(ctx, Strategy.SMART)

    assert plan.reason
    if plan.at is not None:
        assert ctx.window.allowed_at is not None
        assert ctx.window.allowed_at <= plan.at <= ctx.first_failure_at + ctx.budget.within
        moment = plan.at.astimezone(ctx.zone)
        assert 8 <= moment.hour <= 20 and moment.minute == 0
        assert ctx.retries_done < ctx.budget.max_attempts


@settings(max_examples=300, deadline=None)
@given(contexts())
def test_fixed_plans_only_inside_the_window(ctx: RetryContext) -> None:
    plan = plan_retry(ctx, Strategy.FIXED)

    assert plan.reason
    if plan.at is not None:
        assert ctx.window.allowed_at is not None
        assert ctx.window.allowed_at <= plan.at <= ctx.first_failure_at + ctx.budget.within


@settings(max_examples=200, deadline=None)
@given(contexts(), st.sampled_from(list(Strategy)))
def test_the_same_facts_give_the_same_plan(ctx: RetryContext, strategy: Strategy) -> None:
    again = RetryContext(
        now=ctx.now,
        zone=ZoneInfo(str(ctx.zone)),
        decline_code=ctx.decline_code,
        classification=ctx.classification,
        first_failure_at=ctx.first_failure_at,
        original_charge_at=ctx.original_charge_at,
        retries_done=ctx.retries_done,
        budget=ctx.budget,
        window=RetryWindow(ctx.window.allowed_at, tuple(ctx.window.reasons)),
        paydays=Paydays(
            frozenset(ctx.paydays.days_of_month),
            ctx.paydays.last_business_day,
            ctx.paydays.fridays,
            ctx.paydays.fortnight,
        ),
        hours=HourStats(tuple(ctx.hours.hours)),
    )

    assert plan_retry(ctx, strategy) == plan_retry(again, strategy)


@settings(max_examples=300, deadline=None)
@given(contexts(), st.sampled_from(list(Strategy)))
def test_nothing_is_ever_planned_after_a_never_retry_decline(
    ctx: RetryContext, strategy: Strategy
) -> None:
    plan = plan_retry(ctx, strategy)

    if not ctx.classification.allows_retry or ctx.window.never:
        assert plan.at is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (CardChange.NEW, "a new card is on file: retry at once"),
        (CardChange.UPDATED, "the card on file was updated: retry at once"),
    ],
)
def test_a_changed_card_is_tried_at_once_even_after_a_customer_action_decline(
    change: CardChange, reason: str
) -> None:
    now = bkk("2026-03-16T22:00")
    allowed = RetryWindow(now)
    stuck = context(now=now, code="expired_card", window=allowed)

    assert plan_retry(stuck, Strategy.SMART).at is None
    for strategy in Strategy:
        plan = plan_retry(replace(stuck, card_change=change), strategy)
        assert (plan.at, plan.reason) == (now, reason)


@settings(max_examples=300, deadline=None)
@example(  # Khartoum's clocks went back at midday on 15 January 2000 (UTC+3 to UTC+2)
    day=date(2000, 1, 15),
    zone="Africa/Khartoum",
    now_offset=0,
    window=(0, 86_400_000_000),
    money=0.5,
    weights=[0.1] * 12 + [1.0],  # 20:00, after the change
)
@given(
    day=st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31)),
    zone=st.sampled_from(
        ["Asia/Bangkok", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Tokyo"]
    ),
    now_offset=st.integers(min_value=-3 * 86_400_000_000, max_value=86_400_000_000),
    window=st.tuples(
        st.integers(min_value=-86_400_000_000, max_value=86_400_000_000),
        st.integers(min_value=0, max_value=86_400_000_000),
    ),
    money=st.sampled_from([0.15, 0.5, 0.9, 1.0]),
    weights=st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=13, max_size=13),
)
def test_the_best_slot_of_a_day_is_the_one_reckoned_slot_by_slot(
    day: date,
    zone: str,
    now_offset: int,
    window: tuple[int, int],
    money: float,
    weights: list[float],
) -> None:
    """The hot loop's arithmetic in microseconds gives the answer datetimes in UTC give,
    ties (equal weights) included, with `now` in the customer's zone or in UTC."""
    tz = ZoneInfo(zone)
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    start = _micros(midnight) + window[0]
    hourly = {hour: weights[n] for n, hour in enumerate(DAY_HOURS)}
    hourly[11] = hourly[10]  # a tie: the sooner wins
    now = midnight + timedelta(microseconds=now_offset)
    bounds = (start, start + window[1])
    expected = None
    for hour in DAY_HOURS:
        slot = datetime.combine(day, datetime.min.time().replace(hour=hour), tzinfo=tz)
        if bounds[0] <= _micros(slot) <= bounds[1]:
            days = (slot.astimezone(UTC) - now.astimezone(UTC)).total_seconds() / 86_400
            score = money * hourly[hour] * DAILY_DECAY**days
            if expected is None or score > expected[0]:
                expected = (score, slot)
    args = (day, tz, money, hourly)
    assert _best_slot(*args, now=now, window=bounds) == expected
    assert _best_slot(*args, now=now.astimezone(UTC), window=bounds) == expected


def test_a_retry_is_planned_the_same_with_now_in_the_customers_zone_or_in_utc() -> None:
    """Decay counts real hours: across the spring-forward night a wall clock would count
    one hour too many, and tip a near tie between two days (found in review)."""
    table = [(0, 0)] * 24
    table[19], table[20] = (1013, 2000), (900, 2000)  # 19:00 weighs 0.953 of 09:00
    local_now = datetime(2026, 3, 7, 5, 0, tzinfo=NEW_YORK)  # Saturday; clocks go forward Sunday
    plans = [
        plan_retry(
            context(
                now=now,
                code="processing_error",
                zone=NEW_YORK,
                budget=RetryBudget(max_attempts=2, within=timedelta(weeks=2)),
                window=RetryWindow(datetime(2026, 3, 8, 0, 0, tzinfo=UTC)),  # Saturday 19:00
                hours=HourStats(tuple(table)),
            ),
            Strategy.SMART,
        )
        for now in (local_now, local_now.astimezone(UTC))
    ]
    assert plans[0] == plans[1]
    # Sunday 09:00 is 27 real hours away (28 on the wall clock), Monday 09:00 51: the
    # two best days, of which the sooner is tried.
    assert local(plans[0].at, NEW_YORK) == "2026-03-08 09:00"


# ---------------------------------------------------------------- reasons tell the truth


@pytest.mark.parametrize("change", [CardChange.NEW, CardChange.UPDATED])
def test_a_changed_card_held_back_by_a_network_cap_is_not_said_to_be_retried_at_once(
    change: CardChange,
) -> None:
    # A Mastercard updated by the card updater (same number) that has had ten
    # declines in the last 24 hours: the rules allow the next try only tomorrow.
    now = bkk("2026-03-16T22:00")
    cap = bkk("2026-03-17T18:00")
    held = RetryWindow(cap, ("Mastercard allows 10 declines on a card in 24 hours",))
    ctx = replace(context(now=now, code="expired_card", window=held), card_change=change)

    plan = plan_retry(ctx, Strategy.SMART)

    assert plan.at == cap
    assert "at once" not in plan.reason, plan.reason


def test_a_retry_pushed_to_the_afternoon_by_the_window_is_not_said_to_be_mid_morning() -> None:
    # A retryable decline code Stripe added after this table was written (read as
    # generic_decline), and a window that opens at 16:00 tomorrow (a network cap).
    now = bkk("2026-03-16T10:00")
    opens = bkk("2026-03-17T16:00")
    ctx = replace(
        context(now=now, code="insufficient_funds", window=RetryWindow(opens, ("cap",))),
        decline_code="brand_new_code",
        classification=UNKNOWN_DECLINE,
    )

    plan = plan_retry(ctx, Strategy.SMART)

    assert local(plan.at) == "2026-03-17 16:00"
    assert "mid-morning" not in plan.reason, plan.reason


@pytest.mark.parametrize(
    ("zone", "now", "said", "utc"),
    [
        # +05:45: 09:00 there is 03:15 UTC.
        ("Asia/Kathmandu", "2026-03-16T05:00", "17 Mar at 09:00 Asia/Kathmandu", "03:15"),
        # The morning after New York's clocks went forward: 09:00 EDT, 13:00 UTC.
        ("America/New_York", "2026-03-07T15:00", "08 Mar at 09:00 America/New_York", "13:00"),
        # The morning after London's clocks went back: 09:00 GMT, 09:00 UTC.
        ("Europe/London", "2026-10-24T15:00", "25 Oct at 09:00 Europe/London", "09:00"),
    ],
)
def test_the_reason_names_the_zone_whose_hour_it_gives(
    zone: str, now: str, said: str, utc: str
) -> None:
    # The operator reads the reason beside next_retry_at in UTC: "09:00 local"
    # would not say whose nine o'clock it is.
    moment = datetime.fromisoformat(now).replace(tzinfo=UTC)
    ctx = context(now=moment, code="processing_error", zone=ZoneInfo(zone))

    plan = plan_retry(ctx, Strategy.SMART)

    assert plan.at is not None and f"{plan.at.astimezone(UTC):%H:%M}" == utc
    assert plan.reason.endswith(f"retry on {said}"), plan.reason
