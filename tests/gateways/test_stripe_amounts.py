"""Stripe's amount units are not always ISO 4217's (ISK, MGA, three-decimal currencies).

Stripe documents special cases (docs.stripe.com/currencies#special-cases):
ISK stays a two-decimal currency in the API ("an ISK amount of 100 will
continue to represent 1 króna", support.stripe.com, deprecation of fractional
ISK) while ISO 4217 and the ledger give ISK no minor unit; MGA is one of
Stripe's zero-decimal currencies while ISO 4217 and the ledger give it two.
An amount copied as-is between Stripe and the ledger is off by 100 both ways.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dunning.core.money import Money, currency_codes, exponent
from dunning.gateways.base import ChargeRequest, GatewayError
from dunning.gateways.stripe_amounts import from_stripe, stripe_exponent, to_stripe
from dunning.gateways.stripe_gateway import AMOUNT_NOT_REPRESENTABLE, payment_intent_params
from dunning.ledger.models import Invoice, PaymentAttempt
from tests.gateways.stripe_webhooks import StripePoster, story


def finalized_in(currency: str, stripe_amount: int) -> dict[str, Any]:
    told = story("S1")
    event = copy.deepcopy(next(e for e in told["events"] if e["type"] == "invoice.finalized"))
    invoice = event["data"]["object"]
    invoice["currency"] = currency
    for name in ("amount_due", "amount_remaining", "subtotal", "total"):
        invoice[name] = stripe_amount
    for line in invoice["lines"]["data"]:
        line["currency"] = currency
        line["amount"] = line["subtotal"] = stripe_amount
    return event


def request_in(currency: str, amount: int) -> ChargeRequest:
    return ChargeRequest(
        amount=amount,
        currency=currency,
        customer_external_id="cus_1",
        payment_method_external_id="pm_1",
        invoice_external_id="in_1",
        idempotency_key="k1",
    )


def test_the_ledger_and_stripe_disagree_on_these_currencies_minor_units() -> None:
    assert exponent("ISK") == 0 and exponent("MGA") == 2  # ISO 4217, as the ledger keeps them


def test_a_stripe_isk_invoice_of_2900_kronur_is_not_booked_as_290000_kronur(
    stripe: StripePoster,
) -> None:
    # Stripe sends ISK 2,900 as 290000 (two decimals in its API).
    assert stripe.send(finalized_in("isk", 290000)).json()["outcome"] == "applied"
    invoice = Invoice.objects.get()
    assert str(Money(invoice.amount_due, invoice.currency)) == "2900 ISK"


def test_a_stripe_mga_invoice_of_5000_ariary_is_not_booked_as_50_ariary(
    stripe: StripePoster,
) -> None:
    # MGA is zero-decimal at Stripe: 5000 is Ar 5,000.
    assert stripe.send(finalized_in("mga", 5000)).json()["outcome"] == "applied"
    invoice = Invoice.objects.get()
    assert str(Money(invoice.amount_due, invoice.currency)) == "5000.00 MGA"


@pytest.mark.parametrize(
    ("currency", "ledger_amount", "stripe_amount"),
    [
        ("ISK", 2900, 290000),  # ISK 2,900: sent as 2900, Stripe charges ISK 29
        ("MGA", 500000, 5000),  # Ar 5,000.00 in the ledger is 5000 at Stripe
        ("JPY", 1500, 1500),  # zero-decimal on both sides: unchanged
        ("USD", 2900, 2900),
    ],
)
def test_a_charge_sends_stripe_the_amount_in_stripe_s_units(
    currency: str, ledger_amount: int, stripe_amount: int
) -> None:
    params = payment_intent_params(request_in(currency, ledger_amount))
    assert params["amount"] == stripe_amount


@pytest.mark.parametrize(
    ("currency", "ledger_amount"),
    [
        ("KWD", 5125),  # KWD 5.125: Stripe wants the last of three decimals to be 0
        ("MGA", 500050),  # Ar 5,000.50: Stripe counts MGA in whole ariary
    ],
)
def test_an_amount_stripe_cannot_charge_exactly_is_refused_not_rounded(
    currency: str, ledger_amount: int
) -> None:
    with pytest.raises(GatewayError) as raised:
        payment_intent_params(request_in(currency, ledger_amount))

    assert raised.value.code == AMOUNT_NOT_REPRESENTABLE and not raised.value.outcome_unknown
    assert currency in str(raised.value)


def test_a_three_decimal_amount_ending_in_zero_is_charged_as_it_is() -> None:
    assert payment_intent_params(request_in("KWD", 5120))["amount"] == 5120


@given(
    currency=st.sampled_from(sorted(currency_codes())),
    major=st.integers(min_value=0, max_value=10**6),
)
def test_whole_amounts_go_to_stripe_and_come_back_unchanged(currency: str, major: int) -> None:
    ledger = major * 10 ** exponent(currency)
    stripe_units = to_stripe(ledger, currency)

    assert stripe_units == major * 10 ** stripe_exponent(currency)
    assert from_stripe(stripe_units, currency) == ledger


def test_an_isk_amount_with_a_fraction_of_a_krona_is_refused_by_the_webhook(
    stripe: StripePoster,
) -> None:
    response = stripe.send(finalized_in("isk", 290050))  # ISK 2,900.50: no longer possible

    assert response.json()["outcome"] == "rejected"
    assert not Invoice.objects.exists()


def test_a_declined_mga_charge_is_matched_to_its_invoice_in_ledger_units(
    stripe: StripePoster,
) -> None:
    stripe.send(finalized_in("mga", 5000))
    declined = copy.deepcopy(next(e for e in story("S1")["events"] if e["type"] == "charge.failed"))
    charge = declined["data"]["object"]
    charge.update(currency="mga", amount=5000, invoice=None, payment_intent="pi_mga")

    assert stripe.send(declined).json()["outcome"] == "applied"

    [attempt] = PaymentAttempt.objects.all()
    assert (attempt.amount, attempt.currency) == (500000, "MGA")
    assert attempt.invoice == Invoice.objects.get()
