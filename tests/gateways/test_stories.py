"""The shared Stripe stories S1-S4, delivered event by event, through the ledger to the engine.

Each event is signed with a test secret and posted one second after Stripe
created it; after each `invoice.payment_failed` the worker's first step
(`sync_cases`) runs at that moment, as a worker would.
"""

from __future__ import annotations

from typing import Any

from dunning.engine import policies
from dunning.engine.cases import sync_cases
from dunning.engine.models import Case
from dunning.gateways.models import WebhookEvent
from dunning.ledger.models import Customer, Event, Invoice, PaymentAttempt, PaymentMethod
from tests.gateways.stripe_webhooks import StripePoster, at, story


def play(stripe: StripePoster, name: str, *, until: int | None = None) -> dict[str, Any]:
    """Deliver the story's events in order (up to seq `until`); every one must be taken."""
    told = story(name)
    policies.ensure_default_policies(now=at(told["events"][0]["created"]))
    for step, event in zip(told["timeline"], told["events"], strict=True):
        if until is not None and step["seq"] > until:
            break
        assert step["event"] == event["id"]
        response = stripe.send(event)
        assert response.status_code == 200, (step, response.content)
        assert response.json()["outcome"] != "rejected", WebhookEvent.objects.get(
            event_id=event["id"]
        ).notes
        if event["type"] == "invoice.payment_failed":
            sync_cases(now=at(event["created"] + 1))
    return told


def attempts(invoice: Invoice) -> list[tuple[str, str, str]]:
    return [
        (a.decline_code, a.advice_code, a.network_code)
        for a in PaymentAttempt.objects.filter(invoice=invoice).order_by("attempted_at")
    ]


def stripe_events(type: str) -> list[dict[str, Any]]:
    return [event.data for event in Event.objects.filter(type=f"stripe.{type}").order_by("id")]


def test_s1_a_case_opens_on_the_failed_renewal_and_recovers_when_the_invoice_is_paid(
    stripe: StripePoster,
) -> None:
    cast = story("S1")["cast"]
    play(stripe, "S1", until=8)
    invoice = Invoice.objects.get(external_id=cast["invoice"])
    assert (invoice.status, invoice.amount_remaining, invoice.currency) == ("open", 2900, "USD")
    assert attempts(invoice) == [("insufficient_funds", "try_again_later", "51")]
    assert invoice.gateway_retry_at == at(1782900000)  # Stripe retries by itself then
    (case,) = Case.objects.filter(invoices=invoice)
    assert (case.state, case.amount_due, case.collection_method) == (
        "active",
        2900,
        "charge_automatically",
    )
    assert case.events.first().reason == "payment_failed"

    play_rest(stripe, "S1", after=8)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("paid", 2900, 0)
    assert invoice.paid_at == at(1782930032)
    assert invoice.gateway_retry_at is None
    assert attempts(invoice) == [
        ("insufficient_funds", "try_again_later", "51"),
        ("expired_card", "confirm_card_data", "54"),
    ]
    (payment,) = invoice.payments.all()
    assert (payment.amount, payment.currency, payment.method, payment.reference) == (
        2900,
        "USD",
        "card",
        cast["payment_intent"],
    )
    new_card = PaymentMethod.objects.get(external_id="pm_1gzWf2aZLm7QxR2nVbu9kVVj")
    assert new_card.is_default and (new_card.brand, new_card.last4, new_card.exp_year) == (
        "mastercard",
        "4444",
        2030,
    )
    case.refresh_from_db()
    assert (case.state, case.amount_due) == ("recovered", 0)
    assert [e["status"] for e in stripe_events("customer.subscription.updated")] == [
        "active",
        "past_due",
        "active",
    ]
    assert WebhookEvent.objects.count() == 21
    assert set(WebhookEvent.objects.filter(outcome="ignored").values_list("type", flat=True)) >= {
        "invoice.upcoming",
        "invoice.created",
        "payment_intent.created",
        "charge.succeeded",
    }


def play_rest(stripe: StripePoster, name: str, *, after: int) -> None:
    told = story(name)
    for step, event in zip(told["timeline"], told["events"], strict=True):
        if step["seq"] <= after:
            continue
        response = stripe.send(event)
        assert response.status_code == 200 and response.json()["outcome"] != "rejected"
        if event["type"] == "invoice.payment_failed":
            sync_cases(now=at(event["created"] + 1))


def test_s2_four_declines_then_uncollectible_leave_the_case_open_with_no_stripe_retry(
    stripe: StripePoster,
) -> None:
    cast = story("S2")["cast"]
    play(stripe, "S2")
    invoice = Invoice.objects.get(external_id=cast["invoice"])
    assert (invoice.status, invoice.amount_remaining) == ("uncollectible", 4900)
    assert [code for code, _, _ in attempts(invoice)] == [
        "generic_decline",
        "insufficient_funds",
        "insufficient_funds",
        "insufficient_funds",
    ]
    assert invoice.gateway_retry_at is None  # next_payment_attempt null after the last one
    assert (
        PaymentAttempt.objects.filter(
            invoice=invoice, payment_method__external_id="pm_1zpOqVU5Lm7QxR2nVbhcPlpM"
        ).count()
        == 4
    )
    (case,) = Case.objects.filter(invoices=invoice)
    assert (case.state, case.amount_due) == ("active", 4900)  # still owed: dunning goes on
    assert Event.objects.filter(invoice=invoice, type="invoice.marked_uncollectible").exists()
    last = stripe_events("customer.subscription.updated")[-1]
    assert (last["status"], last["previous_status"]) == ("unpaid", "past_due")
    customer = Customer.objects.get(external_id=cast["customer"])
    assert (customer.name, customer.phone) == ("Bruno Díaz", "+15005550009")


def test_s2_stripes_retry_time_follows_each_decline(stripe: StripePoster) -> None:
    cast = story("S2")["cast"]
    play(stripe, "S2", until=7)
    invoice = Invoice.objects.get(external_id=cast["invoice"])
    assert invoice.gateway_retry_at == at(1783332000)
    play_rest(stripe, "S2", after=7)
    retries = Event.objects.filter(invoice=invoice, type__startswith="invoice.gateway_retry")
    assert [e.data["at"] for e in retries] == [
        at(1783072800).isoformat(),  # finalized: the first charge
        at(1783332000).isoformat(),
        at(1783764000).isoformat(),
        at(1784368800).isoformat(),
        None,
    ]


def test_s3_a_paid_renewal_opens_no_case_and_its_lost_dispute_is_on_the_invoice(
    stripe: StripePoster,
) -> None:
    cast = story("S3")["cast"]
    play(stripe, "S3")
    invoice = Invoice.objects.get(external_id=cast["invoice"])
    assert (invoice.status, invoice.amount_paid) == ("paid", 1500)
    assert invoice.payments.get().reference == cast["payment_intent"]
    assert not PaymentAttempt.objects.filter(outcome="failed").exists()
    assert sync_cases(now=at(1788012000)) == 0 and not Case.objects.exists()
    disputes = Event.objects.filter(type__startswith="stripe.charge.dispute.").order_by("id")
    assert [e.type for e in disputes] == [
        "stripe.charge.dispute.created",
        "stripe.charge.dispute.funds_withdrawn",
        "stripe.charge.dispute.updated",
        "stripe.charge.dispute.closed",
    ]
    assert all(e.invoice_id == invoice.pk for e in disputes)
    assert all(e.customer_id == invoice.customer_id for e in disputes)
    created, closed = disputes.first(), disputes.last()
    assert created is not None and closed is not None
    assert (created.data["reason"], created.data["status"]) == ("fraudulent", "needs_response")
    assert (closed.data["status"], closed.data["amount"], closed.data["charge"]) == (
        "lost",
        1500,
        "ch_1eOuUshlLm7QxR2nVbP6XI4F",
    )
    assert closed.occurred_at == at(1788012000)


def test_s4_an_expiring_legacy_card_is_noted_updated_and_the_renewal_is_paid(
    stripe: StripePoster,
) -> None:
    cast = story("S4")["cast"]
    play(stripe, "S4", until=1)
    (notice,) = stripe_events("customer.source.expiring")
    assert notice == {
        "payment_method": "card_19qdvuUgLm7QxR2nVbt8R3St",
        "brand": "visa",
        "last4": "3220",
        "exp_month": 7,
        "exp_year": 2026,
    }
    play_rest(stripe, "S4", after=1)
    card = PaymentMethod.objects.get(external_id="card_19qdvuUgLm7QxR2nVbt8R3St")
    assert (card.type, card.exp_month, card.exp_year, card.country) == ("card", 7, 2030, "IE")
    assert card.customer.external_id == cast["customer"]
    assert card.customer.name == "Dana Whitfield"  # named by the invoice, after the card
    invoice = Invoice.objects.get(external_id=cast["invoice"])
    assert (invoice.status, invoice.currency, invoice.amount_paid) == ("paid", "EUR", 1200)
    assert invoice.payments.get().reference == cast["payment_intent"]
    assert not Case.objects.exists()
