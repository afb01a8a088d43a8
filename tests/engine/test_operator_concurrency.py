"""What changes a case while the engine works on it, on one PostgreSQL: each writer in its
own thread with its own connection, the second waiting on the first's locks.

The rules behind each: a fact that arrives (a dispute, a payment) is recorded
whatever another transaction is doing to the same cases, and leaves every case
of the customer as that fact says.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, transaction

from dunning.core.cases import CaseState
from dunning.engine import policies
from dunning.engine.cases import sync_cases
from dunning.engine.models import Case
from dunning.ledger import services
from dunning.ledger.models import Customer, Dispute

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DUE = datetime(2026, 3, 15, tzinfo=UTC)
NOW = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)
WAIT = 10.0  # seconds a thread waits for the other at most


def waiting_on_a_lock(within: float = WAIT) -> None:
    """Return once another connection waits for a row lock (the second writer has reached
    the first one's rows); fail after `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            (waiting,) = cursor.fetchone()
        if waiting:
            return
        time.sleep(0.01)
    raise AssertionError("no transaction ever waited for the other's locks")


class Writer(threading.Thread):
    """`work` in a thread of its own (its own connection); its error surfaces in `finish`."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.work()
        except BaseException as error:  # surfaced to the test below
            self.error = error
        finally:
            connection.close()

    def finish(self) -> None:
        self.join(timeout=WAIT * 2)
        assert not self.is_alive(), "the writer is still running"
        if self.error is not None:
            raise self.error


def open_dispute() -> None:
    services.record_dispute(
        services.DisputeFacts(
            external_id="dp_1",
            customer=Customer.objects.get(external_id="cus_1"),
            invoice=None,
            amount=5000,
            currency="USD",
            reason="fraudulent",
            status="needs_response",
            at=NOW,
        ),
        now=NOW,
        source="stripe",
    )


def test_a_dispute_opening_while_a_payment_recovers_a_case_pauses_the_others(
    make_invoice: Any,
) -> None:
    """The customer owes in THB and in USD.  A transfer pays the USD invoice; before its
    transaction commits, a dispute opens.  The dispute sees the USD case still active and
    waits for its lock; once the payment commits, that case is recovered.  The dispute is
    still recorded, and the THB case, which nothing paid, is paused."""
    make_invoice("in_thb", amount_due=123450, due_at=DUE)
    make_invoice("in_usd", amount_due=5000, currency="USD", due_at=DUE)
    policies.ensure_default_policies(now=NOW)
    sync_cases(now=NOW)

    recorded, release = threading.Event(), threading.Event()

    def transfer() -> None:
        with transaction.atomic():
            services.record_payment(
                invoice="in_usd",
                amount=5000,
                currency="USD",
                received_at=NOW,
                method="bank_transfer",
                now=NOW,
                source="api",
            )
            recorded.set()
            assert release.wait(timeout=WAIT)

    payment = Writer(transfer)
    payment.start()
    assert recorded.wait(timeout=WAIT)
    dispute = Writer(open_dispute)
    dispute.start()
    try:
        waiting_on_a_lock()
    finally:
        release.set()
    payment.finish()
    dispute.finish()

    assert Dispute.objects.filter(external_id="dp_1").exists()
    states = dict(Case.objects.values_list("currency", "state"))
    assert states == {"THB": CaseState.PAUSED, "USD": CaseState.RECOVERED}
