"""Two transactions contacting one customer at once, on PostgreSQL: the daily cap still holds.

A payment recorded by a webhook thanks the customer while the decide stage
writes a reminder on the customer's other case.  Each would miss the other's
uncommitted message; the customer's lock (`writer.lock_contacts`) makes the
second wait for the first, so Thailand's one contact a day is kept.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, transaction

from dunning.engine import policies
from dunning.engine.cases import sync_cases
from dunning.engine.decisions import decide_due_cases
from dunning.engine.models import Case, Message
from dunning.ledger import services

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DUE = datetime(2026, 3, 15, tzinfo=UTC)
WEDNESDAY_10_BANGKOK = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)
THURSDAY_08_BANGKOK = datetime(2026, 3, 19, 1, 0, tzinfo=UTC)


def test_a_reminder_decided_while_a_thank_you_is_written_waits_for_the_next_day(
    make_invoice: Any,
) -> None:
    now = WEDNESDAY_10_BANGKOK
    make_invoice("in_thb", amount_due=123450, due_at=DUE, number="INV-THB")
    make_invoice("in_usd", amount_due=5000, currency="USD", due_at=DUE, number="INV-USD")
    policies.ensure_default_policies(now=now)
    sync_cases(now=now)
    usd = Case.objects.get(currency="USD")
    thb = Case.objects.get(currency="THB")

    written, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def webhook() -> None:
        # The USD invoice is paid: its case is recovered and the customer thanked,
        # in a transaction that stays open until the decide stage has run.
        try:
            with transaction.atomic():
                services.record_payment(
                    invoice="in_usd",
                    amount=5000,
                    currency="USD",
                    received_at=now,
                    method="bank_transfer",
                    now=now,
                    source="webhook",
                )
                written.set()
                assert release.wait(timeout=30)
        except BaseException as error:  # surfaced to the test thread below
            errors.append(error)
            written.set()
        finally:
            connection.close()

    thread = threading.Thread(target=webhook)
    thread.start()
    assert written.wait(timeout=30)
    try:
        during = decide_due_cases(now=now)
    finally:
        release.set()
        thread.join(timeout=30)
    after = decide_due_cases(now=now)

    assert errors == []
    # While the thank-you was being written, the customer was not contacted again.
    assert during.cases == 0
    # Once it was committed, the reminder saw it and waits for Thursday morning.
    assert after.cases == 1
    messages = dict(Message.objects.values_list("case_id", "send_after"))
    assert messages[usd.pk] == now
    assert thb.pk not in messages
    thb.refresh_from_db()
    assert thb.next_action_at == THURSDAY_08_BANGKOK
