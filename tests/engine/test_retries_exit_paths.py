"""The ways a charge that was sent can end, and what each leaves on the case, whatever
the case does meanwhile (paused, exhausted) and whoever answers (a webhook, a lookup,
an operator).

The rule behind each: a card is never charged twice for one invoice, and a
case is never left in doubt when its answer is known, nor planned when it
must wait for an operator.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

import pytest

from dunning.engine import actions, pay_now
from dunning.engine.decisions import decide_due_cases
from dunning.engine.models import Case, CaseEvent, Message
from dunning.engine.retries import LEASE, NoChargeInDoubt, release_charge_in_doubt
from dunning.engine.retry_status import retry_status
from dunning.gateways.base import ChargeRequest, ChargeResult, GatewayError
from dunning.gateways.simulated import (
    LostAnswer,
    declined,
    processing,
    reference_for,
    succeeded,
)
from dunning.ledger import services
from dunning.ledger.models import PaymentAttempt
from tests.engine.test_retries import (
    AMOUNT,
    T0,
    Bank,
    CutOff,
    Forgetful,
    add_card,
    ask_until_the_limit,
    case,
    customer,
    lost,
    ok,
    pay_by_transfer,
    planned,
    planned_at,
    run_on,
    second_declined_invoice,
    timeout,
)
from tests.engine.test_retries_in_doubt import StripeLike
from tests.engine.test_retry_status import dispute

__all__ = ["case", "customer"]  # fixtures


def test_lookup_before_the_limit_that_cannot_tell_is_asked_later(case: Case) -> None:
    bank = Bank(CutOff)
    gateway = bank.gateway
    assert isinstance(gateway, CutOff)
    at = planned_at(bank)
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
    at = planned_at(bank)
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
    attempt = pay_now.start(offer, gateway=bank.gateway, now=later)
    assert attempt.outcome is not pay_now.Outcome.CHECKING


def test_money_taken_but_not_recorded_is_not_charged_again_by_a_replan(case: Case) -> None:
    bank = Bank(CutOff)
    at = planned_at(bank)

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


def test_a_customer_whose_card_took_money_the_ledger_refused_is_not_reminded(case: Case) -> None:
    bank = Bank()
    decide_due_cases(now=T0)  # the first message, "your payment failed", is scheduled
    at = planned_at(bank)

    def partial_payment_lands_meanwhile(request: ChargeRequest) -> ChargeResult:
        pay_by_transfer(1000, at=at)
        return succeeded(request)  # AMOUNT taken: 1000 more than the customer owed

    bank.answer(partial_payment_lands_meanwhile)
    bank.run(at)
    for day in range(20):  # the policy's reminders would all fall in these days
        decide_due_cases(now=at + timedelta(days=day, hours=1))

    # The customer has paid everything and more: no reminder asks them for the rest,
    # nor says the card will be charged again.  A person checks for the refund first.
    case = Case.objects.get()
    assert case.state == "paused" and "refund" in case.retry_reason
    assert not Message.objects.filter(status="scheduled").exists()
    assert list(Message.objects.values_list("step", flat=True)) == ["failed"]  # canceled
    paused = CaseEvent.objects.get(type="paused")
    assert "refund" in paused.reason and paused.data["canceled_messages"] == 1


def test_a_held_charge_released_while_the_customer_disputes_leaves_the_case_paused(
    case: Case,
) -> None:
    """The card took money the ledger refused (a transfer landed meanwhile): the case is
    paused for the refund.  The customer, charged twice, disputes the card payment at
    their bank.  Releasing the refunded charge would resume the case the engine paused,
    but an open dispute keeps dunning paused until someone resumes it (engine.disputes)."""
    bank = Bank()
    at = planned_at(bank)

    def partial_payment_lands_meanwhile(request: ChargeRequest) -> ChargeResult:
        pay_by_transfer(1000, at=at)
        return succeeded(request)

    bank.answer(partial_payment_lands_meanwhile)
    bank.run(at)
    assert Case.objects.get().state == "paused"
    dispute("needs_response", at=at - T0 + timedelta(hours=1))

    later = at + timedelta(days=1)
    release_charge_in_doubt(case.pk, now=later, reason="refunded at Stripe", source="api")

    case = Case.objects.get()
    assert case.state == "paused" and case.charge_in_doubt_since is None
    kept = CaseEvent.objects.get(type="dispute.still_open")
    assert "dp_1" in kept.reason and "until someone resumes it" in kept.reason
    for day in range(1, 20):
        decide_due_cases(now=later + timedelta(days=day))
    assert not Message.objects.filter(status="scheduled").exists()


def test_a_charge_in_flight_cannot_be_released(case: Case) -> None:
    bank, other = Bank(CutOff), Bank(CutOff)  # two workers, each with its client
    at = planned_at(bank)
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
    at = planned_at(bank)

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


# ---------------------------------------------------------------- settled whatever the case does


def lost_decline(request: ChargeRequest) -> ChargeResult:
    raise LostAnswer(declined(request, "insufficient_funds", network="visa"))


def webhook_decline(*, at: datetime, reference: str) -> None:
    """A decline on in_th, pm_visa, AMOUNT recorded from outside (Stripe's webhook)."""
    services.record_payment_attempt(
        invoice="in_th",
        attempted_at=at,
        outcome="failed",
        amount=AMOUNT,
        decline_code="insufficient_funds",
        gateway="stripe",
        reference=reference,
        payment_method="pm_visa",
        now=at,
        source="stripe",
    )


def test_an_exhausted_case_whose_charge_was_answered_is_not_stuck_in_doubt(case: Case) -> None:
    bank = Bank(CutOff)
    at = planned_at(bank)
    bank.answer(lost_decline)
    bank.run(at)  # sent, declined, answer lost: in doubt, asked again in minutes
    # The decision stage takes the policy's final action (suspend): exhausted.
    Case.objects.filter(pk=case.pk).update(state="exhausted")
    [sent] = bank.gateway.received
    webhook_decline(at=at, reference=reference_for(sent.request))  # its answer arrives
    later = at + timedelta(days=3)
    bank.run(later)  # looked up all the same: found, and on the ledger already

    case = Case.objects.get()
    assert case.state == "exhausted" and case.charge_in_doubt_since is None
    assert PaymentAttempt.objects.count() == 2  # the first charge's, and this one's once
    offer = pay_now.offer_for(case, bank.gateway)  # the pay page serves exhausted cases
    assert offer is not None
    attempt = pay_now.start(offer, gateway=bank.gateway, now=later)
    assert attempt.outcome is not pay_now.Outcome.CHECKING


def test_a_paused_cases_charge_in_doubt_is_looked_up_never_sent_again(
    case: Case,
) -> None:
    """The charge's request was lost on the way (the link went down): sent again, it
    would be a first charge, made while the case is paused (a promise to pay, a
    dispute).  A gateway that can find a charge by its key is asked instead."""
    bank = Bank(CutOff)
    gateway = bank.gateway
    assert isinstance(gateway, CutOff)
    at = planned_at(bank)
    gateway.down = True
    bank.run(at)  # no answer: in doubt, asked again in minutes
    actions.pause_case(case.pk, now=at, reason="promise to pay", source="api")

    case = Case.objects.get()
    # The engine still asks, and says when: nothing an operator can release yet.
    assert case.charge_in_doubt_since == at
    assert retry_status(case, now=at).at == case.next_retry_at is not None
    with pytest.raises(NoChargeInDoubt):
        release_charge_in_doubt(case.pk, now=at, reason="none", source="api")
    gateway.down = False
    report = bank.run(case.next_retry_at)

    assert (report.looked_up, report.charged) == (1, 0)
    assert gateway.received == []  # nothing reached the gateway, then or since
    case = Case.objects.get()
    assert case.state == "paused" and case.charge_in_doubt_since is None
    assert CaseEvent.objects.filter(case=case, type="retry.not_charged").exists()


def test_an_exhausted_cases_charge_in_doubt_without_lookups_is_sent_again_under_its_key(
    case: Case,
) -> None:
    """A gateway that cannot look a charge up leaves only the same request, under the
    same key, to learn what became of it: the gateway answers it once."""
    bank = Bank(Forgetful)  # type: ignore[arg-type] # charges only, no lookups
    gateway = bank.gateway
    at = planned_at(bank)
    bank.answer(timeout)
    bank.run(at)
    key = Case.objects.get().retry_key
    Case.objects.filter(pk=case.pk).update(state="exhausted")

    bank.run(Case.objects.get().next_retry_at)

    assert [c.request.idempotency_key for c in gateway.received] == [key, key]


def test_a_decline_of_another_payment_does_not_answer_the_charge_in_doubt(case: Case) -> None:
    bank = Bank(CutOff)
    at = planned_at(bank)
    bank.answer(lost)  # K took the money; its answer is lost
    bank.run(at)
    assert Case.objects.get().charge_in_doubt_since == at
    # Another payment of the same invoice on the same card declines meanwhile: the
    # pay-page payment the customer confirms in the banking app an hour after leaving
    # the page (payment_intent.payment_failed), or a charge.failed matched by amount.
    webhook_decline(at=at + timedelta(minutes=2), reference="ch_other")

    bank.answer(ok, ok, ok)
    run_on(bank, at)

    taken = [c for c in bank.gateway.charges if c.result.succeeded]
    assert len(taken) == 1, [c.request.idempotency_key for c in taken]


def test_a_processing_charge_is_not_paid_again_after_its_lookup(case: Case) -> None:

    bank = Bank(StripeLike)
    at = planned_at(bank)
    bank.answer(processing)
    bank.run(at)
    ask_until_the_limit(bank, at)  # 20 h of PENDING replays
    while (current := Case.objects.get()).next_retry_at is not None:
        bank.run(current.next_retry_at)  # looked up: still processing, for a week

    made = [(c.request.idempotency_key, c.at) for c in bank.gateway.charges]
    assert len(made) == 1, made  # never the same key again after Stripe forgot it
    case = Case.objects.get()
    assert case.charge_in_doubt_since == at and "check the gateway" in case.retry_reason


def test_a_charge_in_doubt_whose_payment_is_recorded_is_released_to_go_on_with_the_rest(
    case: Case,
) -> None:

    bank = Bank(StripeLike)
    gateway = bank.gateway
    assert isinstance(gateway, StripeLike)
    planned(bank)
    current = second_declined_invoice(bank)
    at = current.next_retry_at
    assert at is not None
    sent: list[ChargeRequest] = []

    def lost_success(request: ChargeRequest) -> ChargeResult:
        sent.append(request)
        return lost(request)

    bank.answer(lost_success)
    bank.run(at)  # in_th charged, answer lost
    gateway.down = True
    gateway.lookups_raise = GatewayError("unkeyed PaymentIntent", permanent=True)
    ask_until_the_limit(bank, at)
    bank.run(Case.objects.get().next_retry_at)  # the lookup cannot tell: operator
    assert Case.objects.get().next_retry_at is None
    [request] = sent
    assert request.invoice_external_id == "in_th"

    # The operator finds the money taken and, as docs/api.md says, records the payment.
    later = at + timedelta(days=1)
    services.record_payment(
        invoice="in_th",
        amount=AMOUNT,
        currency="THB",
        method="card",
        received_at=at,
        reference=reference_for(request),
        now=later,
        source="api",
    )

    case = Case.objects.get()
    assert case.state == "active"  # in_th2 is still owed
    # A payment alone settles nothing: the same facts could be a bank transfer landing
    # beside a charge that also took the money.  The operator releases it, and the
    # case goes on with in_th2.
    assert case.charge_in_doubt_since == at and case.next_retry_at is None
    release_charge_in_doubt(case.pk, now=later, reason="recorded its payment", source="api")
    assert bank.run(later).planned == 1
    assert Case.objects.get().retry_invoice.external_id == "in_th2"


def test_money_taken_on_an_invoice_paid_meanwhile_stays_held_when_another_invoice_changes(
    case: Case,
) -> None:
    bank = Bank()
    planned(bank)
    at = second_declined_invoice(bank).next_retry_at
    assert at is not None

    def paid_by_transfer_meanwhile(request: ChargeRequest) -> ChargeResult:
        pay_by_transfer(AMOUNT, at=at, invoice=request.invoice_external_id)
        return succeeded(request)

    bank.answer(paid_by_transfer_meanwhile)
    bank.run(at)
    assert "check for a refund" in Case.objects.get().retry_reason

    pay_by_transfer(AMOUNT // 2, at=at + timedelta(hours=2), invoice="in_th2")

    case = Case.objects.get()
    assert case.charge_in_doubt_since == at and case.next_retry_at is None  # still held
    assert "check for a refund" in case.retry_reason


# ---------------------------------------------------------------- resume after a pause


def test_a_card_declined_lost_while_the_case_was_paused_is_not_charged_on_resume(
    case: Case,
) -> None:
    bank = Bank()
    case = planned(bank)
    wake = case.next_retry_at
    assert wake is not None and case.retry_key
    actions.pause_case(case.pk, now=T0 + timedelta(hours=1), reason="promise", source="test")
    # While paused, the billing system's own attempt on the same invoice and card is
    # declined as lost (a webhook records it).
    declined_at = T0 + timedelta(hours=2)
    services.record_payment_attempt(
        invoice="in_th",
        attempted_at=declined_at,
        outcome="failed",
        now=declined_at,
        source="stripe",
        decline_code="lost_card",
        gateway="stripe",
        payment_method="pm_visa",
    )
    actions.resume_case(case.pk, now=T0 + timedelta(hours=3), reason="broken", source="test")

    bank.run(max(wake, T0 + timedelta(hours=3)))

    assert bank.gateway.received == []  # never a lost card again for this charge


def test_a_retry_planned_before_a_pause_is_not_made_after_the_budget_window_closed(
    case: Case,
) -> None:
    bank = Bank()
    case = planned(bank)
    assert case.next_retry_at is not None and case.retry_key
    actions.pause_case(case.pk, now=T0 + timedelta(hours=1), reason="promise", source="test")
    resumed = T0 + timedelta(days=20)  # the default budget: 8 tries within 2 weeks of T0
    actions.resume_case(case.pk, now=resumed, reason="broken promise", source="test")

    bank.run(resumed)

    assert bank.gateway.received == []


def test_a_charge_in_doubt_keeps_its_key_and_its_lookup_on_resume(case: Case) -> None:
    bank = Bank(CutOff)
    gateway = bank.gateway
    assert isinstance(gateway, CutOff)
    at = planned_at(bank)
    gateway.down = True
    bank.run(at)  # no answer: in doubt, asked again with the same key
    doubt = Case.objects.get()
    assert doubt.charge_in_doubt_since == at and doubt.retry_key
    actions.pause_case(case.pk, now=at, reason="promise", source="test")

    resumed = actions.resume_case(case.pk, now=at + timedelta(minutes=1), reason="x", source="t")

    assert resumed.retry_key == doubt.retry_key  # a new key could charge twice
    assert resumed.next_retry_at == doubt.next_retry_at


def test_the_pay_page_does_not_charge_a_card_a_retry_found_lost(case: Case) -> None:
    """After lost_card (HARD, Visa 41 category 1) the customer is asked for another
    method; the pay page must not offer (and charge) that same card for that invoice."""
    bank = Bank()
    at = planned_at(bank)
    bank.answer(lambda request: declined(request, "lost_card", network="visa"))
    bank.run(at)
    case = Case.objects.get()
    assert case.next_retry_at is None

    assert pay_now.offer_for(case, bank.gateway) is None
    assert pay_now.page_offer(case, bank.gateway) == (None, pay_now.Refusal.DECLINED)


def test_a_worker_s_answer_recorded_past_its_lease_leaves_the_case_s_next_charge_alone(
    case: Case,
) -> None:
    """A worker stalls past its lease after sending a retry (a long pause, a stuck
    connection).  Meanwhile another worker asks the same charge again, records its
    decline, and the customer pays on the pay page and is sent to their bank: that
    payment is now the case's charge in doubt.  The stalled worker's answer, when it
    is recorded at last, must not replan the case, which would forget the payment at
    the bank and charge the invoice beside it."""
    stalled, other = Bank(StripeLike), Bank(StripeLike)  # two workers, each with its client
    at = planned_at(stalled)
    late = at + LEASE + timedelta(minutes=1)
    paid_at = late + timedelta(minutes=1)
    page = other.gateway
    assert isinstance(page, StripeLike)

    def answered_past_the_lease(request: ChargeRequest) -> ChargeResult:
        other.answer(lambda request: declined(request, "insufficient_funds", network="visa"))
        assert other.run(late).declined == 1  # the same key asked again, its decline recorded
        other.answer(lambda request: declined(request, "authentication_required"))
        offer = pay_now.offer_for(Case.objects.get(), page)
        assert offer is not None
        other.now = paid_at
        sent = pay_now.start(offer, gateway=page, now=paid_at)
        assert sent.outcome is pay_now.Outcome.AUTHENTICATE
        return declined(request, "insufficient_funds", network="visa")

    stalled.answer(answered_past_the_lease)
    stalled.run(at)

    case = Case.objects.get()
    assert case.retry_key.startswith("pay") and case.charge_in_doubt_since == paid_at

    # The customer leaves the bank's page; the retry stage goes on, every charge approved.
    other.answer(*[ok] * 5)
    run_on(other, paid_at)
    # The customer confirms at the bank after all.
    event = CaseEvent.objects.filter(type=pay_now.SENT_TO_BANK).latest("pk")
    offer = pay_now.offer_for_return(Case.objects.get(), event.data["reference"], page)
    assert offer is not None
    with contextlib.suppress(GatewayError):
        pay_now.finish(
            offer, event.data["reference"], gateway=page, now=paid_at + timedelta(days=3)
        )

    taken = [
        charge
        for bank in (stalled, other)
        for charge in bank.gateway.charges
        if charge.result.succeeded
    ]
    assert len(taken) == 1, [charge.request.idempotency_key for charge in taken]
