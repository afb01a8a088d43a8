from __future__ import annotations

from typing import Any

import pytest

from dunning.ledger.models import Event, Invoice, Payment, PaymentAttempt, PaymentMethod
from tests.api.conftest import (
    attempt_body,
    customer_body,
    error_of,
    fields_of,
    invoice_body,
    payment_body,
)


def remaining(api: Any, invoice: dict[str, Any]) -> tuple[str, int]:
    body = api.get(f"/invoices/{invoice['id']}").json()
    return body["status"], body["amount_remaining"]


# --- payments ----------------------------------------------------------------------------


def test_a_payment_reduces_amount_remaining_and_answers_201(
    api: Any, invoice: dict[str, Any]
) -> None:
    response = api.post("/payments", payment_body(amount=50000, reference="slip-001"))

    assert response.status_code == 201
    body = response.json()
    assert body["id"] == Payment.objects.get().pk
    assert body | {"id": 0} == {
        "id": 0,
        "invoice": "in_1",
        "customer": "cus_1",
        "amount": 50000,
        "currency": "THB",
        "received_at": "2026-03-10T03:00:00Z",
        "method": "bank_transfer",
        "reference": "slip-001",
        "attempt": None,
        "created_at": "2026-03-16T03:00:00Z",
    }
    assert remaining(api, invoice) == ("open", 73450)


def test_partial_payments_add_up_and_the_invoice_is_paid_at_zero(
    api: Any, invoice: dict[str, Any]
) -> None:
    api.post("/payments", payment_body(amount=23450, received_at="2026-03-05"))
    assert remaining(api, invoice) == ("open", 100000)

    api.post("/payments", payment_body(amount=100000, received_at="2026-03-12T08:00:00+07:00"))

    body = api.get(f"/invoices/{invoice['id']}").json()
    assert (body["status"], body["amount_paid"], body["amount_remaining"]) == ("paid", 123450, 0)
    assert body["paid_at"] == "2026-03-12T01:00:00Z"
    assert [e.type for e in Event.objects.filter(invoice__external_id="in_1")] == [
        "invoice.created",
        "payment.recorded",
        "payment.recorded",
        "invoice.paid",
    ]


def test_a_payment_records_an_event_with_what_remains(api: Any, invoice: dict[str, Any]) -> None:
    payment = api.post("/payments", payment_body(amount=50000)).json()

    event = Event.objects.get(type="payment.recorded")
    assert event.data == {
        "payment": payment["id"],
        "amount": 50000,
        "currency": "THB",
        "amount_remaining": 73450,
    }
    assert event.occurred_at.isoformat() == "2026-03-10T03:00:00+00:00"
    assert event.source == "api"


def test_an_overpayment_is_refused_with_409_naming_amount(
    api: Any, invoice: dict[str, Any]
) -> None:
    response = api.post("/payments", payment_body(amount=123451))

    assert set(fields_of(response, 409)) == {"amount"}
    assert not Payment.objects.exists()
    assert remaining(api, invoice) == ("open", 123450)


def test_a_payment_on_a_paid_invoice_is_an_overpayment(api: Any, invoice: dict[str, Any]) -> None:
    api.post("/payments", payment_body(amount=123450))

    assert set(fields_of(api.post("/payments", payment_body(amount=1)), 409)) == {"amount"}


def test_a_payment_in_another_currency_is_refused_with_422_naming_currency(
    api: Any, invoice: dict[str, Any]
) -> None:
    response = api.post("/payments", payment_body(currency="USD"))

    error = error_of(response, 422)
    assert [f["field"] for f in error["fields"]] == ["currency"]
    assert not Payment.objects.exists()


def test_a_payment_on_a_void_invoice_is_refused_with_409(api: Any, invoice: dict[str, Any]) -> None:
    api.post(f"/invoices/{invoice['id']}/void", {})

    response = api.post("/payments", payment_body())

    assert set(fields_of(response, 409)) == {"invoice"}
    assert not Payment.objects.exists()


def test_a_payment_on_a_draft_invoice_is_refused_with_409(
    api: Any, customer: dict[str, Any]
) -> None:
    api.post("/invoices", invoice_body(status="draft"))

    assert set(fields_of(api.post("/payments", payment_body()), 409)) == {"invoice"}


def test_a_payment_on_an_uncollectible_invoice_is_still_taken(
    api: Any, invoice: dict[str, Any]
) -> None:
    api.post(f"/invoices/{invoice['id']}/mark-uncollectible", {})

    assert api.post("/payments", payment_body(amount=123450)).status_code == 201
    assert remaining(api, invoice) == ("paid", 0)


def test_the_same_payment_reference_twice_on_one_invoice_is_refused_with_409(
    api: Any, invoice: dict[str, Any]
) -> None:
    assert api.post("/payments", payment_body(amount=1000, reference="TRX-77")).status_code == 201

    response = api.post("/payments", payment_body(amount=1000, reference="TRX-77"))

    assert set(fields_of(response, 409)) == {"reference"}
    assert Payment.objects.count() == 1
    assert remaining(api, invoice) == ("open", 122450)


def test_payments_without_a_reference_are_not_duplicates(api: Any, invoice: dict[str, Any]) -> None:
    api.post("/payments", payment_body(amount=1000))
    api.post("/payments", payment_body(amount=1000))

    assert Payment.objects.count() == 2


def test_the_same_reference_on_another_invoice_is_fine(api: Any, invoice: dict[str, Any]) -> None:
    api.post("/invoices", invoice_body("in_2"))
    api.post("/payments", payment_body("in_1", amount=1000, reference="TRX-77"))

    assert (
        api.post("/payments", payment_body("in_2", amount=1000, reference="TRX-77")).status_code
        == 201
    )


@pytest.mark.parametrize("amount", [0, -5, 1.5, "100", None, 10**13, 2**64])
def test_it_rejects_a_payment_amount_that_is_not_a_positive_integer(
    api: Any, invoice: dict[str, Any], amount: Any
) -> None:
    assert set(fields_of(api.post("/payments", payment_body(amount=amount)))) == {"amount"}


@pytest.mark.parametrize(("field", "length"), [("method", 33), ("reference", 256)])
def test_a_payment_text_longer_than_its_column_is_a_422_on_every_database(
    api: Any, invoice: dict[str, Any], field: str, length: int
) -> None:
    response = api.post("/payments", payment_body(**{field: "x" * length}))

    assert set(fields_of(response)) == {field}
    assert api.post("/payments", payment_body(**{field: "x" * (length - 1)})).status_code == 201


def test_a_payment_for_an_invoice_that_does_not_exist_is_404_naming_invoice(api: Any) -> None:
    response = api.post("/payments", payment_body("in_missing"))

    assert fields_of(response, 404) == {"invoice": "no invoice with this external_id"}


def test_payments_in_currencies_with_zero_and_three_decimals(
    api: Any, customer: dict[str, Any]
) -> None:
    api.post("/invoices", invoice_body("in_jpy", currency="JPY", amount_due=4980, lines=[]))
    api.post("/invoices", invoice_body("in_kwd", currency="KWD", amount_due=12345, lines=[]))

    api.post("/payments", payment_body("in_jpy", amount=4980, currency="JPY"))
    api.post("/payments", payment_body("in_kwd", amount=12344, currency="kwd"))

    assert api.get("/invoices", external_id="in_jpy").json()["results"][0]["status"] == "paid"
    kwd = api.get("/invoices", external_id="in_kwd").json()["results"][0]
    assert (kwd["status"], kwd["amount_remaining"]) == ("open", 1)


def test_it_lists_payments_newest_first_filtered_by_invoice_and_customer(
    api: Any, invoice: dict[str, Any]
) -> None:
    api.post("/customers", customer_body("cus_2", phone=None))
    api.post("/invoices", invoice_body("in_2", customer="cus_2"))
    first = api.post("/payments", payment_body("in_1", amount=1)).json()
    second = api.post("/payments", payment_body("in_2", amount=2)).json()
    third = api.post("/payments", payment_body("in_1", amount=3)).json()

    def ids(**params: Any) -> list[int]:
        return [p["id"] for p in api.get("/payments", **params).json()["results"]]

    assert ids() == [third["id"], second["id"], first["id"]]
    assert ids(invoice="in_1") == [third["id"], first["id"]]
    assert ids(customer="cus_2") == [second["id"]]
    assert api.get(f"/payments/{second['id']}").json() == second
    assert error_of(api.get("/payments/999"), 404)["code"] == "not_found"


# --- payment attempts --------------------------------------------------------------------


def test_a_failed_attempt_is_recorded_with_its_decline_and_advice_codes(
    api: Any, invoice: dict[str, Any]
) -> None:
    response = api.post("/payment-attempts", attempt_body())

    assert response.status_code == 201
    body = response.json()
    assert body["id"] == PaymentAttempt.objects.get().pk
    assert {
        k: body[k]
        for k in (
            "invoice",
            "customer",
            "outcome",
            "amount",
            "currency",
            "decline_code",
            "advice_code",
            "gateway",
            "payment_method",
        )
    } == {
        "invoice": "in_1",
        "customer": "cus_1",
        "outcome": "failed",
        "amount": 123450,
        "currency": "THB",
        "decline_code": "insufficient_funds",
        "advice_code": "try_again_later",
        "gateway": "stripe",
        "payment_method": None,
    }
    assert remaining(api, invoice) == ("open", 123450)
    assert not Payment.objects.exists()
    event = Event.objects.get(type="payment_attempt.failed")
    assert event.data["decline_code"] == "insufficient_funds"
    assert event.occurred_at.isoformat() == "2026-03-15T02:00:00+00:00"


def test_a_failed_attempt_keeps_mastercard_s_merchant_advice_code(
    api: Any, invoice: dict[str, Any]
) -> None:
    body = attempt_body(decline_code="generic_decline", advice_code="", network_code="05")
    response = api.post("/payment-attempts", {**body, "network_advice_code": "03"})

    assert response.status_code == 201, response.content
    assert response.json()["network_advice_code"] == "03"
    assert PaymentAttempt.objects.get().network_advice_code == "03"
    assert api.post("/payment-attempts", attempt_body()).json()["network_advice_code"] == ""


def test_a_succeeded_attempt_records_the_payment_of_what_remains(
    api: Any, invoice: dict[str, Any]
) -> None:
    response = api.post(
        "/payment-attempts",
        attempt_body(outcome="succeeded", decline_code="", advice_code="", reference="ch_123"),
    )

    assert response.status_code == 201
    payment = Payment.objects.get()
    assert (payment.amount, payment.reference, payment.attempt_id) == (
        123450,
        "ch_123",
        response.json()["id"],
    )
    assert remaining(api, invoice) == ("paid", 0)
    assert api.get("/payments").json()["results"][0]["attempt"] == response.json()["id"]
    assert [e.type for e in Event.objects.filter(invoice__external_id="in_1")] == [
        "invoice.created",
        "payment_attempt.succeeded",
        "payment.recorded",
        "invoice.paid",
    ]


def test_a_succeeded_attempt_for_part_of_the_invoice_records_a_partial_payment(
    api: Any, invoice: dict[str, Any]
) -> None:
    api.post("/payment-attempts", attempt_body(outcome="succeeded", decline_code="", amount=23450))

    assert remaining(api, invoice) == ("open", 100000)


def test_a_succeeded_attempt_for_more_than_remains_records_nothing(
    api: Any, invoice: dict[str, Any]
) -> None:
    response = api.post(
        "/payment-attempts", attempt_body(outcome="succeeded", decline_code="", amount=999999)
    )

    assert set(fields_of(response, 409)) == {"amount"}
    assert not PaymentAttempt.objects.exists()
    assert not Payment.objects.exists()


def test_a_succeeded_attempt_on_a_void_invoice_records_nothing(
    api: Any, invoice: dict[str, Any]
) -> None:
    api.post(f"/invoices/{invoice['id']}/void", {})

    response = api.post("/payment-attempts", attempt_body(outcome="succeeded", decline_code=""))

    assert error_of(response, 409)
    assert not PaymentAttempt.objects.exists()


def test_a_succeeded_attempt_cannot_carry_a_decline_code(api: Any, invoice: dict[str, Any]) -> None:
    response = api.post("/payment-attempts", attempt_body(outcome="succeeded"))

    assert set(fields_of(response)) == {"decline_code"}


@pytest.mark.parametrize("outcome", ["declined", "", None, 1])
def test_an_attempt_outcome_is_succeeded_or_failed(
    api: Any, invoice: dict[str, Any], outcome: Any
) -> None:
    assert set(fields_of(api.post("/payment-attempts", attempt_body(outcome=outcome)))) == {
        "outcome"
    }


def test_an_attempt_names_a_saved_payment_method_of_the_same_customer(
    api: Any, invoice: dict[str, Any]
) -> None:
    api.post(
        "/payment-methods",
        {
            "external_id": "pm_1",
            "customer": "cus_1",
            "type": "card",
            "brand": "visa",
            "last4": "4242",
            "exp_month": 12,
            "exp_year": 2028,
        },
    )
    api.post("/customers", customer_body("cus_2", phone=None))
    api.post("/payment-methods", {"external_id": "pm_other", "customer": "cus_2", "type": "card"})

    ok = api.post("/payment-attempts", attempt_body(payment_method="pm_1"))
    other = api.post("/payment-attempts", attempt_body(payment_method="pm_other"))

    assert ok.json()["payment_method"] == "pm_1"
    assert set(fields_of(other, 404)) == {"payment_method"}


def test_it_lists_attempts_filtered_by_outcome_invoice_and_customer(
    api: Any, invoice: dict[str, Any]
) -> None:
    failed = api.post("/payment-attempts", attempt_body()).json()
    succeeded = api.post(
        "/payment-attempts",
        attempt_body(outcome="succeeded", decline_code="", attempted_at="2026-03-16T02:00:00Z"),
    ).json()

    def ids(**params: Any) -> list[int]:
        return [a["id"] for a in api.get("/payment-attempts", **params).json()["results"]]

    assert ids() == [succeeded["id"], failed["id"]]
    assert ids(outcome="failed") == [failed["id"]]
    assert ids(invoice="in_1", customer="cus_1") == [succeeded["id"], failed["id"]]
    assert ids(customer="cus_2") == []
    assert api.get(f"/payment-attempts/{failed['id']}").json() == failed


# --- payment methods ---------------------------------------------------------------------


def test_it_saves_a_payment_method_and_updates_it_by_external_id(
    api: Any, customer: dict[str, Any]
) -> None:
    body = {
        "external_id": "pm_1",
        "customer": "cus_1",
        "type": "card",
        "brand": "visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2028,
        "country": "th",
        "is_default": True,
    }
    created = api.post("/payment-methods", body)
    updated = api.post("/payment-methods", body | {"exp_year": 2030})

    assert (created.status_code, updated.status_code) == (201, 200)
    assert updated.json()["id"] == created.json()["id"]
    assert (updated.json()["exp_year"], updated.json()["country"]) == (2030, "TH")
    assert PaymentMethod.objects.count() == 1
    assert [e.type for e in Event.objects.filter(type__startswith="payment_method")] == [
        "payment_method.created",
        "payment_method.updated",
    ]


def test_a_new_default_payment_method_replaces_the_old_default(
    api: Any, customer: dict[str, Any]
) -> None:
    for external_id in ("pm_1", "pm_2"):
        api.post(
            "/payment-methods",
            {"external_id": external_id, "customer": "cus_1", "type": "card", "is_default": True},
        )

    assert dict(PaymentMethod.objects.values_list("external_id", "is_default")) == {
        "pm_1": False,
        "pm_2": True,
    }


CARD = "4242424242424242"


def test_a_card_number_sent_as_last4_is_refused_and_never_echoed(
    api: Any, customer: dict[str, Any]
) -> None:
    response = api.post(
        "/payment-methods",
        {"external_id": "pm_1", "customer": "cus_1", "type": "card", "last4": CARD},
    )

    assert set(fields_of(response)) == {"last4"}
    assert CARD.encode() not in response.content
    assert b"4242" not in response.content
    assert not PaymentMethod.objects.exists()


def test_a_card_number_sent_in_an_unknown_field_is_refused_and_never_echoed(
    api: Any, customer: dict[str, Any]
) -> None:
    response = api.post(
        "/payment-methods",
        {"external_id": "pm_1", "customer": "cus_1", "type": "card", "number": CARD, "cvc": "123"},
    )

    assert fields_of(response) == {"number": "not a known field", "cvc": "not a known field"}
    assert CARD.encode() not in response.content
    assert not PaymentMethod.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("exp_month", 13),
        ("exp_month", 0),
        ("exp_year", 1999),
        ("type", "crypto"),
        ("country", "ZZ"),
        ("customer", "cus_missing"),
        ("is_default", "yes"),
    ],
)
def test_it_refuses_a_bad_payment_method_field(
    api: Any, customer: dict[str, Any], field: str, value: Any
) -> None:
    body = {"external_id": "pm_1", "customer": "cus_1", "type": "card", field: value}

    response = api.post("/payment-methods", body)

    assert response.status_code in (404, 422)
    assert set(fields_of(response, response.status_code)) == {field}


def test_a_payment_method_cannot_move_to_another_customer(
    api: Any, customer: dict[str, Any]
) -> None:
    api.post("/customers", customer_body("cus_2", phone=None))
    api.post("/payment-methods", {"external_id": "pm_1", "customer": "cus_1", "type": "card"})

    response = api.post(
        "/payment-methods", {"external_id": "pm_1", "customer": "cus_2", "type": "card"}
    )

    assert set(fields_of(response, 409)) == {"customer"}


def test_it_lists_and_gets_payment_methods(api: Any, customer: dict[str, Any]) -> None:
    method = api.post(
        "/payment-methods", {"external_id": "pm_1", "customer": "cus_1", "type": "promptpay"}
    ).json()

    assert api.get("/payment-methods", customer="cus_1").json()["results"] == [method]
    assert api.get("/payment-methods", customer="cus_2").json()["results"] == []
    assert api.get(f"/payment-methods/{method['id']}").json() == method


def test_invoice_amounts_always_equal_due_minus_paid(api: Any, invoice: dict[str, Any]) -> None:
    for amount in (1, 20000, 3449):
        api.post("/payments", payment_body(amount=amount))

    stored = Invoice.objects.get()
    assert stored.amount_remaining == stored.amount_due - stored.amount_paid == 100000
