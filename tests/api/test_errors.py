"""Hostile and malformed input: one error shape, the bad field named, never a 500, never an echo."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dunning.ledger.models import Customer, Invoice, Payment
from tests.api.conftest import (
    attempt_body,
    customer_body,
    error_of,
    fields_of,
    invoice_body,
    payment_body,
)
from tests.conftest import ApiClient

WRITES = [
    "/customers",
    "/invoices",
    "/payments",
    "/payment-attempts",
    "/payment-methods",
    "/invoices/1/void",
    "/invoices/1/mark-uncollectible",
]
READS = ["/customers", "/invoices", "/payments", "/payment-attempts", "/payment-methods", "/events"]


def assert_handled(response: Any) -> None:
    """Any answer but a 5xx; an error in the one JSON shape."""
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 400:
        error_of(response, response.status_code)


# --- bodies that are not what they should be ---------------------------------------------


MALFORMED_BODIES = {
    "truncated-json": b'{"external_id": "cus_1", "name": "A"',
    "trailing-comma": b'{"external_id": "cus_1",}',
    "single-quotes": b"{'external_id': 'cus_1'}",
    "empty": b"",
    "whitespace": b"   \n",
    "null": b"null",
    "array": b'[{"external_id": "cus_1", "name": "A"}]',
    "string": b'"cus_1"',
    "number": b"42",
    "huge-number": b"1" + b"0" * 5000,
    "not-utf8": b'{"name": "\xff\xfe"}',
    "utf16": '{"external_id": "cus_1"}'.encode("utf-16"),
    "nan": b'{"external_id": "cus_1", "name": "A", "metadata": {"x": NaN}}',
    "infinity": b'{"external_id": "cus_1", "name": "A", "metadata": {"x": Infinity}}',
    "float-overflow": b'{"external_id": "cus_1", "name": "A", "metadata": {"x": 1e400}}',
    "deep-arrays": b"[" * 50_000 + b"]" * 50_000,
    "deep-objects": b'{"external_id": "c", "name": "A", "metadata": '
    + b'{"a": ' * 50_000
    + b"1"
    + b"}" * 50_001,
    "duplicate-keys": b'{"external_id": "cus_1", "external_id": "cus_2", "name": "A"}',
    "nul-byte-raw": b'{"external_id": "cus\x00", "name": "A"}',
}


@pytest.mark.parametrize("path", WRITES)
@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_no_malformed_body_gives_a_server_error(
    post_raw: Callable[..., Any], make_invoice: Callable[..., Any], path: str, body: bytes
) -> None:
    make_invoice("in_1")

    assert_handled(post_raw(path, body))


@pytest.mark.parametrize("path", WRITES)
def test_a_body_that_is_not_json_is_400_or_422(post_raw: Callable[..., Any], path: str) -> None:
    response = post_raw(path, b"{not json")

    assert response.status_code in (400, 422)
    error_of(response, response.status_code)


@pytest.mark.parametrize(
    "body",
    [MALFORMED_BODIES["deep-arrays"], MALFORMED_BODIES["not-utf8"]],
    ids=["deep-arrays", "not-utf8"],
)
def test_a_body_the_idempotency_layer_cannot_normalise_is_still_answered_in_the_error_shape(
    post_raw: Callable[..., Any], body: bytes
) -> None:
    response = post_raw("/customers", body, **{"Idempotency-Key": "k-1"})

    assert error_of(response, 400)["code"] == "bad_request"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
    ],
)
def test_a_body_of_another_content_type_gives_no_server_error(
    post_raw: Callable[..., Any], content_type: str
) -> None:
    response = post_raw(
        "/customers", b'{"external_id": "cus_1", "name": "A"}', content_type=content_type
    )

    assert_handled(response)


def test_a_body_over_the_size_limit_is_413(post_raw: Callable[..., Any]) -> None:
    body = json.dumps(customer_body(name="x" * 3_000_000))

    response = post_raw("/customers", body)
    with_key = post_raw("/customers", body, **{"Idempotency-Key": "big-1"})

    assert error_of(response, 413)["code"] == "too_large"
    assert error_of(with_key, 413)["code"] == "too_large"
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    "value",
    ["\ud800", "a\udfffb", "\x00", "cus\x00_1", "x" * 256, "x" * 100_000],
    ids=[
        "lone-high-surrogate",
        "lone-low-surrogate",
        "nul",
        "embedded-nul",
        "too-long",
        "very-long",
    ],
)
@pytest.mark.parametrize(
    "field", ["external_id", "name", "phone", "email", "locale", "time_zone", "country"]
)
def test_text_that_no_database_can_store_is_a_422_naming_the_field(
    api: ApiClient, field: str, value: str
) -> None:
    response = api.post("/customers", customer_body(**{field: value}))

    assert set(fields_of(response)) == {field}
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    "metadata",
    [
        {"x": "\ud800"},
        {"x": "\x00"},
        {"k\x00": 1},
        {"x": 2**64},
        {"x": [[[[[[[[[[1]]]]]]]]]]},
        {str(n): n for n in range(51)},
        {"x": "y" * 10_001},
    ],
    ids=[
        "lone-surrogate",
        "nul",
        "nul-in-key",
        "beyond-53-bits",
        "nested-10-deep",
        "51-keys",
        "long-string",
    ],
)
def test_metadata_that_cannot_be_stored_as_json_is_a_422(
    api: ApiClient, metadata: dict[str, Any]
) -> None:
    response = api.post("/customers", customer_body(metadata=metadata))

    assert [name.split(".")[0] for name in fields_of(response)] == ["metadata"]
    assert not Customer.objects.exists()


def test_metadata_that_is_plain_json_is_kept(api: ApiClient) -> None:
    metadata = {
        "plan": "Pro",
        "seats": 3,
        "ratio": 0.25,
        "tags": ["a", "b"],
        "nested": {"ok": None},
    }

    assert api.post("/customers", customer_body(metadata=metadata)).json()["metadata"] == metadata


def test_a_lone_surrogate_in_a_line_description_is_named_by_its_index(
    api: ApiClient, make_customer: Callable[..., Any]
) -> None:
    make_customer("cus_1")
    lines = [{"description": "ok", "amount": 1}, {"description": "bad \ud800", "amount": 1}]

    response = api.post("/invoices", invoice_body(lines=lines))

    assert set(fields_of(response)) == {"lines[1].description"}


def test_unknown_fields_are_refused_by_name(api: ApiClient) -> None:
    response = api.post("/customers", customer_body(nmae="typo", amount_due=5))

    assert fields_of(response) == {"nmae": "not a known field", "amount_due": "not a known field"}


def test_a_very_long_line_list_is_refused(
    api: ApiClient, make_customer: Callable[..., Any]
) -> None:
    make_customer("cus_1")
    lines = [{"description": "x", "amount": 1}] * 501

    assert set(fields_of(api.post("/invoices", invoice_body(lines=lines)))) == {"lines"}


# --- values never echoed ------------------------------------------------------------------


SECRET = "4111111111111111"

# Every field of every write, with the secret where a value goes.  Whatever the
# API answers, an error must not carry the value back.
ECHO_CASES = [
    *[
        ("/customers", customer_body(**{f: SECRET}))
        for f in ("email", "phone", "locale", "time_zone", "country", "is_business", "metadata")
    ],
    ("/customers", customer_body(card_number=SECRET)),
    *[
        ("/invoices", invoice_body(**{f: SECRET}))
        for f in (
            "customer",
            "currency",
            "amount_due",
            "issued_at",
            "due_at",
            "collection_method",
            "status",
            "lines",
            "context",
        )
    ],
    ("/invoices", invoice_body(lines=[{"description": "x", "amount": SECRET}])),
    *[
        ("/payments", payment_body(**{f: SECRET}))
        for f in ("invoice", "amount", "currency", "received_at")
    ],
    ("/payments", payment_body(amount=1, reference=SECRET)),  # the second one is a duplicate
    ("/payments", payment_body(amount=1, reference=SECRET)),
    ("/payments", payment_body(amount=10**9, reference=SECRET + "x")),
    *[
        ("/payment-attempts", attempt_body(**{f: SECRET}))
        for f in ("invoice", "attempted_at", "outcome", "amount", "payment_method")
    ],
    (
        "/payment-methods",
        {"external_id": "pm_1", "customer": "cus_1", "type": "card", "number": SECRET},
    ),
    (
        "/payment-methods",
        {"external_id": "pm_1", "customer": "cus_1", "type": "card", "last4": SECRET},
    ),
    ("/payment-methods", {"external_id": "pm_1", "customer": SECRET, "type": "card"}),
    ("/payment-methods", {"external_id": "pm_1", "customer": "cus_1", "type": SECRET}),
    (
        "/payment-methods",
        {"external_id": "pm_1", "customer": "cus_1", "type": "card", "exp_month": SECRET},
    ),
    (
        "/payment-methods",
        {"external_id": "pm_1", "customer": "cus_1", "type": "card", "country": SECRET},
    ),
    ("/invoices/1/void", {"reason": "x", "extra": SECRET}),
]


def test_no_error_message_repeats_a_submitted_value(
    api: ApiClient, make_invoice: Callable[..., Any]
) -> None:
    make_invoice("in_1")
    errors = 0
    for path, body in ECHO_CASES:
        response = api.post(path, body)
        assert_handled(response)
        if response.status_code >= 400:
            errors += 1
            assert SECRET.encode() not in response.content, (path, body, response.content)

    assert errors >= len(ECHO_CASES) - 2  # all but the first payment with the reference


def test_a_query_filter_value_is_not_echoed_either(api: ApiClient) -> None:
    for params in (
        {"currency": SECRET},
        {"status": SECRET},
        {"overdue": SECRET},
        {"customer": SECRET * 20},
    ):
        response = api.get("/invoices", **params)
        assert response.status_code == 422
        assert SECRET.encode() not in response.content


# --- paths and query strings ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/customers", "/invoices", "/payments", "/payment-attempts", "/payment-methods", "/events"],
)
@pytest.mark.parametrize(
    "object_id",
    [
        "9223372036854775808",
        "99999999999999999999999999",
        "-1",
        "0",
        "abc",
        "1.5",
        "1e3",
        "%00",
        "%F0%9F%92%B8",
        "%ED%A0%80",
        "١٢",
    ],
)
def test_an_id_in_a_path_that_is_not_a_64_bit_id_is_a_422_not_a_500(
    api: ApiClient, path: str, object_id: str
) -> None:
    response = api.client.get(f"/api/v1{path}/{object_id}")

    assert response.status_code in (404, 422), response.content
    error_of(response, response.status_code)


@pytest.mark.parametrize("path", ["/customers", "/events"])
def test_the_largest_64_bit_id_is_simply_not_found(api: ApiClient, path: str) -> None:
    assert error_of(api.client.get(f"/api/v1{path}/9223372036854775807"), 404)


@pytest.mark.parametrize("action", ["void", "mark-uncollectible"])
def test_a_status_change_with_an_id_beyond_2_63_is_a_422(api: ApiClient, action: str) -> None:
    response = api.post(f"/invoices/18446744073709551616/{action}", {})

    assert set(fields_of(response)) == {"id"}


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize(
    "query",
    [
        "external_id=%00",
        "customer=%00",
        "invoice=a%00b",
        "type=%00",
        "email=%00",
        "country=%00",
        "status=%00",
        "outcome=%00",
        "currency=%00",
        "overdue=%00",
        "page_size=%00",
        "page_size=99999999999999999999999",
        "page_size=-5",
        "customer=%ED%A0%80",
        "external_id=" + "x" * 5000,
        "cursor=" + "A" * 5000,
        "cursor=%00",
        "cursor=%F0%9F%92%B8",
        "customer=a&customer=b",
        "unknown=1",
    ],
)
def test_no_query_string_gives_a_server_error(api: ApiClient, path: str, query: str) -> None:
    response = api.client.get(f"/api/v1{path}?{query}")

    assert_handled(response)


def cursor(raw: str) -> str:
    return quote(base64.b64encode(raw.encode()).decode())


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize(
    "raw",
    [
        "p=abc",
        "p=1.5",
        "p=-5",
        "p=%00",
        "p=99999999999999999999",
        "p=",
        "o=-1",
        "o=99999999999999999999",
        "r=maybe",
        "p=1&o=x",
        "p=\u0661",
    ],
)
def test_a_tampered_cursor_is_a_422_naming_cursor(
    api: ApiClient, make_invoice: Callable[..., Any], path: str, raw: str
) -> None:
    make_invoice("in_1")

    response = api.client.get(f"/api/v1{path}?cursor={cursor(raw)}")

    assert fields_of(response) == {"cursor": "invalid cursor"}


@pytest.mark.parametrize("value", ["not base64!", "%FF", "==", "é"])
def test_a_cursor_that_is_not_one_is_a_422(api: ApiClient, value: str) -> None:
    assert set(fields_of(api.client.get(f"/api/v1/customers?cursor={quote(value)}"))) == {"cursor"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "/customers"),
        ("delete", "/invoices"),
        ("patch", "/payments"),
        ("get", "/invoices/1/void"),
    ],
)
def test_a_method_an_endpoint_does_not_take_is_405_in_the_error_shape(
    api: ApiClient, method: str, path: str
) -> None:
    response = getattr(api.client, method)(f"/api/v1{path}")

    assert error_of(response, 405)["code"] == "method_not_allowed"


def test_an_unknown_endpoint_is_404_in_the_error_shape(api: ApiClient) -> None:
    assert error_of(api.client.get("/api/v1/refunds"), 404)["code"] == "not_found"


# --- random JSON at every write -------------------------------------------------------------

FIELD_NAMES = sorted(
    {
        *customer_body(),
        *invoice_body(),
        *payment_body(),
        *attempt_body(),
        "metadata",
        "context",
        "last4",
        "type",
        "amount",
        "reason",
    }
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "THB",
            "JPY",
            "KWD",
            "2026-03-15",
            "2026-03-15T09:30:00+07:00",
            "9999-12-31T23:59:59-14:00",
            "cus_1",
            "in_1",
            "\ud800",
            "\x00",
        ]
    )
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
bodies = st.dictionaries(
    st.sampled_from(FIELD_NAMES) | st.text(max_size=8), json_values, max_size=10
)


@pytest.mark.parametrize("path", WRITES)
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies | json_values)
def test_no_json_at_all_gives_a_server_error(
    post_raw: Callable[..., Any], make_invoice: Callable[..., Any], path: str, body: Any
) -> None:
    if not Invoice.objects.exists():
        make_invoice("in_1")

    assert_handled(post_raw(path, json.dumps(body)))


def test_a_refused_write_leaves_no_trace(api: ApiClient, make_invoice: Callable[..., Any]) -> None:
    make_invoice("in_1")
    api.post("/payments", payment_body(amount=10**9))
    api.post("/payments", payment_body(currency="JPY"))

    assert not Payment.objects.exists()
