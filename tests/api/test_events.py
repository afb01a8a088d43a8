from __future__ import annotations

from typing import Any

import pytest
from django.db import DatabaseError, transaction

from dunning.ledger.models import Event
from dunning.ledger.models.events import AppendOnlyError
from tests.api.conftest import attempt_body, customer_body, error_of, invoice_body, payment_body


@pytest.fixture
def history(api: Any) -> None:
    """One of every write, through the API."""
    api.post("/customers", customer_body("cus_1"))
    api.post("/customers", customer_body("cus_2", phone=None))
    api.post("/customers", customer_body("cus_1", name="Somchai J."))
    api.post("/invoices", invoice_body("in_1"))
    api.post("/invoices", invoice_body("in_2", customer="cus_2"))
    api.post("/payment-attempts", attempt_body("in_1"))
    api.post("/payments", payment_body("in_1", amount=23450))
    api.post("/payments", payment_body("in_1", amount=100000))


def types(api: Any, **params: Any) -> list[str]:
    response = api.get("/events", **params)
    assert response.status_code == 200, response.content
    return [event["type"] for event in response.json()["results"]]


def test_every_write_is_recorded_as_an_event_oldest_first(api: Any, history: None) -> None:
    assert types(api) == [
        "customer.created",
        "customer.created",
        "customer.updated",
        "invoice.created",
        "invoice.created",
        "payment_attempt.failed",
        "payment.recorded",
        "payment.recorded",
        "invoice.paid",
    ]


def test_an_event_carries_its_customer_invoice_times_and_source(api: Any, history: None) -> None:
    event = api.get("/events", type="invoice.paid").json()["results"][0]

    assert event | {"id": 0} == {
        "id": 0,
        "type": "invoice.paid",
        "occurred_at": "2026-03-10T03:00:00Z",
        "recorded_at": "2026-03-16T03:00:00Z",
        "source": "api",
        "customer": "cus_1",
        "invoice": "in_1",
        "data": {},
    }
    assert api.get(f"/events/{event['id']}").json() == event


def test_it_filters_events_by_type_customer_and_invoice(api: Any, history: None) -> None:
    assert types(api, type="payment.recorded") == ["payment.recorded"] * 2
    assert types(api, customer="cus_2") == ["customer.created", "invoice.created"]
    assert types(api, invoice="in_2") == ["invoice.created"]
    assert types(api, type="invoice.created", customer="cus_1") == ["invoice.created"]
    assert types(api, type="no.such.type") == []


def test_a_refused_write_records_no_event(api: Any, history: None) -> None:
    before = Event.objects.count()

    api.post("/payments", payment_body("in_2", amount=10**9))  # overpayment
    api.post("/invoices", invoice_body("in_1", currency="USD"))  # currency change
    api.post("/invoices", invoice_body("in_3", customer="cus_missing"))

    assert Event.objects.count() == before


def test_it_answers_404_for_an_event_that_does_not_exist(api: Any) -> None:
    assert error_of(api.get("/events/1"), 404)["code"] == "not_found"


def test_an_event_cannot_be_changed(api: Any, history: None) -> None:
    event = Event.objects.first()
    assert event is not None
    event.type = "customer.deleted"

    with pytest.raises(AppendOnlyError):
        event.save()

    assert Event.objects.filter(type="customer.deleted").count() == 0


def test_an_event_cannot_be_deleted(api: Any, history: None) -> None:
    event = Event.objects.first()
    assert event is not None

    with pytest.raises(AppendOnlyError):
        event.delete()

    assert Event.objects.filter(pk=event.pk).exists()


@pytest.mark.postgres
def test_on_postgresql_the_database_itself_refuses_to_change_or_delete_events(
    api: Any, history: None
) -> None:
    with pytest.raises(DatabaseError), transaction.atomic():
        Event.objects.update(type="rewritten")
    with pytest.raises(DatabaseError), transaction.atomic():
        Event.objects.all().delete()

    assert Event.objects.filter(type="rewritten").count() == 0
    assert Event.objects.count() == 9
