from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from dunning.core.contacts import Channel
from dunning.core.policy import CHARGE_AUTOMATICALLY_DEFAULT, SEND_INVOICE_DEFAULT
from dunning.core.policy_json import to_dict
from dunning.engine import policies
from dunning.engine.models import PolicyVersion
from tests.api.conftest import error_of, fields_of
from tests.conftest import NOW


def body(**values: Any) -> dict[str, Any]:
    """The send-invoice default as a POST body (the store numbers versions, so no `version`)."""
    data = to_dict(SEND_INVOICE_DEFAULT)
    del data["version"]
    data.update(values)
    return data


@pytest.fixture
def defaults(db: None) -> None:
    policies.ensure_default_policies(NOW)


def test_it_lists_the_policies_new_cases_can_follow(api: Any, defaults: None) -> None:
    response = api.get("/policies")

    assert response.status_code == 200
    listed = response.json()
    assert [p["key"] for p in listed] == [CHARGE_AUTOMATICALLY_DEFAULT.id, SEND_INVOICE_DEFAULT.id]
    send_invoice = listed[1]
    assert send_invoice["version"] == 1
    assert send_invoice["is_active"] is True
    assert send_invoice["steps"][0] == {
        "key": "courtesy",
        "offset": "-P3D",
        "anchor": "due",
        "tone": "friendly",
        "channels": ["email"],
        "templates": {"email": "send_invoice.courtesy"},
        "actions": [],
        "deadline": None,
        "variants": [],
    }
    assert send_invoice["applies_to"]["collection_method"] == "send_invoice"


def test_a_post_creates_version_one_of_a_new_key(api: Any, db: None) -> None:
    response = api.post("/policies", body(key="thai-smb", name="Thai small businesses"))

    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["key"], created["version"], created["name"]) == (
        "thai-smb",
        1,
        "Thai small businesses",
    )
    assert created["created_at"].startswith("2026-03-16T03:00:00")


def test_a_post_adds_a_version_and_the_first_stays_as_it_was(api: Any, defaults: None) -> None:
    first = api.get(f"/policies/{SEND_INVOICE_DEFAULT.id}").json()
    changed = body(name="Firmer")
    changed["steps"][2]["tone"] = "final"

    response = api.post("/policies", changed)

    assert response.status_code == 201, response.content
    assert response.json()["version"] == 2
    detail = api.get(f"/policies/{SEND_INVOICE_DEFAULT.id}").json()
    assert (detail["version"], detail["name"], detail["steps"][2]["tone"]) == (2, "Firmer", "final")
    assert [(v["version"], v["name"]) for v in detail["versions"]] == [
        (2, "Firmer"),
        (1, SEND_INVOICE_DEFAULT.name),
    ]
    old = PolicyVersion.objects.get(key=SEND_INVOICE_DEFAULT.id, version=1)
    assert policies.load(old) == SEND_INVOICE_DEFAULT
    assert first["steps"] == to_dict(SEND_INVOICE_DEFAULT)["steps"]


def test_an_unknown_template_is_a_422_naming_the_step_and_channel(api: Any, db: None) -> None:
    bad = body()
    bad["steps"][2]["templates"]["email"] = "send_invoice.overdue_9"

    fields = fields_of(api.post("/policies", bad))

    assert list(fields) == ["steps[2].templates.email"]
    assert fields["steps[2].templates.email"].startswith("no such template")
    assert not PolicyVersion.objects.exists()


def test_an_unsound_policy_is_a_422_naming_each_field(api: Any, db: None) -> None:
    bad = body()
    bad["steps"].append({"key": "late", "offset": "P30D", "tone": "final", "channels": ["email"]})
    bad["steps"][1]["offset"] = "-P5D"  # before the courtesy reminder
    bad["steps"][3]["templates"]["email"] = ""

    fields = fields_of(api.post("/policies", bad))

    assert fields == {
        "steps[1].offset": "comes before the offset of 'courtesy'",
        "steps[3].templates": "no template for email",
        "steps[5].key": "comes after the final action of 'uncollectible'",
        "steps[5].templates": "no template for email",
    }
    assert not PolicyVersion.objects.exists()


def test_a_malformed_policy_is_a_422_naming_each_field(api: Any, db: None) -> None:
    bad = body(key="Not A Key")
    bad["steps"][0]["offset"] = "3 days"
    bad["steps"][1]["tone"] = "angry"
    bad["steps"][2]["templates"]["pigeon"] = "send_invoice.overdue_2"

    fields = fields_of(api.post("/policies", bad))

    assert set(fields) == {
        "key",
        "steps[0].offset",
        "steps[1].tone",
        "steps[2].templates.pigeon",
    }
    assert "ISO 8601" in fields["steps[0].offset"]
    assert not PolicyVersion.objects.exists()


def test_the_store_numbers_the_versions_so_a_body_cannot(api: Any, db: None) -> None:
    fields = fields_of(api.post("/policies", body(version=9)))

    assert fields == {"version": "not a known field"}


def test_an_unknown_key_is_a_404(api: Any, db: None) -> None:
    error = error_of(api.get("/policies/no-such-policy"), 404)

    assert error["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/v1/policies"), ("get", "/api/v1/policies/x"), ("post", "/api/v1/policies")],
)
def test_every_policy_endpoint_needs_a_key(db: None, method: str, path: str) -> None:
    response = getattr(Client(), method)(path, body(), content_type="application/json")

    assert error_of(response, 401)["code"] == "unauthorized"
    assert not PolicyVersion.objects.exists()


def test_the_document_lists_the_choices_of_each_field(api: Any) -> None:
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    step = schemas["StepBody"]["properties"]

    assert step["tone"]["enum"] == ["friendly", "firm", "final"]
    assert step["channels"]["items"]["enum"] == [c.value for c in Channel]
