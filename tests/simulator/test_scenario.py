"""Scenario files: the issue's example loads, bad files are refused naming the fault's path.

Pure: no database.  Every bad-file case runs twice, once with the jsonschema-rs
fast path and once with plain `jsonschema`, and must read the same either way.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dunning.simulator import scenario as scenario_module
from dunning.simulator.scenario import (
    CardRole,
    ChargeOutcome,
    ReplacementCard,
    ScenarioError,
    dump_scenario,
    load_scenario,
    scenario_schema,
)

EXAMPLE = Path(__file__).parent.parent / "fixtures" / "simulator" / "example.json"


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return data


def four_customers() -> dict[str, Any]:
    """The example with four customers, cus_1..cus_4, invoices in_1..in_4, each with an
    address of their own (customer1@example.com ...)."""
    data = example()
    template = data["customers"][0]
    data["customers"] = []
    for i in range(1, 5):
        customer = copy.deepcopy(template)
        customer["id"] = f"cus_{i}"
        customer["invoices"][0]["id"] = f"in_{i}"
        customer["email"] = f"customer{i}@example.com"
        data["customers"].append(customer)
    return data


@pytest.fixture(params=["jsonschema-rs", "jsonschema"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "jsonschema":
        monkeypatch.setattr(scenario_module, "_fast_validator", lambda: None)
    elif scenario_module._fast_validator() is None:
        pytest.skip("jsonschema-rs is not installed")
    return str(request.param)


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = scenario_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_schema_accepts_the_issues_example_exactly_as_written() -> None:
    jsonschema.Draft202012Validator(scenario_schema()).validate(example())


def test_it_loads_the_issues_example(backend: str) -> None:
    scenario = load_scenario(EXAMPLE)
    assert scenario.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert scenario.end == datetime(2026, 4, 1, tzinfo=UTC)
    (customer,) = scenario.customers
    assert (customer.id, customer.locale, customer.time_zone, customer.country) == (
        "cus_1",
        "th",
        "Asia/Bangkok",
        "TH",
    )
    assert (customer.card.brand, customer.card.exp_month, customer.card.exp_year) == (
        "visa",
        5,
        2027,
    )
    (charge,) = customer.history
    assert charge.at == datetime(2025, 12, 25, 2, 12, tzinfo=UTC)
    assert charge.outcome is ChargeOutcome.SUCCEEDED
    (invoice,) = customer.invoices
    assert invoice.due_at == datetime(2026, 1, 19, 17, tzinfo=UTC)  # 00:00 in Bangkok
    assert (invoice.amount_due, invoice.currency) == (49900, "THB")
    (window,) = customer.declines
    assert window.starts_at == datetime(2026, 1, 19, 17, tzinfo=UTC)
    assert window.ends_at == datetime(2026, 1, 24, 17, tzinfo=UTC)
    assert window.card is CardRole.ORIGINAL
    assert window.advice_code is None
    assert customer.replacement_card == ReplacementCard(at=None, after_messages=2, delay_hours=24)


def test_it_reads_a_path_a_string_path_the_text_or_a_dict_alike() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    expected = load_scenario(EXAMPLE)
    assert load_scenario(str(EXAMPLE)) == expected
    assert load_scenario(text) == expected
    assert load_scenario(json.loads(text)) == expected


def test_dump_writes_the_example_back_as_it_was_written() -> None:
    assert dump_scenario(load_scenario(EXAMPLE)) == example()


def test_dump_and_load_round_trip() -> None:
    data = four_customers()
    data["description"] = "four of the same"
    data["customers"][1]["replacement_card"] = {
        "at": "2026-02-01T10:30:00+07:00",
        "after_messages": None,
        "delay_hours": None,
    }
    data["customers"][2]["replacement_card"] = None
    data["customers"][3]["history"].append(
        {
            "at": "2025-12-20T10:00:00+07:00",
            "amount": 49900,
            "currency": "THB",
            "outcome": "failed",
            "decline_code": "insufficient_funds",
        }
    )
    data["customers"][3]["declines"].append(
        {
            "from": "2026-02-01T00:00:00+07:00",
            "until": "2026-02-02T00:00:00+07:00",
            "decline_code": "do_not_honor",
            "advice_code": "do_not_try_again",
            "network_advice_code": "03",
            "card": "replacement",
        }
    )
    scenario = load_scenario(data)
    dumped = dump_scenario(scenario)
    assert dumped == data
    assert load_scenario(dumped) == scenario


def test_optional_parts_may_be_left_out() -> None:
    data = example()
    customer = data["customers"][0]
    del customer["history"], customer["declines"], customer["replacement_card"]
    (loaded,) = load_scenario(data).customers
    assert (loaded.history, loaded.declines, loaded.replacement_card) == ((), (), None)


Change = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Change:
    """A change that sets `customers.3.invoices.0.due_at`-style paths."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = data
        for part in parents:
            node = node[part]
        node[last] = value

    return change


def _delete(path: str) -> Change:
    def change(data: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = data
        for part in parents:
            node = node[part]
        del node[last]

    return change


BAD_FILES = [
    pytest.param(
        _set("customers.3.invoices.0.due_at", "2026-01-20T00:00:00"),
        "customers[3].invoices[0].due_at: '2026-01-20T00:00:00' must be a date and time "
        "with an offset",
        id="naive-due-at",
    ),
    pytest.param(
        _set("customers.3.invoices.0.due_at", "2026-02-30T00:00:00+07:00"),
        "customers[3].invoices[0].due_at: '2026-02-30T00:00:00+07:00' is not a real date",
        id="impossible-date",
    ),
    pytest.param(
        _set("customers.3.invoices.0.due_at", "2026-04-01T07:00:00+07:00"),
        "customers[3].invoices[0].due_at: must be within the scenario",
        id="due-at-end",
    ),
    pytest.param(
        _set("customers.0.invoices.0.due_at", "2025-12-31T23:59:59Z"),
        "customers[0].invoices[0].due_at: must be within the scenario",
        id="due-before-start",
    ),
    pytest.param(
        _set("customers.1.invoices.0.currency", "thb"),
        "customers[1].invoices[0].currency: 'thb' must be an ISO 4217 currency code",
        id="lower-case-currency",
    ),
    pytest.param(
        _set("customers.1.invoices.0.amount_due", -1),
        "customers[1].invoices[0].amount_due: -1 is less than the minimum of 1",
        id="negative-amount",
    ),
    pytest.param(
        _set("customers.1.invoices.0.amount_due", 499.5),
        "customers[1].invoices[0].amount_due: 499.5 is not of type 'integer'",
        id="fractional-amount",
    ),
    pytest.param(
        _set("customers.1.invoices.0.amount_due", 49900.0),
        "customers[1].invoices[0].amount_due: 49900.0 must be a whole number",
        id="float-amount",
    ),
    pytest.param(
        _set("customers.2.card.brand", "diners"),
        "customers[2].card.brand: 'diners' is not one of",
        id="unknown-brand",
    ),
    pytest.param(
        _set("customers.2.card.exp_month", 13),
        "customers[2].card.exp_month: 13 is greater than the maximum of 12",
        id="month-13",
    ),
    pytest.param(
        _set("customers.2.declines.0.card", "spare"),
        "customers[2].declines[0].card: 'spare' is not one of ['original', 'replacement']",
        id="unknown-card",
    ),
    pytest.param(
        _set("customers.2.invoices.0.collection_method", "direct_debit"),
        "customers[2].invoices[0].collection_method: 'direct_debit' is not one of",
        id="unknown-collection-method",
    ),
    pytest.param(
        _set("customers.2.declines.0.decline_code", ""),
        "customers[2].declines[0].decline_code: '' should be non-empty",
        id="empty-decline-code",
    ),
    pytest.param(
        _set("customers.2.declines.0.until", "2026-01-20T00:00:00+07:00"),
        "customers[2].declines[0].until: must be after from (2026-01-20T00:00:00+07:00)",
        id="empty-window",
    ),
    pytest.param(
        _set("customers.0.colour", "blue"),
        "customers[0]: Additional properties are not allowed ('colour' was unexpected)",
        id="unknown-field",
    ),
    pytest.param(
        _delete("customers.0.email"),
        "customers[0]: 'email' is a required property",
        id="missing-email",
    ),
    pytest.param(
        _set("customers.3.time_zone", "Asia/Bangkokk"),
        "customers[3].time_zone: 'Asia/Bangkokk' is not an IANA time zone",
        id="unknown-time-zone",
    ),
    pytest.param(
        _set("customers.3.id", "cus_1"),
        "customers[3].id: duplicate customer id 'cus_1' (first at customers[0].id)",
        id="duplicate-customer",
    ),
    pytest.param(
        _set("customers.3.invoices.0.id", "in_2"),
        "customers[3].invoices[0].id: duplicate invoice id 'in_2' "
        "(first at customers[1].invoices[0].id)",
        id="duplicate-invoice",
    ),
    pytest.param(
        # Copies of the issue's example all write "...": they would share one mailbox.
        _set("customers.2.email", "customer1@EXAMPLE.com"),
        "customers[2].email: duplicate email address 'customer1@example.com' "
        "(first at customers[0].email)",
        id="customers-sharing-an-email-address",
    ),
    pytest.param(
        _set("end", "2026-01-01T00:00:00Z"),
        "end: must be after start (2026-01-01T00:00:00Z)",
        id="end-at-start",
    ),
    pytest.param(
        _delete("start"),
        "scenario: 'start' is a required property",
        id="missing-start",
    ),
    pytest.param(
        _set("customers.1.history.0.at", "2026-01-02T00:00:00+07:00"),
        "customers[1].history[0].at: history must be before the scenario's start",
        id="history-after-start",
    ),
    pytest.param(
        _set("customers.1.history.0.outcome", "failed"),
        "customers[1].history[0]: 'decline_code' is a required property",
        id="failed-history-without-code",
    ),
    pytest.param(
        _set(
            "customers.1.replacement_card", {"at": None, "after_messages": 2, "delay_hours": None}
        ),
        "customers[1].replacement_card: after_messages and delay_hours are given together",
        id="half-a-message-trigger",
    ),
    pytest.param(
        _set("customers.1.replacement_card", {"at": None, "after_messages": 0, "delay_hours": 1}),
        "customers[1].replacement_card.after_messages: 0 is less than the minimum of 1",
        id="zeroth-message",
    ),
    pytest.param(
        _set("customers.1.country", "Thailand"),
        "customers[1].country: 'Thailand' must be an ISO 3166 alpha-2 country code",
        id="country-name",
    ),
]


@pytest.mark.parametrize(("change", "expected"), BAD_FILES)
def test_it_refuses_a_bad_file_naming_the_path(backend: str, change: Change, expected: str) -> None:
    data = four_customers()
    change(data)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(json.dumps(data))
    assert expected in str(caught.value)
    assert any(line.startswith(expected.split(":")[0] + ":") for line in caught.value.errors)


# Each of these passed the loader once and then stopped `dunning simulate` mid-run
# with a traceback; what the run did is noted.
CANNOT_BE_REPLAYED = [
    pytest.param(
        _set("customers.0.invoices.0.amount_due", 0),
        "customers[0].invoices[0].amount_due: 0 is less than the minimum of 1",
        id="nothing-due",  # the gateway: amount must be a positive integer of minor units
    ),
    pytest.param(
        _set("customers.1.history.0.amount", 0),
        "customers[1].history[0].amount: 0 is less than the minimum of 1",
        id="a-past-charge-of-nothing",
    ),
    pytest.param(
        _set("customers.0.invoices.0.amount_due", 10**13),
        "customers[0].invoices[0].amount_due: 10000000000000 is greater than the maximum",
        id="more-than-the-ledger-holds",
    ),
    pytest.param(
        _set("customers.0.invoices.0.currency", "BTH"),  # a typo for THB
        "customers[0].invoices[0].currency: 'BTH' is not an ISO 4217 currency",
        id="not-an-iso-4217-currency",  # rendering: RenderError: unknown currency
    ),
    pytest.param(
        _set("customers.2.history.0.currency", "XAU"),  # gold: no minor unit
        "customers[2].history[0].currency: 'XAU' is not an ISO 4217 currency an invoice",
        id="a-currency-no-invoice-is-in",
    ),
    pytest.param(
        _set("customers.0.replacement_card.delay_hours", 100_000_000),
        "customers[0].replacement_card.delay_hours: 100000000 is greater than the maximum of",
        id="a-delay-of-eleven-thousand-years",  # world: OverflowError
    ),
    pytest.param(
        _set("end", "9999-12-31T23:30:00Z"),
        "end: '9999-12-31T23:30:00Z' must be from 1970 and before 2200",
        id="end-at-the-edge-of-time",  # runner (end + TICK): OverflowError
    ),
    pytest.param(
        _set("customers.1.history.0.at", "0001-01-01T00:00:00+01:00"),
        "customers[1].history[0].at: '0001-01-01T00:00:00+01:00' must be from 1970",
        id="before-the-first-year",  # the loader itself: OverflowError
    ),
    pytest.param(
        _set("customers.0.email", " somchai@example.com"),
        "customers[0].email: ' somchai@example.com' must not contain spaces",
        id="email-with-a-leading-space",  # runner: KeyError in the mail server
    ),
    pytest.param(
        _set("customers.0.email", "somchai@example.com, somsri@example.com"),
        "customers[0].email: 'somchai@example.com, somsri@example.com' must not contain spaces",
        id="two-addresses",
    ),
    pytest.param(
        _set("customers.0.email", ",somchai@example.com"),
        "customers[0].email: ',somchai@example.com' is not one email address",
        id="email-with-a-comma",
    ),
    pytest.param(
        _set("customers.0.email", "Somchai <somchai@example.com>"),
        "customers[0].email: 'Somchai <somchai@example.com>' must not contain spaces",
        id="a-name-and-an-address",
    ),
    pytest.param(
        _set("customers.0.email", "<somchai@example.com>"),
        "customers[0].email: '<somchai@example.com>' is not one email address",
        id="an-address-in-angle-brackets",
    ),
    pytest.param(
        _set("customers.0.email", "สมชาย@example.co.th"),
        "customers[0].email: 'สมชาย@example.co.th' cannot be sent to: "
        "the address's part before @ is not ASCII",
        id="a-thai-mailbox-name",  # channels/email: UnicodeEncodeError
    ),
]


@pytest.mark.parametrize(("change", "expected"), CANNOT_BE_REPLAYED)
def test_a_file_the_run_cannot_replay_is_refused_naming_the_field(
    backend: str, change: Change, expected: str
) -> None:
    data = four_customers()
    change(data)

    with pytest.raises(ScenarioError) as caught:
        load_scenario(json.dumps(data))

    assert str(caught.value).startswith(expected)


@pytest.mark.parametrize(
    "email", ["somchai@bücher.de", "somchai@BÜCHER.de", "...", "o'brien+billing@example.ie"]
)
def test_an_address_the_email_channel_can_send_to_is_accepted(email: str) -> None:
    data = example()
    data["customers"][0]["email"] = email

    assert load_scenario(data).customers[0].email == email


def test_an_internationalised_domain_written_twice_is_one_mailbox() -> None:
    data = four_customers()
    data["customers"][0]["email"] = "somchai@bücher.de"
    data["customers"][1]["email"] = "somchai@xn--bcher-kva.de"

    with pytest.raises(ScenarioError, match=r"^customers\[1\]\.email: duplicate email address"):
        load_scenario(data)


def test_customers_copied_from_the_issues_example_are_refused_for_sharing_a_mailbox() -> None:
    # The example writes "email": "...": two customers copied from it would read
    # each other's reminders, and the referee would count both as one person.
    data = example()
    second = copy.deepcopy(data["customers"][0])
    second["id"], second["invoices"][0]["id"] = "cus_2", "in_2"
    data["customers"].append(second)

    with pytest.raises(ScenarioError) as caught:
        load_scenario(data)

    assert str(caught.value) == (
        "customers[1].email: duplicate email address '...' (first at customers[0].email)"
    )


def test_it_lists_every_fault_in_document_order(backend: str) -> None:
    data = four_customers()
    data["customers"][3]["card"]["brand"] = "diners"
    data["customers"][1]["invoices"][0]["currency"] = "baht"
    data["end"] = "soon"
    with pytest.raises(ScenarioError) as caught:
        load_scenario(data)
    assert [line.split(":")[0] for line in caught.value.errors] == [
        "customers[1].invoices[0].currency",
        "customers[3].card.brand",
        "end",
    ]
    assert str(caught.value).startswith("3 problems in the scenario:")


def test_the_fast_path_and_plain_jsonschema_say_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    if scenario_module._fast_validator() is None:
        pytest.skip("jsonschema-rs is not installed")
    data = four_customers()
    data["customers"][3]["card"]["brand"] = "diners"
    data["customers"][2]["invoices"][0]["due_at"] = "tomorrow"
    data["customers"][0]["extra"] = 1
    with pytest.raises(ScenarioError) as fast:
        load_scenario(data)
    monkeypatch.setattr(scenario_module, "_fast_validator", lambda: None)
    with pytest.raises(ScenarioError) as plain:
        load_scenario(data)
    assert sorted(fast.value.errors) == sorted(plain.value.errors)


def test_it_names_the_line_and_column_of_a_json_syntax_error() -> None:
    text = '{"start": "2026-01-01T00:00:00Z",\n "end": "2026-04-01T00:00:00Z"\n "customers": []}'
    with pytest.raises(ScenarioError, match=r"^line 3, column 2: not valid JSON: Expecting ','"):
        load_scenario(text)


def test_it_names_the_line_and_column_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "start": "2026-01-01T00:00:00Z",\n  "end": ,\n}', encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"line 3, column 10: not valid JSON"):
        load_scenario(path)


def test_a_file_that_is_not_utf8_is_named_by_line_and_column(tmp_path: Path) -> None:
    text = json.dumps(example(), ensure_ascii=False, indent=1).replace('"..."', '"Müller"', 1)
    path = tmp_path / "latin1.json"
    path.write_bytes(text.encode("latin-1"))
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "Müller" in row)
    column = text.splitlines()[line - 1].index("ü") + 1

    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)

    assert str(caught.value) == f"line {line}, column {column}: not UTF-8 (byte 0xfc)"


def test_it_says_when_the_file_cannot_be_read(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    with pytest.raises(ScenarioError, match=r"cannot read .*nowhere\.json"):
        load_scenario(missing)


def test_it_refuses_a_top_level_that_is_not_an_object() -> None:
    with pytest.raises(
        ScenarioError, match=r"^scenario: an array of 0 items is not of type 'object'"
    ):
        load_scenario("[]")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            json.dumps([example()] * 50),
            "scenario: an array of 50 items is not of type 'object'",
            id="the-scenario-wrapped-in-a-list",
        ),
        pytest.param(
            json.dumps({**example(), "customers": {"cus_1": example()["customers"][0]}}),
            "customers: an object with 1 key is not of type 'array'",
            id="customers-keyed-by-id",
        ),
        pytest.param(
            json.dumps(
                {**example(), "customers": [example()["customers"][0] | {"name": "x" * 100_000}]}
            ),
            "customers[0].name: 100,000 characters, at most 255",
            id="a-long-name",
        ),
        pytest.param(
            json.dumps({**example(), "customers": [example()["customers"][0] | {"y" * 5000: 1}]}),
            "customers[0]: Additional properties are not allowed ('yyyyyyyyyyyyyyyyyyyyyy",
            id="a-long-unknown-field",
        ),
        pytest.param(
            json.dumps(
                {**example(), "customers": [example()["customers"][0] | {"locale": "t" * 9000}]}
            ),
            "customers[0].locale: 'tttttttttttttttttttttttttt",
            id="a-long-value-that-does-not-match",
        ),
        pytest.param(
            json.dumps(
                {**example(), "customers": [example()["customers"][0] | {"time_zone": "Z" * 9000}]}
            ),
            "customers[0].time_zone: 'ZZZZZZZZZZZZZZZZZZZZZZZZZZ",
            id="a-long-time-zone",
        ),
    ],
)
def test_an_error_does_not_echo_the_whole_value(backend: str, text: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(text)

    assert str(caught.value).startswith(expected)
    assert len(str(caught.value)) <= 200


def test_a_scenario_error_caps_a_long_list(backend: str) -> None:
    data = example()
    customer = data["customers"][0]
    data["customers"] = []
    for i in range(30):
        bad = copy.deepcopy(customer)
        bad["id"], bad["invoices"][0]["id"] = f"cus_{i}", f"in_{i}"
        bad["card"]["brand"] = "diners"
        data["customers"].append(bad)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(data)
    assert len(caught.value.errors) == 30
    assert str(caught.value).startswith("30 problems in the scenario:")
    assert str(caught.value).endswith("... and 10 more")
