"""Generated scenarios: valid, reproducible, and carrying every habit the issue asks for."""

from __future__ import annotations

import calendar
import functools
import itertools
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import jsonschema
import pytest

from dunning.simulator.generate import generate
from dunning.simulator.scenario import (
    CardRole,
    Scenario,
    SimCustomer,
    dump_scenario,
    load_scenario,
    scenario_schema,
)
from dunning.simulator.world import charge_outcome

START = datetime(2026, 1, 1, tzinfo=UTC)
CURRENCY = {
    "TH": "THB",
    "US": "USD",
    "DE": "EUR",
    "FR": "EUR",
    "NL": "EUR",
    "GB": "GBP",
    "JP": "JPY",
}


@functools.cache
def data() -> dict[str, Any]:
    return generate(600, 11, start=START, days=90)


@functools.cache
def scenario() -> Scenario:
    return load_scenario(data())


def funds_windows(customer: SimCustomer) -> list[tuple[datetime, datetime]]:
    """The insufficient_funds windows on the original card, in local time."""
    zone = customer.zone
    return [
        (w.starts_at.astimezone(zone), w.ends_at.astimezone(zone))
        for w in customer.declines
        if w.decline_code == "insufficient_funds" and w.card is CardRole.ORIGINAL
    ]


def paydays(customer: SimCustomer) -> list[date]:
    """Where the money comes back: the end of each funds window before the run's end."""
    end = scenario().end
    return [until.date() for _, until in funds_windows(customer) if until < end]


def test_it_validates_against_the_schema() -> None:
    small = generate(80, 3, start=START)
    jsonschema.Draft202012Validator(scenario_schema()).validate(small)


def test_it_loads_and_round_trips() -> None:
    loaded = scenario()
    assert len(loaded.customers) == 600
    assert (loaded.start, loaded.end) == (START, START + timedelta(days=90))
    assert load_scenario(dump_scenario(loaded)) == loaded


def test_the_same_seed_gives_the_same_scenario() -> None:
    assert generate(50, 7, start=START) == generate(50, 7, start=START)
    assert generate(50, 7, start=START) != generate(50, 8, start=START)


def test_it_takes_another_start_and_length() -> None:
    start = datetime(2026, 6, 15, 12, tzinfo=UTC)
    loaded = load_scenario(generate(40, 1, start=start, days=30))
    assert loaded.end == start + timedelta(days=30)
    assert all(start <= inv.due_at < loaded.end for c in loaded.customers for inv in c.invoices)


def test_no_customers_is_a_valid_scenario() -> None:
    assert load_scenario(generate(0, 1, start=START)).customers == ()


def test_it_refuses_a_naive_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        generate(1, 1, start=datetime(2026, 1, 1))  # noqa: DTZ001


def test_thai_customers_are_the_largest_group_with_thai_habits() -> None:
    customers = scenario().customers
    countries = Counter(c.country for c in customers)
    assert countries.most_common(1)[0][0] == "TH"
    assert countries["TH"] > len(customers) / 2
    assert {"US", "JP"} <= set(countries)
    assert set(countries) & {"DE", "FR", "NL", "GB"}
    thai = [c for c in customers if c.country == "TH"]
    assert {c.time_zone for c in thai} == {"Asia/Bangkok"}
    assert Counter(c.locale for c in thai).most_common(1)[0][0] == "th"


def test_currencies_match_the_country_and_amounts_are_whole() -> None:
    for customer in scenario().customers:
        for invoice in customer.invoices:
            assert invoice.currency == CURRENCY[customer.country]
            assert type(invoice.amount_due) is int
            assert invoice.amount_due > 0
        assert all(h.currency == CURRENCY[customer.country] for h in customer.history)


def test_billing_is_monthly_on_a_fixed_day_and_time() -> None:
    for customer in scenario().customers:
        local = [inv.due_at.astimezone(customer.zone) for inv in customer.invoices]
        assert len(local) in (2, 3, 4)
        assert len({(d.day, d.hour, d.minute) for d in local}) == 1
        months = [d.year * 12 + d.month for d in local]
        assert months == list(range(months[0], months[0] + len(months)))
        assert len({inv.amount_due for inv in customer.invoices}) == 1
        assert {inv.collection_method for inv in customer.invoices} == {"charge_automatically"}


def test_money_arrives_on_payday_morning_and_lasts_a_few_days() -> None:
    tight = [c for c in scenario().customers if funds_windows(c)]
    assert len(tight) > len(scenario().customers) / 5
    for customer in tight:
        windows = funds_windows(customer)
        for (_, money_from), (money_until, _) in itertools.pairwise(windows):
            assert (money_from.hour, money_from.minute) == (6, 0)
            assert timedelta(days=2) <= money_until - money_from <= timedelta(days=6)


def _is_25th(day: date) -> bool:
    # The 25th, or the working day before it when it falls on a weekend or holiday.
    return day.day == 25 or (day.weekday() < 5 and 20 <= day.day < 25)


def _is_last_business_day(day: date) -> bool:
    days_left = calendar.monthrange(day.year, day.month)[1] - day.day
    return day.weekday() < 5 and days_left <= 4 and day.day != 25


def _is_fortnightly_friday(days: list[date]) -> bool:
    gaps = {(b - a).days for a, b in itertools.pairwise(days)}
    return len(days) >= 3 and all(d.weekday() == 4 for d in days) and gaps == {14}


def test_every_payday_pattern_is_present() -> None:
    patterns: Counter[str] = Counter()
    for customer in scenario().customers:
        days = paydays(customer)
        if len(days) < 2:
            continue
        if _is_fortnightly_friday(days):
            patterns["biweekly"] += 1
        elif all(_is_25th(d) for d in days):
            patterns["25th"] += 1
        elif all(_is_last_business_day(d) or d.day >= 24 for d in days):
            patterns["last business day"] += 1
        else:
            patterns["other"] += 1
    assert patterns["biweekly"] > 0
    assert patterns["25th"] > 0
    assert patterns["last business day"] > 0
    assert patterns["other"] == 0, patterns


def test_charges_fail_between_paydays_and_succeed_after_one() -> None:
    for customer in scenario().customers:
        windows = funds_windows(customer)
        if len(windows) < 2:
            continue
        gap_from, gap_until = windows[1]
        assert charge_outcome(customer, gap_from, CardRole.ORIGINAL).decline_code in (
            "insufficient_funds",
            "issuer_not_available",
            "lost_card",
            "stolen_card",
            "pickup_card",
        )
        if gap_until < scenario().end and not any(
            w.holds(gap_until + timedelta(hours=5)) and w.decline_code != "insufficient_funds"
            for w in customer.declines
        ):
            noon = gap_until + timedelta(hours=5)
            outcome = charge_outcome(customer, noon, CardRole.ORIGINAL)
            assert outcome.decline_code in (None, "expired_card")
            return
    pytest.fail("no customer with a payday inside the run")


def test_issuers_go_down_at_night() -> None:
    outages = [
        (w, c)
        for c in scenario().customers
        for w in c.declines
        if w.decline_code == "issuer_not_available"
    ]
    assert outages
    for window, customer in outages:
        starts, ends = (
            window.starts_at.astimezone(customer.zone),
            window.ends_at.astimezone(customer.zone),
        )
        assert (starts.hour, ends.hour, starts.date()) == (0, 5, ends.date())
    # Not everyone: most issuers are reliable.
    affected = {c.id for _, c in outages}
    assert len(affected) < len(scenario().customers)


def test_some_cards_expire_before_an_invoice_is_due() -> None:
    expired = [
        c
        for c in scenario().customers
        if any(
            charge_outcome(c, inv.due_at, CardRole.ORIGINAL).decline_code == "expired_card"
            for inv in c.invoices
        )
    ]
    assert expired
    assert len(expired) < len(scenario().customers) / 5


def test_a_few_cards_are_lost_stolen_or_picked_up() -> None:
    hard = [
        w
        for c in scenario().customers
        for w in c.declines
        if w.decline_code in ("lost_card", "stolen_card", "pickup_card")
    ]
    assert hard
    assert len(hard) < len(scenario().customers) / 10
    assert {w.advice_code for w in hard} == {"do_not_try_again"}


def test_some_customers_update_their_card_after_a_reminder_and_some_by_the_updater() -> None:
    replacements = [c.replacement_card for c in scenario().customers if c.replacement_card]
    by_reminder = [r for r in replacements if r.after_messages is not None]
    by_updater = [r for r in replacements if r.at is not None]
    assert by_reminder
    assert by_updater
    assert {r.after_messages for r in by_reminder} >= {1, 2, 3}
    assert all(r.delay_hours is not None and r.delay_hours >= 1 for r in by_reminder)
    assert all(scenario().start <= r.at < scenario().end for r in by_updater if r.at)


def test_history_comes_before_the_start_and_shows_payday_successes() -> None:
    start = scenario().start
    recovered_on_payday = 0
    for customer in scenario().customers:
        assert customer.history
        assert all(h.at < start for h in customer.history)
        outcomes = [h.outcome for h in customer.history]
        due = customer.invoices[0].due_at.astimezone(customer.zone)
        for before, after in itertools.pairwise(customer.history):
            if before.outcome == "failed" and after.outcome == "succeeded":
                assert before.decline_code == "insufficient_funds"
                local = after.at.astimezone(customer.zone)
                if (local.day, local.hour, local.minute) != (due.day, due.hour, due.minute):
                    # Not next month's first charge: a daily 10:00 retry that met a payday.
                    assert (local.hour, local.minute) == (10, 0)
                    recovered_on_payday += 1
        if not funds_windows(customer):
            assert set(outcomes) == {"succeeded"}
    assert recovered_on_payday > 0
