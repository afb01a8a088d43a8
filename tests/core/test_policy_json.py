from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dunning.core.contacts import Channel
from dunning.core.policy import (
    CHARGE_AUTOMATICALLY_DEFAULT,
    DEFAULT_POLICIES,
    MAX_RETRY_ATTEMPTS,
    RETRY_WINDOWS,
    SEND_INVOICE_DEFAULT,
    Action,
    Anchor,
    Criteria,
    Policy,
    RetryBudget,
    Step,
    Tone,
    Variant,
)
from dunning.core.policy_json import (
    MAX_DURATION,
    PolicyFormatError,
    check,
    format_duration,
    from_dict,
    parse_duration,
    to_dict,
)


def problems_of(data: Any) -> dict[str, str]:
    with pytest.raises(PolicyFormatError) as raised:
        from_dict(data)
    return dict(raised.value.problems)


def send_invoice() -> dict[str, Any]:
    return to_dict(SEND_INVOICE_DEFAULT)


# ---------------------------------------------------------------- round trip


@pytest.mark.parametrize("policy", DEFAULT_POLICIES, ids=lambda p: p.id)
def test_the_default_policies_survive_a_trip_through_json(policy: Policy) -> None:
    assert from_dict(json.loads(json.dumps(to_dict(policy)))) == policy


@pytest.mark.parametrize("policy", DEFAULT_POLICIES, ids=lambda p: p.id)
def test_the_default_policies_pass_the_check(policy: Policy) -> None:
    assert check(policy) == []


_LIMIT = int(MAX_DURATION.total_seconds())
seconds = st.integers(-_LIMIT, _LIMIT).map(lambda s: timedelta(seconds=s))
keys = st.from_regex(r"\A[a-z0-9][a-z0-9_.-]{0,20}\Z")
steps = st.builds(
    Step,
    key=keys,
    offset=seconds,
    tone=st.sampled_from(Tone),
    channels=st.lists(st.sampled_from(Channel), unique=True, max_size=3).map(tuple),
    templates=st.dictionaries(st.sampled_from(Channel), keys, max_size=3),
    anchor=st.sampled_from(Anchor),
    actions=st.lists(st.sampled_from(Action), max_size=2).map(tuple),
    deadline=st.none() | seconds,
    variants=st.lists(st.builds(Variant, key=keys, weight=st.integers(0, 100)), max_size=3).map(
        tuple
    ),
)
codes = st.sampled_from(["THB", "USD", "JPY"])
policies = st.builds(
    Policy,
    id=keys,
    version=st.integers(1, 1000),
    name=st.text(min_size=1, max_size=40).filter(str.strip).filter(lambda s: "\x00" not in s),
    applies_to=st.builds(
        Criteria,
        collection_method=st.sampled_from([None, "send_invoice", "charge_automatically"]),
        countries=st.frozensets(st.sampled_from(["TH", "US", "JP"])),
        currencies=st.frozensets(codes),
        min_amount=st.dictionaries(codes, st.integers(0, 10**9)),
        max_amount=st.dictionaries(codes, st.integers(0, 10**9)),
        is_business=st.sampled_from([None, True, False]),
    ),
    steps=st.lists(steps, max_size=5).map(tuple),
    retry=st.builds(
        RetryBudget,
        max_attempts=st.integers(0, MAX_RETRY_ATTEMPTS),
        within=st.sampled_from(RETRY_WINDOWS),
    )
    | st.just(RetryBudget(max_attempts=0, within=timedelta(0))),
)


@given(policies)
def test_any_policy_survives_a_trip_through_json(policy: Policy) -> None:
    # Sound or not: the format carries what validate() then judges.
    assert from_dict(json.loads(json.dumps(to_dict(policy)))) == policy


@given(seconds)
def test_durations_survive_a_trip_through_their_text(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("P1D", timedelta(days=1)),
        ("-P3D", timedelta(days=-3)),
        ("P-3D", timedelta(days=-3)),
        ("PT12H", timedelta(hours=12)),
        ("P1DT12H30M5S", timedelta(days=1, hours=12, minutes=30, seconds=5)),
        ("PT0S", timedelta(0)),
    ],
)
def test_it_reads_iso_8601_durations(text: str, value: timedelta) -> None:
    assert parse_duration(text) == value


@pytest.mark.parametrize("text", ["P", "PT", "P1DT", "P1Y", "P2M", "3 days", "-P-3D", "P1.5D"])
def test_it_refuses_durations_without_a_fixed_length_or_form(text: str) -> None:
    with pytest.raises(ValueError, match=r"ISO 8601|minus"):
        parse_duration(text)


def test_it_writes_the_shortest_duration() -> None:
    assert format_duration(timedelta(days=-3)) == "-P3D"
    assert format_duration(timedelta(days=1, hours=12)) == "P1DT12H"
    assert format_duration(timedelta(0)) == "PT0S"


# ---------------------------------------------------------------- bad input


def test_it_names_every_bad_field_by_its_path() -> None:
    data = send_invoice()
    data["steps"][1]["offset"] = "P1Y"
    data["steps"][3]["tone"] = "angry"
    data["steps"][2]["channels"] = ["email", "pigeon"]
    data["steps"][2]["templates"]["fax"] = "send_invoice.overdue_2"
    data["applies_to"]["currencies"] = ["thb"]
    data["retry"]["max_attempts"] = "3"
    data["colour"] = "red"

    problems = problems_of(data)

    assert "ISO 8601" in problems.pop("steps[1].offset")
    assert problems == {
        "colour": "not a known field",
        "steps[3].tone": "must be one of friendly, firm, final",
        "steps[2].channels[1]": "must be one of email, sms, line, letter, call",
        "steps[2].templates.fax": "not a channel: the key must be one of email, sms, line, "
        "letter, call",
        "applies_to.currencies[0]": "must be an upper-case ISO 4217 currency code",
        "retry.max_attempts": "must be an integer",
    }


def test_it_says_which_required_fields_are_missing() -> None:
    assert problems_of({"steps": [{"key": "a"}]}) == {
        "key": "required",
        "name": "required",
        "steps[0].offset": "required",
        "steps[0].tone": "required",
    }


@pytest.mark.parametrize("data", [[], "policy", None, 3])
def test_it_refuses_what_is_not_an_object(data: Any) -> None:
    assert problems_of(data) == {"": "must be an object"}


def test_a_policy_key_is_url_safe() -> None:
    data = send_invoice()
    data["key"] = "Send Invoice/2"

    assert "key" in problems_of(data)


def test_it_refuses_text_a_database_cannot_store() -> None:
    data = send_invoice()
    data["name"] = "bad\x00name"

    assert problems_of(data) == {"name": "must not contain NUL characters"}


# ---------------------------------------------------------------- soundness


def test_check_names_the_step_by_its_index() -> None:
    data = send_invoice()
    data["steps"][2]["offset"] = "P0D"  # before overdue_1 at P1D

    assert check(from_dict(data)) == [("steps[2].offset", "comes before the offset of 'overdue_1'")]


def test_check_finds_a_step_after_the_final_action() -> None:
    data = send_invoice()
    data["steps"].append({**data["steps"][-2], "key": "late", "offset": "P30D"})

    problems = dict(check(from_dict(data)))

    assert problems["steps[5].key"] == "comes after the final action of 'uncollectible'"


def test_check_places_a_duplicated_step_key_on_the_second_step() -> None:
    data = send_invoice()
    data["steps"][1]["key"] = "courtesy"

    assert check(from_dict(data)) == [("steps[1].key", "another step has the same key")]


def test_check_refuses_an_unknown_or_empty_template() -> None:
    data = send_invoice()
    data["steps"][2]["templates"]["email"] = "send_invoice.overdue_9"
    data["steps"][3]["templates"]["email"] = " "

    problems = dict(check(from_dict(data)))

    assert problems["steps[2].templates.email"].startswith("no such template")
    assert problems["steps[3].templates"] == "no template for email"


def test_check_needs_at_least_one_step() -> None:
    assert check(from_dict({**send_invoice(), "steps": []})) == [
        ("steps", "a policy needs at least one step")
    ]


# ---------------------------------------------------------------- retry budget


def test_automatic_charges_retry_eight_times_within_two_weeks_by_default() -> None:
    # Stripe's recommended default (reference/rules.md 1.1).
    assert CHARGE_AUTOMATICALLY_DEFAULT.retry == RetryBudget(8, timedelta(weeks=2))
    assert SEND_INVOICE_DEFAULT.retry.max_attempts == 0
    assert to_dict(CHARGE_AUTOMATICALLY_DEFAULT)["retry"] == {"max_attempts": 8, "within": "P14D"}


def test_a_policy_without_a_retry_field_gets_the_default_budget() -> None:
    data = send_invoice()
    del data["retry"]

    assert from_dict(data).retry == RetryBudget(max_attempts=8, within=timedelta(days=14))


@pytest.mark.parametrize("within", ["P7D", "P14D", "P21D", "P30D", "P60D"])
def test_it_accepts_the_five_retry_windows(within: str) -> None:
    data = {**send_invoice(), "retry": {"max_attempts": 15, "within": within}}

    assert from_dict(data).retry.within == parse_duration(within)


@pytest.mark.parametrize("within", ["P1D", "P13D", "P31D", "P90D", "PT336H1S"])
def test_it_names_retry_within_for_any_other_window(within: str) -> None:
    data = {**send_invoice(), "retry": {"max_attempts": 8, "within": within}}

    assert problems_of(data).keys() == {"retry.within"}


def test_a_zero_window_only_goes_with_no_retries() -> None:
    none = {**send_invoice(), "retry": {"max_attempts": 0, "within": "PT0S"}}
    some = {**send_invoice(), "retry": {"max_attempts": 1, "within": "PT0S"}}

    assert from_dict(none).retry == RetryBudget(max_attempts=0, within=timedelta(0))
    assert "zero (PT0S) only with no retries" in problems_of(some)["retry.within"]


@pytest.mark.parametrize("attempts", [-1, 16, 100])
def test_it_caps_retry_attempts_at_the_visa_limit(attempts: int) -> None:
    data = {**send_invoice(), "retry": {"max_attempts": attempts, "within": "P14D"}}

    assert problems_of(data) == {"retry.max_attempts": "must be between 0 and 15"}


def test_an_unsound_budget_cannot_be_built() -> None:
    with pytest.raises(ValueError, match=r"retry\.within"):
        RetryBudget(max_attempts=3, within=timedelta(days=10))
