"""Data migrations, run on rows made with the models as they were before them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("engine", "0008_charge_parameters")]
AFTER = [("engine", "0009_name_stored_charges")]
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


@pytest.mark.django_db(transaction=True)
def test_charges_planned_before_they_were_stored_are_named_from_their_keys() -> None:
    apps = migrate(BEFORE).loader.project_state(BEFORE).apps
    customer = apps.get_model("ledger", "Customer").objects.create(
        external_id="cus_1", name="A", email="a@example.com", created_at=NOW, updated_at=NOW
    )
    invoice_model = apps.get_model("ledger", "Invoice")
    invoices = [
        invoice_model.objects.create(
            external_id=f"in_{n}",
            number=f"INV-{n}",
            customer=customer,
            currency="THB",
            amount_due=10000,
            amount_paid=1000 * n,
            amount_remaining=10000 - 1000 * n,
            issued_at=NOW,
            due_at=NOW,
            status="open",
            collection_method="charge_automatically",
            created_at=NOW,
            updated_at=NOW,
        )
        for n in (1, 2)
    ]
    cards = [
        apps.get_model("ledger", "PaymentMethod").objects.create(
            external_id=f"pm_{n}",
            customer=customer,
            type="card",
            brand="visa",
            last4="4242",
            exp_month=1,
            exp_year=2030,
            created_at=NOW,
            updated_at=NOW,
        )
        for n in (1, 2)
    ]
    policy = apps.get_model("engine", "PolicyVersion").objects.create(
        key="default", version=1, definition={}, created_at=NOW
    )
    digest = hashlib.sha256(f"{invoices[1].pk}:{cards[1].pk}:8000".encode()).hexdigest()[:16]
    case_model = apps.get_model("engine", "Case")
    fields = {
        "customer": customer,
        "currency": "THB",
        "collection_method": "charge_automatically",
        "policy": policy,
        "amount_due": 17000,
        "opened_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    }
    named = case_model.objects.create(
        state="active", retry_key=f"case1:try2:{digest}", charge_in_doubt_since=NOW, **fields
    )
    unknown = case_model.objects.create(
        state="recovered", retry_key="case2:try2:0123456789abcdef", **fields
    )
    for invoice in invoices:
        apps.get_model("engine", "CaseInvoice").objects.create(
            case=named, invoice=invoice, added_at=NOW
        )

    apps = migrate(AFTER).loader.project_state(AFTER).apps

    cases = apps.get_model("engine", "Case").objects
    after = cases.get(pk=named.pk)
    assert (after.retry_invoice_id, after.retry_payment_method_id, after.retry_amount) == (
        invoices[1].pk,
        cards[1].pk,
        8000,
    )
    assert cases.get(pk=unknown.pk).retry_invoice_id is None


@pytest.mark.django_db(transaction=True)
def test_the_hour_statistics_learned_so_far_become_those_of_every_card() -> None:
    before = [("engine", "0013_policy_key_help_text")]
    after = [("engine", "0014_retry_stats_by_card")]
    apps = migrate(before).loader.project_state(before).apps
    apps.get_model("engine", "RetryHourStat").objects.bulk_create(
        apps.get_model("engine", "RetryHourStat")(hour=hour, successes=hour, attempts=100)
        for hour in (9, 10, 23)
    )

    executor = migrate(after)

    stats = executor.loader.project_state(after).apps.get_model("engine", "RetryStat")
    assert sorted(stats.objects.values_list("segment", "hour", "successes", "attempts")) == [
        ("", 9, 9, 100),
        ("", 10, 10, 100),
        ("", 23, 23, 100),
    ]
    migrate(executor.loader.graph.leaf_nodes())
