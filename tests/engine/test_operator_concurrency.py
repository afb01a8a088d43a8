"""What changes a case while the engine works on it, on one PostgreSQL: each writer in its
own thread with its own connection, the second waiting on the first's locks.

The rules behind each: a fact that arrives (a dispute, a payment) is recorded
whatever another transaction is doing to the same cases, and leaves every case
of the customer as that fact says.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import Message as MimeMessage
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction

from dunning.channels.email.transport import FileTransport
from dunning.core.cases import CaseState
from dunning.engine import actions, delivery, policies
from dunning.engine.cases import sync_cases
from dunning.engine.models import Case, Message, MessageStatus
from dunning.ledger import services
from dunning.ledger.models import Customer, Dispute
from tests.engine.test_delivery import scheduled

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


class HeldFirstSend:
    """Writes each email to `folder`; the first one takes until `released` is set, and
    RECHECK_AFTER longer (a slow mail server), while the rest of its batch waits."""

    def __init__(self, folder: Path, released: threading.Event) -> None:
        self.files, self.released = FileTransport(folder), released
        self.sending, self.sent = threading.Event(), 0

    def send(self, message: MimeMessage) -> str:
        if not self.sent:
            self.sending.set()
            assert self.released.wait(timeout=WAIT)
            time.sleep(delivery.RECHECK_AFTER)
        self.sent += 1
        return self.files.send(message)

    def close(self) -> None:
        self.files.close()


def test_a_reminder_of_a_case_paused_while_its_batch_is_sent_is_not_sent(
    make_invoice: Any, tmp_path: Path
) -> None:
    """Two reminders of one case are claimed in one batch.  While the first is on its way,
    an operator pauses the case, which cancels both.  The first is gone already; the
    second, canceled before its send began, never leaves."""
    make_invoice(amount_due=123450, due_at=DUE)
    policies.ensure_default_policies(now=NOW)
    sync_cases(now=NOW)
    case = Case.objects.get()
    scheduled(case, "k1", send_after=NOW)
    scheduled(case, "k2", send_after=NOW)
    released = threading.Event()
    transport = HeldFirstSend(tmp_path, released)
    worker = Writer(
        lambda: delivery.deliver_due(now=NOW, transport=transport, rng=random.Random(1))
    )
    worker.start()
    try:
        assert transport.sending.wait(timeout=WAIT), "the delivery never sent"
        actions.pause_case(case.pk, now=NOW, reason="customer called", source="api")
    finally:
        released.set()
    worker.finish()

    assert transport.sent == 1
    assert len(list(tmp_path.iterdir())) == 1
    assert dict(Message.objects.values_list("idempotency_key", "status"))["k2"] == (
        MessageStatus.CANCELED
    )
