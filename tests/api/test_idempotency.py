from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone

from dunning.api import idempotency, keys
from dunning.api.models import IdempotencyRecord
from dunning.ledger.models import Customer, Event, Invoice, Payment, PaymentAttempt
from tests.api.conftest import (
    attempt_body,
    customer_body,
    error_of,
    invoice_body,
    payment_body,
)
from tests.conftest import NOW, ApiClient

KEY = {"Idempotency-Key": "8d4c2b1e-7f0a-4b5e-9a3c-2f6d8e1b7c90"}


def counts() -> dict[str, int]:
    return {
        "customers": Customer.objects.count(),
        "invoices": Invoice.objects.count(),
        "payments": Payment.objects.count(),
        "attempts": PaymentAttempt.objects.count(),
        "events": Event.objects.count(),
    }


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/customers", customer_body("cus_new"), 201),
        ("/invoices", invoice_body("in_new"), 201),
        ("/payments", payment_body(amount=1000), 201),
        ("/payment-attempts", attempt_body(), 201),
        ("/payment-attempts", attempt_body(outcome="succeeded", decline_code="", amount=5), 201),
        ("/payment-methods", {"external_id": "pm_1", "customer": "cus_1", "type": "card"}, 201),
    ],
    ids=["customer", "invoice", "payment", "failed-attempt", "succeeded-attempt", "method"],
)
def test_the_same_key_and_body_again_replays_the_first_response_and_creates_nothing(
    api: ApiClient, invoice: dict[str, Any], path: str, body: dict[str, Any], status: int
) -> None:
    first = api.post(path, body, **KEY)
    assert first.status_code == status, first.content
    after_first = counts()

    again = api.post(path, body, **KEY)

    assert again.status_code == status
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert counts() == after_first


def test_a_replay_ignores_key_order_and_spacing_in_the_json(
    api: ApiClient, invoice: dict[str, Any]
) -> None:
    body = payment_body(amount=1000)
    first = api.post("/payments", body, **KEY)

    again = api.post("/payments", json.dumps(dict(reversed(body.items())), indent=4), **KEY)

    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1


def test_a_replay_of_an_update_answers_200_again_and_records_no_new_event(
    api: ApiClient, customer: dict[str, Any]
) -> None:
    first = api.post("/customers", customer_body(name="Somchai J."), **KEY)
    events = Event.objects.count()

    again = api.post("/customers", customer_body(name="Somchai J."), **KEY)

    assert (first.status_code, again.status_code) == (200, 200)
    assert Event.objects.count() == events


def test_the_same_key_with_a_different_body_is_409(api: ApiClient, invoice: dict[str, Any]) -> None:
    api.post("/payments", payment_body(amount=1000), **KEY)
    before = counts()

    response = api.post("/payments", payment_body(amount=2000), **KEY)

    assert error_of(response, 409)["code"] == "idempotency_conflict"
    assert counts() == before


def test_the_same_key_on_another_endpoint_is_409(api: ApiClient, invoice: dict[str, Any]) -> None:
    api.post("/payments", payment_body(amount=1000), **KEY)

    response = api.post("/customers", customer_body("cus_other"), **KEY)

    assert error_of(response, 409)["code"] == "idempotency_conflict"
    assert not Customer.objects.filter(external_id="cus_other").exists()


def test_an_error_is_not_remembered_so_the_corrected_request_can_reuse_the_key(
    api: ApiClient, customer: dict[str, Any]
) -> None:
    bad = api.post("/invoices", invoice_body(amount_due=1.5), **KEY)
    assert bad.status_code == 422
    assert not IdempotencyRecord.objects.exists()

    fixed = api.post("/invoices", invoice_body(), **KEY)

    assert fixed.status_code == 201
    assert "Idempotent-Replayed" not in fixed
    assert Invoice.objects.count() == 1


def test_a_ledger_refusal_is_not_remembered_either(api: ApiClient, invoice: dict[str, Any]) -> None:
    assert api.post("/payments", payment_body(amount=10**9), **KEY).status_code == 409

    retried = api.post("/payments", payment_body(amount=1000), **KEY)

    assert retried.status_code == 201
    assert Payment.objects.count() == 1


def test_keys_belong_to_one_api_key_so_clients_cannot_collide(
    api: ApiClient, customer: dict[str, Any]
) -> None:
    other = ApiClient(keys.create_key(name="other system", now=NOW).key)

    first = api.post("/customers", customer_body("cus_a"), **KEY)
    second = other.post("/customers", customer_body("cus_b"), **KEY)

    assert (first.status_code, second.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in second
    assert Customer.objects.filter(external_id__in=["cus_a", "cus_b"]).count() == 2


def test_without_a_key_the_same_request_twice_is_done_twice(
    api: ApiClient, invoice: dict[str, Any]
) -> None:
    api.post("/payments", payment_body(amount=1000))
    api.post("/payments", payment_body(amount=1000))

    assert Payment.objects.count() == 2


@pytest.mark.parametrize(
    "bad_key",
    ["", "x" * 256, "ключ", "tab\tkey"],
    ids=["empty", "too-long", "non-ascii", "control-character"],
)
def test_a_malformed_idempotency_key_is_400(
    api: ApiClient, customer: dict[str, Any], bad_key: str
) -> None:
    response = api.client.post(
        "/api/v1/customers",
        customer_body("cus_x"),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=bad_key.encode().decode("latin-1"),
    )

    error = error_of(response, 400)
    assert error["fields"][0]["field"] == "Idempotency-Key"
    assert not Customer.objects.filter(external_id="cus_x").exists()


def test_a_key_is_forgotten_after_24_hours(
    api: ApiClient, invoice: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    api.post("/payments", payment_body(amount=1000), **KEY)
    monkeypatch.setattr(timezone, "now", lambda: NOW + timedelta(hours=24, seconds=1))

    again = api.post("/payments", payment_body(amount=1000), **KEY)

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert Payment.objects.count() == 2


def test_purge_deletes_records_older_than_the_retention(
    api: ApiClient, customer: dict[str, Any]
) -> None:
    api.post("/customers", customer_body("cus_a"), **KEY)

    assert idempotency.purge_expired(now=NOW + timedelta(hours=23)) == 0
    assert idempotency.purge_expired(now=NOW + timedelta(hours=25)) == 1
    assert not IdempotencyRecord.objects.exists()


def test_a_get_ignores_the_idempotency_key(api: ApiClient) -> None:
    response = api.client.get("/api/v1/customers", headers=KEY)

    assert response.status_code == 200
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_the_same_key_create_exactly_one_invoice(
    api_key: str,
) -> None:
    from dunning.ledger import services

    services.upsert_customer(
        external_id="cus_1", name="Somchai", country="TH", now=NOW, source="test"
    )
    body = invoice_body("in_race")
    start = threading.Barrier(4)
    responses: list[Any] = []
    lock = threading.Lock()

    def send() -> None:
        try:
            start.wait()
            response = ApiClient(api_key).post("/invoices", body, **KEY)
            with lock:
                responses.append(response)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert connection.vendor == "postgresql"
    assert sorted(r.status_code for r in responses) == [201] * 4
    assert len({r.content for r in responses}) == 1
    assert sum(1 for r in responses if r.get("Idempotent-Replayed") == "true") == 3
    assert Invoice.objects.filter(external_id="in_race").count() == 1
    assert Event.objects.filter(type="invoice.created").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_payments_with_the_same_key_are_recorded_once(api_key: str) -> None:
    from dunning.ledger import services

    services.upsert_customer(
        external_id="cus_1", name="Somchai", country="TH", now=NOW, source="test"
    )
    services.upsert_invoice(
        facts=services.InvoiceFacts(
            external_id="in_1",
            customer="cus_1",
            number="INV-1",
            currency="THB",
            amount_due=100000,
            issued_at=NOW,
            due_at=NOW,
        ),
        now=NOW,
        source="test",
    )
    start = threading.Barrier(6)
    statuses: list[int] = []

    def send() -> None:
        try:
            start.wait()
            response = ApiClient(api_key).post("/payments", payment_body(amount=1000), **KEY)
            statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [201] * 6
    assert Payment.objects.count() == 1
    assert Invoice.objects.get().amount_remaining == 99000
