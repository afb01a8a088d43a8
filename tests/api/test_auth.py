from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from dunning.api import keys
from dunning.api.models import ApiKey
from dunning.ledger.models import Customer
from tests.api.conftest import customer_body, error_of
from tests.conftest import NOW, ApiClient

ENDPOINTS = [
    ("get", "/customers"),
    ("get", "/customers/1"),
    ("post", "/customers"),
    ("get", "/invoices"),
    ("post", "/invoices"),
    ("post", "/invoices/1/void"),
    ("get", "/payments"),
    ("post", "/payments"),
    ("get", "/payment-attempts"),
    ("post", "/payment-attempts"),
    ("get", "/payment-methods"),
    ("get", "/events"),
]


def apikey(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("apikey", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def call(client: Client, method: str, path: str) -> Any:
    if method == "post":
        return client.post(f"/api/v1{path}", customer_body(), content_type="application/json")
    return client.get(f"/api/v1{path}")


def assert_unauthorized(response: Any) -> None:
    error = error_of(response, 401)
    assert error["code"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_a_request_without_a_key_is_401(db: None, method: str, path: str) -> None:
    assert_unauthorized(call(Client(), method, path))


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer dun_not-a-real-key",
        "Bearer ",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "dun_abc",
        "Bearer " + "dun_" + "x" * 5000,
        "Bearer dun_\x00",
        "Bearer dun_é",
    ],
    ids=[
        "unknown-key",
        "empty-bearer",
        "bare-bearer",
        "basic",
        "no-scheme",
        "very-long",
        "nul",
        "non-ascii",
    ],
)
def test_a_request_with_a_bad_key_is_401(db: None, authorization: str) -> None:
    response = Client(HTTP_AUTHORIZATION=authorization).get("/api/v1/customers")

    assert_unauthorized(response)


def test_a_request_with_a_valid_key_is_answered(api: ApiClient) -> None:
    assert api.get("/customers").status_code == 200


def test_a_revoked_key_is_401_and_other_keys_still_work(db: None) -> None:
    revoked = keys.create_key(name="old", now=NOW)
    kept = keys.create_key(name="new", now=NOW)
    keys.revoke_key(key_id=revoked.record.pk, now=NOW)

    assert_unauthorized(ApiClient(revoked.key).get("/customers"))
    assert ApiClient(kept.key).get("/customers").status_code == 200


def test_a_write_without_a_valid_key_changes_nothing(db: None) -> None:
    Client(HTTP_AUTHORIZATION="Bearer dun_wrong").post(
        "/api/v1/customers", customer_body(), content_type="application/json"
    )

    assert not Customer.objects.exists()


def test_using_a_key_notes_when_it_was_last_used(api_key: str) -> None:
    ApiClient(api_key).get("/customers")

    assert ApiKey.objects.get().last_used_at == NOW


def test_apikey_create_prints_the_key_alone_on_the_last_line_and_stores_only_its_hash(
    db: None,
) -> None:
    out, err = apikey("create", "billing system")

    key = out.strip().splitlines()[-1]
    assert key.startswith("dun_") and " " not in key and len(key) >= 40
    record = ApiKey.objects.get()
    assert record.name == "billing system"
    assert record.key_hash == keys.hash_key(key)
    assert key not in str(ApiKey.objects.values().get())
    assert key not in err
    # Nothing anywhere in the database holds the key itself.
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert key not in dump.getvalue()
    assert record.key_hash in dump.getvalue()
    # And the printed key works.
    assert ApiClient(key).get("/customers").status_code == 200


def test_apikey_create_refuses_a_blank_name(db: None) -> None:
    with pytest.raises(CommandError):
        apikey("create", "   ")
    assert not ApiKey.objects.exists()


def test_apikey_create_refuses_a_name_longer_than_100_characters(db: None) -> None:
    with pytest.raises(CommandError, match="at most 100"):
        apikey("create", "x" * 101)
    assert not ApiKey.objects.exists()


def test_apikey_list_shows_names_prefixes_and_status_but_never_keys(db: None) -> None:
    first = keys.create_key(name="billing", now=NOW)
    second = keys.create_key(name="backoffice", now=NOW)
    keys.revoke_key(key_id=second.record.pk, now=NOW)

    out, _ = apikey("list")

    lines = out.splitlines()
    assert len(lines) == 3
    assert "billing" in lines[1] and "active" in lines[1] and first.record.prefix in lines[1]
    assert "backoffice" in lines[2] and "revoked" in lines[2]
    assert first.key not in out and second.key not in out


def test_apikey_revoke_makes_the_key_stop_working(db: None) -> None:
    new = keys.create_key(name="billing", now=NOW)
    assert ApiClient(new.key).get("/customers").status_code == 200

    out, _ = apikey("revoke", str(new.record.pk))

    assert "Revoked" in out
    assert ApiKey.objects.get().revoked_at is not None
    assert_unauthorized(ApiClient(new.key).get("/customers"))


def test_apikey_revoke_of_an_unknown_id_is_an_error(db: None) -> None:
    with pytest.raises(CommandError, match="no API key with id 42"):
        apikey("revoke", "42")
