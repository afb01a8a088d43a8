"""The billing system's first charge of an invoice, as docs/simulator.md says: at its
`due_at` ("What runs"), on the card in use at that moment ("Outcome rules" 3).

One Bangkok customer, one invoice; each test sets the decline windows and the
replacement card around the moment of the first charge.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dunning.core.retry_timing import Strategy
from dunning.ledger.models import Event, PaymentAttempt
from dunning.simulator.runner import simulate
from dunning.simulator.scenario import load_scenario
from dunning.simulator.world import card_in_use, charge_outcome
from tests.simulator.test_runner import customer, invoice

ONE_HOUR = timedelta(hours=1)
LOST_ALL_MONTH = {
    "from": "2026-01-01T00:00:00+07:00",
    "until": "2026-01-15T00:00:00+07:00",
    "decline_code": "lost_card",
    "advice_code": "do_not_try_again",
    "card": "original",
}


def one_customer(**rest: Any) -> dict[str, Any]:
    return {
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-01-15T00:00:00Z",
        "customers": [
            customer(
                "cus_1",
                time_zone="Asia/Bangkok",
                country="TH",
                locale="th",
                card={"brand": "visa", "exp_month": 12, "exp_year": 2030},
                invoices=[invoice("in_1", 49900, "THB", "2026-01-05T09:15:00+07:00")],
            )
            | rest
        ],
    }


def first_charge(invoice_id: str) -> tuple[datetime, str, str]:
    """(when, outcome or decline code, card) of the invoice's first charge."""
    attempt = (
        PaymentAttempt.objects.filter(invoice__external_id=invoice_id)
        .select_related("payment_method")
        .order_by("attempted_at", "id")
        .first()
    )
    assert attempt is not None
    return (
        attempt.attempted_at,
        attempt.decline_code or attempt.outcome,
        attempt.payment_method.external_id,
    )


def test_the_first_charge_is_made_at_due_at_not_at_the_next_whole_hour(db: None) -> None:
    # The money is missing from 09:00 to 09:30 Bangkok time and the invoice falls due
    # at 09:15 (the generator writes due times at :15, :30 and :45 too): the charge
    # fails at 09:15, though it would succeed at the next pass, 10:00.
    data = one_customer(
        declines=[
            {
                "from": "2026-01-05T09:00:00+07:00",
                "until": "2026-01-05T09:30:00+07:00",
                "decline_code": "insufficient_funds",
                "card": "original",
            }
        ]
    )
    scenario = load_scenario(data)
    (sim_customer,) = scenario.customers
    due_at = sim_customer.invoices[0].due_at
    assert charge_outcome(sim_customer, due_at, card_in_use(sim_customer, due_at, [])).failed

    result = simulate(scenario, Strategy.SMART)

    assert first_charge("in_1") == (due_at, "insufficient_funds", "pm_cus_1_original")
    assert result.failed_invoices == 1
    # The referee saw the charge at due_at too, and the retries after it.
    (first, *retries) = PaymentAttempt.objects.order_by("attempted_at", "id")
    assert first.attempted_at == due_at
    assert all(retry.attempted_at >= due_at.replace(minute=0) + ONE_HOUR for retry in retries)
    assert result.network_rule_violations == 0


def test_first_charges_in_one_pass_each_happen_at_their_own_due_at(db: None) -> None:
    # Two invoices due within the same hour, at 09:15 and 09:45: one pass (10:00)
    # makes both charges, each at its own moment; the event says when it happened.
    data = one_customer()
    data["customers"][0]["invoices"].append(
        invoice("in_2", 19900, "THB", "2026-01-05T09:45:00+07:00")
    )
    scenario = load_scenario(data)
    due = [i.due_at for i in scenario.customers[0].invoices]

    simulate(scenario, Strategy.SMART)

    assert [first_charge(i)[:2] for i in ("in_1", "in_2")] == [
        (due[0], "succeeded"),
        (due[1], "succeeded"),
    ]
    the_pass = due[0].replace(minute=0) + ONE_HOUR
    events = Event.objects.filter(type="payment_attempt.succeeded", invoice__isnull=False)
    assert list(events.order_by("occurred_at").values_list("occurred_at", "recorded_at")) == [
        (due[0], the_pass),
        (due[1], the_pass),
    ]


def test_a_card_that_took_over_before_the_first_charge_is_the_one_charged(db: None) -> None:
    # The card updater brings the new card at 09:05, the invoice falls due at 09:15
    # and the original card is blocked: the replacement is in use at 09:15.
    data = one_customer(
        declines=[LOST_ALL_MONTH],
        replacement_card={
            "at": "2026-01-05T09:05:00+07:00",
            "after_messages": None,
            "delay_hours": None,
        },
    )
    scenario = load_scenario(data)
    (sim_customer,) = scenario.customers
    assert card_in_use(sim_customer, sim_customer.invoices[0].due_at, []).value == "replacement"

    result = simulate(scenario, Strategy.SMART)

    assert first_charge("in_1")[1:] == ("succeeded", "pm_cus_1_replacement")
    assert result.failed_invoices == 0


def test_a_card_that_took_over_at_the_very_moment_of_the_first_charge_is_charged(db: None) -> None:
    # `card_in_use` takes the replacement from its moment on (takes_over <= at).
    data = one_customer(
        declines=[LOST_ALL_MONTH],
        replacement_card={
            "at": "2026-01-05T09:00:00+07:00",
            "after_messages": None,
            "delay_hours": None,
        },
    )
    data["customers"][0]["invoices"][0]["due_at"] = "2026-01-05T09:00:00+07:00"

    result = simulate(load_scenario(data), Strategy.SMART)

    assert first_charge("in_1")[1:] == ("succeeded", "pm_cus_1_replacement")
    assert result.failed_invoices == 0
