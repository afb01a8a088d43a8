"""The billing system's first charge of an invoice, as docs/simulator.md says: on the
card in use at that moment ("Outcome rules" 3).

One Bangkok customer, one invoice; each test sets the decline windows and the
replacement card around the moment of the first charge.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dunning.core.retry_timing import Strategy
from dunning.ledger.models import PaymentAttempt
from dunning.simulator.runner import simulate
from dunning.simulator.scenario import load_scenario
from dunning.simulator.world import card_in_use
from tests.simulator.test_runner import customer, invoice

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
