from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from dunning.ledger import services
from dunning.ledger.models import Event, Invoice

from ..conftest import NOW


@pytest.fixture
def operator(db: None) -> Client:
    user = User.objects.create_superuser("ops", "ops@example.com", "a-long-password")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "model",
    ["customer", "invoice", "payment", "paymentattempt", "paymentmethod", "event", "dispute"],
)
def test_operators_can_look_at_every_ledger_list_and_record(
    operator: Client, make_invoice: Callable[..., Any], model: str
) -> None:
    invoice = make_invoice(amount_due=100000)
    services.record_payment_attempt(
        invoice=invoice.external_id,
        attempted_at=NOW,
        outcome="failed",
        decline_code="insufficient_funds",
        now=NOW,
        source="test",
    )
    services.record_payment(
        invoice=invoice.external_id,
        amount=40000,
        currency="THB",
        received_at=NOW,
        method="bank_transfer",
        now=NOW,
        source="test",
    )
    services.upsert_payment_method(
        external_id="pm_1",
        customer="cus_1",
        now=NOW,
        source="test",
        type="card",
        brand="visa",
        last4="4242",
        exp_month=5,
        exp_year=2027,
    )
    services.record_dispute(
        services.DisputeFacts(
            external_id="dp_1",
            customer=invoice.customer,
            invoice=invoice,
            amount=40000,
            currency="THB",
            reason="fraudulent",
            status="needs_response",
            at=NOW,
        ),
        now=NOW,
        source="test",
    )

    listing = operator.get(f"/admin/ledger/{model}/")
    assert listing.status_code == 200

    from django.apps import apps

    record = apps.get_model("ledger", model).objects.first()
    detail = operator.get(f"/admin/ledger/{model}/{record.pk}/change/")
    assert detail.status_code == 200


def test_the_invoice_list_shows_amounts_in_major_units(
    operator: Client, make_invoice: Callable[..., Any]
) -> None:
    make_invoice(amount_due=123450)
    make_invoice("in_jpy", currency="JPY", amount_due=4980)

    page = operator.get("/admin/ledger/invoice/").content.decode()

    assert "THB\xa01,234.50" in page
    assert "¥4,980" in page


def test_an_invoice_s_own_page_shows_money_and_json_for_reading_and_offers_no_save(
    operator: Client, make_invoice: Callable[..., Any]
) -> None:
    invoice = make_invoice(amount_due=99000000)  # 990,000.00 baht, not "99000000"
    Invoice.objects.filter(pk=invoice.pk).update(context={"plan": "ธุรกิจ", "seats": 40})

    page = operator.get(f"/admin/ledger/invoice/{invoice.pk}/change/").content.decode()

    assert "THB\xa0990,000.00" in page and "99000000" not in page
    assert "&quot;plan&quot;: &quot;ธุรกิจ&quot;,\n  &quot;seats&quot;: 40" in page
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert "View invoice" in page


def test_voiding_from_the_admin_goes_through_the_ledger_and_leaves_an_event(
    operator: Client, make_invoice: Callable[..., Any]
) -> None:
    invoice = make_invoice()

    operator.post("/admin/ledger/invoice/", {"action": "void", "_selected_action": [invoice.pk]})

    assert Invoice.objects.get(pk=invoice.pk).status == "void"
    assert Event.objects.filter(type="invoice.voided", invoice=invoice, source="admin").exists()


def test_the_admin_cannot_add_or_delete_ledger_rows(operator: Client) -> None:
    assert operator.get("/admin/ledger/invoice/add/").status_code == 403
    assert operator.get("/admin/ledger/event/add/").status_code == 403


def test_times_are_written_with_their_zone(
    operator: Client, make_invoice: Callable[..., Any]
) -> None:
    # Operators in Bangkok must not read 00:00 UTC as midnight of their own day.
    make_invoice(due_at=datetime(2026, 3, 15, 17, 0, tzinfo=UTC))

    page = operator.get("/admin/ledger/invoice/").content.decode()

    assert "March 15, 2026, 17:00 UTC" in page
