"""The Stripe adapter against a loopback server that answers with Stripe's own objects."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from pytest_django.fixtures import Settings

from dunning.gateways.base import Authentication, ChargeRequest, ChargeStatus, GatewayError
from dunning.gateways.stripe_gateway import StripeGateway
from tests.gateways.stripe_server import (
    PAYMENT_INTENTS,
    FakeStripe,
    api_error,
    card_error,
    stripe_object,
    variant,
    with_payments,
)

# The customer, card and amount of the fixtures' failed-then-recovered story.
CUSTOMER = "cus_DyyFsVku600HkP"
CARD = "pm_1t42aEWCLm7QxR2nVbgkw1GV"
INTENT = "pi_1tIePn2jLm7QxR2nVbAEMIMc"


def renewal(key: str = "attempt-inv-1001-1", **changes: object) -> ChargeRequest:
    values: dict[str, object] = {
        "amount": 2900,
        "currency": "USD",
        "customer_external_id": CUSTOMER,
        "payment_method_external_id": CARD,
        "invoice_external_id": "in_1001",
        "idempotency_key": key,
        "description": "Invoice 1001: renewal of the Pro plan",
        "metadata": {"case": "42"},
    }
    return ChargeRequest(**{**values, **changes})  # type: ignore[arg-type]


def gateway_for(stripe_api: FakeStripe, **options: float) -> StripeGateway:
    settings: dict[str, float] = {"max_network_retries": 0, "read_timeout": 5.0, **options}
    return StripeGateway(
        api_key=stripe_api.api_key,
        api_base=stripe_api.url,
        connect_timeout=2.0,
        read_timeout=settings["read_timeout"],
        max_network_retries=int(settings["max_network_retries"]),
    )


def declined_intent(name: str) -> dict[str, object]:
    return stripe_object(f"payment_intent_last_payment_error_{name}")


def test_it_charges_a_saved_card_off_session_with_our_idempotency_key(
    stripe_api: FakeStripe,
) -> None:
    result = gateway_for(stripe_api).charge(renewal())

    assert result.status is ChargeStatus.SUCCEEDED
    assert result.gateway == "stripe"
    assert (result.amount, result.currency) == (2900, "USD")
    assert result.reference == INTENT
    assert result.charge_reference == "ch_1Yc1rmH0Lm7QxR2nVb5etecf"
    assert result.decline_code == ""
    [request] = stripe_api.requests
    assert (request.method, request.path) == ("POST", PAYMENT_INTENTS)
    assert request.headers["authorization"] == f"Bearer {stripe_api.api_key}"
    assert request.headers["idempotency-key"] == "attempt-inv-1001-1"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form == {
        "amount": "2900",
        "currency": "usd",
        "customer": CUSTOMER,
        "payment_method": CARD,
        "confirm": "true",
        "off_session": "true",
        "automatic_payment_methods[enabled]": "true",
        "automatic_payment_methods[allow_redirects]": "never",
        "description": "Invoice 1001: renewal of the Pro plan",
        "metadata[case]": "42",
        "metadata[dunning_invoice]": "in_1001",
        "metadata[dunning_key]": "attempt-inv-1001-1",
    }


def test_it_records_what_a_success_means_for_the_ledger(stripe_api: FakeStripe) -> None:
    result = gateway_for(stripe_api).charge(renewal())

    assert result.attempt_fields() == {
        "outcome": "succeeded",
        "amount": 2900,
        "decline_code": "",
        "advice_code": "",
        "network_code": "",
        "network_advice_code": "",
        "gateway": "stripe",
        "reference": INTENT,
    }


def test_it_reports_insufficient_funds_with_the_issuers_codes(stripe_api: FakeStripe) -> None:
    stripe_api.reply(402, card_error(declined_intent("insufficient_funds")))

    result = gateway_for(stripe_api).charge(renewal())

    assert result.status is ChargeStatus.DECLINED
    assert result.error_code == "card_declined"
    assert result.decline_code == "insufficient_funds"
    assert result.advice_code == "try_again_later"
    assert result.network_decline_code == "51"
    assert result.network == "visa"
    assert result.reference == INTENT
    assert result.charge_reference == "ch_1HnSoc82Lm7QxR2nVbpg4EUW"
    assert result.message == "Your card has insufficient funds."
    assert result.attempt_fields()["outcome"] == "failed"
    assert result.attempt_fields()["network_code"] == "51"
    assert len(stripe_api.charges) == 1


def test_it_keeps_the_advice_not_to_try_again(stripe_api: FakeStripe) -> None:
    # No fixture has this advice: the insufficient-funds answer with only
    # advice_code changed, as Stripe sends it for a closed account.
    intent = declined_intent("insufficient_funds")
    intent["last_payment_error"] = variant(
        intent["last_payment_error"],  # type: ignore[arg-type]
        advice_code="do_not_try_again",
        decline_code="do_not_honor",
        network_decline_code="05",
    )
    stripe_api.reply(402, card_error(intent))

    result = gateway_for(stripe_api).charge(renewal())

    assert result.status is ChargeStatus.DECLINED
    assert result.advice_code == "do_not_try_again"
    assert result.decline_code == "do_not_honor"
    assert result.network_decline_code == "05"


def test_it_reports_an_expired_card(stripe_api: FakeStripe) -> None:
    stripe_api.reply(402, card_error(declined_intent("expired_card")))

    result = gateway_for(stripe_api).charge(renewal())

    assert result.status is ChargeStatus.DECLINED
    assert result.error_code == "expired_card"
    assert result.decline_code == "expired_card"
    assert result.advice_code == "confirm_card_data"
    assert result.network_decline_code == "54"
    assert result.charge_reference == "ch_1Bn6j08cLm7QxR2nVb06ZYzu"
    assert result.message == "Your card has expired."


def test_an_expired_card_without_a_decline_code_is_named_by_its_error_code(
    stripe_api: FakeStripe,
) -> None:
    intent = declined_intent("expired_card")
    intent["last_payment_error"] = variant(
        intent["last_payment_error"],  # type: ignore[arg-type]
        decline_code=None,
    )
    stripe_api.reply(402, card_error(intent))

    result = gateway_for(stripe_api).charge(renewal())

    assert result.decline_code == "expired_card"


def test_a_card_that_needs_authentication_is_declined_for_the_customer_to_act(
    stripe_api: FakeStripe,
) -> None:
    # Off-session, Stripe refuses with 402 authentication_required instead of waiting.
    intent = declined_intent("insufficient_funds")
    intent["last_payment_error"] = variant(
        intent["last_payment_error"],  # type: ignore[arg-type]
        code="authentication_required",
        decline_code="authentication_required",
        advice_code=None,
        network_decline_code="1A",
        message="Your card was declined. This transaction requires authentication.",
    )
    stripe_api.reply(402, card_error(intent))

    result = gateway_for(stripe_api).charge(renewal())

    assert result.status is ChargeStatus.DECLINED
    assert result.error_code == "authentication_required"
    assert result.decline_code == "authentication_required"
    assert result.advice_code == ""
    assert result.network_decline_code == "1A"


def test_an_intent_left_requiring_action_counts_as_authentication_required(
    stripe_api: FakeStripe,
) -> None:
    stripe_api.reply(
        200,
        variant(
            stripe_object("payment_intent_succeeded"),
            status="requires_action",
            amount_received=0,
            latest_charge=None,
            next_action={"type": "use_stripe_sdk", "use_stripe_sdk": {}},
        ),
    )

    result = gateway_for(stripe_api).charge(renewal())

    assert result.status is ChargeStatus.DECLINED
    assert result.decline_code == "authentication_required"
    assert result.reference == INTENT
    assert result.charge_reference == ""


def test_a_processing_intent_is_pending_not_paid(stripe_api: FakeStripe) -> None:
    stripe_api.reply(200, variant(stripe_object("payment_intent_succeeded"), status="processing"))

    result = gateway_for(stripe_api).charge(renewal())

    assert result.status is ChargeStatus.PENDING
    with pytest.raises(ValueError, match="not a payment attempt"):
        result.attempt_fields()


def test_the_library_retries_a_500_with_the_same_key_and_charges_once(
    stripe_api: FakeStripe,
) -> None:
    stripe_api.reply(500, api_error("api_error", "Something went wrong on Stripe's end."))

    result = gateway_for(stripe_api, max_network_retries=1).charge(renewal())

    assert result.status is ChargeStatus.SUCCEEDED
    keys = [request.idempotency_key for request in stripe_api.requests]
    assert keys == ["attempt-inv-1001-1", "attempt-inv-1001-1"]
    assert len(stripe_api.charges) == 1


def test_a_500_leaves_the_outcome_unknown_and_a_retry_with_the_same_key_charges_once(
    stripe_api: FakeStripe,
) -> None:
    stripe_api.reply(500, api_error("api_error", "Something went wrong on Stripe's end."))
    gateway = gateway_for(stripe_api)

    with pytest.raises(GatewayError) as raised:
        gateway.charge(renewal())
    assert raised.value.permanent is False
    assert raised.value.outcome_unknown
    assert raised.value.http_status == 500

    first = gateway.charge(renewal())
    again = gateway.charge(renewal())

    assert first.status is again.status is ChargeStatus.SUCCEEDED
    assert first.reference == again.reference == INTENT
    assert {request.idempotency_key for request in stripe_api.requests} == {"attempt-inv-1001-1"}
    assert len(stripe_api.requests) == 3
    assert len(stripe_api.charges) == 1


def test_a_timeout_is_temporary_and_the_retry_replays_the_charge_stripe_made(
    stripe_api: FakeStripe,
) -> None:
    stripe_api.reply(200, stripe_object("payment_intent_succeeded"), delay=3.0)
    gateway = gateway_for(stripe_api, read_timeout=0.3)

    with pytest.raises(GatewayError) as raised:
        gateway.charge(renewal())
    assert raised.value.permanent is False
    assert "outcome is unknown" in str(raised.value)

    result = gateway.charge(renewal())

    assert result.status is ChargeStatus.SUCCEEDED
    assert [r.idempotency_key for r in stripe_api.requests] == ["attempt-inv-1001-1"] * 2
    assert len(stripe_api.charges) == 1


def test_a_success_whose_body_arrives_unreadable_is_in_doubt_not_refused(
    stripe_api: FakeStripe,
) -> None:
    """Stripe answered 200, so the card may well have been charged: a body cut short (or
    replaced by a proxy's page) leaves the outcome unknown, to be asked again under the
    same key, which replays the charge Stripe made; never "refused, so not made"."""
    body = json.dumps(stripe_object("payment_intent_succeeded"))
    stripe_api.reply(200, body[: body.index('"id"')])
    stripe_api.reply(200, "<html><body>Proxy says hello</body></html>")
    gateway = gateway_for(stripe_api)

    for key in ("key-1", "key-2"):
        with pytest.raises(GatewayError) as raised:
            gateway.charge(renewal(key))
        assert raised.value.outcome_unknown
        assert "_secret_" not in str(raised.value)  # nor any of the body


def test_the_same_key_with_another_amount_is_refused_for_good(stripe_api: FakeStripe) -> None:
    gateway = gateway_for(stripe_api)
    gateway.charge(renewal())

    with pytest.raises(GatewayError) as raised:
        gateway.charge(renewal(amount=1500))

    assert raised.value.permanent is True
    assert raised.value.http_status == 400
    assert len(stripe_api.charges) == 1


def test_a_rate_limit_is_temporary(stripe_api: FakeStripe) -> None:
    stripe_api.reply(
        429,
        api_error("invalid_request_error", "Too many requests.", code="rate_limit"),
    )

    with pytest.raises(GatewayError) as raised:
        gateway_for(stripe_api).charge(renewal())

    assert raised.value.permanent is False
    assert stripe_api.charges == []


def test_a_missing_payment_method_is_a_permanent_error_not_a_decline(
    stripe_api: FakeStripe,
) -> None:
    stripe_api.reply(
        400,
        api_error(
            "invalid_request_error",
            f"No such PaymentMethod: '{CARD}'",
            code="resource_missing",
            param="payment_method",
        ),
    )

    with pytest.raises(GatewayError) as raised:
        gateway_for(stripe_api).charge(renewal())

    assert raised.value.permanent is True
    assert raised.value.code == "resource_missing"
    assert "No such PaymentMethod" in str(raised.value)


def test_a_wrong_api_key_is_permanent_and_never_shown(
    stripe_api: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk_test_51WrongKeyForDunning9999secret"
    gateway = StripeGateway(api_key=wrong, api_base=stripe_api.url, max_network_retries=0)

    with pytest.raises(GatewayError) as raised:
        gateway.charge(renewal())

    assert raised.value.permanent is True
    assert raised.value.http_status == 401
    assert wrong not in str(raised.value)
    assert wrong[8:20] not in str(raised.value)
    assert wrong not in caplog.text
    assert wrong not in repr(gateway)


def test_no_api_key_or_card_number_reaches_the_logs(
    stripe_api: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stripe_api.reply(402, card_error(declined_intent("insufficient_funds")))
    stripe_api.reply(500, api_error("api_error", "Something went wrong on Stripe's end."))
    gateway = gateway_for(stripe_api)

    gateway.charge(renewal("key-1"))
    with pytest.raises(GatewayError):
        gateway.charge(renewal("key-2"))
    gateway.charge(renewal("key-2"))

    assert "stripe charge for invoice in_1001" in caplog.text  # the logs were captured
    assert stripe_api.api_key not in caplog.text
    assert stripe_api.api_key[8:] not in caplog.text
    assert "Bearer" not in caplog.text
    assert not re.search(r"\d(?:[ -]?\d){12,18}", caplog.text)


def test_no_client_secret_or_customer_details_reach_the_logs_at_debug_level(
    stripe_api: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    """At DUNNING_LOG_LEVEL=DEBUG the stripe library would log every answer's body: a
    PaymentIntent's client_secret (which lets anyone holding it confirm the payment) and
    the card holder's email, phone and address."""
    caplog.set_level(logging.DEBUG)
    declined = declined_intent("insufficient_funds")
    stripe_api.reply(402, card_error(declined))

    gateway_for(stripe_api).charge(renewal("key-1"))
    gateway_for(stripe_api).charge(renewal("key-2"))

    assert "stripe charge for invoice in_1001" in caplog.text  # the logs were captured
    assert "_secret_" not in caplog.text
    billing = declined["last_payment_error"]["payment_method"]["billing_details"]  # type: ignore[index]
    assert billing["email"] not in caplog.text
    assert billing["phone"] not in caplog.text


def test_it_reads_its_key_and_base_from_settings(
    stripe_api: FakeStripe, settings: Settings
) -> None:
    settings.DUNNING_STRIPE_API_KEY = stripe_api.api_key
    settings.DUNNING_STRIPE_API_BASE = stripe_api.url + "/"

    result = StripeGateway.from_settings().charge(renewal())

    assert result.succeeded
    assert stripe_api.requests[0].headers["authorization"] == f"Bearer {stripe_api.api_key}"


def test_it_refuses_to_start_without_a_key(settings: Settings) -> None:
    settings.DUNNING_STRIPE_API_KEY = ""

    with pytest.raises(ImproperlyConfigured, match="DUNNING_STRIPE_API_KEY"):
        StripeGateway.from_settings()


# ---------------------------------------------------------------- Stripe Billing invoices

BILLING_INVOICE = "in_1KlEfETRLm7QxR2nVbVed6zb"  # the paid invoice of the shared fixtures
PAY = f"/v1/invoices/{BILLING_INVOICE}/pay"


def test_a_stripe_billing_invoice_is_paid_through_the_invoice_not_beside_it(
    stripe_api: FakeStripe,
) -> None:
    paid = stripe_object("invoice_payment_paid")
    stripe_api.reply(200, with_payments(stripe_object("invoice_paid"), paid), path=PAY)
    request = renewal(invoice_external_id=BILLING_INVOICE, gateway_invoice=True)

    result = gateway_for(stripe_api).charge(request)

    assert result.status is ChargeStatus.SUCCEEDED
    # The PaymentIntent that paid it: the reference its webhooks record the payment under.
    assert result.reference == paid["payment"]["payment_intent"]
    [sent] = stripe_api.requests
    assert (sent.method, sent.path) == ("POST", PAY)
    assert sent.form["payment_method"] == CARD
    assert sent.form["off_session"] == "true"
    assert sent.form["expand[0]"] == "payments"
    assert sent.headers["idempotency-key"] == request.idempotency_key
    assert stripe_api.charges == []  # no PaymentIntent beside Stripe's own invoice


def test_a_paid_billing_invoice_is_referenced_by_the_payment_that_paid_it_not_a_canceled_one(
    stripe_api: FakeStripe,
) -> None:
    paid = stripe_object("invoice_payment_paid")
    canceled = variant(
        paid,
        id="inpay_earlier_decline",
        status="canceled",
        payment={"type": "payment_intent", "payment_intent": "pi_earlier_decline"},
    )
    answer = with_payments(stripe_object("invoice_paid"), canceled, paid)
    stripe_api.reply(200, answer, path=PAY)

    result = gateway_for(stripe_api).charge(
        renewal(invoice_external_id=BILLING_INVOICE, gateway_invoice=True)
    )

    assert result.reference == paid["payment"]["payment_intent"]


def test_a_paid_billing_invoice_that_names_no_payment_is_referenced_by_its_own_id(
    stripe_api: FakeStripe,
) -> None:
    """Paid with nothing charged (the customer's credit balance covered it), Stripe lists
    no payment: the invoice's id is all the answer can be recorded under."""
    stripe_api.reply(200, stripe_object("invoice_paid"), path=PAY)

    result = gateway_for(stripe_api).charge(
        renewal(invoice_external_id=BILLING_INVOICE, gateway_invoice=True)
    )

    assert (result.status, result.reference) == (ChargeStatus.SUCCEEDED, BILLING_INVOICE)


def test_a_declined_stripe_billing_invoice_reports_the_issuers_codes(
    stripe_api: FakeStripe,
) -> None:
    stripe_api.reply(402, card_error(declined_intent("insufficient_funds")), path=PAY)

    result = gateway_for(stripe_api).charge(
        renewal(invoice_external_id=BILLING_INVOICE, gateway_invoice=True)
    )

    assert result.status is ChargeStatus.DECLINED
    assert (result.decline_code, result.advice_code) == ("insufficient_funds", "try_again_later")


# ---------------------------------------------------------------- finding a lost charge

SINCE = datetime(2026, 6, 28, 10, 0, tzinfo=UTC)  # just before the fixtures' PaymentIntents


def intents(*found: dict[str, object]) -> dict[str, object]:
    """Stripe's answer to GET /v1/payment_intents: a list object."""
    return {"object": "list", "url": PAYMENT_INTENTS, "has_more": False, "data": list(found)}


def ours(intent: dict[str, object], key: str = "attempt-inv-1001-1") -> dict[str, object]:
    metadata = {"dunning_invoice": "in_1001", "dunning_key": key}
    return variant(intent, metadata=metadata)


def test_a_lost_charge_is_found_by_the_key_in_its_metadata(stripe_api: FakeStripe) -> None:
    other = ours(stripe_object("payment_intent_succeeded"), key="attempt-inv-1001-0")
    stripe_api.reply(
        200,
        intents(other, ours(stripe_object("payment_intent_succeeded"))),
        path=PAYMENT_INTENTS,
        method="GET",
    )

    result = gateway_for(stripe_api).find_charge(renewal(), since=SINCE)

    assert result is not None and result.status is ChargeStatus.SUCCEEDED
    assert (result.reference, result.amount) == (INTENT, 2900)
    [sent] = stripe_api.requests
    assert (sent.method, sent.path) == ("GET", PAYMENT_INTENTS)
    assert sent.form["customer"] == CUSTOMER
    # A few minutes before `since`, for the two clocks.
    assert int(sent.form["created[gte]"]) == int(SINCE.timestamp()) - 300
    assert stripe_api.charges == []  # asking charges nothing


def test_a_charge_under_the_key_for_another_amount_is_for_an_operator(
    stripe_api: FakeStripe,
) -> None:
    """A key made before charges were stored with it may have been charged for what the
    invoice owed then: found, it is not taken for the charge asked about."""
    stripe_api.reply(
        200,
        intents(ours(stripe_object("payment_intent_succeeded"))),
        path=PAYMENT_INTENTS,
        method="GET",
    )

    with pytest.raises(GatewayError) as raised:
        gateway_for(stripe_api).find_charge(renewal(amount=1900), since=SINCE)

    assert not raised.value.outcome_unknown and raised.value.code == "key_parameters_differ"


def test_a_lost_decline_is_found_with_the_issuers_codes(stripe_api: FakeStripe) -> None:
    declined = ours(declined_intent("insufficient_funds"))
    stripe_api.reply(200, intents(declined), path=PAYMENT_INTENTS, method="GET")

    result = gateway_for(stripe_api).find_charge(renewal(), since=SINCE)

    assert result is not None and result.status is ChargeStatus.DECLINED
    assert (result.decline_code, result.advice_code) == ("insufficient_funds", "try_again_later")


@pytest.mark.parametrize(
    "found",
    [
        pytest.param([], id="no payment intent since"),
        pytest.param(
            [ours(stripe_object("payment_intent_succeeded"), key="someone-else")],
            id="another key",
        ),
        pytest.param(
            [variant(ours(stripe_object("payment_intent_succeeded")), status="canceled")],
            id="canceled",
        ),
    ],
)
def test_no_charge_under_the_key_is_none(
    stripe_api: FakeStripe, found: list[dict[str, object]]
) -> None:
    stripe_api.reply(200, intents(*found), path=PAYMENT_INTENTS, method="GET")

    assert gateway_for(stripe_api).find_charge(renewal(), since=SINCE) is None


def test_a_list_that_fails_leaves_the_question_open(stripe_api: FakeStripe) -> None:
    stripe_api.reply(
        500, api_error("api_error", "Something went wrong"), path=PAYMENT_INTENTS, method="GET"
    )

    with pytest.raises(GatewayError) as raised:
        gateway_for(stripe_api).find_charge(renewal(), since=SINCE)

    assert raised.value.outcome_unknown


@pytest.mark.parametrize(
    ("invoice", "paid"),
    [("invoice_paid", True), ("invoice_open_after_failed_attempt", False)],
)
def test_a_stripe_billing_invoice_says_itself_whether_it_was_paid(
    stripe_api: FakeStripe, invoice: str, paid: bool
) -> None:
    path = f"/v1/invoices/{BILLING_INVOICE}"
    stripe_api.reply(200, with_payments(stripe_object(invoice)), path=path, method="GET")
    request = renewal(invoice_external_id=BILLING_INVOICE, gateway_invoice=True)

    result = gateway_for(stripe_api).find_charge(request, since=SINCE)

    assert (result is not None and result.status is ChargeStatus.SUCCEEDED) == paid
    assert result is None or paid
    [sent] = stripe_api.requests
    assert (sent.method, sent.path) == ("GET", path)
    assert sent.form == {"expand[0]": "payments"}


@pytest.mark.parametrize(
    ("intent", "status"),
    [
        (variant(stripe_object("payment_intent_succeeded"), status="processing"), "pending"),
        (stripe_object("payment_intent_last_payment_error_insufficient_funds"), "declined"),
    ],
)
def test_a_payment_under_way_on_an_open_billing_invoice_is_found_not_read_as_none(
    stripe_api: FakeStripe, intent: dict[str, Any], status: str
) -> None:
    """Paying a Stripe Billing invoice can be processing (a bank debit) or declined with
    the invoice still open: the lookup reads the invoice's open payment, so the engine
    neither drops the doubt nor pays the invoice again."""
    open_payment = variant(stripe_object("invoice_payment_paid"), status="open")
    invoice = with_payments(stripe_object("invoice_open_after_failed_attempt"), open_payment)
    stripe_api.reply(200, invoice, path=f"/v1/invoices/{BILLING_INVOICE}", method="GET")
    intent_id = open_payment["payment"]["payment_intent"]
    stripe_api.reply(200, intent, path=f"/v1/payment_intents/{intent_id}", method="GET")
    request = renewal(invoice_external_id=BILLING_INVOICE, gateway_invoice=True)

    found = gateway_for(stripe_api).find_charge(request, since=SINCE)

    assert found is not None and found.status == status


@pytest.mark.parametrize("listed", ["not expanded", "more than one page"])
def test_an_open_billing_invoice_that_does_not_list_all_its_payments_cannot_tell(
    stripe_api: FakeStripe, listed: str
) -> None:
    invoice = stripe_object("invoice_open_after_failed_attempt")
    if listed == "more than one page":
        invoice = with_payments(invoice, variant(stripe_object("invoice_payment_paid")))
        invoice["payments"]["has_more"] = True
    stripe_api.reply(200, invoice, path=f"/v1/invoices/{BILLING_INVOICE}", method="GET")
    request = renewal(invoice_external_id=BILLING_INVOICE, gateway_invoice=True)

    with pytest.raises(GatewayError) as raised:
        gateway_for(stripe_api).find_charge(request, since=SINCE)

    assert not raised.value.outcome_unknown and raised.value.code == "invoice_payments_unlisted"


def test_a_payment_of_the_invoice_without_our_key_cannot_be_told_apart(
    stripe_api: FakeStripe,
) -> None:
    """Made before charges carried their key (across an upgrade): it may be the very
    charge, so it is neither "found" nor "never made"; an operator looks."""
    unkeyed = variant(
        stripe_object("payment_intent_succeeded"), metadata={"dunning_invoice": "in_1001"}
    )
    stripe_api.reply(200, intents(unkeyed), path=PAYMENT_INTENTS, method="GET")

    with pytest.raises(GatewayError) as raised:
        gateway_for(stripe_api).find_charge(renewal(), since=SINCE)

    assert raised.value.permanent and raised.value.code == "unkeyed_payment_intent"


def test_a_dropped_payment_intent_does_not_hide_the_one_that_charged(
    stripe_api: FakeStripe,
) -> None:
    dropped = variant(ours(stripe_object("payment_intent_succeeded")), status="canceled")
    charged = ours(stripe_object("payment_intent_succeeded"))
    stripe_api.reply(200, intents(dropped, charged), path=PAYMENT_INTENTS, method="GET")

    result = gateway_for(stripe_api).find_charge(renewal(), since=SINCE)

    assert result is not None and result.status is ChargeStatus.SUCCEEDED


# ------------------------------------------------------------ pay-page payments left at the bank


def at_the_bank(key: str = "pay42:try2:abc") -> dict[str, object]:
    """A PaymentIntent made on the pay page, waiting for 3-D Secure at the bank."""
    return variant(
        stripe_object("payment_intent_succeeded"),
        status="requires_action",
        metadata={"dunning_invoice": "in_1001", "dunning_key": key, "dunning_on_session": "true"},
        next_action={
            "type": "redirect_to_url",
            "redirect_to_url": {"url": "https://hooks.stripe.com/3ds", "return_url": "x"},
        },
    )


def test_a_pay_page_payment_at_the_bank_is_found_waiting_not_declined(
    stripe_api: FakeStripe,
) -> None:
    stripe_api.reply(200, intents(at_the_bank()), path=PAYMENT_INTENTS, method="GET")

    result = gateway_for(stripe_api).find_charge(renewal(key="pay42:try2:abc"), since=SINCE)

    # The customer may still confirm it: neither a decline nor "never happened".
    assert result is not None and result.status is ChargeStatus.WAITING
    assert result.reference == INTENT


def test_an_off_session_payment_asking_for_3d_secure_is_still_a_decline(
    stripe_api: FakeStripe,
) -> None:
    off_session = variant(
        at_the_bank(), metadata={"dunning_invoice": "in_1001", "dunning_key": "k"}
    )
    stripe_api.reply(200, intents(off_session), path=PAYMENT_INTENTS, method="GET")

    result = gateway_for(stripe_api).find_charge(renewal(key="k"), since=SINCE)

    assert result is not None and result.decline_code == "authentication_required"


def test_a_payment_left_at_the_bank_is_canceled_as_abandoned(stripe_api: FakeStripe) -> None:
    canceled = variant(at_the_bank(), status="canceled", next_action=None)
    stripe_api.reply(200, canceled, path=f"{PAYMENT_INTENTS}/{INTENT}/cancel")

    request = renewal(key="pay42:try2:abc")
    assert gateway_for(stripe_api).abandon(INTENT, request) is None

    [sent] = stripe_api.requests
    assert (sent.method, sent.path) == ("POST", f"{PAYMENT_INTENTS}/{INTENT}/cancel")
    assert sent.form["cancellation_reason"] == "abandoned"
    assert sent.idempotency_key != "pay42:try2:abc"  # none of ours: the library's own


def test_a_payment_confirmed_just_before_its_cancel_is_returned_as_paid(
    stripe_api: FakeStripe,
) -> None:
    stripe_api.reply(
        400,
        api_error(
            "invalid_request_error",
            "You cannot cancel this PaymentIntent because it has a status of succeeded.",
        ),
        path=f"{PAYMENT_INTENTS}/{INTENT}/cancel",
    )
    paid = variant(at_the_bank(), status="succeeded", next_action=None)
    stripe_api.reply(200, paid, path=f"{PAYMENT_INTENTS}/{INTENT}", method="GET")

    result = gateway_for(stripe_api).abandon(INTENT, renewal(key="pay42:try2:abc"))

    assert result is not None and result.status is ChargeStatus.SUCCEEDED


def failed_authentication(key: str = "pay42:try2:abc") -> dict[str, object]:
    """A pay-page PaymentIntent whose customer failed (or left) 3-D Secure at the bank:
    Stripe puts it back to requires_payment_method with an invalid_request_error, and
    no charge, for the card's issuer was never asked."""
    return variant(
        at_the_bank(key),
        status="requires_payment_method",
        next_action=None,
        latest_charge=None,
        amount_received=0,
        last_payment_error={
            "code": "payment_intent_authentication_failure",
            "doc_url": "https://docs.stripe.com/error-codes/payment-intent-authentication-failure",
            "message": "The provided PaymentMethod has failed authentication. You can provide "
            "payment_method_data or a new PaymentMethod to attempt to fulfill this "
            "PaymentIntent again.",
            "type": "invalid_request_error",
        },
    )


def test_a_payment_whose_authentication_failed_is_no_decline_when_looked_up(
    stripe_api: FakeStripe,
) -> None:
    """The customer never came back from the bank's page: the lookup finds a payment that
    took nothing and was never sent to the issuer, so nothing counts against the card."""
    stripe_api.reply(200, intents(failed_authentication()), path=PAYMENT_INTENTS, method="GET")

    assert gateway_for(stripe_api).find_charge(renewal(key="pay42:try2:abc"), since=SINCE) is None


def test_a_payment_whose_authentication_failed_is_not_attempted_on_the_customer_s_return(
    stripe_api: FakeStripe,
) -> None:
    stripe_api.reply(200, failed_authentication(), path=f"{PAYMENT_INTENTS}/{INTENT}", method="GET")

    result = gateway_for(stripe_api).outcome(INTENT, renewal(key="pay42:try2:abc"))

    assert not isinstance(result, Authentication)
    assert result.status is ChargeStatus.NOT_ATTEMPTED
    assert (result.decline_code, result.error_code) == ("", "payment_intent_authentication_failure")
