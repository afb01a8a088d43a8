"""Contact rule packs against the acceptance cases (reference/acceptance-cases.md).

Pure core: no database, no clock; every moment is fixed.  Case ids (U01, TH05)
name the rows of the acceptance table.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dunning.core.contact_rules import (
    BUSINESS,
    DEFAULT_INDIVIDUAL,
    MAX_SEARCH_DAYS,
    TH_INDIVIDUAL,
    US_INDIVIDUAL,
    CapAction,
    RulePack,
    RulePackContactRules,
    Window,
    earliest_contact,
    holiday_name,
    holidays_in,
    local_instant,
    pack_for,
    pack_key,
    window_on,
)
from dunning.core.contacts import Channel, Contact, ContactRules, Debtor, Verdict

RULES = RulePackContactRules()

NEW_YORK = Debtor(time_zone="America/New_York", country="US", is_business=False)
LOS_ANGELES = Debtor(time_zone="America/Los_Angeles", country="US", is_business=False)
CHICAGO = Debtor(time_zone="America/Chicago", country="US", is_business=False)
BANGKOK = Debtor(time_zone="Asia/Bangkok", country="TH", is_business=False)
BANGKOK_COMPANY = Debtor(time_zone="Asia/Bangkok", country="TH", is_business=True)
BERLIN = Debtor(time_zone="Europe/Berlin", country="DE", is_business=False)
BERLIN_COMPANY = Debtor(time_zone="Europe/Berlin", country="DE", is_business=True)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(
    debtor: Debtor, year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0
) -> datetime:
    """A local wall-clock time of the debtor, as an aware UTC datetime."""
    wall = datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(debtor.time_zone))
    return wall.astimezone(UTC)


def ask(
    debtor: Debtor,
    at: datetime,
    channel: Channel = Channel.SMS,
    history: tuple[Contact, ...] = (),
    debt: str = "D1",
    rules: ContactRules = RULES,
) -> Verdict:
    return rules.earliest(at=at, channel=channel, debtor=debtor, history=history, debt=debt)


def daily_calls(debt: str) -> tuple[Contact, ...]:
    """U05: one unanswered call about `debt` each day Mon 2025-06-02 .. Sun 06-08, 10:00 EDT."""
    return tuple(
        Contact(at=local(NEW_YORK, 2025, 6, day, 10), channel=Channel.CALL, debt=debt)
        for day in range(2, 9)
    )


def deferring_calls() -> RulePackContactRules:
    """The US pack with the policy choice that defers capped calls instead of blocking them."""
    pack = dataclasses.replace(US_INDIVIDUAL, call_cap_action=CapAction.DEFER)
    return RulePackContactRules(overrides={"US:individual": pack})


# --- United States (Reg F) ---------------------------------------------------------------


def test_it_defers_an_sms_before_eight_in_new_york_to_eight_local() -> None:
    # U01, Reg F §1006.6(b)(1)(i)
    verdict = ask(NEW_YORK, utc(2025, 6, 2, 11, 30))

    assert verdict.allowed_at == utc(2025, 6, 2, 12, 0)
    assert len(verdict.reasons) == 1
    assert "outside 08:00-21:00 America/New_York" in verdict.reasons[0]
    assert "Reg F §1006.6(b)(1)(i)" in verdict.reasons[0]


def test_it_defers_an_email_after_nine_in_los_angeles_to_eight_next_morning() -> None:
    # U02: the convenient-time rule covers email too (rules.md 3.2, mondaq)
    verdict = ask(LOS_ANGELES, utc(2025, 6, 3, 4, 30), channel=Channel.EMAIL)

    assert verdict.allowed_at == utc(2025, 6, 3, 15, 0)


def test_it_sends_at_eight_sharp_and_defers_at_nine_sharp_in_chicago() -> None:
    # U03 [interp]: the window is [08:00, 21:00)
    at_eight = local(CHICAGO, 2025, 6, 2, 8)
    assert ask(CHICAGO, at_eight) == Verdict(at_eight)
    just_before_nine = local(CHICAGO, 2025, 6, 2, 20, 59, 59)
    assert ask(CHICAGO, just_before_nine).allowed_at == just_before_nine

    at_nine = ask(CHICAGO, local(CHICAGO, 2025, 6, 2, 21))

    assert at_nine.allowed_at == local(CHICAGO, 2025, 6, 3, 8)


def test_it_defers_a_seven_thirty_sms_to_eight_local_on_both_dst_change_days() -> None:
    # 2025-03-09 and 2025-11-02: the local hour stays 08:00 while the UTC offset moves.
    assert ask(NEW_YORK, utc(2025, 3, 9, 11, 30)).allowed_at == utc(2025, 3, 9, 12, 0)  # EDT
    assert ask(NEW_YORK, utc(2025, 11, 2, 12, 30)).allowed_at == utc(2025, 11, 2, 13, 0)  # EST


def test_it_defers_an_evening_sms_across_the_spring_change_to_eight_edt() -> None:
    # Saturday 2025-03-08 21:30 EST; the clocks go forward that night.
    verdict = ask(NEW_YORK, utc(2025, 3, 9, 2, 30))

    assert verdict.allowed_at == utc(2025, 3, 9, 12, 0)  # 08:00 EDT, not 08:00 EST
    assert verdict.allowed_at.astimezone(ZoneInfo("America/New_York")).hour == 8


def test_it_ignores_public_holidays_for_us_consumers() -> None:
    # Reg F names hours, not days: Independence Day is a day like any other.
    at = local(NEW_YORK, 2025, 7, 4, 10)

    assert ask(NEW_YORK, at) == Verdict(at)


def test_it_blocks_an_eighth_call_about_a_debt_in_seven_days() -> None:
    # U05, Reg F §1006.14(b)(2)(i)(A).  The case says BLOCK, so the US pack blocks
    # (CapAction.BLOCK); the reason says when this debt may be called again.
    verdict = ask(
        NEW_YORK, local(NEW_YORK, 2025, 6, 8, 15), channel=Channel.CALL, history=daily_calls("D1")
    )

    assert verdict.blocked
    assert any(
        "7 calls about this debt" in r and "§1006.14(b)(2)(i)(A)" in r for r in verdict.reasons
    )
    assert "allowed again from 2025-06-09 08:00 America/New_York" in verdict.reasons[-1]


def test_it_allows_the_call_once_the_trailing_seven_days_hold_six_calls() -> None:
    # U05: 06-03 .. 06-09 holds six prior calls.
    at = local(NEW_YORK, 2025, 6, 9, 10)

    assert ask(NEW_YORK, at, channel=Channel.CALL, history=daily_calls("D1")) == Verdict(at)


def test_it_defers_a_capped_call_to_the_next_morning_when_configured_to_defer() -> None:
    # The policy alternative to U05's BLOCK: the call moves to when the count drops.
    verdict = ask(
        NEW_YORK,
        local(NEW_YORK, 2025, 6, 8, 15),
        channel=Channel.CALL,
        history=daily_calls("D1"),
        rules=deferring_calls(),
    )

    assert verdict.allowed_at == local(NEW_YORK, 2025, 6, 9, 8)
    assert "at most 7 in 7 consecutive days" in verdict.reasons[0]


def test_it_counts_scheduled_later_calls_in_every_seven_day_run() -> None:
    # Seven calls already booked for 06-10 .. 06-15 fill the run 06-09 .. 06-15.
    booked = tuple(
        Contact(at=local(NEW_YORK, 2025, 6, day, hour), channel=Channel.CALL, debt="D1")
        for day, hour in [(10, 10), (10, 16), (11, 10), (12, 10), (13, 10), (14, 10), (15, 10)]
    )

    verdict = ask(NEW_YORK, local(NEW_YORK, 2025, 6, 9, 10), channel=Channel.CALL, history=booked)

    assert verdict.blocked
    assert any("from 2025-06-09 to 2025-06-15" in r for r in verdict.reasons)


def test_it_does_not_count_texts_toward_the_call_cap() -> None:
    texts = tuple(dataclasses.replace(c, channel=Channel.SMS) for c in daily_calls("D1"))
    at = local(NEW_YORK, 2025, 6, 8, 15)

    assert ask(NEW_YORK, at, channel=Channel.CALL, history=texts) == Verdict(at)


def test_it_blocks_a_call_within_seven_days_of_a_conversation() -> None:
    # U06, Reg F §1006.14(b)(2)(i)(B): the conversation's date is day 1 of 7.
    talked = (
        Contact(
            at=local(NEW_YORK, 2025, 6, 2, 11), channel=Channel.CALL, debt="D1", conversation=True
        ),
    )

    sunday = ask(NEW_YORK, local(NEW_YORK, 2025, 6, 8, 10), channel=Channel.CALL, history=talked)
    monday_at = local(NEW_YORK, 2025, 6, 9, 10)
    monday = ask(NEW_YORK, monday_at, channel=Channel.CALL, history=talked)

    assert sunday.blocked
    assert any("conversation about this debt on 2025-06-02" in r for r in sunday.reasons)
    assert any("§1006.14(b)(2)(i)(B)" in r for r in sunday.reasons)
    assert monday == Verdict(monday_at)


def test_it_still_allows_an_email_the_day_after_a_conversation() -> None:
    talked = (
        Contact(
            at=local(NEW_YORK, 2025, 6, 2, 11), channel=Channel.CALL, debt="D1", conversation=True
        ),
    )
    at = local(NEW_YORK, 2025, 6, 3, 10)

    assert ask(NEW_YORK, at, channel=Channel.EMAIL, history=talked) == Verdict(at)


def test_it_counts_calls_per_debt() -> None:
    # U07: D1's seven calls say nothing about D2.
    at = local(NEW_YORK, 2025, 6, 8, 15)

    assert ask(NEW_YORK, at, channel=Channel.CALL, history=daily_calls("D1"), debt="D2") == (
        Verdict(at)
    )


def test_it_counts_calls_of_an_unnamed_debt_against_every_debt() -> None:
    # Conservative: a call whose debt is unknown may have been about this one.
    verdict = ask(
        NEW_YORK, local(NEW_YORK, 2025, 6, 8, 15), channel=Channel.CALL, history=daily_calls("")
    )

    assert verdict.blocked


def test_it_blocks_sms_after_an_opt_out_but_still_allows_email() -> None:
    # U09: Reg F §1006.6(e) and TCPA revocation, per channel; email is [interp].
    stopped = dataclasses.replace(NEW_YORK, opted_out=frozenset({Channel.SMS}))
    at = local(NEW_YORK, 2025, 6, 2, 10, 1)

    sms = ask(stopped, at)
    email = ask(stopped, at, channel=Channel.EMAIL)

    assert sms.blocked
    assert "opted out of sms" in sms.reasons[0]
    assert "§1006.6(e)" in sms.reasons[0]
    assert email == Verdict(at)


# --- Thailand (Debt Collection Act B.E. 2558) --------------------------------------------


def test_it_defers_a_thai_reminder_on_saturday_evening_to_sunday_at_eight() -> None:
    # TH01, s.9(3); weekends use the holiday window 08:00-18:00 [interp]
    verdict = ask(BANGKOK, utc(2025, 3, 15, 12, 30))

    assert verdict.allowed_at == utc(2025, 3, 16, 1, 0)
    assert verdict.reasons == (
        "outside 08:00-18:00 Asia/Bangkok on a Saturday (Debt Collection Act B.E. 2558 s.9(3))",
    )


def test_it_defers_a_thai_reminder_on_friday_night_to_saturday_at_eight() -> None:
    # TH02
    verdict = ask(BANGKOK, local(BANGKOK, 2025, 3, 14, 20, 15))

    assert verdict.allowed_at == local(BANGKOK, 2025, 3, 15, 8)


@pytest.mark.parametrize(
    ("asked", "allowed"),
    [
        ((2025, 3, 17, 7, 45), (2025, 3, 17, 8, 0)),
        ((2025, 3, 17, 19, 59), (2025, 3, 17, 19, 59)),
        ((2025, 3, 17, 20, 0), (2025, 3, 18, 8, 0)),
    ],
)
def test_it_keeps_thai_weekday_reminders_within_eight_to_eight(
    asked: tuple[int, ...], allowed: tuple[int, ...]
) -> None:
    # TH03 [interp]: the weekday window is [08:00, 20:00)
    assert ask(BANGKOK, local(BANGKOK, *asked)).allowed_at == local(BANGKOK, *allowed)


def test_it_uses_the_holiday_window_on_a_thai_public_holiday_that_falls_on_a_monday() -> None:
    # TH04 [interp]: 2025-07-28 is HM the King's Birthday in the `holidays` package.
    assert holiday_name("TH", date(2025, 7, 28)) is not None
    evening = ask(BANGKOK, local(BANGKOK, 2025, 7, 28, 19))
    before_six = local(BANGKOK, 2025, 7, 28, 17, 59)

    assert evening.allowed_at == local(BANGKOK, 2025, 7, 29, 8)
    assert "outside 08:00-18:00 Asia/Bangkok on a public holiday" in evening.reasons[0]
    assert "Birthday" in evening.reasons[0]
    assert ask(BANGKOK, before_six) == Verdict(before_six)


def test_it_defers_a_second_thai_contact_on_the_same_day_to_the_next_morning() -> None:
    # TH05: Committee notification 2019, clause 3; the cap spans channels and debts [interp].
    sms = (Contact(at=local(BANGKOK, 2025, 3, 17, 9), channel=Channel.SMS, debt="D9"),)

    verdict = ask(BANGKOK, local(BANGKOK, 2025, 3, 17, 14), channel=Channel.EMAIL, history=sms)

    assert verdict.allowed_at == local(BANGKOK, 2025, 3, 18, 8)
    assert "already contacted on 2025-03-17 in Asia/Bangkok" in verdict.reasons[0]
    assert "Committee notification 2019" in verdict.reasons[0]


def test_it_skips_every_thai_day_that_already_has_a_contact() -> None:
    # A deferral to the next morning is judged again: Sunday is taken too, so Monday.
    taken = (Contact(at=local(BANGKOK, 2025, 3, 16, 10), channel=Channel.LINE),)

    verdict = ask(BANGKOK, local(BANGKOK, 2025, 3, 15, 19, 30), history=taken)

    assert verdict.allowed_at == local(BANGKOK, 2025, 3, 17, 8)
    assert len(verdict.reasons) == 2


def test_it_contacts_a_thai_business_in_business_hours_after_songkran() -> None:
    # Companies are not debtors under the Act (rules.md 4.1): business hours, no holidays.
    verdict = ask(BANGKOK_COMPANY, local(BANGKOK_COMPANY, 2025, 4, 11, 17))

    assert verdict.allowed_at == local(BANGKOK_COMPANY, 2025, 4, 17, 9)
    assert any("Songkran" in r for r in verdict.reasons)


# --- the default pack and businesses -----------------------------------------------------


def test_it_moves_a_default_saturday_reminder_before_nine_to_nine() -> None:
    verdict = ask(BERLIN, local(BERLIN, 2025, 6, 7, 8, 30))

    assert verdict.allowed_at == local(BERLIN, 2025, 6, 7, 9)
    assert "engine default contact policy" in verdict.reasons[0]


def test_it_sends_a_default_saturday_reminder_before_five() -> None:
    at = local(BERLIN, 2025, 6, 7, 16, 59)

    assert ask(BERLIN, at) == Verdict(at)


def test_it_defers_a_default_sunday_reminder_to_monday_at_eight() -> None:
    verdict = ask(BERLIN, local(BERLIN, 2025, 6, 1, 12))

    assert verdict.allowed_at == local(BERLIN, 2025, 6, 2, 8)
    assert "no contact on a Sunday in Europe/Berlin" in verdict.reasons[0]


def test_it_skips_sunday_and_easter_monday_for_a_default_reminder() -> None:
    verdict = ask(BERLIN, local(BERLIN, 2025, 4, 19, 17, 30))

    assert verdict.allowed_at == local(BERLIN, 2025, 4, 22, 8)
    assert [r.split(" in ")[0] for r in verdict.reasons[1:]] == [
        "no contact on a Sunday",
        "no contact on a public holiday (Easter Monday)",
    ]


def test_it_contacts_a_german_business_on_the_next_working_day_at_nine() -> None:
    # Friday 17:00 is closed; the weekend and Pentecost Monday 2025-06-09 are skipped.
    verdict = ask(BERLIN_COMPANY, local(BERLIN_COMPANY, 2025, 6, 6, 17))

    assert verdict.allowed_at == local(BERLIN_COMPANY, 2025, 6, 10, 9)
    assert "engine business-hours policy" in verdict.reasons[0]


def test_it_sends_to_a_german_business_inside_business_hours() -> None:
    at = local(BERLIN_COMPANY, 2025, 6, 10, 9)

    assert ask(BERLIN_COMPANY, at) == Verdict(at)


def test_it_uses_the_default_pack_without_holidays_for_an_unknown_country() -> None:
    nowhere = Debtor(time_zone="UTC", country="", is_business=False)
    new_year = utc(2025, 1, 1, 10)

    assert pack_for(nowhere) is DEFAULT_INDIVIDUAL
    assert ask(nowhere, new_year) == Verdict(new_year)


# --- pack selection and configuration ----------------------------------------------------


def test_it_chooses_a_pack_by_country_and_kind_of_customer() -> None:
    assert pack_for(BANGKOK) is TH_INDIVIDUAL
    assert pack_for(dataclasses.replace(BANGKOK, country="th")) is TH_INDIVIDUAL
    assert pack_for(NEW_YORK) is US_INDIVIDUAL
    assert pack_for(BERLIN) is DEFAULT_INDIVIDUAL
    assert pack_for(BANGKOK_COMPANY) is BUSINESS
    assert pack_for(dataclasses.replace(NEW_YORK, is_business=True)) is BUSINESS
    assert pack_key(country="de", is_business=True) == "DE:business"


def test_it_lets_configuration_replace_a_pack_but_not_a_country_law_by_wildcard() -> None:
    lenient = dataclasses.replace(
        DEFAULT_INDIVIDUAL, key="custom", week=(Window(time(7), time(22)),) * 7
    )

    assert pack_for(BERLIN, overrides={"DE:individual": lenient}) is lenient
    assert pack_for(BERLIN, overrides={"DE": lenient}) is lenient
    assert pack_for(BERLIN, overrides={"*:individual": lenient}) is lenient
    assert pack_for(BERLIN, overrides={"*": lenient}) is lenient
    assert pack_for(BANGKOK, overrides={"*": lenient}) is TH_INDIVIDUAL
    assert pack_for(BANGKOK, overrides={"TH": lenient}) is lenient
    assert RulePackContactRules(overrides={"*": lenient}).pack_for(BERLIN) is lenient


def test_it_lifts_the_thai_daily_cap_when_configuration_says_so() -> None:
    uncapped = dataclasses.replace(TH_INDIVIDUAL, daily_cap=None)
    sms = (Contact(at=local(BANGKOK, 2025, 3, 17, 9), channel=Channel.SMS),)
    at = local(BANGKOK, 2025, 3, 17, 14)

    rules = RulePackContactRules(overrides={"TH:individual": uncapped})

    assert ask(BANGKOK, at, history=sms, rules=rules) == Verdict(at)


def test_it_blocks_when_no_moment_is_allowed_within_the_search_horizon() -> None:
    never = dataclasses.replace(DEFAULT_INDIVIDUAL, week=(None,) * 7)

    verdict = earliest_contact(
        never, at=utc(2025, 1, 1), channel=Channel.EMAIL, debtor=BERLIN, history=()
    )

    assert verdict.blocked
    assert f"no allowed moment within {MAX_SEARCH_DAYS} days" in verdict.reasons[-1]


def test_it_blocks_with_a_reason_for_an_unknown_time_zone() -> None:
    lost = Debtor(time_zone="Mars/Olympus", country="US", is_business=False)

    verdict = ask(lost, utc(2025, 6, 2, 15))

    assert verdict.blocked
    assert "unknown time zone 'Mars/Olympus'" in verdict.reasons[0]


def test_it_refuses_a_naive_moment() -> None:
    with pytest.raises(ValueError, match="aware"):
        ask(NEW_YORK, datetime(2025, 6, 2, 10))  # noqa: DTZ001 - the point of the test


def test_it_refuses_a_window_that_ends_before_it_starts() -> None:
    with pytest.raises(ValueError, match="before its end"):
        Window(time(20), time(8))
    with pytest.raises(ValueError, match="7 windows"):
        dataclasses.replace(BUSINESS, week=(None,) * 6)


def test_it_names_holidays_in_english_whatever_the_locale() -> None:
    # reference/stack.md item 4: names follow LANG unless language= is passed.
    assert holidays_in("TH", 2025)[date(2025, 1, 1)] == "New Year's Day"
    assert holidays_in("XX", 2025) == {}


# --- properties --------------------------------------------------------------------------

DEBTORS = [
    BANGKOK,
    BANGKOK_COMPANY,
    NEW_YORK,
    LOS_ANGELES,
    CHICAGO,
    BERLIN,
    BERLIN_COMPANY,
    dataclasses.replace(NEW_YORK, opted_out=frozenset({Channel.SMS})),
]
moments = st.datetimes(
    min_value=datetime(2024, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive; timezones= makes them aware
    max_value=datetime(2027, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[datetime, Channel, Debtor, tuple[Contact, ...], str]:
    at = draw(moments)
    contacts = draw(
        st.lists(
            st.builds(
                Contact,
                at=st.integers(-10 * 24 * 60, 10 * 24 * 60).map(
                    lambda m: at + timedelta(minutes=m)
                ),
                channel=st.sampled_from(Channel),
                debt=st.sampled_from(["", "D1", "D2"]),
                conversation=st.booleans(),
            ),
            max_size=12,
        )
    )
    return (
        at,
        draw(st.sampled_from(Channel)),
        draw(st.sampled_from(DEBTORS)),
        tuple(contacts),
        draw(st.sampled_from(["", "D1", "D2"])),
    )


def judged(request: tuple[datetime, Channel, Debtor, tuple[Contact, ...], str]) -> Verdict:
    at, channel, debtor, history, debt = request
    return RULES.earliest(at=at, channel=channel, debtor=debtor, history=history, debt=debt)


@settings(deadline=None)  # the first use of a (country, year) builds its holiday set
@given(requests())
def test_it_never_allows_a_contact_before_it_was_asked_for(
    request: tuple[datetime, Channel, Debtor, tuple[Contact, ...], str],
) -> None:
    verdict = judged(request)

    if verdict.allowed_at is None:
        assert verdict.reasons  # a block always says why
    else:
        assert verdict.allowed_at >= request[0]
        assert verdict.allowed_at == request[0] or verdict.reasons  # so does a deferral


@settings(deadline=None)  # the first use of a (country, year) builds its holiday set
@given(requests())
def test_it_always_allows_a_moment_inside_the_packs_window_for_that_local_day(
    request: tuple[datetime, Channel, Debtor, tuple[Contact, ...], str],
) -> None:
    verdict = judged(request)
    if verdict.allowed_at is None:
        return
    debtor = request[2]
    zone = ZoneInfo(debtor.time_zone)
    day = verdict.allowed_at.astimezone(zone).date()

    window, _ = window_on(pack_for(debtor), country=debtor.country, day=day)

    assert window is not None
    assert local_instant(day, window.start, zone) <= verdict.allowed_at
    assert verdict.allowed_at < local_instant(day, window.end, zone)


@settings(deadline=None)  # the first use of a (country, year) builds its holiday set
@given(requests())
def test_it_allows_the_allowed_moment_again_unchanged(
    request: tuple[datetime, Channel, Debtor, tuple[Contact, ...], str],
) -> None:
    verdict = judged(request)
    if verdict.allowed_at is None:
        return
    _, channel, debtor, history, debt = request

    again = RULES.earliest(
        at=verdict.allowed_at, channel=channel, debtor=debtor, history=history, debt=debt
    )

    assert again == Verdict(verdict.allowed_at)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(moments, st.sampled_from(Channel), st.sampled_from(["D1", "D2"])), max_size=15
    )
)
def test_it_never_contacts_a_thai_individual_twice_on_one_local_day(
    asked: list[tuple[datetime, Channel, str]],
) -> None:
    # Committee notification 2019, clause 3: every allowed contact joins the history.
    history: list[Contact] = []
    for at, channel, debt in asked:
        verdict = ask(BANGKOK, at, channel=channel, history=tuple(history), debt=debt)
        assert verdict.allowed_at is not None
        history.append(Contact(at=verdict.allowed_at, channel=channel, debt=debt))

    days = [c.at.astimezone(ZoneInfo("Asia/Bangkok")).date() for c in history]
    assert len(days) == len(set(days))


def test_it_satisfies_the_contact_rules_protocol() -> None:
    rules: ContactRules = RulePackContactRules()
    pack: RulePack = rules.pack_for(BANGKOK)  # type: ignore[attr-defined]

    assert pack is TH_INDIVIDUAL


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 20 * 24 * 60),  # minutes after 2025-06-01 00:00Z
            st.sampled_from(["D1", "D2"]),
            st.booleans(),  # whether the call reached the person
        ),
        max_size=40,
    ),
    st.sampled_from(CapAction),
)
def test_it_never_lets_calls_about_one_debt_break_the_reg_f_presumption(
    asked: list[tuple[int, str, bool]], action: CapAction
) -> None:
    # Reg F §1006.14(b)(2)(i): whether capped calls are blocked or deferred, the calls
    # made stay within 7 in any 7 consecutive days (booked later calls included), and
    # none is booked within 7 days after a conversation already on record.
    pack = dataclasses.replace(US_INDIVIDUAL, call_cap_action=action)
    rules = RulePackContactRules(overrides={"US:individual": pack})
    zone = ZoneInfo(NEW_YORK.time_zone)
    made: list[Contact] = []
    for minutes, debt, reached in sorted(asked):
        at = utc(2025, 6, 1) + timedelta(minutes=minutes)
        verdict = ask(
            NEW_YORK, at, channel=Channel.CALL, history=tuple(made), debt=debt, rules=rules
        )
        if verdict.allowed_at is None:
            continue
        day = verdict.allowed_at.astimezone(zone).date()
        for talked in made:
            if talked.debt == debt and talked.conversation:
                first = talked.at.astimezone(zone).date()
                assert not first <= day < first + timedelta(days=7)
        made.append(
            Contact(at=verdict.allowed_at, channel=Channel.CALL, debt=debt, conversation=reached)
        )

    for debt in ("D1", "D2"):
        days = [c.at.astimezone(zone).date() for c in made if c.debt == debt]
        for first in days:
            assert sum(first <= d < first + timedelta(days=7) for d in days) <= 7
