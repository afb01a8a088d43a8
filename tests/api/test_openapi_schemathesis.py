"""Every operation of the OpenAPI document, fuzzed in-process through the WSGI app.

schemathesis reads /api/v1/openapi.json, generates requests for each operation
(from the document's examples, its coverage of edge values, and random valid
and invalid data), sends them to `dunning.wsgi.application` with a valid
bearer key, and checks every answer:

- not_a_server_error: nothing a client sends gives a 5xx;
- status_code_conformance: every status answered is documented for its
  operation (the error statuses are added to each operation by DunningAPI);
- response_schema_conformance, content_type_conformance,
  response_headers_conformance: documented answers match the document;
- ignored_auth: the operation refuses a request without the key;
- the API's own rule that every error is {"error": {"code", "message", "fields"?}}.

Left out, because they test what the document cannot say rather than what the
API does: positive_data_acceptance (a schema-valid
body may still name a missing customer or an unknown currency code) and
negative_data_rejection (unknown query parameters are ignored, as is usual).

The requests run inside pytest-django's test transaction, so they see the
seeded rows and leave nothing behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from dunning.wsgi import application
from tests.case_factories import add_message, make_case
from tests.conftest import NOW

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)

EXCLUDED = [positive_data_acceptance, negative_data_rejection]


def error_shape(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """Every 4xx and 5xx carries the API's one error shape."""
    if response.status_code < 400:
        return None
    body = json.loads(response.content)
    assert set(body) == {"error"}, f"not the error shape: {body!r}"
    error = body["error"]
    assert set(error) <= {"code", "message", "fields"}, f"unexpected keys: {error!r}"
    assert isinstance(error["code"], str) and isinstance(error["message"], str), error
    for field in error.get("fields", []):
        assert set(field) == {"field", "message"}, field
    return True


@pytest.fixture
def keep_test_connection() -> Iterator[None]:
    """Django's test client stops a request from closing the test's connection; WSGI calls don't.

    Without this, `close_old_connections` at the end of a request sees the test
    transaction (autocommit off) and drops the connection under it.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(make_invoice: Callable[..., Any]) -> None:
    """Rows for generated requests to find: schemathesis likes short ids such as "0" and 1."""
    make_invoice("0", customer="0", currency="THB", amount_due=10**12)
    case = make_case(make_invoice("in_1", customer="cus_1"))
    add_message(case, NOW)


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_every_operation_answers_without_a_server_error_and_as_documented(
    case: schemathesis.Case, api_key: str, seeded: None, keep_test_connection: None
) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {api_key}"},
        excluded_checks=EXCLUDED,
        additional_checks=[error_shape],
    )


def test_the_openapi_document_covers_every_endpoint() -> None:
    paths = set(schema.raw_schema["paths"])

    assert paths == {
        "/api/v1/customers",
        "/api/v1/customers/{id}",
        "/api/v1/invoices",
        "/api/v1/invoices/{id}",
        "/api/v1/invoices/{id}/void",
        "/api/v1/invoices/{id}/mark-uncollectible",
        "/api/v1/payments",
        "/api/v1/payments/{id}",
        "/api/v1/payment-attempts",
        "/api/v1/payment-attempts/{id}",
        "/api/v1/payment-methods",
        "/api/v1/payment-methods/{id}",
        "/api/v1/events",
        "/api/v1/events/{id}",
        "/api/v1/cases",
        "/api/v1/cases/{id}",
        "/api/v1/cases/{id}/pause",
        "/api/v1/cases/{id}/resume",
        "/api/v1/cases/{id}/charge-in-doubt/release",
        "/api/v1/messages",
        "/api/v1/messages/{id}",
        "/api/v1/policies",
        "/api/v1/policies/{key}",
        "/api/v1/templates",
        "/api/v1/templates/resolved",
        "/api/v1/templates/{id}",
        "/api/v1/templates/{id}/preview",
    }
    security = schema.raw_schema["components"]["securitySchemes"]
    assert [s["scheme"] for s in security.values()] == ["bearer"]
