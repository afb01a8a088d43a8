"""The database helpers: a prepared query runs what its queryset would, and gives the same."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import BigIntegerField, CharField, DateTimeField, F, Q, QuerySet

from dunning.db import Param, ParamList, Prepared, PreparedUpdate
from dunning.ledger.models import Customer, Invoice
from dunning.ledger.services import InvoiceFacts, upsert_customer, upsert_invoice
from tests.conftest import NOW

pytestmark = pytest.mark.django_db


def _invoices() -> list[Invoice]:
    upsert_customer(external_id="c1", name="Ann", now=NOW, source="test", country="TH")
    upsert_customer(external_id="c2", name="Bo", now=NOW, source="test", country="US")
    made = []
    for n, (customer, days) in enumerate([("c1", 3), ("c2", 1), ("c1", 2), ("c2", 9)]):
        invoice, _ = upsert_invoice(
            facts=InvoiceFacts(
                external_id=f"in_{n}",
                customer=customer,
                number=f"N-{n}",
                currency="THB",
                amount_due=100 * (n + 1),
                issued_at=NOW - timedelta(days=30),
                due_at=NOW - timedelta(days=days),
            ),
            now=NOW,
            source="test",
        )
        made.append(invoice)
    return made


def _due(limit: int) -> QuerySet[Invoice]:
    return (
        Invoice.objects.filter(due_at__lte=Param("by", DateTimeField()))
        .select_related("customer")
        .order_by("due_at", "id")[:limit]
    )


def test_it_runs_the_sql_its_queryset_would() -> None:
    by = NOW - timedelta(days=2)
    prepared = Prepared(_due)(3)
    prepared.instances(by=by)
    plain = (
        Invoice.objects.filter(due_at__lte=by)
        .select_related("customer")
        .order_by("due_at", "id")[:3]
    )
    sql, _ = plain.query.get_compiler(connection=connection).as_sql()
    # A lookup puts an expression in parentheses: the same statement to the database.
    assert prepared.sql.replace("(%s)", "%s") == sql


def test_it_gives_the_instances_its_queryset_would_for_each_value() -> None:
    _invoices()
    prepared = Prepared(_due)
    for days in (0, 2, 3, 10):
        by = NOW - timedelta(days=days)
        expected = list(
            Invoice.objects.filter(due_at__lte=by)
            .select_related("customer")
            .order_by("due_at", "id")[:3]
        )
        found = prepared(3).instances(by=by)
        assert found == expected
        assert [i.customer.name for i in found] == [i.customer.name for i in expected]
        assert [i.due_at for i in found] == [i.due_at for i in expected]
        assert all(i._state.db == "default" and not i._state.adding for i in found)


def test_it_takes_a_list_of_any_length_and_an_empty_one_matches_nothing() -> None:
    invoices = _invoices()
    prepared = Prepared(
        lambda: (
            Invoice.objects.filter(pk__in=ParamList("ids", BigIntegerField()))
            .order_by("pk")
            .values_list("external_id", "due_at")
        )
    )()
    for chosen in ([], invoices[:1], invoices[1:], invoices):
        ids = [invoice.pk for invoice in chosen]
        expected = list(
            Invoice.objects.filter(pk__in=ids).order_by("pk").values_list("external_id", "due_at")
        )
        assert prepared.rows(ids=ids) == expected


def test_a_list_under_an_or_leaves_the_other_branch() -> None:
    invoices = _invoices()
    customer = Customer.objects.get(external_id="c2")
    prepared = Prepared(
        lambda: (
            Invoice.objects.filter(
                Q(pk__in=ParamList("ids", BigIntegerField()))
                | Q(customer=Param("who", BigIntegerField()))
            )
            .order_by("pk")
            .values_list("pk")
        )
    )()
    assert prepared.rows(ids=[], who=customer.pk) == [(invoices[1].pk,), (invoices[3].pk,)]
    assert prepared.rows(ids=[invoices[0].pk], who=customer.pk) == [
        (invoices[0].pk,),
        (invoices[1].pk,),
        (invoices[3].pk,),
    ]


def test_a_prepared_update_changes_the_rows_its_queryset_would() -> None:
    invoices = _invoices()
    # Through a join (the customer's country): compiled as a subquery of ids.
    update = PreparedUpdate(
        lambda: (
            Invoice.objects.filter(
                customer__country=Param("country", CharField()),
                pk__in=ParamList("ids", BigIntegerField()),
            ),
            {
                "amount_due": F("amount_due") + Param("paid", BigIntegerField()),
                "amount_paid": F("amount_paid") + Param("paid", BigIntegerField()),
            },
        )
    )()
    assert update.run(country="TH", ids=[invoice.pk for invoice in invoices], paid=7) == 2
    assert update.run(country="TH", ids=[invoices[0].pk], paid=1) == 1
    assert update.run(country="TH", ids=[], paid=1) == 0
    paid = dict(Invoice.objects.values_list("external_id", "amount_paid"))
    assert paid == {"in_0": 8, "in_1": 0, "in_2": 7, "in_3": 0}
