"""Mastercard's merchant advice codes (Stripe's network_advice_code) reach the planner:
stored on the attempt whoever records it (a charge of ours, a webhook, the API), and
read when the next retry is planned (rules.md 2.2)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dunning.engine.cases import sync_cases
from dunning.engine.models import Case
from dunning.gateways.base import ChargeRequest, ChargeResult
from dunning.gateways.simulated import declined
from dunning.ledger import services
from dunning.ledger.models import PaymentAttempt
from tests.engine.test_retries import T0, Bank, add_card, add_invoice, bank, customer, planned

__all__ = ["bank", "customer"]  # fixtures


@pytest.fixture
def mastercard_case(customer: None, bank: Bank) -> Case:
    """A Mastercard declined for funds at T0, its retry planned."""
    add_card("pm_mc", now=T0 - timedelta(days=30), brand="mastercard", last4="4444")
    add_invoice(collection_method="charge_automatically")
    record_decline(at=T0, code="insufficient_funds")
    sync_cases(now=T0)
    case = planned(bank)
    assert case.next_retry_at is not None
    return case


def record_decline(*, at: datetime, code: str, mac: str = "") -> None:
    services.record_payment_attempt(
        invoice="in_th",
        attempted_at=at,
        outcome="failed",
        now=at,
        source="stripe",
        decline_code=code,
        network_advice_code=mac,
        gateway="stripe",
        payment_method="pm_mc",
    )


@pytest.mark.parametrize("mac", ["03", "21"])
def test_a_mastercard_do_not_try_again_advice_stops_the_retries(
    mastercard_case: Case, bank: Bank, mac: str
) -> None:
    """rules.md 2.2: MAC 03 (and 21) means no retry.  Stripe sends it as
    network_advice_code beside a plain generic_decline."""

    def advised(request: ChargeRequest) -> ChargeResult:
        return declined(request, "generic_decline", network_advice_code=mac, network="mastercard")

    bank.answer(advised)
    assert mastercard_case.next_retry_at is not None
    bank.run(mastercard_case.next_retry_at)

    assert PaymentAttempt.objects.latest("id").network_advice_code == mac
    case = Case.objects.get()
    assert case.next_retry_at is None, case.retry_reason  # never again on this card
    assert f"Mastercard advice code {mac}" in case.retry_reason


def test_a_mastercard_advice_to_wait_a_day_holds_the_retry_a_day(
    mastercard_case: Case, bank: Bank
) -> None:
    # N04 through the engine: a decline with MAC 25 may be retried 24 hours after it,
    # not before, though the planner would have chosen sooner (see the next test).
    # 12:00 in Bangkok: the day after is a daytime hour too, so the plan is the
    # earliest moment the advice allows.
    declined_at = T0 + timedelta(hours=2)
    record_decline(at=declined_at, code="issuer_not_available", mac="25")

    case = planned(bank, declined_at)

    assert case.next_retry_at == declined_at + timedelta(hours=24), case.retry_reason


def test_the_same_decline_without_advice_is_retried_sooner(
    mastercard_case: Case, bank: Bank
) -> None:
    declined_at = T0 + timedelta(hours=2)
    record_decline(at=declined_at, code="issuer_not_available")

    case = planned(bank, declined_at)

    assert case.next_retry_at is not None
    assert case.next_retry_at < declined_at + timedelta(hours=24)
