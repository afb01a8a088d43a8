"""The demo loaded through `dunning demo --load`, checked against the ledger's own rules.

Loading takes seconds, so it happens once for this module, inside a transaction
that is rolled back after the last test; each test runs in a savepoint within it.
Every test here asks for `db`: pytest-django runs database tests before the
others, and a test without it would be moved away, tearing the load down early.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import F, Sum

from dunning.demo.data import DemoData
from dunning.demo.generate import generate
from dunning.ledger import selectors
from dunning.ledger.models import (
    Customer,
    Event,
    Invoice,
    Payment,
    PaymentAttempt,
    PaymentMethod,
)
from tests.conftest import NOW
from tests.demo.test_generate import STRIPE_ADVICE_CODES, STRIPE_DECLINE_CODES

SEED = 7


@pytest.fixture(scope="module")
def output(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """What `dunning demo --load` printed; the data stays loaded for the module's tests."""
    out = StringIO()
    with django_db_blocker.unblock(), transaction.atomic():
        call_command(
            "demo",
            "--load",
            "--seed",
            str(SEED),
            "--now",
            NOW.isoformat(),
            "--play-days",
            "0",
            stdout=out,
        )
        yield out.getvalue()
        transaction.set_rollback(True)


@pytest.fixture
def expected(output: str, db: None) -> DemoData:
    return generate(seed=SEED, now=NOW)


def test_the_command_prints_what_it_loaded_by_currency(output: str, db: None) -> None:
    assert "Loaded the demo (seed 7, now 2026-03-16 03:00 UTC)" in output
    assert "Customers  300: th-TH " in output
    for currency in ("THB", "USD", "JPY", "EUR"):
        assert f"\n{currency} " in output
    assert "declined" in output


def test_the_ledger_holds_exactly_the_generated_data(expected: DemoData) -> None:
    assert Customer.objects.count() == len(expected.customers)
    assert PaymentMethod.objects.count() == len(expected.cards)
    assert Invoice.objects.count() == len(expected.invoices)
    assert PaymentAttempt.objects.count() == sum(len(i.attempts) for i in expected.invoices)
    succeeded = sum(a.outcome == "succeeded" for i in expected.invoices for a in i.attempts)
    transfers = sum(len(i.payments) for i in expected.invoices)
    assert Payment.objects.count() == succeeded + transfers
    stored = {i.external_id: (i.status, i.amount_paid, i.due_at) for i in Invoice.objects.all()}
    assert stored == {i.external_id: (i.status, i.amount_paid, i.due_at) for i in expected.invoices}


def test_every_invoice_keeps_remaining_equal_to_due_minus_paid(output: str, db: None) -> None:
    assert not Invoice.objects.exclude(amount_remaining=F("amount_due") - F("amount_paid")).exists()
    paid = Invoice.objects.filter(status="paid")
    assert paid.exists()
    assert not paid.exclude(amount_remaining=0).exists()
    assert not paid.filter(paid_at__isnull=True).exists()
    received = dict(
        Invoice.objects.annotate(received=Sum("payments__amount")).values_list(
            "external_id", "received"
        )
    )
    for external_id, amount_paid in Invoice.objects.values_list("external_id", "amount_paid"):
        assert amount_paid == (received[external_id] or 0)


def test_customers_are_in_thai_english_japanese_and_german_locales(output: str, db: None) -> None:
    locales = Customer.objects.values_list("locale", flat=True)
    languages = {locale.split("-")[0] for locale in locales}
    assert languages == {"th", "en", "ja", "de"}
    assert (
        Customer.objects.filter(
            locale="th-TH", time_zone="Asia/Bangkok", phone__startswith="+668"
        ).count()
        > 100
    )


def test_invoices_are_in_four_currencies_and_both_collection_methods(output: str, db: None) -> None:
    assert set(Invoice.objects.values_list("currency", flat=True)) == {"THB", "USD", "JPY", "EUR"}
    methods = set(Invoice.objects.values_list("collection_method", flat=True))
    assert methods == {"charge_automatically", "send_invoice"}


def test_open_invoices_are_overdue_by_every_age_up_to_120_days_or_not_yet_due(
    output: str,
    db: None,
) -> None:
    ages = {
        (NOW - due).days
        for due in selectors.overdue_invoices(now=NOW).values_list("due_at", flat=True)
    }
    assert ages == set(range(121))
    assert Invoice.objects.filter(status="open", due_at__gt=NOW).exists()
    assert Invoice.objects.filter(status="void").exists()
    assert Invoice.objects.filter(status="uncollectible").exists()


def test_some_open_invoices_are_part_paid(output: str, db: None) -> None:
    part_paid = Invoice.objects.filter(status="open", amount_paid__gt=0)
    assert part_paid.count() > 5
    assert all(0 < i.amount_remaining < i.amount_due for i in part_paid)


def test_failed_charges_carry_real_decline_codes_and_some_retries_succeed(
    output: str,
    db: None,
) -> None:
    failed = PaymentAttempt.objects.filter(outcome="failed")
    assert set(failed.values_list("decline_code", flat=True)) <= STRIPE_DECLINE_CODES
    assert set(failed.values_list("advice_code", flat=True)) - {""} <= STRIPE_ADVICE_CODES
    assert not failed.filter(payment_method__isnull=True).exists()
    recovered = (
        Invoice.objects.filter(status="paid", attempts__outcome="failed")
        .filter(attempts__outcome="succeeded")
        .distinct()
    )
    assert recovered.count() > 10


def test_every_event_is_recorded_as_coming_from_the_demo(output: str, db: None) -> None:
    assert not Event.objects.exclude(source="demo").exists()
    types = Counter(Event.objects.values_list("type", flat=True))
    assert types["customer.created"] == 300
    failed = PaymentAttempt.objects.filter(outcome="failed").count()
    assert types["payment_attempt.failed"] == failed
    # Facts were recorded in the order they happened.
    recorded = list(Event.objects.order_by("id").values_list("recorded_at", flat=True))
    assert recorded == sorted(recorded)
    assert recorded[-1] <= NOW


def test_loading_again_is_refused_and_changes_nothing(output: str, db: None) -> None:
    before = Invoice.objects.count(), Event.objects.count()
    with pytest.raises(CommandError, match=r"already has 300 customer\(s\).*To start over"):
        call_command(
            "demo",
            "--load",
            "--seed",
            "8",
            "--now",
            NOW.isoformat(),
            "--play-days",
            "0",
            stdout=StringIO(),
        )
    assert (Invoice.objects.count(), Event.objects.count()) == before


def test_if_empty_leaves_a_loaded_database_as_it_is(output: str, db: None) -> None:
    out = StringIO()
    call_command(
        "demo", "--load", "--if-empty", "--now", NOW.isoformat(), "--play-days", "0", stdout=out
    )
    assert out.getvalue().startswith("Demo not loaded: the database already has 300 customer(s)")
    assert Customer.objects.count() == 300
