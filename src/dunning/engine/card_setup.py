"""A new card from the customer, saved on the gateway's own page.

The pay page and the card page offer it when the gateway hosts such a page
(`CardSetupGateway`; Stripe does, with Checkout in setup mode).  `start` asks
for the page; the customer types the card there, never here; `finish` reads
what was saved when they come back and records it in the ledger as their
default card.  Recording it is what brings the money in: the ledger's
payment-method signal has the retry stage plan a retry of every open case of
that customer at once ("a new card is on file"), within the card networks'
rules and the policy's budget like any other retry.

A setup is acted on once, noted in the ledger (`card_setup.saved`, with the
gateway's reference): coming back again (a reload, an old tab, a link from the
browser's history) shows the card saved then, and neither asks the gateway
again nor makes that card the default again over one saved since.  A card
already on file as the default with the same details is left alone too (its
webhook came first), so it is not retried again.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.db import transaction

from dunning.gateways.base import CardSetupGateway, CardSetupRequest, Gateway, NewCard
from dunning.ledger.models import Customer, Event, PaymentMethod
from dunning.ledger.services import record_event, upsert_payment_method

SOURCE = "card_page"
SAVED = "card_setup.saved"  # the ledger's note of a setup acted on


def offered(gateway: Gateway) -> bool:
    """Whether the customer can save a new card through this gateway."""
    return isinstance(gateway, CardSetupGateway)


def start(
    customer: Customer,
    *,
    gateway: Gateway,
    return_url: str,
    cancel_url: str,
    language: str,
    now: datetime,
) -> str | None:
    """The URL of the gateway's page for a new card; None when the gateway has none.

    Two presses in the same minute from the same page get the same page (one
    idempotency key); later ones a fresh page.  Raises GatewayError when the
    gateway cannot make one.
    """
    if not isinstance(gateway, CardSetupGateway):
        return None
    # What the request says besides the customer: the same key never carries
    # other parameters (Stripe refuses that as an idempotency error).
    page = hashlib.sha256(f"{return_url}|{cancel_url}|{language}".encode()).hexdigest()[:16]
    return gateway.start_card_setup(
        CardSetupRequest(
            customer_external_id=customer.external_id,
            return_url=return_url,
            cancel_url=cancel_url,
            locale=language,
            idempotency_key=f"card:{customer.external_id}:{now:%Y%m%dT%H%M}:{page}",
        )
    )


def finish(
    customer: Customer, reference: str, *, gateway: Gateway, now: datetime
) -> PaymentMethod | None:
    """The card saved in setup `reference`, now the customer's default; None if not (yet) saved.

    Raises GatewayError when the gateway cannot say, or when `reference` is
    not this customer's setup (a return URL can be edited).
    """
    done = (
        Event.objects.filter(customer=customer, type=SAVED, data__reference=reference)
        .values_list("data", flat=True)
        .first()
    )
    if done is not None:
        return PaymentMethod.objects.filter(
            customer=customer, external_id=done.get("payment_method")
        ).first()
    if not isinstance(gateway, CardSetupGateway):
        return None
    card = gateway.card_setup_result(reference, customer_external_id=customer.external_id)
    if card is None:
        return None
    with transaction.atomic():
        method = _save(customer, card, now=now)
        record_event(
            type=SAVED,
            now=now,
            source=SOURCE,
            customer=customer,
            data={"reference": reference, "payment_method": card.external_id},
        )
    return method


def _save(customer: Customer, card: NewCard, *, now: datetime) -> PaymentMethod:
    values = {
        "type": "card",
        "brand": card.brand,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "is_default": True,
        "detached_at": None,  # just saved on the gateway's page: on the customer's file
    }
    method, _ = upsert_payment_method(
        external_id=card.external_id,
        customer=customer.external_id,
        now=now,
        source=SOURCE,
        skip_unchanged=True,  # a reload, or its webhook came first
        **values,
    )
    return method
