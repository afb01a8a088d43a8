"""Which of a customer's Stripe cards dunning may charge: on file, the default, in any order."""

from __future__ import annotations

import copy
from typing import Any

from dunning.engine.retries import card_to_charge
from dunning.ledger.models import Customer, Event, PaymentAttempt, PaymentMethod
from tests.conftest import ApiClient
from tests.gateways.stripe_server import stripe_object
from tests.gateways.stripe_webhooks import StripePoster, envelope, load, s1

EXAMPLES = load("objects.examples.json")

OLD = "pm_1t42aEWCLm7QxR2nVbgkw1GV"  # the card S1's renewal was declined on
NEW = "pm_1gzWf2aZLm7QxR2nVbu9kVVj"  # the card the customer saves afterwards


def test_a_new_default_card_named_before_its_attached_event_becomes_the_default(
    stripe: StripePoster,
) -> None:
    """Stripe does not promise order: customer.updated (the new card is now the
    default for invoices) can arrive before payment_method.attached for that
    card.  The default must still move to the new card once it is known, or
    dunning keeps retrying the old, declined (and in S1 detached) card."""
    for seq in (4, 6):  # the invoice, and the decline that records the old card
        stripe.send(s1(seq))
    updated = s1(14)
    earlier = copy.deepcopy(updated["data"]["object"])
    earlier["invoice_settings"]["default_payment_method"] = OLD
    stripe.send(
        envelope("customer.updated", earlier, id="evt_old_default", created=s1(6)["created"] + 60)
    )
    assert PaymentMethod.objects.get(external_id=OLD).is_default

    stripe.send(s1(14))  # customer.updated: default -> NEW, delivered first
    stripe.send(s1(13))  # payment_method.attached for NEW, a second older, delivered after
    stripe.send(s1(15))  # payment_method.detached for OLD

    customer = Customer.objects.get(external_id="cus_DyyFsVku600HkP")
    assert PaymentMethod.objects.filter(customer=customer).count() >= 1
    chosen = card_to_charge(customer.pk)
    assert chosen is not None
    assert chosen.external_id == NEW, (
        f"dunning would charge {chosen.external_id}, the old card Stripe no longer has on "
        "the customer, instead of the new default"
    )


def test_a_card_detached_in_stripe_is_no_longer_charged(stripe: StripePoster) -> None:
    """payment_method.detached (S1 seq 15) is ignored: the card stays on file, the
    default, and the retry stage charges it; Stripe refuses a PaymentMethod that no
    longer belongs to the customer, which ends as a permanent error for an operator
    instead of "no saved card: waiting for the customer"."""
    for seq in (4, 6):
        stripe.send(s1(seq))
    updated = copy.deepcopy(s1(14)["data"]["object"])
    updated["invoice_settings"]["default_payment_method"] = OLD
    stripe.send(
        envelope("customer.updated", updated, id="evt_old_default", created=s1(6)["created"] + 60)
    )
    response = stripe.send(s1(15))  # payment_method.detached for OLD
    assert response.status_code == 200

    customer = Customer.objects.get(external_id="cus_DyyFsVku600HkP")
    chosen = card_to_charge(customer.pk)
    assert chosen is None or chosen.external_id != OLD, (
        f"outcome {response.json()}: the detached card is still the one dunning charges"
    )


def test_a_card_seen_only_on_a_declined_charge_does_not_become_the_card_dunning_charges(
    stripe: StripePoster,
) -> None:
    """charge.failed saves the charge's card as one of the customer's saved cards.
    A card the customer tried once on-session (a checkout with another card that
    was declined, never attached to the customer) then becomes, being the newest,
    the card the retry stage charges off-session, ahead of the attached one;
    Stripe refuses an unattached PaymentMethod for the customer."""
    stripe.send(s1(4))
    stripe.send(s1(13))  # payment_method.attached: NEW is the customer's saved card
    tried = s1(10)  # a charge.failed, with another card that is not saved
    charge = tried["data"]["object"]
    charge["id"] = "ch_checkout_declined"
    charge["payment_intent"] = "pi_checkout_declined"
    charge["payment_method"] = "pm_tried_once_never_saved"
    charge["amount"] = 1500  # some other purchase
    tried["id"] = "evt_checkout_declined"
    tried["created"] = s1(13)["created"] + 60
    charge["created"] = tried["created"]
    assert stripe.send(tried).status_code == 200

    customer = Customer.objects.get(external_id="cus_DyyFsVku600HkP")
    chosen = card_to_charge(customer.pk)
    assert chosen is not None
    assert chosen.external_id == NEW, (
        f"{chosen.external_id}, a card seen only on a declined charge, is the one dunning "
        "would charge"
    )


def default_named(method: str, *, at: int, id: str = "evt_named_default") -> dict[str, Any]:
    customer = copy.deepcopy(s1(14)["data"]["object"])
    customer["invoice_settings"]["default_payment_method"] = method
    return envelope("customer.updated", customer, id=id, created=at)


# --- F: a card seen only on a declined charge ----------------------------------------------


def test_a_card_seen_only_on_a_decline_is_kept_for_its_attempts_off_file(
    stripe: StripePoster,
) -> None:
    stripe.send(s1(4))
    stripe.send(s1(6))  # charge.failed: a charge does not say whether its card is saved

    method = PaymentMethod.objects.get(external_id=OLD)
    assert method.detached_at is not None and not method.is_default
    assert PaymentAttempt.objects.get().payment_method == method  # network caps count it
    assert card_to_charge(method.customer_id) is None


def test_a_decline_whose_card_names_the_customer_puts_the_card_on_file(
    stripe: StripePoster,
) -> None:
    """payment_intent.payment_failed carries the PaymentMethod, which names the customer
    it is attached to: Stripe Billing's renewal was tried on a saved card."""
    stripe.send(s1(4))
    stripe.send(s1(6))
    stripe.send(s1(7))

    method = PaymentMethod.objects.get(external_id=OLD)
    assert method.detached_at is None
    assert card_to_charge(method.customer_id) == method


def test_a_card_first_seen_on_a_decline_is_charged_once_it_is_attached(
    stripe: StripePoster,
) -> None:
    stripe.send(s1(4))
    stripe.send(s1(6))
    attached = s1(13)
    attached["data"]["object"]["id"] = OLD
    stripe.send(attached)

    assert card_to_charge(Customer.objects.get().pk).external_id == OLD


# --- E: detached and deleted cards ---------------------------------------------------------


def test_a_detached_card_keeps_its_history_and_says_since_when(stripe: StripePoster) -> None:
    for seq in (4, 6, 7):
        stripe.send(s1(seq))
    stripe.send(default_named(OLD, at=s1(7)["created"] + 60))
    assert stripe.send(s1(15)).json()["outcome"] == "applied"  # payment_method.detached

    method = PaymentMethod.objects.get(external_id=OLD)
    assert method.detached_at is not None and not method.is_default
    assert PaymentAttempt.objects.filter(payment_method=method).exists()
    [detached] = Event.objects.filter(type="payment_method.detached")
    assert detached.data == {
        "payment_method": OLD,
        "reason": "stripe payment_method.detached",
    }


def test_an_attach_older_than_the_detach_delivered_after_it_changes_nothing(
    stripe: StripePoster,
) -> None:
    stripe.send(s1(4))
    detached = s1(15)
    detached["data"]["object"]["id"] = NEW
    stripe.send(detached)
    assert stripe.send(s1(13)).json()["outcome"] == "stale"  # attached NEW, two seconds older

    customer = Customer.objects.get(external_id="cus_DyyFsVku600HkP")
    assert card_to_charge(customer.pk) is None


def test_a_deleted_legacy_card_source_is_no_longer_charged(stripe: StripePoster) -> None:
    card = stripe_object("card_source_expiring")
    stripe.send(envelope("customer.source.created", card, id="evt_src_created", created=1))
    customer = Customer.objects.get(external_id=card["customer"])
    assert card_to_charge(customer.pk) is not None

    deleted = envelope("customer.source.deleted", card, id="evt_src_deleted", created=2)
    assert stripe.send(deleted).json()["outcome"] == "applied"

    assert card_to_charge(customer.pk) is None
    assert PaymentMethod.objects.get(external_id=card["id"]).detached_at is not None


def test_the_api_shows_when_a_card_left_the_customers_file(
    stripe: StripePoster, api: ApiClient
) -> None:
    for seq in (4, 6, 7, 15):
        stripe.send(s1(seq))
    method = PaymentMethod.objects.get(external_id=OLD)

    response = api.get(f"/payment-methods/{method.pk}")

    assert response.status_code == 200, response.content
    assert response.json()["detached_at"] is not None


# --- D: a default named before its card arrives --------------------------------------------


def test_a_default_named_later_for_another_card_wins_over_the_remembered_one(
    stripe: StripePoster,
) -> None:
    for seq in (4, 6, 7):
        stripe.send(s1(seq))
    stripe.send(s1(14))  # default -> NEW, not known yet
    stripe.send(default_named(OLD, at=s1(14)["created"] + 5))  # then back to OLD
    stripe.send(s1(13))  # NEW arrives

    customer = Customer.objects.get(external_id="cus_DyyFsVku600HkP")
    assert card_to_charge(customer.pk).external_id == OLD


def test_a_card_event_that_leaves_out_the_card_s_details_does_not_erase_them(
    stripe: StripePoster,
) -> None:
    """A customer.source.expiring whose card says nothing of its number or expiry
    (fields missing or null) is no news about them: the card keeps the details
    on file, so pre-dunning still knows when it stops working, and nothing reads
    it as a card updated (which retries at once a card declined as expired)."""
    known = copy.deepcopy(EXAMPLES["card_source_expiring"])
    stripe.send(envelope("customer.source.created", known, id="evt_c1", created=1782000000))
    before = PaymentMethod.objects.get(external_id=known["id"])
    thin = copy.deepcopy(known)
    for field in ("last4", "exp_month", "exp_year"):
        thin.pop(field)
    thin["brand"] = None

    response = stripe.send(
        envelope("customer.source.expiring", thin, id="evt_c2", created=1782865020)
    )

    assert response.status_code == 200
    method = PaymentMethod.objects.get(external_id=known["id"])
    assert (method.brand, method.last4, method.exp_month, method.exp_year) == (
        "visa",
        "3220",
        7,
        2026,
    )
    assert (method.details_changed_at, method.number_changed_at) == (None, None)
    assert method.details_since == before.details_since
