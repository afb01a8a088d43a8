"""Helpers for the API tests: request bodies, the error shape, a frozen clock."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import NOW


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The API reads the time once per request (`timezone.now()`); in tests it is NOW."""
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    yield


def customer_body(external_id: str = "cus_1", **values: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": external_id,
        "name": "Somchai Jaidee",
        "email": "somchai@example.co.th",
        "phone": "+66812345678",
        "locale": "th-TH",
        "time_zone": "Asia/Bangkok",
        "country": "TH",
        "is_business": False,
    }
    body.update(values)
    return body


def invoice_body(
    external_id: str = "in_1", customer: str = "cus_1", **values: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": external_id,
        "customer": customer,
        "number": f"INV-{external_id}",
        "currency": "THB",
        "amount_due": 123450,
        "issued_at": "2026-03-01T09:00:00+07:00",
        "due_at": "2026-03-15T00:00:00Z",
        "collection_method": "send_invoice",
        "lines": [{"description": "Pro plan, March", "quantity": 1, "amount": 123450}],
    }
    body.update(values)
    return body


def payment_body(invoice: str = "in_1", **values: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "invoice": invoice,
        "amount": 50000,
        "currency": "THB",
        "received_at": "2026-03-10T10:00:00+07:00",
        "method": "bank_transfer",
        "reference": "",
    }
    body.update(values)
    return body


def attempt_body(invoice: str = "in_1", **values: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "invoice": invoice,
        "attempted_at": "2026-03-15T02:00:00Z",
        "outcome": "failed",
        "decline_code": "insufficient_funds",
        "advice_code": "try_again_later",
        "gateway": "stripe",
    }
    body.update(values)
    return body


def error_of(response: Any, status: int) -> dict[str, Any]:
    """The `error` object of a response, after checking its status and the one error shape."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) <= {"code", "message", "fields"}, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    for entry in error.get("fields", []):
        assert set(entry) == {"field", "message"}, entry
        assert isinstance(entry["field"], str) and isinstance(entry["message"], str)
    return error


def fields_of(response: Any, status: int = 422) -> dict[str, str]:
    """{field: message} of an error response that names fields."""
    error = error_of(response, status)
    assert error.get("fields"), error
    return {entry["field"]: entry["message"] for entry in error["fields"]}


@pytest.fixture
def customer(api: Any) -> dict[str, Any]:
    """A customer created through the API."""
    response = api.post("/customers", customer_body())
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def invoice(api: Any, customer: dict[str, Any]) -> dict[str, Any]:
    """An open THB invoice of 1,234.50 for `customer`, due 2026-03-15, created through the API."""
    response = api.post("/invoices", invoice_body())
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def post_raw(api: Any) -> Callable[..., Any]:
    """POST bytes as they are, for bodies json.dumps would not produce."""

    def post(
        path: str, body: bytes | str, content_type: str = "application/json", **headers: str
    ) -> Any:
        return api.client.generic(
            "POST", f"/api/v1{path}", body, content_type=content_type, headers=headers
        )

    return post
