"""An invoice Stripe calls paid, or owing nothing, with less received through Stripe: settled."""

from __future__ import annotations

from dunning.engine import policies
from dunning.engine.cases import sync_cases
from dunning.engine.models import Case
from dunning.gateways.stripe_ledger import OUT_OF_BAND, SETTLED_AT_STRIPE
from dunning.ledger.models import Event, Invoice, Payment
from tests.gateways.stripe_webhooks import StripePoster, at, s1


def dunned_renewal(stripe: StripePoster) -> None:
    """S1's renewal, declined once: an active case."""
    policies.ensure_default_policies(now=at(s1(4)["created"]))
    for seq in (4, 6, 7, 8):
        stripe.send(s1(seq))
    sync_cases(now=at(s1(8)["created"] + 1))
    assert Case.objects.get().state == "active"


def test_an_invoice_marked_paid_out_of_band_in_stripe_is_not_dunned_on(
    stripe: StripePoster,
) -> None:
    """The business marks the renewal "paid outside of Stripe" (a bank transfer):
    Stripe sends invoice.paid with status paid and nothing remaining, but no
    money moved through Stripe, so amount_paid does not cover the invoice."""
    dunned_renewal(stripe)
    paid = s1(19)  # invoice.paid
    invoice = paid["data"]["object"]
    invoice.update(amount_paid=0, amount_remaining=0, paid_out_of_band=True)
    invoice["status_transitions"]["paid_at"] = paid["created"]
    assert stripe.send(paid).json()["outcome"] == "applied"

    saved = Invoice.objects.get()
    assert saved.gateway_retry_at is None  # Stripe's retries stopped with it
    assert (saved.status, saved.amount_remaining) != ("open", 2900), (
        "Stripe says paid with 0 remaining, yet the ledger keeps it open and owing: "
        "dunning goes on charging and reminding for a settled invoice"
    )

    [payment] = Payment.objects.all()
    assert (payment.amount, payment.method) == (2900, OUT_OF_BAND)
    assert payment.received_at == at(paid["created"])
    [why] = Event.objects.filter(type="stripe.invoice.settled_without_payment")
    assert why.data["paid_out_of_band"] is True and why.data["settled"] == 2900

    sync_cases(now=at(paid["created"] + 1))
    assert Case.objects.get().state != "active"  # no more reminders or charges


def test_an_open_invoice_with_nothing_remaining_at_stripe_is_settled_as_such(
    stripe: StripePoster,
) -> None:
    """A credit applied at Stripe leaves nothing to pay, with no payment behind it."""
    dunned_renewal(stripe)
    updated = s1(19)
    updated["type"] = "invoice.updated"
    invoice = updated["data"]["object"]
    invoice.update(status="open", amount_paid=0, amount_remaining=0)

    assert stripe.send(updated).json()["outcome"] == "applied"

    assert Invoice.objects.get().status == "paid"
    assert Payment.objects.get().method == SETTLED_AT_STRIPE


def test_the_settlement_is_recorded_once_however_often_stripe_says_paid(
    stripe: StripePoster,
) -> None:
    dunned_renewal(stripe)
    paid = s1(19)
    paid["data"]["object"].update(amount_paid=0, amount_remaining=0, paid_out_of_band=True)
    stripe.send(paid)
    again = s1(20)  # invoice.payment_succeeded, the same snapshot a moment later
    again["data"]["object"].update(amount_paid=0, amount_remaining=0, paid_out_of_band=True)
    stripe.send(again)
    stripe.send(s1(12))  # an old invoice.payment_failed, late

    saved = Invoice.objects.get()
    assert (saved.status, saved.amount_paid) == ("paid", 2900)
    assert Payment.objects.count() == 1


def test_money_stripe_received_is_a_card_payment_and_only_the_rest_is_out_of_band(
    stripe: StripePoster,
) -> None:
    dunned_renewal(stripe)
    paid = s1(19)
    paid["data"]["object"].update(amount_paid=1000, amount_remaining=0, paid_out_of_band=True)

    stripe.send(paid)

    assert sorted(Payment.objects.values_list("method", "amount")) == [
        ("card", 1000),
        (OUT_OF_BAND, 1900),
    ]
