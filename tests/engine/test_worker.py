"""The engine end to end: ledger facts in, cases decided, messages in the outbox, payment out."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from dunning.channels.email.transport import SmtpConfig, SmtpTransport
from dunning.engine import policies
from dunning.engine.cases import sync_cases
from dunning.engine.decisions import decide_due_cases
from dunning.engine.delivery import deliver_due
from dunning.engine.models import Case, CaseEvent, Message
from dunning.ledger import services
from dunning.ledger.models import Invoice
from tests.smtp_server import SmtpServer

DUE = datetime(2026, 3, 15, tzinfo=UTC)


def run(now: datetime) -> None:
    policies.ensure_default_policies(now=now)
    sync_cases(now=now)
    decide_due_cases(now=now)


@pytest.fixture
def overdue(make_invoice: Any) -> Any:
    make_invoice("in_1", amount_due=123450, due_at=DUE, number="INV-1001")
    return make_invoice("in_2", amount_due=50000, due_at=DUE + timedelta(days=2), number="INV-1002")


def transfer(invoice: str, amount: int, *, at: datetime) -> None:
    """A bank transfer of `amount` THB for `invoice`, received and recorded at `at`."""
    services.record_payment(
        invoice=invoice,
        amount=amount,
        currency="THB",
        received_at=at,
        method="bank_transfer",
        now=at,
        source="test",
    )


def credit_to_nothing(invoice: Invoice, *, at: datetime) -> None:
    """A credit note for the whole of `invoice`: it owes nothing, and nothing was paid."""
    services.upsert_invoice(
        facts=services.InvoiceFacts(
            external_id=invoice.external_id,
            customer=invoice.customer.external_id,
            number=invoice.number,
            currency="THB",
            amount_due=0,
            issued_at=invoice.issued_at,
            due_at=invoice.due_at,
        ),
        now=at,
        source="test",
    )


def test_two_overdue_invoices_make_one_case_and_one_message_listing_both(overdue: Any) -> None:
    # Monday 16 March 2026, 10:00 in Bangkok: inside the Thai weekday window.
    now = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)

    run(now)

    case = Case.objects.get()
    assert (case.state, case.currency, case.amount_due) == ("active", "THB", 173450)
    [message] = Message.objects.filter(case=case)
    assert message.status == "scheduled" and message.to == "somchai@example.co.th"
    assert "INV-1001" in message.body_text and "INV-1002" in message.body_text
    assert "฿1,234.50" in message.body_text and "พ.ศ. 2569" in message.body_text
    assert case.next_action_at is not None and case.next_action_at > now


def test_a_pass_at_night_in_bangkok_defers_the_reminder_to_eight_in_the_morning(
    overdue: Any,
) -> None:
    night = datetime(2026, 3, 17, 15, 0, tzinfo=UTC)  # 22:00 Tuesday in Bangkok

    run(night)

    case = Case.objects.get()
    assert Message.objects.count() == 0
    assert case.next_action_at == datetime(2026, 3, 18, 1, 0, tzinfo=UTC)  # 08:00 local
    assert CaseEvent.objects.filter(case=case, type="message.deferred").exists()


def test_a_payment_recovers_the_case_cancels_what_waits_and_thanks_the_customer(
    overdue: Any, now: datetime
) -> None:
    when = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)
    run(when)
    for external_id, amount in (("in_1", 123450), ("in_2", 50000)):
        transfer(external_id, amount, at=when)

    case = Case.objects.get()
    assert case.state == "recovered"
    statuses = dict(Message.objects.values_list("step", "status"))
    assert statuses["payment_received"] == "scheduled"
    assert all(
        status == "canceled" for step, status in statuses.items() if step != "payment_received"
    )
    assert CaseEvent.objects.filter(case=case, type="recovered").exists()


def test_a_case_whose_invoices_are_all_voided_is_closed_not_recovered(overdue: Any) -> None:
    when = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)
    run(when)
    for external_id in ("in_1", "in_2"):
        services.change_invoice_status(
            invoice=external_id, status="void", now=when, source="test", reason="billed twice"
        )

    # Nothing was paid: the debt was canceled.  The case is not counted as money
    # recovered, and the customer is neither thanked for a payment nor reminded.
    case = Case.objects.get()
    assert (case.state, case.amount_due, case.retry_reason) == ("closed", 0, "")
    assert case.closed_at == when
    assert not CaseEvent.objects.filter(case=case, type="recovered").exists()
    closed = CaseEvent.objects.get(case=case, type="closed")
    assert "INV-1002 is void" in closed.reason
    assert set(Message.objects.values_list("step", "status")) == {("overdue_1", "canceled")}


def test_a_case_whose_invoices_are_credited_to_nothing_is_closed_unthanked(
    overdue: Any,
) -> None:
    when = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)
    run(when)
    for invoice in Invoice.objects.all():
        credit_to_nothing(invoice, at=when)

    # The ledger calls an invoice of nothing paid, but no money came: no "thank you,
    # we have received your payment" of ฿0.00, and no recovery to count.
    case = Case.objects.get()
    assert (case.state, case.retry_reason) == ("closed", "")
    assert not Message.objects.filter(step="payment_received").exists()


def test_an_invoice_credited_to_nothing_is_not_in_the_thank_you_for_the_other(
    overdue: Any,
) -> None:
    when = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)
    run(when)
    credited = Invoice.objects.get(external_id="in_2")
    credit_to_nothing(credited, at=when)
    transfer("in_1", 123450, at=when)

    assert Case.objects.get().state == "recovered"
    thanks = Message.objects.get(step="payment_received")
    assert "INV-1001" in thanks.body_text and "INV-1002" not in thanks.body_text


def test_one_voided_invoice_of_two_is_no_payment_on_the_timeline(overdue: Any) -> None:
    when = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)
    run(when)
    services.change_invoice_status(
        invoice="in_2", status="void", now=when, source="test", reason="billed twice"
    )

    case = Case.objects.get()
    assert (case.state, case.amount_due) == ("active", 123450)
    reduced = CaseEvent.objects.get(case=case, type="debt_reduced")
    assert "INV-1002 voided" in reduced.reason
    assert not CaseEvent.objects.filter(case=case, type="payment_applied").exists()


def test_a_case_with_one_invoice_paid_and_the_other_voided_is_recovered(overdue: Any) -> None:
    when = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)
    run(when)
    transfer("in_1", 123450, at=when)
    services.change_invoice_status(invoice="in_2", status="void", now=when, source="test")

    assert Case.objects.get().state == "recovered"
    thanks = Message.objects.get(step="payment_received")
    assert "INV-1001" in thanks.body_text and "INV-1002" not in thanks.body_text


def test_two_cases_paid_in_one_call_are_thanked_one_a_day_in_thailand(make_invoice: Any) -> None:
    # One Thai customer owes in two currencies: two cases.  Both are paid by
    # one recorded batch; the thank-yous are judged together, and Thailand's
    # one contact a day holds the second until the next morning.
    make_invoice("in_thb", amount_due=123450, due_at=DUE, number="INV-THB")
    make_invoice("in_usd", amount_due=5000, currency="USD", due_at=DUE, number="INV-USD")
    when = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)  # Wednesday 10:00 in Bangkok
    policies.ensure_default_policies(now=when)
    sync_cases(now=when)
    assert Case.objects.count() == 2

    services.record_payment_attempts(
        [
            services.AttemptFacts(invoice="in_thb", attempted_at=when, outcome="succeeded"),
            services.AttemptFacts(invoice="in_usd", attempted_at=when, outcome="succeeded"),
        ],
        now=when,
        source="test",
    )

    assert set(Case.objects.values_list("state", flat=True)) == {"recovered"}
    thanks = sorted(
        Message.objects.filter(step="payment_received").values_list("send_after", flat=True)
    )
    assert thanks[0] == when
    assert thanks[1] == datetime(2026, 3, 19, 1, 0, tzinfo=UTC)  # Thursday 08:00 in Bangkok
    deferred = CaseEvent.objects.get(type="message.deferred")
    assert "payment_received" in deferred.reason
    assert CaseEvent.objects.filter(type="recovered").count() == 2


def test_a_partial_payment_reduces_the_case_and_dunning_goes_on(overdue: Any) -> None:
    when = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)
    run(when)

    transfer("in_1", 23450, at=when)

    case = Case.objects.get()
    assert (case.state, case.amount_due) == ("active", 150000)


def test_the_whole_policy_runs_to_its_final_action_over_weeks(overdue: Any) -> None:
    now = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)
    for _ in range(40):
        run(now)
        case = Case.objects.get()
        if case.next_action_at is None:
            break
        now = max(case.next_action_at, now + timedelta(hours=1))

    case = Case.objects.get()
    steps = list(Message.objects.filter(case=case).order_by("id").values_list("step", flat=True))
    assert case.state == "exhausted"
    assert steps[-1].endswith("final") or "final" in steps[-1]
    assert len(steps) == len(set(steps))


def test_worker_once_delivers_to_the_smtp_server(
    overdue: Any, smtp_server: SmtpServer, settings: Any
) -> None:
    settings.DUNNING_SMTP_URL = smtp_server.url

    call_command("worker", "--once", "--now", "2026-03-18T10:00:00+07:00")

    [received] = smtp_server.mailbox.received
    assert (
        "INV-1001" in received["Subject"]
        or "INV-1001" in received.get_body(("plain",)).get_content()
    )
    assert Message.objects.get().status == "sent"


def test_without_smtp_the_worker_writes_eml_files(
    overdue: Any, settings: Any, tmp_path: Path
) -> None:
    settings.DUNNING_SMTP_URL = ""
    settings.DUNNING_OUTBOX_DIR = tmp_path

    call_command("worker", "--once", "--now", "2026-03-18T10:00:00+07:00")

    assert len(list(tmp_path.glob("*.eml"))) == 1
    assert Message.objects.get().status == "sent"


def test_delivery_after_decision_sends_each_message_once(
    overdue: Any, smtp_server: SmtpServer
) -> None:
    now = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)
    run(now)
    transport = SmtpTransport(SmtpConfig.from_url(smtp_server.url))

    deliver_due(now=now, transport=transport, rng=random.Random(0))
    run(now)
    deliver_due(now=now, transport=transport, rng=random.Random(0))

    assert len(smtp_server.mailbox.received) == 1


def test_playing_the_engine_over_two_weeks_leaves_a_realistic_message_history(
    overdue: Any, tmp_path: Path
) -> None:
    from dunning.channels.email.transport import FileTransport
    from dunning.engine.playback import play

    report = play(
        start=DUE - timedelta(days=4),
        end=DUE + timedelta(days=14),
        step=timedelta(hours=6),
        transport=FileTransport(tmp_path),
        rng=random.Random(0),
    )

    steps = list(Message.objects.order_by("sent_at").values_list("step", "sent_at"))
    assert report.sent == len(steps) == len(list(tmp_path.glob("*.eml")))
    assert [step for step, _ in steps][:2] == ["courtesy", "overdue_1"]
    assert all(a < b for (_, a), (_, b) in itertools.pairwise(steps))


def test_a_worker_started_with_a_gateway_that_charges_resumes_what_manual_left(
    make_customer: Any, make_card: Any, make_invoice: Any, settings: Any, tmp_path: Path
) -> None:
    # The demo database loaded under "manual", then served at the demo bank.
    settings.DUNNING_OUTBOX_DIR = tmp_path
    make_customer("cus_1")
    make_card("pm_1", customer="cus_1")
    make_invoice("in_1", customer="cus_1", due_at=DUE, collection_method="charge_automatically")
    services.record_payment_attempt(
        invoice="in_1",
        attempted_at=DUE,
        outcome="failed",
        now=DUE,
        source="test",
        decline_code="insufficient_funds",
        payment_method="pm_1",
    )
    settings.DUNNING_GATEWAY = "manual"
    call_command("worker", "--once", "--now", "2026-03-16T10:00:00+07:00")
    assert Case.objects.get().next_retry_at is None

    settings.DUNNING_GATEWAY = "demo"
    call_command("worker", "--once", "--now", "2026-03-17T10:00:00+07:00")

    case = Case.objects.get()
    assert case.next_retry_at is not None and "manually" not in case.retry_reason
    assert CaseEvent.objects.filter(case=case, type="retry.planned").exists()


def test_days_overdue_are_calendar_days_where_the_customer_is(make_invoice: Any) -> None:
    # Due 20:00 on 15 March in Bangkok; the reminder goes at 10:00 on 18 March there:
    # three days by the calendar the customer reads, though under 63 hours.
    make_invoice("in_1", due_at=datetime(2026, 3, 15, 13, 0, tzinfo=UTC), number="INV-1")

    run(datetime(2026, 3, 18, 3, 0, tzinfo=UTC))

    [message] = Message.objects.all()
    assert "เลยกำหนดชำระมาแล้ว 3 วัน" in message.body_text.replace("\n", " ")
