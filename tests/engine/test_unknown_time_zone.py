"""A customer whose stored time zone this machine does not know.

Names are checked on the way in, but a row may predate the check, or name a
zone another machine's tz database lacks (old aliases such as US/Eastern are a
separate package on some systems).  The worker must go on for everyone else,
and for that customer too wherever no local hour is needed to decide.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client

from dunning.engine import links
from dunning.engine.cases import sync_cases
from dunning.engine.decisions import decide_due_cases
from dunning.engine.models import Case, CaseEvent, Message, RetryStat
from dunning.ledger import services
from dunning.ledger.models import Customer, Invoice
from tests.engine.test_retries import T0, Bank, add_invoice, bank, customer, fail, ok

__all__ = ["bank", "customer"]  # fixtures


PUBLIC_URL = settings.DUNNING_PUBLIC_URL


def declined_new_yorker() -> None:
    """cus_ny, in New York, whose subscription charge was declined for funds at T0."""
    services.upsert_customer(
        external_id="cus_ny",
        now=T0 - timedelta(days=30),
        source="test",
        name="Jane Smith",
        email="jane@example.com",
        locale="en-US",
        country="US",
        time_zone="America/New_York",
    )
    services.upsert_payment_method(
        external_id="pm_ny",
        customer="cus_ny",
        now=T0 - timedelta(days=30),
        source="test",
        type="card",
        brand="visa",
        last4="1881",
        exp_month=12,
        exp_year=2030,
        is_default=True,
    )
    services.upsert_invoice(
        facts=services.InvoiceFacts(
            external_id="in_ny",
            customer="cus_ny",
            number="INV-NY",
            currency="USD",
            amount_due=4900,
            issued_at=T0 - timedelta(days=1),
            due_at=T0,
            collection_method="charge_automatically",
        ),
        now=T0 - timedelta(days=1),
        source="test",
    )
    fail("in_ny", card="pm_ny")


@pytest.mark.parametrize("stored", ["", "US/Nowhere"])
def test_an_unknown_time_zone_stops_nobody_elses_retries_nor_its_own(
    customer: None, bank: Bank, stored: str
) -> None:
    add_invoice(collection_method="charge_automatically")
    fail()
    declined_new_yorker()
    Customer.objects.filter(external_id="cus_th").update(time_zone=stored)
    sync_cases(now=T0)

    report = bank.run(T0)  # raised on the first case with the unknown zone, for everyone

    assert report.planned == 2, report
    theirs = Case.objects.get(customer__external_id="cus_ny")
    assert theirs.next_retry_at is not None and "America/New_York" in theirs.retry_reason
    mine = Case.objects.get(customer__external_id="cus_th")
    assert mine.next_retry_at is not None, mine.retry_reason
    # Its hours are reckoned in UTC, and the reason says so and why.
    assert mine.retry_reason.startswith(f"unknown time zone {stored!r}"), mine.retry_reason
    assert mine.retry_reason.endswith(f"{mine.next_retry_at:%H:%M} UTC"), mine.retry_reason

    # Reminders: the contact hours cannot be judged, so none is sent, and the
    # pass goes on to the others.
    decide_due_cases(now=T0 + timedelta(hours=12))  # 11:00 in New York
    assert not Message.objects.filter(customer__external_id="cus_th").exists()
    held = CaseEvent.objects.get(case=mine, type="message.blocked")
    assert f"unknown time zone {stored!r}: contact hours cannot be judged" in held.reason
    assert Message.objects.filter(customer__external_id="cus_ny").exists()

    # The customer's pay page still opens, its due date read in UTC.
    page = Client().get(links.pay_link(mine.customer, mine).removeprefix(PUBLIC_URL))
    assert page.status_code == 200 and "INV-2001" in page.content.decode()

    # The charge is made and its answer recorded (the hour it teaches is not known).
    bank.answer(ok)
    report = bank.run(mine.next_retry_at)
    assert report.recovered == 1, report
    assert Invoice.objects.get(external_id="in_th").amount_remaining == 0
    assert sum(stat.attempts for stat in RetryStat.objects.all()) == 0
