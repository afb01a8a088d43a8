"""A payment made on the pay page is the case's charge in doubt until its answer is recorded.

The customer pays with the saved card while a retry is planned.  Whatever the
page learns (nothing, processing, the bank's page, a refusal), the retry stage
never charges the invoice beside it: it waits, asks the gateway what became of
the payment it was not told about, and never sends the customer's own request
again without them.  Each story counts what the gateway received.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from dunning.engine import pay_now
from dunning.engine.cases import sync_cases
from dunning.engine.models import Case, CaseEvent
from dunning.engine.retries import ABANDONED, AUTHENTICATION_WINDOW, LEASE, ON_SESSION
from dunning.gateways.base import Authentication, ChargeRequest, ChargeResult, GatewayError
from dunning.gateways.simulated import LostAnswer, declined, processing, succeeded
from dunning.ledger import services
from dunning.ledger.models import Invoice, Payment, PaymentAttempt
from tests.engine.test_retries import (
    AMOUNT,
    Bank,
    add_invoice,
    case,
    customer,
    fail,
    pay_by_transfer,
    planned_at,
    run_on,
)
from tests.engine.test_retries_in_doubt import StripeLike

__all__ = ["case", "customer"]  # fixtures

Answer = Callable[[ChargeRequest], ChargeResult]


def lost(answer: Answer) -> Answer:
    """The gateway acts on the request, but its answer never reaches the page."""

    def answering(request: ChargeRequest) -> ChargeResult:
        raise LostAnswer(answer(request))

    return answering


def needs_3ds(request: ChargeRequest) -> ChargeResult:
    return declined(request, "authentication_required", network="visa")


def refused(request: ChargeRequest) -> ChargeResult:
    raise GatewayError("simulated 400: no such payment method", permanent=True)


@pytest.fixture
def bank(case: Case) -> Bank:
    """A Stripe-like gateway, and the case's next retry planned for days from now."""
    bank = Bank(StripeLike)
    planned_at(bank)  # for days from now
    return bank


def before_the_retry(ahead: timedelta = timedelta(days=1)) -> datetime:
    """A moment `ahead` of the case's planned retry: when the customer pays on the page."""
    wake = Case.objects.get().next_retry_at
    assert wake is not None
    return wake - ahead


def stripe_like(bank: Bank) -> StripeLike:
    gateway = bank.gateway
    assert isinstance(gateway, StripeLike)
    return gateway


def pay_on_the_page(
    bank: Bank, answer: Answer, *, at: datetime, amount: int = AMOUNT
) -> pay_now.Attempt:
    bank.answer(answer)
    bank.now = at
    case = Case.objects.get()
    offer = pay_now.offer_for(case, bank.gateway)
    assert offer is not None and offer.invoice.amount_remaining == amount
    gateway = stripe_like(bank)
    return pay_now.start(offer, gateway=gateway, now=at)


def sent_to_the_bank(bank: Bank) -> tuple[StripeLike, datetime, str]:
    """The customer pays on the page a day before the retry and is sent to their bank
    (3-D Secure): the gateway, that moment and the payment's key."""
    gateway = stripe_like(bank)
    at = before_the_retry()
    assert pay_on_the_page(bank, needs_3ds, at=at).outcome is pay_now.Outcome.AUTHENTICATE
    return gateway, at, Case.objects.get().retry_key


def sent_off_session(bank: Bank) -> list[str]:
    """The keys of the charges the retry stage sent (the page's start with ON_SESSION)."""
    return [key for key in bank.keys if not key.startswith(ON_SESSION)]


def in_doubt(case: Case) -> bool:
    return case.charge_in_doubt_since is not None


def test_a_payment_with_no_answer_is_looked_up_and_recorded_never_charged_again(
    bank: Bank,
) -> None:
    at = before_the_retry()

    attempt = pay_on_the_page(bank, lost(succeeded), at=at)

    assert attempt.outcome is pay_now.Outcome.UNKNOWN
    case = Case.objects.get()
    [key] = bank.keys
    assert key.startswith(ON_SESSION) and case.retry_key == key
    assert case.charge_in_doubt_since == at and case.next_retry_at == at + LEASE
    # Within the lease nothing is due; after it, the stage asks the gateway.
    assert bank.run(at + LEASE - timedelta(seconds=1)).looked_up == 0
    report = bank.run(at + LEASE)
    assert (report.looked_up, report.charged, report.recovered) == (1, 0, 1)

    case = Case.objects.get()
    assert case.state == "recovered" and not in_doubt(case)
    assert Payment.objects.get().amount == AMOUNT
    assert bank.keys == [key]  # the card was charged once, by the customer


def test_a_payment_left_at_the_bank_is_canceled_after_the_window_and_the_retries_go_on(
    bank: Bank,
) -> None:
    at = before_the_retry()
    planned_charge = Case.objects.get().retry_key
    gateway = stripe_like(bank)

    attempt = pay_on_the_page(bank, needs_3ds, at=at)

    assert attempt.outcome is pay_now.Outcome.AUTHENTICATE
    case = Case.objects.get()
    key = case.retry_key
    assert in_doubt(case) and key != planned_charge
    assert case.next_retry_at == at + AUTHENTICATION_WINDOW
    # While the customer may still be at the bank, nothing happens.
    assert bank.run(at + timedelta(minutes=30)).looked_up == 0
    report = bank.run(at + AUTHENTICATION_WINDOW)

    # Found still waiting for the customer: canceled, so it can take no money.
    assert (report.looked_up, report.charged, report.declined) == (1, 0, 0)
    assert key in gateway.canceled
    assert not PaymentAttempt.objects.filter(reference=reference_for_key(gateway, key)).exists()
    case = Case.objects.get()
    assert case.state == "active" and not in_doubt(case) and case.retry_key == ""
    assert CaseEvent.objects.filter(type=ABANDONED, data__invoice="in_th").count() == 1
    # Nothing says the card needs the customer: the retries go on as planned.
    assert bank.run(at + AUTHENTICATION_WINDOW).planned == 1
    assert Case.objects.get().next_retry_at is not None

    # Back at last, the customer finds the payment called off, and pays anew
    # under a new key: the canceled one is spent.
    offer = pay_now.offer_for_return(
        Case.objects.get(), gateway.charges[0].result.reference, gateway
    )
    assert offer is not None
    late = pay_now.finish(
        offer, gateway.charges[0].result.reference, gateway=gateway, now=at + timedelta(hours=2)
    )
    assert late.outcome is pay_now.Outcome.UNAVAILABLE
    again = pay_on_the_page(bank, succeeded, at=at + timedelta(hours=2))
    assert again.outcome is pay_now.Outcome.PAID
    assert len(set(bank.keys)) == 2 and sent_off_session(bank) == []  # two pay-page keys
    assert Case.objects.get().state == "recovered"
    assert Payment.objects.count() == 1


def reference_for_key(gateway: StripeLike, key: str) -> str:
    return next(c.result.reference for c in gateway.charges if c.request.idempotency_key == key)


def test_the_customer_back_from_the_bank_settles_the_payment_and_the_retries_go_on(
    bank: Bank,
) -> None:
    at = before_the_retry()
    gateway = stripe_like(bank)
    attempt = pay_on_the_page(bank, needs_3ds, at=at)
    assert attempt.outcome is pay_now.Outcome.AUTHENTICATE

    # Pressed again meanwhile (another tab): the same request, the bank's page again.
    again = pay_on_the_page(bank, needs_3ds, at=at + timedelta(minutes=2))
    assert again.outcome is pay_now.Outcome.AUTHENTICATE
    assert len(set(bank.keys)) == 1

    # The customer gives up at the bank: the payment is declined, and recorded.
    back_at = at + timedelta(minutes=5)
    event = CaseEvent.objects.filter(type=pay_now.SENT_TO_BANK).latest("pk")
    offer = pay_now.offer_for_return(Case.objects.get(), event.data["reference"], gateway)
    assert offer is not None
    gateway.answer_at_the_bank(  # the bank declines it after all
        Case.objects.get().retry_key,
        lambda request: declined(request, "insufficient_funds", network="visa"),
    )
    done = pay_now.finish(offer, event.data["reference"], gateway=gateway, now=back_at)

    assert done.outcome is pay_now.Outcome.DECLINED
    case = Case.objects.get()
    assert not in_doubt(case) and case.retry_key == ""
    assert case.next_retry_at == back_at  # planned afresh at the next pass
    report = bank.run(back_at)
    assert report.planned == 1 and report.charged == 0
    assert Case.objects.get().next_retry_at > back_at  # type: ignore[operator]


def test_a_payment_processing_on_the_page_holds_the_retries_until_it_settles(
    bank: Bank,
) -> None:
    at = before_the_retry(timedelta(hours=2))
    gateway = stripe_like(bank)

    attempt = pay_on_the_page(bank, processing, at=at)

    assert attempt.outcome is pay_now.Outcome.PROCESSING
    # Asked about, backing off, past the moment the retry was planned for.
    asked = 0
    moment = at
    while (wake := Case.objects.get().next_retry_at) is not None and wake < at + timedelta(hours=6):
        moment = wake
        asked += bank.run(moment).looked_up
    assert asked >= 3
    assert sent_off_session(bank) == [] and in_doubt(Case.objects.get())
    # The questions back off: six hours took far fewer than one a minute.
    assert asked < 6 * 60 / 5

    gateway.settle(succeeded)
    report = bank.run(Case.objects.get().next_retry_at)  # type: ignore[arg-type]

    assert report.recovered == 1
    assert Case.objects.get().state == "recovered"
    assert sent_off_session(bank) == []


def test_a_payment_the_gateway_refused_leaves_nothing_in_doubt(bank: Bank) -> None:
    at = before_the_retry()

    attempt = pay_on_the_page(bank, refused, at=at)

    assert attempt.outcome is pay_now.Outcome.UNAVAILABLE
    case = Case.objects.get()
    assert not in_doubt(case) and case.retry_key == "" and case.next_retry_at == at
    report = bank.run(at)
    assert report.planned == 1 and report.charged == 0


def test_a_decline_on_the_page_plans_the_next_retry(bank: Bank) -> None:
    at = before_the_retry()

    attempt = pay_on_the_page(
        bank, lambda request: declined(request, "insufficient_funds", network="visa"), at=at
    )

    assert attempt.outcome is pay_now.Outcome.DECLINED
    case = Case.objects.get()
    assert not in_doubt(case) and case.retry_key == "" and case.next_retry_at == at
    assert bank.run(at).planned == 1
    assert PaymentAttempt.objects.filter(decline_code="insufficient_funds").count() == 2


class OnSessionOnly:
    """A gateway that charges on and off session but cannot look a charge up."""

    name = "simulated"

    def __init__(self, inner: StripeLike) -> None:
        self.inner = inner
        self.received = inner.received

    def charge(self, request: ChargeRequest) -> ChargeResult:
        return self.inner.charge(request)

    def charge_on_session(
        self, request: ChargeRequest, *, return_url: str
    ) -> ChargeResult | Authentication:
        return self.inner.charge_on_session(request, return_url=return_url)

    def outcome(self, reference: str, request: ChargeRequest) -> ChargeResult | Authentication:
        return self.inner.outcome(reference, request)


def test_at_a_gateway_that_cannot_look_it_up_an_operator_checks(bank: Bank) -> None:
    at = before_the_retry()
    gateway = stripe_like(bank)
    bank.gateway = OnSessionOnly(gateway)  # type: ignore[assignment]
    bank.answer(lost(succeeded))
    bank.now = at
    offer = pay_now.offer_for(Case.objects.get(), bank.gateway)
    assert offer is not None
    pay_now.start(offer, gateway=bank.gateway, now=at)  # type: ignore[arg-type]

    report = bank.run(at + LEASE)

    assert (report.stopped, report.charged) == (1, 0)
    case = Case.objects.get()
    assert in_doubt(case) and case.next_retry_at is None
    assert "pay page" in CaseEvent.objects.filter(type="retry.in_doubt").get().reason
    assert sent_off_session(bank) == []
    assert Invoice.objects.get().status == "open"  # the money's fate is for an operator


def test_a_press_refused_the_second_time_keeps_the_first_payment_in_doubt(bank: Bank) -> None:
    gateway, at, key = sent_to_the_bank(bank)

    def refused_again(request: ChargeRequest, *, return_url: str) -> Authentication:
        raise GatewayError("simulated 400 idempotency_error", permanent=True)

    gateway.charge_on_session = refused_again  # type: ignore[method-assign]
    again = pay_on_the_page(bank, needs_3ds, at=at + timedelta(minutes=3))

    assert again.outcome is pay_now.Outcome.UNAVAILABLE
    case = Case.objects.get()
    # The first press's payment may still be confirmed at the bank: still in doubt.
    assert case.retry_key == key and case.charge_in_doubt_since == at
    # The customer confirms it there and never comes back; its webhook is lost.
    gateway.answer_at_the_bank(key, succeeded)
    run_on(bank, at + timedelta(minutes=3))

    assert Case.objects.get().state == "recovered"
    assert sent_off_session(bank) == []  # the card was charged once


def test_a_press_while_a_worker_looks_the_payment_up_waits(bank: Bank) -> None:
    gateway = stripe_like(bank)
    at = before_the_retry()

    def never_arrives(request: ChargeRequest) -> ChargeResult:
        raise GatewayError("simulated connection reset", permanent=False)

    assert pay_on_the_page(bank, never_arrives, at=at).outcome is pay_now.Outcome.UNKNOWN
    key = Case.objects.get().retry_key
    pressed: list[pay_now.Attempt] = []
    look_up = gateway.find_charge

    def find_while_the_customer_presses(
        request: ChargeRequest, *, since: datetime
    ) -> ChargeResult | None:
        found = look_up(request, since=since)
        pressed.append(pay_on_the_page(bank, needs_3ds, at=at + LEASE + timedelta(seconds=5)))
        return found

    gateway.find_charge = find_while_the_customer_presses  # type: ignore[method-assign]
    report = bank.run(at + LEASE)

    assert [attempt.outcome for attempt in pressed] == [pay_now.Outcome.BUSY]
    assert report.looked_up == 1
    case = Case.objects.get()
    # Not found: it never reached the gateway, and the case is planned afresh.
    assert not in_doubt(case) and case.retry_key == "" and key not in gateway._by_key


def test_a_payment_left_at_the_bank_is_canceled_once_the_invoice_is_paid_another_way(
    bank: Bank,
) -> None:
    gateway, at, key = sent_to_the_bank(bank)

    pay_by_transfer(AMOUNT, at=at + timedelta(minutes=20))

    # Recovered, but the payment at the bank is still asked about at once ...
    case = Case.objects.get()
    assert case.state == "recovered" and in_doubt(case) and case.retry_key == key
    report = bank.run(at + timedelta(minutes=20))
    # ... and canceled there, long before the window: the invoice owes nothing now.
    assert report.looked_up == 1 and key in gateway.canceled
    case = Case.objects.get()
    assert not in_doubt(case) and case.next_retry_at is None and case.retry_reason == "paid"
    # The customer confirms at the bank two days later: nothing more is taken.
    reference = reference_for_key(gateway, key)
    offer = pay_now.offer_for_return(case, reference, gateway)
    assert offer is not None
    late = pay_now.finish(offer, reference, gateway=gateway, now=at + timedelta(days=2))
    assert late.outcome is pay_now.Outcome.UNAVAILABLE
    assert [c.result.succeeded for c in gateway.charges] == [False]
    assert list(Payment.objects.values_list("method", flat=True)) == ["bank_transfer"]


def test_a_retry_in_doubt_is_still_looked_up_after_a_transfer_pays_the_invoice(
    bank: Bank,
) -> None:
    """The retry took the money but its answer was lost; a transfer then pays the invoice:
    the case is recovered, and the charge found is flagged for a refund, not forgotten."""
    wake = Case.objects.get().next_retry_at
    assert wake is not None
    bank.answer(lost(succeeded))
    assert bank.run(wake).unknown == 1
    pay_by_transfer(AMOUNT, at=wake + timedelta(minutes=5))
    assert Case.objects.get().state == "recovered"

    bank.run(wake + timedelta(minutes=5))

    case = Case.objects.get()
    assert case.state == "recovered" and in_doubt(case) and case.next_retry_at is None
    assert "check for a refund" in case.retry_reason
    assert CaseEvent.objects.filter(type="retry.not_recorded").exists()


def test_a_canceled_payment_never_lends_its_key_to_the_next_one(bank: Bank) -> None:
    gateway, at, key = sent_to_the_bank(bank)
    cancel = gateway.abandon

    def cancel_answer_lost(reference: str, request: ChargeRequest) -> ChargeResult | None:
        cancel(reference, request)  # canceled at the gateway, but the answer is lost
        raise GatewayError("simulated read timeout on the cancel", permanent=False)

    gateway.abandon = cancel_answer_lost  # type: ignore[method-assign]
    bank.run(at + AUTHENTICATION_WINDOW)
    gateway.abandon = cancel  # type: ignore[method-assign]
    assert key in gateway.canceled and in_doubt(Case.objects.get())
    # Asked again: the canceled payment took nothing, so it reads as never made.
    while in_doubt(case := Case.objects.get()):
        assert case.next_retry_at is not None
        bank.run(case.next_retry_at)

    again = pay_on_the_page(bank, succeeded, at=at + timedelta(hours=3))

    assert bank.keys[-1] != key  # a new payment under a new key
    assert again.outcome is pay_now.Outcome.PAID


def test_a_double_click_sends_the_customer_to_the_bank_both_times(bank: Bank) -> None:
    gateway = stripe_like(bank)
    at = before_the_retry()
    first_press = gateway.charge_on_session
    second: list[pay_now.Attempt] = []

    def slow(request: ChargeRequest, *, return_url: str) -> ChargeResult | Authentication:
        gateway.charge_on_session = first_press  # type: ignore[method-assign]
        second.append(pay_on_the_page(bank, needs_3ds, at=at + timedelta(milliseconds=300)))
        return first_press(request, return_url=return_url)

    gateway.charge_on_session = slow  # type: ignore[method-assign]
    assert pay_on_the_page(bank, needs_3ds, at=at).outcome is pay_now.Outcome.AUTHENTICATE

    assert [attempt.outcome for attempt in second] == [pay_now.Outcome.AUTHENTICATE]
    assert len(set(bank.keys)) == 1


def test_pressing_again_late_in_the_window_sends_the_customer_to_the_bank_again(
    bank: Bank,
) -> None:
    at = before_the_retry()
    assert pay_on_the_page(bank, needs_3ds, at=at).outcome is pay_now.Outcome.AUTHENTICATE

    again = pay_on_the_page(bank, needs_3ds, at=at + timedelta(minutes=52))

    assert again.outcome is pay_now.Outcome.AUTHENTICATE
    # The customer is at the bank again: the window starts over.
    wake = Case.objects.get().next_retry_at
    assert wake == at + timedelta(minutes=52) + AUTHENTICATION_WINDOW


# ---------------------------------------------------------------- while the invoice changes


def test_a_retry_in_flight_when_a_transfer_recovers_the_case_is_not_declared_never_made(
    bank: Bank,
) -> None:
    """While a retry is on the wire, a transfer pays the invoice and another pass runs:
    the worker's lease holds, so the charge is not looked up half-sent; the money it
    then takes is flagged for a refund."""
    gateway = stripe_like(bank)
    wake = Case.objects.get().next_retry_at
    assert wake is not None
    send = gateway.charge

    def slow_charge(request: ChargeRequest) -> ChargeResult:
        gateway.charge = send  # type: ignore[method-assign]
        pay_by_transfer(AMOUNT, at=wake + timedelta(seconds=1))
        assert bank.run(wake + timedelta(seconds=2)).looked_up == 0
        bank.now = wake
        return send(request)

    gateway.charge = slow_charge  # type: ignore[method-assign]
    bank.answer(succeeded)
    bank.run(wake)

    assert [c.result.succeeded for c in gateway.charges] == [True]
    assert Payment.objects.count() == 1  # the transfer; the card's money is not owed
    case = Case.objects.get()
    assert case.state == "recovered" and in_doubt(case) and case.next_retry_at is None
    assert "check for a refund" in case.retry_reason
    assert not CaseEvent.objects.filter(type="retry.not_charged").exists()


def recovered_while_the_page_sends(bank: Bank, at: datetime) -> StripeLike:
    """The customer presses Pay; while the page's request is on the wire a bank transfer
    pays the invoice and a worker pass runs; the gateway answers with the bank's page."""
    gateway = stripe_like(bank)
    send = gateway.charge_on_session

    def slow(request: ChargeRequest, *, return_url: str) -> ChargeResult | Authentication:
        gateway.charge_on_session = send  # type: ignore[method-assign]
        pay_by_transfer(AMOUNT, at=at + timedelta(seconds=1))
        assert bank.run(at + timedelta(seconds=2)).looked_up == 0  # the page's lease holds
        return send(request, return_url=return_url)

    gateway.charge_on_session = slow  # type: ignore[method-assign]
    assert pay_on_the_page(bank, needs_3ds, at=at).outcome is pay_now.Outcome.AUTHENTICATE
    return gateway


def test_a_payment_sent_to_the_bank_after_its_case_was_recovered_is_canceled_at_once(
    bank: Bank,
) -> None:
    at = before_the_retry()
    gateway = recovered_while_the_page_sends(bank, at)
    key = next(iter(gateway.at_the_bank))
    assert Case.objects.get().next_retry_at == at  # asked about at once, not in an hour

    assert bank.run(at + timedelta(seconds=3)).looked_up == 1

    assert key in gateway.canceled
    assert not in_doubt(Case.objects.get())


def test_money_the_page_took_after_its_case_was_recovered_is_flagged_for_a_refund(
    bank: Bank,
) -> None:
    at = before_the_retry()
    gateway = recovered_while_the_page_sends(bank, at)
    event = CaseEvent.objects.get(type=pay_now.SENT_TO_BANK)
    offer = pay_now.offer_for_return(Case.objects.get(), event.data["reference"], gateway)
    assert offer is not None

    done = pay_now.finish(
        offer, event.data["reference"], gateway=gateway, now=at + timedelta(seconds=30)
    )

    assert done.outcome is pay_now.Outcome.PAID  # the bank took it
    assert list(Payment.objects.values_list("method", flat=True)) == ["bank_transfer"]
    case = Case.objects.get()
    assert in_doubt(case) and case.next_retry_at is None
    assert "check for a refund" in case.retry_reason
    assert CaseEvent.objects.filter(type="pay_page.not_recorded").exists()


def test_a_case_recovered_by_the_page_s_payment_says_paid(bank: Bank) -> None:
    at = before_the_retry()

    assert pay_on_the_page(bank, succeeded, at=at).outcome is pay_now.Outcome.PAID

    case = Case.objects.get()
    assert (case.state, case.next_retry_at, case.retry_reason) == ("recovered", None, "paid")


def test_a_partial_transfer_cancels_the_payment_left_at_the_bank_so_the_rest_can_be_paid(
    bank: Bank,
) -> None:
    gateway, at, key = sent_to_the_bank(bank)

    pay_by_transfer(AMOUNT // 3, at=at + timedelta(minutes=2))
    bank.run(at + timedelta(minutes=3))  # a pass right after the transfer

    assert key in gateway.canceled
    later = at + timedelta(minutes=4)
    attempt = pay_on_the_page(bank, succeeded, at=later, amount=AMOUNT - AMOUNT // 3)
    assert attempt.outcome is pay_now.Outcome.PAID
    assert Case.objects.get().state == "recovered"


def test_a_press_while_a_worker_looks_up_waits_even_if_the_worker_s_clock_runs_ahead(
    bank: Bank,
) -> None:
    gateway, at, _ = sent_to_the_bank(bank)
    pressed: list[pay_now.Attempt] = []
    look_up = gateway.find_charge
    worker_now = at + AUTHENTICATION_WINDOW + timedelta(seconds=2)

    def find_while_the_customer_presses(
        request: ChargeRequest, *, since: datetime
    ) -> ChargeResult | None:
        found = look_up(request, since=since)
        # The page read its clock a second before the worker did.
        pressed.append(pay_on_the_page(bank, needs_3ds, at=worker_now - timedelta(seconds=1)))
        bank.now = worker_now
        return found

    gateway.find_charge = find_while_the_customer_presses  # type: ignore[method-assign]
    bank.run(worker_now)

    assert [attempt.outcome for attempt in pressed] == [pay_now.Outcome.BUSY]


def test_a_page_payment_its_webhook_recorded_does_not_hold_up_the_next_invoice(
    bank: Bank,
) -> None:
    gateway = stripe_like(bank)
    at = before_the_retry()
    add_invoice("in_th2", number="INV-2002", due_at=at, collection_method="charge_automatically")
    fail("in_th2", at=at)
    sync_cases(now=at)
    assert pay_on_the_page(bank, needs_3ds, at=at).outcome is pay_now.Outcome.AUTHENTICATE
    key = Case.objects.get().retry_key
    # The customer confirms in the banking app and never comes back; the
    # payment_intent.succeeded webhook records it.
    gateway.answer_at_the_bank(key, succeeded)
    services.record_payment_attempt(
        invoice="in_th",
        attempted_at=at + timedelta(minutes=3),
        outcome="succeeded",
        amount=AMOUNT,
        gateway="simulated",
        reference=reference_for_key(gateway, key),
        payment_method="pm_visa",
        now=at + timedelta(minutes=3),
        source="stripe",
    )

    later = at + timedelta(minutes=10)
    bank.run(later)  # asked about at once: found, on the ledger already

    assert not in_doubt(Case.objects.get())
    attempt = pay_on_the_page(bank, succeeded, at=later)
    assert attempt.outcome is pay_now.Outcome.PAID
    assert Case.objects.get().state == "recovered"
    assert Payment.objects.count() == 2
