"""POST /webhooks/stripe: signatures (WH02), storing each event once, order, and the mapping."""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from dunning.gateways import webhooks
from dunning.gateways.models import WebhookEvent
from dunning.ledger import services
from dunning.ledger.models import (
    Customer,
    Event,
    Invoice,
    Payment,
    PaymentAttempt,
    PaymentMethod,
)
from tests.gateways.stripe_server import stripe_resource, variant
from tests.gateways.stripe_webhooks import (
    SECRET,
    StripePoster,
    at,
    body_of,
    envelope,
    load,
    s1,
    sign,
)

VECTORS = load("webhook-signatures/stripe-signature.vectors.json")["vectors"]
EXAMPLES = load("objects.examples.json")
S1_VECTOR = next(v for v in VECTORS if v["name"].startswith("story S1"))


def ledger_events() -> int:
    return Event.objects.count()


# --- WH02: the signature --------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_wh02_each_shared_vector_is_judged_as_it_expects(vector: dict[str, Any]) -> None:
    verify_at = at(vector.get("verify_at", vector["timestamp"] + 10))
    check = lambda: webhooks.verify_signature(  # noqa: E731
        vector["payload"].encode(), vector["header"], [vector["secret"]], now=verify_at
    )
    if vector["expect"] == "valid":
        check()
    else:
        with pytest.raises(webhooks.SignatureError):
            check()


def test_wh02_the_rules_vector_holds_and_the_secret_keeps_its_whsec_prefix() -> None:
    payload = b'{"id":"evt_test_webhook","object":"event"}'
    header = "t=1614265330,v1=3c5817089d739023dd6190f70a3757e04f7a2fd8b5dab12c2e000f51970dccff"
    webhooks.verify_signature(payload, header, ["whsec_test_secret"], now=at(1614265330))
    with pytest.raises(webhooks.SignatureError):
        webhooks.verify_signature(payload, header, ["test_secret"], now=at(1614265330))


def test_wh02_the_tolerance_is_300_seconds_and_a_future_timestamp_passes() -> None:
    vector = S1_VECTOR
    payload, header, t = vector["payload"].encode(), vector["header"], vector["timestamp"]
    for offset in (0, 299, 300, -301):
        webhooks.verify_signature(payload, header, [vector["secret"]], now=at(t + offset))
    with pytest.raises(webhooks.SignatureError, match="300 s old"):
        webhooks.verify_signature(payload, header, [vector["secret"]], now=at(t + 301))


def test_wh02_a_payload_with_one_byte_changed_is_refused() -> None:
    vector = S1_VECTOR
    payload = vector["payload"].replace('"amount_due": 2900', '"amount_due": 2901').encode()
    assert payload != vector["payload"].encode()
    with pytest.raises(webhooks.SignatureError):
        webhooks.verify_signature(
            payload, vector["header"], [vector["secret"]], now=at(vector["verify_at"])
        )


def test_wh02_a_bad_v1_beside_a_good_one_passes_and_v0_alone_does_not() -> None:
    vector = S1_VECTOR
    payload, t = vector["payload"].encode(), vector["timestamp"]
    good = vector["expected_v1_signature"]
    now = at(vector["verify_at"])
    webhooks.verify_signature(
        payload, f"t={t},v1={'0' * 64},v1={good}", [vector["secret"]], now=now
    )
    with pytest.raises(webhooks.SignatureError):
        webhooks.verify_signature(payload, f"t={t},v0={good}", [vector["secret"]], now=now)


def test_wh02_the_shared_s1_vector_is_accepted_by_the_view_and_applied(
    stripe: StripePoster, settings: Any
) -> None:
    settings.DUNNING_STRIPE_WEBHOOK_SECRET = [S1_VECTOR["secret"]]
    response = stripe.post(
        S1_VECTOR["payload"].encode(), S1_VECTOR["header"], now=S1_VECTOR["verify_at"]
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"received": True, "outcome": "applied"}
    invoice = Invoice.objects.get(external_id="in_1KlEfETRLm7QxR2nVbVed6zb")
    assert (invoice.status, invoice.currency, invoice.amount_due) == ("open", "USD", 2900)
    assert invoice.gateway_retry_at == at(1782900000)  # next_payment_attempt


def test_wh02_the_view_refuses_the_s1_vector_301_seconds_late(
    stripe: StripePoster, settings: Any
) -> None:
    settings.DUNNING_STRIPE_WEBHOOK_SECRET = [S1_VECTOR["secret"]]
    response = stripe.post(
        S1_VECTOR["payload"].encode(), S1_VECTOR["header"], now=S1_VECTOR["timestamp"] + 301
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_signature"
    assert not WebhookEvent.objects.exists()
    assert not Invoice.objects.exists()


def test_it_refuses_a_wrong_secret_and_logs_neither_secret_nor_body(
    stripe: StripePoster, caplog: pytest.LogCaptureFixture
) -> None:
    event = s1(8)
    body = body_of(event)
    header = sign(body, secret="whsec_someone_else", timestamp=event["created"])
    with caplog.at_level(logging.WARNING, logger="dunning.gateways.webhooks"):
        response = stripe.post(body, header, now=event["created"])
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "bad_signature",
        "message": "The Stripe-Signature header is not valid.",
    }
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    logged = caplog.text
    assert SECRET not in logged and "whsec_someone_else" not in logged
    assert "in_1KlEfETRLm7QxR2nVbVed6zb" not in logged and header not in logged
    assert not WebhookEvent.objects.exists() and ledger_events() == 0


def test_it_refuses_a_missing_or_malformed_header(stripe: StripePoster) -> None:
    event = s1(8)
    for header in (None, "", "i'm not even a real signature header"):
        response = stripe.post(body_of(event), header, now=event["created"])
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "bad_signature"
    assert not WebhookEvent.objects.exists()


def test_a_rolled_secret_keeps_working_beside_the_new_one(
    stripe: StripePoster, settings: Any
) -> None:
    settings.DUNNING_STRIPE_WEBHOOK_SECRET = ["whsec_the_new_one", SECRET]
    assert stripe.send(s1(4)).status_code == 200
    settings.DUNNING_STRIPE_WEBHOOK_SECRET = ["whsec_the_new_one"]
    assert stripe.send(s1(8)).status_code == 400
    assert stripe.send(s1(8), secret="whsec_the_new_one").status_code == 200


def test_without_a_configured_secret_it_answers_503_and_stores_nothing(
    stripe: StripePoster, settings: Any
) -> None:
    settings.DUNNING_STRIPE_WEBHOOK_SECRET = []
    response = stripe.send(s1(8))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_configured"
    assert not WebhookEvent.objects.exists()


def test_only_post_is_allowed(stripe: StripePoster) -> None:
    response = stripe.client.get("/webhooks/stripe")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_signed_body_that_is_not_an_event_is_refused(stripe: StripePoster) -> None:
    body = b'{"id": "evt_1", "object": "event"}'
    response = stripe.post(body, sign(body, timestamp=1782640809), now=1782640809)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


# --- once only, and in any order ------------------------------------------------------------


def test_a_redelivered_event_is_processed_once(stripe: StripePoster) -> None:
    stripe.send(s1(4))
    first = stripe.send(s1(6))  # charge.failed
    assert first.json() == {"received": True, "outcome": "applied"}
    events_after_first = ledger_events()

    again = stripe.send(s1(6), delay=3600)  # Stripe's retry, an hour later
    assert again.status_code == 200
    assert again.json() == {"received": True, "duplicate": True}
    assert ledger_events() == events_after_first
    assert PaymentAttempt.objects.count() == 1
    assert WebhookEvent.objects.filter(event_id=s1(6)["id"]).count() == 1


def test_a_charge_and_its_payment_intent_record_one_attempt_with_the_network_codes(
    stripe: StripePoster,
) -> None:
    stripe.send(s1(4))
    stripe.send(s1(7))  # payment_intent.payment_failed first, this time
    stripe.send(s1(6))  # charge.failed: the same charge
    (attempt,) = PaymentAttempt.objects.all()
    assert attempt.outcome == "failed"
    assert attempt.reference == "ch_1HnSoc82Lm7QxR2nVbpg4EUW"
    assert (attempt.decline_code, attempt.advice_code, attempt.network_code) == (
        "insufficient_funds",
        "try_again_later",
        "51",
    )
    assert (attempt.amount, attempt.currency, attempt.gateway) == (2900, "USD", "stripe")
    assert attempt.attempted_at == at(1782640807)
    method = attempt.payment_method
    assert method is not None and method.external_id == "pm_1t42aEWCLm7QxR2nVbgkw1GV"
    assert (method.brand, method.last4, method.exp_month, method.exp_year, method.country) == (
        "visa",
        "9995",
        6,
        2026,
        "US",
    )
    outcomes = dict(WebhookEvent.objects.values_list("type", "outcome"))
    assert outcomes["charge.failed"] == "ignored"


def with_mastercard_advice(event: dict[str, Any], mac: str) -> dict[str, Any]:
    """S1's decline as a Mastercard with a merchant advice code: Stripe puts it in the
    charge's `outcome.network_advice_code`, the payment intent's
    `last_payment_error.network_advice_code` (the field catalog of the shared fixtures)."""
    obj = event["data"]["object"]
    decline = obj["outcome"] if obj["object"] == "charge" else obj["last_payment_error"]
    decline["network_advice_code"] = mac
    return event


def test_a_charge_failed_keeps_mastercard_s_merchant_advice_code(stripe: StripePoster) -> None:
    stripe.send(s1(4))
    stripe.send(with_mastercard_advice(s1(6), "03"))  # charge.failed

    assert PaymentAttempt.objects.get().network_advice_code == "03"
    assert Event.objects.get(type="payment_attempt.failed").data["network_advice_code"] == "03"


def test_a_payment_intent_failure_keeps_mastercard_s_merchant_advice_code(
    stripe: StripePoster,
) -> None:
    stripe.send(s1(4))
    stripe.send(with_mastercard_advice(s1(7), "25"))  # payment_intent.payment_failed

    assert PaymentAttempt.objects.get().network_advice_code == "25"


def test_a_failed_3d_secure_reported_by_webhook_is_no_decline_of_the_card(
    stripe: StripePoster,
) -> None:
    """A customer who fails or leaves 3-D Secure on the bank's page: Stripe puts the
    PaymentIntent back to requires_payment_method with an invalid_request_error
    (`payment_intent_authentication_failure`).  The issuer was never asked for an
    authorisation, so nothing counts toward the card's network caps."""
    stripe.send(s1(4))
    failed = s1(7)  # payment_intent.payment_failed
    intent = failed["data"]["object"]
    intent["last_payment_error"] = {
        "type": "invalid_request_error",
        "code": "payment_intent_authentication_failure",
        "message": "The provided PaymentMethod has failed authentication.",
        "payment_method": intent["last_payment_error"].get("payment_method"),
    }
    intent.pop("latest_charge", None)

    answer = stripe.send(failed)

    assert answer.status_code == 200
    assert answer.json()["outcome"] == "ignored"
    assert not PaymentAttempt.objects.exists()


def test_a_decline_matched_to_its_invoice_later_keeps_its_merchant_advice_code(
    stripe: StripePoster,
) -> None:
    stripe.send(with_mastercard_advice(s1(6), "21"))  # no invoice known yet
    stripe.send(s1(8))  # invoice.payment_failed brings the invoice

    assert PaymentAttempt.objects.get().network_advice_code == "21"


def test_the_shared_declines_carry_no_merchant_advice_code(stripe: StripePoster) -> None:
    stripe.send(s1(4))
    stripe.send(s1(6))  # Visa: "network_advice_code": null

    assert PaymentAttempt.objects.get().network_advice_code == ""


def test_an_old_payment_failed_arriving_after_paid_neither_reopens_nor_unpays(
    stripe: StripePoster,
) -> None:
    stripe.send(s1(4))  # finalized
    stripe.send(s1(19))  # invoice.paid
    late = stripe.send(s1(12), delay=86400)  # the second payment_failed, a day late
    assert late.status_code == 200
    assert late.json()["outcome"] == "stale"
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("paid", 2900, 0)
    assert invoice.gateway_retry_at is None
    assert Payment.objects.count() == 1


def test_a_payment_failed_of_the_same_second_as_paid_cannot_reopen_it(
    stripe: StripePoster,
) -> None:
    stripe.send(s1(4))
    paid = s1(19)
    stripe.send(paid)
    failed = s1(12)
    failed["created"] = paid["created"]  # a tie: both snapshots are applied
    assert stripe.send(failed).json()["outcome"] == "applied"
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.amount_remaining, invoice.gateway_retry_at) == ("paid", 0, None)


def test_a_decline_delivered_before_its_invoice_becomes_an_attempt_when_the_invoice_arrives(
    stripe: StripePoster,
) -> None:
    stripe.send(s1(6))  # charge.failed: no invoice known yet
    assert not PaymentAttempt.objects.exists()
    assert Event.objects.filter(type="stripe.charge.failed", data__matched=False).count() == 1
    stripe.send(s1(8))  # invoice.payment_failed brings the invoice
    (attempt,) = PaymentAttempt.objects.all()
    assert attempt.invoice.external_id == "in_1KlEfETRLm7QxR2nVbVed6zb"
    assert attempt.decline_code == "insufficient_funds"
    stripe.send(s1(4))  # the finalized event, last of all: older, so not applied
    assert PaymentAttempt.objects.count() == 1
    assert WebhookEvent.objects.get(event_id=s1(4)["id"]).outcome == "stale"


def test_a_decline_of_what_remains_on_a_partly_paid_invoice_is_attached_when_it_arrives(
    stripe: StripePoster,
) -> None:
    """The charge was for what remained (1900 of 2900): it fits the invoice by its
    remaining amount, as a decline on a known invoice is matched."""
    declined = s1(6)
    declined["data"]["object"]["amount"] = 1900
    stripe.send(declined)
    partly_paid = s1(8)
    partly_paid["data"]["object"].update(amount_paid=1000, amount_remaining=1900)

    stripe.send(partly_paid)

    (attempt,) = PaymentAttempt.objects.all()
    assert (attempt.invoice.external_id, attempt.amount) == ("in_1KlEfETRLm7QxR2nVbVed6zb", 1900)


def test_an_unknown_event_type_is_accepted_stored_and_ignored(stripe: StripePoster) -> None:
    event = envelope(
        "terminal.reader.action_succeeded",
        {"id": "tmr_1", "object": "terminal.reader"},
        id="evt_unknown_1",
        created=1782640800,
    )
    response = stripe.send(event)
    assert response.status_code == 200
    assert response.json() == {"received": True, "outcome": "ignored"}
    stored = WebhookEvent.objects.get()
    assert (stored.provider, stored.event_id, stored.type, stored.outcome) == (
        "stripe",
        "evt_unknown_1",
        "terminal.reader.action_succeeded",
        "ignored",
    )
    assert stored.created == at(1782640800) and stored.processed_at == at(1782640801)
    assert ledger_events() == 0


def test_a_fact_the_ledger_refuses_is_stored_as_rejected_and_answered_200(
    stripe: StripePoster,
) -> None:
    stripe.send(s1(4))
    changed = s1(8)
    changed["data"]["object"]["currency"] = "eur"  # an invoice cannot change currency
    response = stripe.send(changed)
    assert response.status_code == 200
    assert response.json()["outcome"] == "rejected"
    stored = WebhookEvent.objects.get(event_id=changed["id"])
    assert stored.notes.startswith("currency:")
    assert Invoice.objects.get().currency == "USD"


# --- the mapping, event by event ------------------------------------------------------------


def _finalized_with(change: Any) -> dict[str, Any]:
    event = s1(4)
    change(event["data"]["object"])
    return event


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda invoice: invoice.update(amount_due=-2900), "amount_due: must not be negative"),
        (lambda invoice: invoice.update(amount_paid=10**20), "amount_paid: too large"),
        (lambda invoice: invoice.update(amount_due="2900"), "amount_due: expected an integer"),
        (lambda invoice: invoice.update(due_date=10**18), "due_date: not a time"),
        (lambda invoice: invoice.update(status_transitions=[]), "status_transitions: expected"),
        (lambda invoice: invoice["lines"].update(data=[2900]), "lines.data: expected"),
        (
            # The address itself is not repeated in the notes or the log.
            lambda invoice: invoice.update(customer_address="99 Soi 4, Bangkok"),
            "customer_address: expected an object, got a string",
        ),
        (lambda invoice: invoice.update(currency="xts"), "currency: expected an ISO 4217 code"),
    ],
    ids=[
        "negative",
        "too large",
        "a string",
        "year 31 billion",
        "a list",
        "a number",
        "text",
        "XTS",
    ],
)
def test_an_invoice_stripe_never_sends_is_rejected_naming_the_field_and_changes_nothing(
    stripe: StripePoster, change: Any, named: str
) -> None:
    response = stripe.send(_finalized_with(change))
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "rejected"
    assert named in WebhookEvent.objects.get().notes
    assert not Invoice.objects.exists() and not Customer.objects.exists()
    assert ledger_events() == 0


def test_a_decline_of_a_negative_amount_is_rejected(stripe: StripePoster) -> None:
    stripe.send(s1(4))
    failed = s1(6)
    failed["data"]["object"]["amount"] = -2900
    assert stripe.send(failed).json()["outcome"] == "rejected"
    assert "amount: must not be negative" in WebhookEvent.objects.get(event_id=failed["id"]).notes
    assert not Event.objects.filter(type__startswith="stripe.charge").exists()


def test_an_event_of_a_connected_account_is_ignored(
    stripe: StripePoster, caplog: pytest.LogCaptureFixture
) -> None:
    # Delivered to a Connect endpoint: the invoice is the connected account's,
    # its customer is not on this account, and no charge here could pay it.
    event = s1(4)
    event["account"] = "acct_1Qm3xYLm7QxR2nVb"
    with caplog.at_level(logging.WARNING, logger="dunning.gateways"):
        response = stripe.send(event)
    assert response.json() == {"received": True, "outcome": "ignored"}
    assert "acct_1Qm3xYLm7QxR2nVb" in WebhookEvent.objects.get().notes
    assert "acct_1Qm3xYLm7QxR2nVb" in caplog.text
    assert not Invoice.objects.exists() and not Customer.objects.exists()
    assert ledger_events() == 0


@pytest.mark.parametrize(
    ("api_key", "applied"),
    [
        ("sk_live_51DunningLiveKey0000", False),  # live charges: a test event is not ours
        ("rk_live_51DunningRestricted00", False),
        ("sk_test_51DunningTestKey0000", True),
        ("", True),  # no key (the manual gateway): the mode is not known
    ],
)
def test_a_test_mode_event_is_ignored_where_dunning_charges_in_live_mode(
    stripe: StripePoster,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    api_key: str,
    applied: bool,
) -> None:
    """A test endpoint's secret put into DUNNING_STRIPE_WEBHOOK_SECRET beside the live
    one would let test-mode customers and invoices into the production ledger, to be
    reminded and charged (S1's events are test mode)."""
    settings.DUNNING_STRIPE_API_KEY = api_key
    with caplog.at_level(logging.WARNING, logger="dunning.gateways"):
        response = stripe.send(s1(4))
    assert response.json()["outcome"] == ("applied" if applied else "ignored")
    assert Invoice.objects.exists() is applied
    if not applied:
        assert "test mode" in WebhookEvent.objects.get().notes
        assert "test mode" in caplog.text and api_key not in caplog.text


@pytest.mark.parametrize(
    ("type", "example"),
    [
        ("payment_method.attached", "invoice_open"),
        ("customer.subscription.updated", "invoice_open"),
        ("customer.updated", "subscription_active"),
        ("invoice.paid", "charge_succeeded"),
    ],
)
def test_an_event_carrying_another_kind_of_object_is_rejected_not_read_as_its_own(
    stripe: StripePoster, type: str, example: str
) -> None:
    obj = copy.deepcopy(EXAMPLES[example])
    response = stripe.send(envelope(type, obj, id="evt_odd", created=1782640900))
    assert response.json()["outcome"] == "rejected"
    notes = WebhookEvent.objects.get().notes
    assert "data.object.object: expected" in notes and repr(obj["object"]) in notes
    assert not PaymentMethod.objects.exists() and not Customer.objects.exists()
    assert ledger_events() == 0


@pytest.mark.parametrize(
    "event",
    [
        {**envelope("invoice.paid", {}, id="evt_1", created=1782640800), "created": 10**15},
        envelope("invoice.paid", {}, id="evt_" + "x" * 300, created=1782640800),
        envelope("x" * 200, {}, id="evt_2", created=1782640800),
    ],
    ids=["created in year 31 million", "an id longer than 255", "a type longer than 128"],
)
def test_an_envelope_stripe_never_sends_is_refused_with_400(
    stripe: StripePoster, event: dict[str, Any]
) -> None:
    body = body_of(event)
    response = stripe.post(body, sign(body, timestamp=1782640801), now=1782640801)
    assert response.status_code == 400, response.content
    assert not WebhookEvent.objects.exists()


def test_customer_created_and_updated_keep_the_customers_details(stripe: StripePoster) -> None:
    customer = copy.deepcopy(EXAMPLES["customer_delinquent"])
    stripe.send(envelope("customer.created", customer, id="evt_c1", created=1765357200))
    saved = Customer.objects.get(external_id="cus_DyyFsVku600HkP")
    assert (saved.name, saved.email, saved.phone, saved.locale, saved.country) == (
        "Avery Chen",
        "avery.chen@example.com",
        "+14155550123",
        "en-US",
        "US",
    )
    stripe.send(
        envelope(
            "payment_method.attached",
            EXAMPLES["payment_method_card"],
            id="evt_p1",
            created=1782930001,
        )
    )
    stripe.send(s1(14))  # customer.updated: the new card becomes the default
    method = PaymentMethod.objects.get(external_id="pm_1gzWf2aZLm7QxR2nVbu9kVVj")
    assert method.is_default and (method.brand, method.last4) == ("mastercard", "4444")
    customer["name"] = "Avery Chen-Lee"
    stripe.send(envelope("customer.updated", customer, id="evt_c0", created=1765357300))
    assert Customer.objects.get().name == "Avery Chen"  # older than the update already applied


def test_customer_details_the_ledger_cannot_hold_are_left_out_not_stored_as_sent(
    stripe: StripePoster,
) -> None:
    # Stripe saves what it is sent in address.country (stripe/stripe-node#1680:
    # "US - United States"), up to 256 characters of name and 512 of email.
    customer = copy.deepcopy(EXAMPLES["customer_delinquent"])
    customer["address"]["country"] = "US - United States"
    customer["name"] = "N" * 256
    customer["email"] = "José@example.com"  # a mailbox the email channel cannot send to
    customer["preferred_locales"] = ["not a locale"]
    response = stripe.send(envelope("customer.created", customer, id="evt_c1", created=1765357200))
    assert response.json() == {"received": True, "outcome": "applied"}
    saved = Customer.objects.get(external_id=customer["id"])
    assert (saved.name, saved.email, saved.locale, saved.country) == ("N" * 255, "", "en", "")
    assert "left out: email, locale, country" in WebhookEvent.objects.get(event_id="evt_c1").notes
    # An invoice naming a customer not met yet brings the same details.
    invoice = copy.deepcopy(EXAMPLES["invoice_open"])
    invoice["customer"] = "cus_NotMetYet"
    invoice["customer_address"]["country"] = "United States"
    invoice["customer_email"] = "a" * 250 + "@example.com"
    stripe.send(envelope("invoice.finalized", invoice, id="evt_i1", created=1782640900))
    other = Customer.objects.get(external_id="cus_NotMetYet")
    assert (other.name, other.email, other.country) == ("Avery Chen", "", "")


def test_a_voided_invoice_is_void(stripe: StripePoster) -> None:
    invoice = EXAMPLES["invoice_void"]
    stripe.send(envelope("invoice.voided", invoice, id="evt_v1", created=1782640900))
    saved = Invoice.objects.get(external_id=invoice["id"])
    assert saved.status == "void" and saved.gateway_retry_at is None
    assert Event.objects.filter(invoice=saved, type="invoice.voided", source="stripe").exists()


def test_an_invoice_keeps_its_number_lines_period_and_amounts_in_minor_units(
    stripe: StripePoster,
) -> None:
    stripe.send(s1(4))
    invoice = Invoice.objects.get()
    assert (invoice.number, invoice.collection_method, invoice.currency) == (
        "BMQAJ5L9-0007",
        "charge_automatically",
        "USD",
    )
    assert (invoice.amount_due, invoice.amount_paid, invoice.amount_remaining) == (2900, 0, 2900)
    assert invoice.due_at == invoice.issued_at == at(1782640800)
    assert invoice.lines == [
        # The multiplication sign is Stripe's own description.
        {
            "description": "1 \u00d7 Lumen Notes Pro (at $29.00 / month)",
            "quantity": 1,
            "amount": 2900,
        }
    ]
    assert invoice.context["subscription"] == "sub_1VColBWtLm7QxR2nVbaIMWS7"
    assert invoice.context["period_start"] == at(1782637200).isoformat()
    assert invoice.context["period_end"] == at(1785229200).isoformat()
    assert invoice.customer.name == "Avery Chen"


def test_will_be_due_and_overdue_are_recorded_on_the_invoice(stripe: StripePoster) -> None:
    base = EXAMPLES["invoice_open"]
    stripe.send(envelope("invoice.will_be_due", base, id="evt_w1", created=1782640900))
    stripe.send(envelope("invoice.overdue", base, id="evt_o1", created=1782641900))
    types = list(
        Event.objects.filter(invoice__external_id=base["id"]).values_list("type", flat=True)
    )
    assert "stripe.invoice.will_be_due" in types and "stripe.invoice.overdue" in types


def test_a_card_updated_by_the_network_is_saved_and_noted(stripe: StripePoster) -> None:
    card = copy.deepcopy(EXAMPLES["payment_method_card"])
    stripe.send(envelope("payment_method.attached", card, id="evt_a1", created=1782930001))
    card["card"]["exp_year"] = 2033
    card["card"]["last4"] = "0005"
    stripe.send(
        envelope("payment_method.automatically_updated", card, id="evt_a2", created=1790000000)
    )
    method = PaymentMethod.objects.get()
    assert (method.last4, method.exp_year) == ("0005", 2033)
    assert Event.objects.filter(type="stripe.payment_method.automatically_updated").count() == 1


def test_a_dispute_on_an_unknown_charge_is_still_recorded(stripe: StripePoster) -> None:
    dispute = EXAMPLES["dispute_needs_response"]
    stripe.send(envelope("charge.dispute.created", dispute, id="evt_d1", created=1784556000))
    (event,) = Event.objects.filter(type="stripe.charge.dispute.created")
    assert event.invoice is None
    assert event.data["reason"] == "fraudulent" and event.data["amount"] == 1500
    assert event.data["currency"] == "USD"


def dunning_s_payment_intent(make_invoice: Any) -> dict[str, Any]:
    """Stripe's succeeded PaymentIntent as one dunning made for invoice in_pay."""
    intent = copy.deepcopy(EXAMPLES["payment_intent_succeeded"])
    make_invoice(
        "in_pay",
        customer=intent["customer"],
        currency="USD",
        amount_due=intent["amount"],
        collection_method="charge_automatically",
    )
    intent["metadata"] = {"dunning_invoice": "in_pay", "dunning_case": "1"}
    return intent


def test_a_payment_intent_dunning_made_is_recorded_by_its_webhook_once(
    stripe: StripePoster, make_invoice: Any
) -> None:
    # The customer confirmed the pay page's payment in their banking app and
    # never came back to the page: the webhook records it, once.
    intent = dunning_s_payment_intent(make_invoice)
    event = envelope("payment_intent.succeeded", intent, id="evt_pi_ok_1", created=1782640900)

    assert stripe.send(event).json() == {"received": True, "outcome": "applied"}
    again = envelope("payment_intent.succeeded", intent, id="evt_pi_ok_2", created=1782640901)
    assert stripe.send(again).json() == {"received": True, "outcome": "ignored"}

    (attempt,) = PaymentAttempt.objects.all()
    assert (attempt.outcome, attempt.reference, attempt.amount) == (
        "succeeded",
        intent["id"],
        intent["amount"],
    )
    assert Invoice.objects.get(external_id="in_pay").status == "paid"
    assert Payment.objects.count() == 1


def test_a_payment_intent_dunning_did_not_make_is_ignored(stripe: StripePoster) -> None:
    intent = copy.deepcopy(EXAMPLES["payment_intent_succeeded"])  # no dunning_invoice
    event = envelope("payment_intent.succeeded", intent, id="evt_pi_other", created=1782640900)

    assert stripe.send(event).json() == {"received": True, "outcome": "ignored"}
    assert not PaymentAttempt.objects.exists()


def card_page_setup(**changes: Any) -> dict[str, Any]:
    """The SetupIntent of a card saved on the card page's Stripe page (its metadata marks it)."""
    values = {
        "status": "succeeded",
        "customer": "cus_en",
        "payment_method": "pm_new",
        "metadata": {"dunning_card_setup": "true"},
        **changes,
    }
    return variant(stripe_resource("setup_intent"), **values)


def test_a_card_saved_on_stripe_s_page_is_the_default_even_if_the_customer_never_returns(
    stripe: StripePoster, make_customer: Any, make_card: Any
) -> None:
    make_customer("cus_en")
    make_card("pm_old", customer="cus_en")
    card = variant(EXAMPLES["payment_method_card"], id="pm_new", customer="cus_en")

    # The setup's webhook may come before the card's own.
    stripe.send(
        envelope("setup_intent.succeeded", card_page_setup(), id="evt_s1", created=1790000000)
    )
    stripe.send(envelope("payment_method.attached", card, id="evt_a1", created=1790000001))

    new = PaymentMethod.objects.get(external_id="pm_new")
    assert (new.is_default, new.brand, new.last4) == (True, "mastercard", "4444")
    assert new.details_changed_at is None  # details filled in, not a renewed card
    assert not PaymentMethod.objects.get(external_id="pm_old").is_default


def test_a_card_saved_elsewhere_is_left_to_the_business(
    stripe: StripePoster, make_customer: Any, make_card: Any
) -> None:
    make_customer("cus_en")
    make_card("pm_old", customer="cus_en")
    unmarked = card_page_setup(metadata={})

    stripe.send(envelope("setup_intent.succeeded", unmarked, id="evt_s2", created=1790000000))

    assert not PaymentMethod.objects.filter(external_id="pm_new").exists()
    assert PaymentMethod.objects.get(external_id="pm_old").is_default


def test_a_success_after_a_decline_recorded_under_the_same_payment_intent_is_recorded(
    stripe: StripePoster, make_invoice: Any
) -> None:
    intent = dunning_s_payment_intent(make_invoice)
    # The PaymentIntent was recorded declined first (its first confirmation failed).
    services.record_payment_attempt(
        invoice="in_pay",
        attempted_at=datetime(2026, 6, 28, 10, 0, tzinfo=UTC),
        outcome="failed",
        decline_code="insufficient_funds",
        gateway="stripe",
        reference=intent["id"],
        now=datetime(2026, 6, 28, 10, 0, tzinfo=UTC),
        source="test",
    )
    event = envelope("payment_intent.succeeded", intent, id="evt_pi_ok_1", created=1782640900)

    assert stripe.send(event).json() == {"received": True, "outcome": "applied"}

    assert PaymentAttempt.objects.filter(reference=intent["id"], outcome="succeeded").count() == 1
    assert Invoice.objects.get(external_id="in_pay").status == "paid"
