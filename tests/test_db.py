"""The database helpers: a prepared query runs what its queryset would, and gives the same."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import BigIntegerField, CharField, DateTimeField, F, Q, QuerySet

from dunning.db import (
    Param,
    ParamList,
    Prepared,
    PreparedUpdate,
    bulk_insert,
    insert_rows,
    update_each,
)
from dunning.engine.models import Case, CaseInvoice
from dunning.ledger.models import Customer, Event, Invoice
from dunning.ledger.services import InvoiceFacts, upsert_customer, upsert_invoice
from tests.conftest import NOW, unsaved_case

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


def _events(invoices: list[Invoice], tag: str) -> list[Event]:
    return [
        Event(
            type=f"test.{tag}",
            occurred_at=NOW - timedelta(hours=n, microseconds=7),
            recorded_at=NOW,
            source="test",
            customer=invoice.customer,
            invoice=invoice if n % 2 else None,
            data={"n": n, "text": "ไทย", "nested": [1, None]},
        )
        for n, invoice in enumerate(invoices)
    ]


def _stored(tag: str) -> list[tuple[object, ...]]:
    columns = ["type", "occurred_at", "recorded_at", "source", "customer_id", "invoice_id", "data"]
    return [
        (row[0].removeprefix(f"test.{tag}"), *row[1:])
        for row in Event.objects.filter(type=f"test.{tag}").order_by("id").values_list(*columns)
    ]


def test_bulk_insert_writes_the_rows_bulk_create_would_and_sets_their_keys() -> None:
    invoices = _invoices()
    made = Event.objects.bulk_create(_events(invoices, "django"))
    inserted = bulk_insert(_events(invoices, "ours"))
    assert _stored("ours") == _stored("django")
    assert [event.pk for event in inserted] == list(
        Event.objects.filter(type="test.ours").order_by("id").values_list("id", flat=True)
    )
    assert all(not event._state.adding for event in inserted)
    assert min(event.pk for event in inserted) > max(event.pk for event in made)


def test_bulk_insert_takes_the_key_of_a_related_row_saved_after_it_was_assigned() -> None:
    (invoice, *_) = _invoices()
    case = unsaved_case(invoice.customer)
    link = CaseInvoice(case=case, invoice=invoice, added_at=NOW)  # before the case has a key
    with pytest.raises(ValueError, match="unsaved Case"):
        bulk_insert([link])
    assert not CaseInvoice.objects.exists()
    bulk_insert([case])
    bulk_insert([link])
    assert CaseInvoice.objects.get().case_id == case.pk == link.case_id


def test_bulk_insert_skips_conflicting_rows_when_asked_and_raises_otherwise() -> None:
    invoices = _invoices()
    customer = invoices[0].customer
    (case,) = bulk_insert([unsaved_case(customer)])
    bulk_insert([CaseInvoice(case=case, invoice=invoices[0], added_at=NOW)])
    again = [CaseInvoice(case=case, invoice=invoice, added_at=NOW) for invoice in invoices[:2]]
    bulk_insert(again, ignore_conflicts=True)
    assert sorted(CaseInvoice.objects.values_list("invoice_id", flat=True)) == sorted(
        invoice.pk for invoice in invoices[:2]
    )
    assert all(link.pk is None for link in again)  # as bulk_create: no keys when ignoring
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk_insert([CaseInvoice(case=case, invoice=invoices[0], added_at=NOW)])


def test_bulk_insert_takes_only_new_rows_of_one_model() -> None:
    (invoice, *_) = _invoices()
    with pytest.raises(ValueError, match="only new Event rows"):
        bulk_insert([*_events([invoice], "a"), invoice])  # type: ignore[list-item]
    saved = bulk_insert(_events([invoice], "b"))
    with pytest.raises(ValueError, match="only new Event rows"):
        bulk_insert(saved)
    assert not Event.objects.filter(type="test.a").exists()


def test_datetimes_are_written_and_read_as_the_orm_does() -> None:
    first, second, *_ = _invoices()
    bangkok = ZoneInfo("Asia/Bangkok")
    moment = datetime(2030, 3, 1, 7, 30, 15, 123456, tzinfo=bangkok)  # after the others
    first.due_at = moment
    update_each([first], ["due_at"])
    second.due_at = moment
    second.save(update_fields=["due_at"])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT due_at FROM ledger_invoice WHERE id IN (%s, %s) ORDER BY id",
            [first.pk, second.pk],
        )
        ours, django_s = cursor.fetchall()
    assert ours == django_s
    read = Prepared(
        lambda: Invoice.objects.filter(due_at__gte=Param("from", DateTimeField())).order_by("id")
    )().instances(**{"from": moment})
    assert [(i.pk, i.due_at) for i in read] == [(first.pk, moment), (second.pk, moment)]
    assert all(i.due_at.utcoffset() == timedelta(0) for i in read)
    plain = Invoice.objects.filter(due_at__gte=moment).order_by("id")
    assert [(i.pk, i.due_at, i.issued_at) for i in read] == [
        (i.pk, i.due_at, i.issued_at) for i in plain
    ]


def test_a_missing_datetime_is_written_as_null_before_any_datetime_was(tmp_path: Path) -> None:
    # The last datetime written is remembered (a batch's `now`); in a new process
    # nothing is, and a None must still be NULL, not the remembered text.
    script = (
        "import django; django.setup(); from dunning.db import _write_utc_text;"
        " print(repr(_write_utc_text(None)))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dunning.settings"}
    env |= {"DUNNING_DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db'}"}
    found = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "None"


def test_a_missing_datetime_is_written_as_null_after_a_datetime_was() -> None:
    case = unsaved_case(_invoices()[0].customer, next_retry_at=NOW)
    bulk_insert([case])  # NOW remembered
    case.next_retry_at = None
    update_each([case], ["next_retry_at"])
    assert Case.objects.filter(pk=case.pk, next_retry_at__isnull=True).exists()


@pytest.mark.parametrize("insert", ["bulk_create", "bulk_insert"])
def test_a_related_row_saved_after_it_was_assigned_stays_the_one_assigned(
    insert: str, django_assert_num_queries: Any
) -> None:
    (invoice, *_) = _invoices()
    case = unsaved_case(invoice.customer)
    link = CaseInvoice(case=case, invoice=invoice, added_at=NOW)  # before the case has a key
    bulk_insert([case])
    if insert == "bulk_create":
        CaseInvoice.objects.bulk_create([link])
    else:
        bulk_insert([link])
    with django_assert_num_queries(0):
        assert link.case is case


def test_insert_rows_writes_plain_tuples_as_the_orm_would() -> None:
    invoices = _invoices()
    Event.objects.bulk_create(_events(invoices, "django"))
    columns = ("type", "occurred_at", "recorded_at", "source", "customer", "invoice", "data")
    rows = [
        (
            "test.ours",
            event.occurred_at,
            event.recorded_at,
            event.source,
            event.customer_id,
            event.invoice_id,
            event.data,
        )
        for event in _events(invoices, "")
    ]
    assert insert_rows(Event, columns, rows) == len(invoices)
    assert _stored("ours") == _stored("django")
    with pytest.raises(ValueError, match="a row of 2 values"):
        insert_rows(Event, columns, [("test.short", NOW)])
