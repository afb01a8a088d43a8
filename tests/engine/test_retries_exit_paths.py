"""The ways a charge that was sent can end, and what each leaves on the case.

The rule behind each: a card is never charged twice for one invoice, and a
case is never left in doubt when its answer is known, nor planned when it
must wait for an operator.
"""

from __future__ import annotations

from datetime import timedelta

from dunning.engine import actions, pay_now
from dunning.engine.models import Case, CaseEvent
from dunning.engine.retries import NoChargeInDoubt, release_charge_in_doubt
from dunning.gateways.base import ChargeRequest, ChargeResult, ChargeStatus
from dunning.gateways.simulated import declined, reference_for, succeeded
from dunning.ledger import services
from tests.engine.test_retries import (
    AMOUNT,
    Bank,
    CutOff,
    add_card,
    case,
    customer,
    pay_by_transfer,
    planned,
    run_on,
    second_declined_invoice,
)

__all__ = ["case", "customer"]  # fixtures


def test_lookup_before_the_limit_that_cannot_tell_is_asked_later(case: Case) -> None:
    bank = Bank(CutOff)
    gateway = bank.gateway
    assert isinstance(gateway, CutOff)
    at = planned(bank).next_retry_at
    assert at is not None
    gateway.down = True
    bank.run(at)  # timeout: in doubt, asked again with the same key in minutes
    assert Case.objects.get().charge_in_doubt_since == at
    # The customer pays half by bank transfer: the same request can't be sent again,
    # so the claim turns to a lookup long before IN_DOUBT_LIMIT.
    pay_by_transfer(AMOUNT // 2, at=at)
    gateway.lookups_fail = True  # a 503 from the list endpoint
    again = Case.objects.get().next_retry_at
    assert again is not None

    bank.run(again)  # looked up at once: the same request could be a second charge

    case = Case.objects.get()
    assert case.charge_in_doubt_since == at
    assert case.next_retry_at is not None and case.next_retry_at > again


def test_an_answer_recorded_on_a_paused_case_ends_the_doubt(case: Case) -> None:
    bank = Bank(CutOff)
    at = planned(bank).next_retry_at
    assert at is not None
    case = Case.objects.get()

    def pause_then_decline(request: ChargeRequest) -> ChargeResult:
        actions.pause_case(case.pk, now=at, reason="promise to pay", source="api")
        return declined(request, "insufficient_funds", network="visa")

    bank.answer(pause_then_decline)
    report = bank.run(at)
    assert report.declined == 1  # the answer is on the ledger

    case = Case.objects.get()
    assert case.state == "paused"
    assert case.charge_in_doubt_since is None
    offer = pay_now.offer_for(case, bank.gateway)
    assert offer is not None
    later = at + timedelta(hours=1)
    attempt = pay_now.start(offer, gateway=bank.gateway, token="t", now=later)
    assert attempt.outcome is not pay_now.Outcome.CHECKING


def test_money_taken_but_not_recorded_is_not_charged_again_by_a_replan(case: Case) -> None:
    bank = Bank(CutOff)
    at = planned(bank).next_retry_at
    assert at is not None

    def partial_payment_lands_meanwhile(request: ChargeRequest) -> ChargeResult:
        pay_by_transfer(AMOUNT // 2, at=at)
        return succeeded(request)  # AMOUNT taken

    bank.answer(partial_payment_lands_meanwhile)
    bank.run(at)
    case = Case.objects.get()
    assert case.next_retry_at is None and "refund" in case.retry_reason

    # The customer adds a card a day later; the engine charges the invoice again.
    add_card("pm_master", now=at + timedelta(days=1), brand="mastercard", last4="4444")
    bank.answer(succeeded)
    run_on(bank, at + timedelta(days=1))

    taken = [c for c in bank.gateway.charges if c.result.succeeded]
    assert len(taken) == 1, [r.request.amount for r in taken]


def test_a_charge_in_flight_cannot_be_released(case: Case) -> None:
    bank, other = Bank(CutOff), Bank(CutOff)  # two workers, each with its client
    at = planned(bank).next_retry_at
    assert at is not None
    case = Case.objects.get()
    outcome: list[object] = []

    def operator_releases_meanwhile(request: ChargeRequest) -> ChargeResult:
        # The API shows it in doubt since `at`; the gateway shows nothing yet.
        try:
            release_charge_in_doubt(case.pk, now=at, reason="nothing at Stripe", source="api")
            outcome.append("released")
        except NoChargeInDoubt as error:
            outcome.append(error)
        # The customer saves a new card: the other worker retries at once.
        add_card("pm_master", now=at, brand="mastercard", last4="4444")
        other.answer(succeeded)
        other.run(at)  # plans: a new card, at once
        other.run(at)  # charges it
        return succeeded(request)

    bank.answer(operator_releases_meanwhile)
    bank.run(at)

    assert isinstance(outcome[0], NoChargeInDoubt)  # the worker is still asking
    taken = [c for b in (bank, other) for c in b.gateway.charges if c.result.succeeded]
    assert len(taken) == 1, [c.request.payment_method_external_id for c in taken]


def test_a_processing_charge_is_not_charged_again_under_another_key(case: Case) -> None:
    bank = Bank(CutOff)
    at = planned(bank).next_retry_at
    assert at is not None

    def processing(request: ChargeRequest) -> ChargeResult:
        return ChargeResult(
            status=ChargeStatus.PENDING,
            gateway="simulated",
            amount=request.amount,
            currency=request.currency,
            reference=reference_for(request),
        )

    bank.answer(processing)
    bank.run(at)
    add_card("pm_master", now=at + timedelta(minutes=1), brand="mastercard", last4="4444")
    bank.run(at + timedelta(minutes=1))
    bank.run(at + timedelta(minutes=1))

    sent = [c.request.idempotency_key for c in bank.gateway.charges]
    assert len(sent) == 1, sent


def test_a_success_recorded_first_as_a_payment_does_not_stop_the_case(case: Case) -> None:
    bank = Bank(CutOff)
    at = second_declined_invoice(bank).next_retry_at
    assert at is not None

    def invoice_paid_webhook_first(request: ChargeRequest) -> ChargeResult:
        result = succeeded(request)
        services.record_payment(
            invoice=request.invoice_external_id,
            amount=request.amount,
            currency="THB",
            received_at=at,
            method="card",
            reference=result.reference,
            now=at,
            source="stripe",
        )
        return result

    bank.answer(invoice_paid_webhook_first)
    bank.run(at)

    case = Case.objects.get()
    assert case.state == "active"  # in_th2 is still owed
    assert case.next_retry_at is not None, case.retry_reason
    assert not CaseEvent.objects.filter(type="retry.not_recorded").exists()
