"""Dunning pays a Stripe Billing invoice while Stripe's own webhooks about it arrive.

The worker records its chunk's answers after charging; the invoice_payment.paid
and invoice.paid webhooks of the same payment may be recorded first.  Exactly
one payment was taken, so exactly one is recorded, and no refund alarm rings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from dunning.engine import policies
from dunning.engine.cases import sync_cases
from dunning.engine.models import Case, CaseEvent
from dunning.engine.retries import retry_due
from dunning.gateways.base import ChargeRequest, ChargeResult
from dunning.gateways.stripe_gateway import StripeGateway
from dunning.ledger import services
from dunning.ledger.models import Invoice, Payment
from tests.gateways.stripe_server import FakeStripe, stripe_object, with_payments
from tests.gateways.stripe_webhooks import StripePoster, at, s1


def planned_after_a_decline(stripe: StripePoster, stripe_api: FakeStripe) -> StripeGateway:
    """S1's renewal declined once, Smart Retries off: dunning has planned its retry."""
    policies.ensure_default_policies(now=at(s1(4)["created"]))
    first_failure = s1(8)
    first_failure["data"]["object"]["next_payment_attempt"] = None  # Smart Retries off
    for event in (s1(4), s1(6), s1(7), first_failure):
        assert stripe.send(event).status_code == 200
    sync_cases(now=at(first_failure["created"] + 1))
    gateway = StripeGateway(
        api_key=stripe_api.api_key, api_base=stripe_api.url, max_network_retries=0
    )
    retry_due(now=at(first_failure["created"] + 2), gateway=gateway)
    case = Case.objects.get()
    assert case.next_retry_at is not None and case.retry_key
    return gateway


def then_while_charging(gateway: StripeGateway, meanwhile: Callable[[], None]) -> None:
    charge = gateway.charge

    def charge_then(request: ChargeRequest) -> ChargeResult:
        result = charge(request)
        meanwhile()
        return result

    gateway.charge = charge_then  # type: ignore[method-assign]


def retry(gateway: StripeGateway) -> Case:
    case = Case.objects.get()
    assert case.next_retry_at is not None
    retry_due(now=case.next_retry_at, gateway=gateway)
    case.refresh_from_db()
    return case


def not_recorded(case: Case) -> list[str]:
    return list(
        CaseEvent.objects.filter(case=case, type="retry.not_recorded").values_list(
            "reason", flat=True
        )
    )


def pay_answer(stripe_api: FakeStripe, body: dict[str, Any]) -> None:
    invoice_id = Invoice.objects.get().external_id
    stripe_api.reply(200, body, path=f"/v1/invoices/{invoice_id}/pay")


def paid_with_its_payment() -> dict[str, Any]:
    """Stripe's answer to the pay call with `expand[]=payments`: S1's PaymentIntent."""
    return with_payments(stripe_object("invoice_paid"), stripe_object("invoice_payment_paid"))


def test_a_billing_invoice_dunning_paid_whose_webhook_came_first_is_not_a_refund_alarm(
    stripe: StripePoster, stripe_api: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    """Dunning pays a Stripe Billing invoice (POST /v1/invoices/{id}/pay).  Stripe's
    invoice_payment.paid and invoice.paid webhooks can be recorded before the
    worker records the answer of its chunk: the webhook books the payment under
    the PaymentIntent's id, the adapter reports the invoice's id (an answer that
    lists no payment), so the worker must still recognise its own payment rather
    than hold the case "charged but not recorded: check for a refund"."""
    gateway = planned_after_a_decline(stripe, stripe_api)
    pay_answer(stripe_api, stripe_object("invoice_paid"))
    then_while_charging(gateway, lambda: [stripe.send(s1(18)), stripe.send(s1(19))])

    with caplog.at_level(logging.ERROR, logger="dunning.engine.retries"):
        case = retry(gateway)

    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.amount_paid) == ("paid", 2900)
    assert Payment.objects.count() == 1  # one payment, as Stripe took one
    assert not_recorded(case) == []
    assert "refund may be owed" not in caplog.text
    assert case.charge_in_doubt_since is None


def test_the_pay_call_asks_for_the_payments_so_its_answer_names_the_payment_intent(
    stripe: StripePoster, stripe_api: FakeStripe
) -> None:
    gateway = planned_after_a_decline(stripe, stripe_api)
    pay_answer(stripe_api, paid_with_its_payment())
    then_while_charging(gateway, lambda: [stripe.send(s1(18)), stripe.send(s1(19))])

    case = retry(gateway)

    [paid] = [r for r in stripe_api.requests if r.path.endswith("/pay")]
    assert paid.form["expand[0]"] == "payments"
    [payment] = Payment.objects.all()
    assert payment.reference == stripe_object("invoice_payment_paid")["payment"]["payment_intent"]
    assert not_recorded(case) == [] and case.charge_in_doubt_since is None


def test_an_invoice_paid_webhook_before_its_invoice_payment_is_still_the_same_payment(
    stripe: StripePoster, stripe_api: FakeStripe
) -> None:
    """invoice.paid delivered before invoice_payment.paid: the webhook records the payment
    under the PaymentIntent it knows from the renewal's decline."""
    gateway = planned_after_a_decline(stripe, stripe_api)
    pay_answer(stripe_api, paid_with_its_payment())
    then_while_charging(gateway, lambda: [stripe.send(s1(19)), stripe.send(s1(18))])

    case = retry(gateway)

    assert Payment.objects.count() == 1
    assert Invoice.objects.get().status == "paid"
    assert not_recorded(case) == [] and case.charge_in_doubt_since is None


def test_a_payment_recorded_another_way_while_stripe_charged_still_asks_for_a_refund(
    stripe: StripePoster, stripe_api: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    """A bank transfer recorded through the API while Stripe took the card: two payments
    of one invoice, so the refund alarm is right."""
    gateway = planned_after_a_decline(stripe, stripe_api)
    pay_answer(stripe_api, paid_with_its_payment())
    invoice_id = Invoice.objects.get().external_id

    def transfer() -> None:
        now: datetime = at(s1(18)["created"])
        services.record_payment(
            invoice=invoice_id,
            amount=2900,
            currency="USD",
            received_at=now,
            method="bank_transfer",
            reference="TRF-1",
            now=now,
            source="api",
        )

    then_while_charging(gateway, transfer)
    with caplog.at_level(logging.ERROR, logger="dunning.engine.retries"):
        case = retry(gateway)

    assert len(not_recorded(case)) == 1
    assert "refund may be owed" in caplog.text
    assert case.charge_in_doubt_since is not None
