"""Shared fixtures.

The suite runs on SQLite by default and on PostgreSQL when TEST_DATABASE_URL
is set.  Tests marked `postgres` need real concurrency: they are deselected
(not skipped) on SQLite.  With DUNNING_FAIL_ON_SKIP=1 (set by .ci/run) any
skipped test fails the run, so a missing service cannot pass silently.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test import Client

# A fixed moment for tests: nothing in them reads the clock.
NOW = datetime(2026, 3, 16, 3, 0, tzinfo=UTC)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if (os.environ.get("TEST_DATABASE_URL") or "").startswith("postgres"):
        return
    selected, deselected = [], []
    for item in items:
        (deselected if item.get_closest_marker("postgres") else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("DUNNING_FAIL_ON_SKIP") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        if reporter:
            reporter.write_line(
                f"DUNNING_FAIL_ON_SKIP: {len(skipped)} test(s) skipped; every test must run in CI",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def api_key(db: None) -> str:
    from dunning.api.keys import create_key

    return create_key(name="tests", now=NOW).key


class ApiClient:
    """A Django test client that speaks JSON with a bearer key."""

    def __init__(self, key: str):
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")

    def post(self, path: str, body: Any, **headers: str) -> Any:
        return self.client.post(
            f"/api/v1{path}", body, content_type="application/json", headers=headers
        )

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api/v1{path}", params)


@pytest.fixture
def api(api_key: str) -> ApiClient:
    return ApiClient(api_key)


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def unsaved_case(customer: Any, *, at: datetime = NOW, **fields: Any) -> Any:
    """A case row for `customer` on the default send_invoice policy, not saved yet:
    for tests that write cases the way the engine does (`dunning.db.bulk_insert`)."""
    from dunning.engine.models import Case, PolicyVersion
    from dunning.engine.policies import ensure_default_policies

    ensure_default_policies(now=at)
    values: dict[str, Any] = {
        "currency": "THB",
        "state": "active",
        "collection_method": "send_invoice",
        "amount_due": 100,
        "due_at": at,
        "opened_at": at,
        "created_at": at,
        "updated_at": at,
    }
    policy = PolicyVersion.objects.order_by("id").first()
    return Case(customer=customer, policy=policy, **(values | fields))


@pytest.fixture
def make_customer(db: None) -> Callable[..., Any]:
    from dunning.ledger import services

    def make(external_id: str = "cus_1", **values: Any) -> Any:
        values.setdefault("name", "Somchai Jaidee")
        values.setdefault("email", "somchai@example.co.th")
        values.setdefault("locale", "th-TH")
        values.setdefault("country", "TH")
        customer, _ = services.upsert_customer(
            external_id=external_id, now=NOW, source="test", **values
        )
        return customer

    return make


@pytest.fixture
def make_card(db: None) -> Callable[..., Any]:
    """A saved card (Visa 4242, 12/2030, the default unless told) for a customer that exists."""
    from dunning.ledger import services

    def make(
        external_id: str = "pm_1", *, customer: str = "cus_1", now: datetime = NOW, **values: Any
    ) -> Any:
        card = {
            "type": "card",
            "brand": "visa",
            "last4": "4242",
            "exp_month": 12,
            "exp_year": 2030,
            "is_default": True,
            **values,
        }
        method, _ = services.upsert_payment_method(
            external_id=external_id, customer=customer, now=now, source="test", **card
        )
        return method

    return make


@pytest.fixture
def make_invoice(make_customer: Callable[..., Any]) -> Callable[..., Any]:
    from dunning.ledger import services

    def make(external_id: str = "in_1", *, customer: str = "cus_1", **values: Any) -> Any:
        from dunning.ledger.models import Customer

        if not Customer.objects.filter(external_id=customer).exists():
            make_customer(customer)
        facts = services.InvoiceFacts(
            external_id=external_id,
            customer=customer,
            number=values.pop("number", f"INV-{external_id}"),
            currency=values.pop("currency", "THB"),
            amount_due=values.pop("amount_due", 123450),
            issued_at=values.pop("issued_at", datetime(2026, 3, 1, tzinfo=UTC)),
            due_at=values.pop("due_at", datetime(2026, 3, 15, tzinfo=UTC)),
            **values,
        )
        invoice, _ = services.upsert_invoice(facts=facts, now=NOW, source="test")
        return invoice

    return make
