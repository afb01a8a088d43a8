"""`simulate` on a scenario small enough to follow by hand, with both strategies.

January 2026, four customers, every moment fixed:

- cus_payday (Bangkok, Visa): paid on the 25th of November and December; the
  invoice of 20 Jan 09:00 fails with insufficient_funds until the salary
  arrives.  25 Jan 2026 is a Sunday, so it arrives on Friday 23 Jan, at 06:00.
- cus_lost (Bangkok, Mastercard): the card is reported lost all month.
- cus_expired (New York, Visa 12/2025): the card lapsed at midnight on 1 Jan
  local time; a new card comes 24 hours after the first message.
- cus_ok (New York, Amex): two invoices that go through at the first charge.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dunning.core.cases import CaseState
from dunning.core.policy import RetryBudget
from dunning.core.retry_timing import Strategy
from dunning.db import bulk_insert
from dunning.engine.models import Message, MessageStatus
from dunning.gateways.base import ChargeRequest
from dunning.ledger.models import AttemptOutcome, Invoice, InvoiceStatus, PaymentAttempt
from dunning.ledger.services import upsert_customer
from dunning.simulator.generate import generate
from dunning.simulator.runner import SimulationResult, _Issuers, _next_moment, simulate
from dunning.simulator.scenario import load_scenario
from tests.conftest import unsaved_case

BANGKOK = ZoneInfo("Asia/Bangkok")
NEW_YORK = ZoneInfo("America/New_York")


def customer(
    id: str, *, time_zone: str, country: str, locale: str, card: dict[str, Any], **rest: Any
) -> dict[str, Any]:
    return {
        "id": id,
        "name": id.removeprefix("cus_").title(),
        "email": f"{id}@example.com",
        "locale": locale,
        "time_zone": time_zone,
        "country": country,
        "card": card,
        "history": [],
        "declines": [],
        "replacement_card": None,
    } | rest


def invoice(id: str, amount: int, currency: str, due_at: str) -> dict[str, Any]:
    return {
        "id": id,
        "number": f"INV-{id.removeprefix('in_')}",
        "amount_due": amount,
        "currency": currency,
        "due_at": due_at,
        "collection_method": "charge_automatically",
    }


def paid(at: str) -> dict[str, Any]:
    return {"at": at, "amount": 49900, "currency": "THB", "outcome": "succeeded"}


SCENARIO: dict[str, Any] = {
    "start": "2026-01-01T00:00:00Z",
    "end": "2026-02-01T00:00:00Z",
    "customers": [
        customer(
            "cus_payday",
            time_zone="Asia/Bangkok",
            country="TH",
            locale="th",
            card={"brand": "visa", "exp_month": 12, "exp_year": 2030},
            history=[paid("2025-11-25T09:00:00+07:00"), paid("2025-12-25T09:00:00+07:00")],
            invoices=[invoice("in_payday", 49900, "THB", "2026-01-20T09:00:00+07:00")],
            declines=[
                {
                    "from": "2026-01-20T00:00:00+07:00",
                    "until": "2026-01-23T06:00:00+07:00",
                    "decline_code": "insufficient_funds",
                    "advice_code": None,
                    "card": "original",
                }
            ],
        ),
        customer(
            "cus_lost",
            time_zone="Asia/Bangkok",
            country="TH",
            locale="th",
            card={"brand": "mastercard", "exp_month": 12, "exp_year": 2030},
            invoices=[invoice("in_lost", 29900, "THB", "2026-01-10T10:00:00+07:00")],
            # No advice code: the decline code alone must stop the retries.
            declines=[
                {
                    "from": "2026-01-01T00:00:00+07:00",
                    "until": "2026-02-01T00:00:00+07:00",
                    "decline_code": "lost_card",
                    "advice_code": None,
                    "card": "original",
                }
            ],
        ),
        customer(
            "cus_expired",
            time_zone="America/New_York",
            country="US",
            locale="en",
            card={"brand": "visa", "exp_month": 12, "exp_year": 2025},
            invoices=[invoice("in_expired", 1500, "USD", "2026-01-05T10:00:00-05:00")],
            replacement_card={"at": None, "after_messages": 1, "delay_hours": 24},
        ),
        customer(
            "cus_ok",
            time_zone="America/New_York",
            country="US",
            locale="en",
            card={"brand": "amex", "exp_month": 12, "exp_year": 2030},
            invoices=[
                invoice("in_ok_1", 2500, "USD", "2026-01-03T10:00:00-05:00"),
                invoice("in_ok_2", 2500, "USD", "2026-01-17T10:00:00-05:00"),
            ],
        ),
    ],
}


def run(strategy: Strategy, budget: RetryBudget | None = None) -> SimulationResult:
    return simulate(load_scenario(SCENARIO), strategy, retry_budget=budget)


def charges(invoice: str) -> list[tuple[datetime, str, str]]:
    """(when, outcome or decline code, card) of every charge of the invoice, in order."""
    return [
        (a.attempted_at, a.decline_code or a.outcome, a.payment_method.external_id)
        for a in PaymentAttempt.objects.filter(invoice__external_id=invoice)
        .select_related("payment_method")
        .order_by("attempted_at", "id")
    ]


def bkk(day: int, hour: int) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=BANGKOK).astimezone(UTC)


def nyc(day: int, hour: int) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=NEW_YORK).astimezone(UTC)


def test_smart_retries_once_on_payday_morning_and_the_invoice_is_paid(db: None) -> None:
    run(Strategy.SMART)

    # The paydays learned from the history are the 25th, a Sunday this month, so
    # the salary comes the Friday before; the days before it are not worth a
    # try, and 09:00 is the earliest of the best daytime hours.
    assert charges("in_payday") == [
        (bkk(20, 9), "insufficient_funds", "pm_cus_payday_original"),
        (bkk(23, 9), AttemptOutcome.SUCCEEDED, "pm_cus_payday_original"),
    ]
    invoice = Invoice.objects.get(external_id="in_payday")
    assert (invoice.status, invoice.paid_at, invoice.amount_paid) == (
        InvoiceStatus.PAID,
        bkk(23, 9),
        49900,
    )


def test_fixed_spends_two_retries_at_the_hour_of_the_first_charge(db: None) -> None:
    run(Strategy.FIXED)

    # 8 tries in 2 weeks: one every 42 hours, on that day at 09:00, the charge's hour.
    assert charges("in_payday") == [
        (bkk(20, 9), "insufficient_funds", "pm_cus_payday_original"),
        (bkk(22, 9), "insufficient_funds", "pm_cus_payday_original"),
        (bkk(23, 9), AttemptOutcome.SUCCEEDED, "pm_cus_payday_original"),
    ]
    assert Invoice.objects.get(external_id="in_payday").status == InvoiceStatus.PAID


def test_a_smaller_budget_spreads_fewer_tries_over_the_same_window(db: None) -> None:
    result = run(Strategy.FIXED, RetryBudget(max_attempts=4, within=timedelta(weeks=2)))

    # 4 tries in 2 weeks: one every 84 hours, on that day at 09:00: none on the 22nd.
    assert charges("in_payday") == [
        (bkk(20, 9), "insufficient_funds", "pm_cus_payday_original"),
        (bkk(23, 9), AttemptOutcome.SUCCEEDED, "pm_cus_payday_original"),
    ]
    assert result.retry_budget == "4 tries within P14D"


@pytest.mark.parametrize("strategy", list(Strategy))
def test_a_lost_card_is_never_charged_again_after_its_first_decline(
    db: None, strategy: Strategy
) -> None:
    result = run(strategy)

    assert charges("in_lost") == [(bkk(10, 10), "lost_card", "pm_cus_lost_original")]
    assert Invoice.objects.get(external_id="in_lost").status == InvoiceStatus.OPEN
    assert result.network_rule_violations == 0


@pytest.mark.parametrize("strategy", list(Strategy))
def test_a_new_card_brought_a_day_after_the_first_message_is_charged_at_once(
    db: None, strategy: Strategy
) -> None:
    run(strategy)

    # The card lapsed on 1 Jan; the failure notice goes out with the decline at
    # 10:00, the new card arrives 24 hours later, and that hour's pass plans
    # the retry and charges it.
    assert charges("in_expired") == [
        (nyc(5, 10), "expired_card", "pm_cus_expired_original"),
        (nyc(6, 10), AttemptOutcome.SUCCEEDED, "pm_cus_expired_replacement"),
    ]
    invoice = Invoice.objects.get(external_id="in_expired")
    assert (invoice.status, invoice.paid_at) == (InvoiceStatus.PAID, nyc(6, 10))
    sent = Message.objects.filter(
        customer__external_id="cus_expired", status=MessageStatus.SENT
    ).order_by("sent_at")
    assert [m.sent_at for m in sent if m.sent_at and m.sent_at < invoice.paid_at] == [nyc(5, 10)]


@pytest.mark.parametrize(("strategy", "attempts"), [(Strategy.SMART, 2), (Strategy.FIXED, 3)])
def test_the_summary_counts_every_invoice_charge_and_message(
    db: None, strategy: Strategy, attempts: int
) -> None:
    result = run(strategy).as_json()

    assert json.loads(json.dumps(result)) == result
    assert result == {
        "strategy": str(strategy),
        "retry_budget": "the policies' own",
        "customers": 4,
        "invoices": 5,
        # in_payday, in_lost and in_expired; cus_ok's two go through.
        "failed_invoices": 3,
        "recovered_invoices": 2,
        "amount_due": {"THB": 49900 + 29900, "USD": 1500},
        "recovered": {"THB": 49900, "USD": 1500},
        # The lost card's invoice: never retried, and no new card comes.
        "recoverable": {"THB": 49900, "USD": 1500},
        # Smart: payday and the new card; fixed: two for payday and the new card.
        "attempts": attempts,
        "first_charges": 5,
        # payday: failed, thanks (paid by the retry at 09:00 on the 23rd, the
        # pass that would have sent reminder_1); lost: failed, reminder_1,
        # reminder_2, final; expired: failed, thanks.
        "messages": 8,
        # 72 hours for payday (20th to 23rd), 24 for the new card.
        "median_hours_to_recovery": 48.0,
        "network_rule_violations": 0,
        "contact_rule_violations": 0,
        "violations": [],
    }


@pytest.mark.parametrize("strategy", [Strategy.SMART, Strategy.FIXED])
def test_no_strategy_recovers_more_than_the_ceiling(db: None, strategy: Strategy) -> None:
    scenario = load_scenario(generate(60, 5, start=datetime(2026, 1, 1, tzinfo=UTC), days=45))
    result = simulate(scenario, strategy)

    assert result.recovered  # the scenario does recover money, so the comparison says something
    for currency, amount in result.recovered.items():
        assert amount <= result.recoverable[currency] <= result.amount_due[currency]
    # Some money is beyond any retry: hard declines whose customer brings no card in time.
    assert result.recoverable != result.amount_due


def test_a_budget_of_no_retries_has_nothing_recoverable(db: None) -> None:
    result = run(Strategy.SMART, RetryBudget(max_attempts=0, within=timedelta(days=14)))
    assert result.recoverable == {"THB": 0, "USD": 0}
    assert result.attempts == 0


def test_the_clock_stops_for_a_charge_in_doubt_on_a_case_no_longer_active(db: None) -> None:
    """Its question is the only thing due: the clock goes to its hour, not past it."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    customer = upsert_customer(external_id="c1", name="Ann", now=start, source="test")[0]
    asked_at = start + timedelta(hours=5, minutes=30)
    bulk_insert(
        [
            unsaved_case(
                customer,
                at=start,
                state=CaseState.EXHAUSTED,
                collection_method="charge_automatically",
                charge_in_doubt_since=start,
                next_retry_at=asked_at,
            )
        ]
    )
    end = start + timedelta(days=30)
    assert _next_moment(start, end, [], 0) == start + timedelta(hours=6)


def test_a_customer_at_an_internationalised_domain_gets_their_reminders(db: None) -> None:
    # The email channel writes bücher.de as xn--bcher-kva.de; the mail server finds
    # the customer by it (it used to stop the run with UnicodeEncodeError).
    data = copy.deepcopy(SCENARIO)
    data["customers"][1]["email"] = "lost@bücher.de"

    result = simulate(load_scenario(data), Strategy.SMART)

    sent = Message.objects.filter(customer__external_id="cus_lost", status=MessageStatus.SENT)
    assert sent.exists()
    assert set(sent.values_list("to", flat=True)) == {"lost@bücher.de"}
    assert result.contact_rule_violations == 0


def test_the_network_referee_matches_a_transaction_on_card_and_amount() -> None:
    """rules.md 2.1: two invoices of one amount on one card are one transaction to Visa,
    so the referee is told each charge's amount, not only its invoice."""
    scenario = load_scenario(
        {
            "start": "2026-01-01T00:00:00Z",
            "end": "2026-02-01T00:00:00Z",
            "customers": [
                customer(
                    "cus_broke",
                    time_zone="Asia/Bangkok",
                    country="TH",
                    locale="th",
                    card={"brand": "visa", "exp_month": 5, "exp_year": 2027},
                    invoices=[
                        invoice("in_a", 49900, "THB", "2026-01-02T09:00:00+07:00"),
                        invoice("in_b", 49900, "THB", "2026-01-03T09:00:00+07:00"),
                    ],
                    declines=[
                        {
                            "from": "2026-01-01T00:00:00Z",
                            "until": "2026-02-01T00:00:00Z",
                            "decline_code": "insufficient_funds",
                            "card": "original",
                        }
                    ],
                )
            ],
        }
    )
    start = datetime(2026, 1, 5, tzinfo=UTC)
    issuers = _Issuers({c.id: c for c in scenario.customers}, clock=lambda: start)
    for hour in range(17):  # a first decline and 16 reattempts, alternating invoices
        issuers(
            ChargeRequest(
                amount=49900,
                currency="THB",
                customer_external_id="cus_broke",
                payment_method_external_id="pm_cus_broke_original",
                invoice_external_id="in_a" if hour % 2 else "in_b",
                idempotency_key=f"k{hour}",
            ),
            start + timedelta(hours=hour),
        )
    assert [v.rule for v in issuers.network.report().violations] == ["visa_reattempts_30d"]
