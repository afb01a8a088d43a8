from __future__ import annotations

import random
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest

from dunning.channels.email.transport import FileTransport, SmtpConfig, SmtpTransport
from dunning.core.backoff import MAX_ATTEMPTS
from dunning.core.contacts import Channel
from dunning.engine import policies
from dunning.engine.delivery import claim_due_messages, deliver, deliver_due
from dunning.engine.models import (
    Case,
    CaseEvent,
    ContactOptOut,
    Message,
    MessageStatus,
    OptOutSource,
)
from dunning.ledger import services
from dunning.web.views import record_opt_out
from tests.conftest import NOW
from tests.smtp_server import SmtpServer


@pytest.fixture
def case(make_invoice: Any) -> Case:
    invoice = make_invoice(amount_due=123450)
    policy = policies.ensure_default_policies(now=NOW)[0]
    return Case.objects.create(
        customer=invoice.customer,
        currency="THB",
        state="active",
        collection_method="send_invoice",
        policy=policy,
        amount_due=123450,
        due_at=invoice.due_at,
        opened_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )


def scheduled(
    case: Case, key: str, *, send_after: Any = NOW, to: str = "somchai@example.co.th"
) -> Message:
    return Message.objects.create(
        case=case,
        customer=case.customer,
        channel="email",
        to=to,
        locale="th-TH",
        subject="แจ้งเตือน: ใบแจ้งหนี้ INV-1 เลยกำหนดชำระแล้ว",
        body_text="เรียน คุณสมชาย ยอดค้างชำระ ฿1,234.50",
        body_html="<p>฿1,234.50</p>",
        headers={"unsubscribe_url": "https://dunning.example/u/x"},
        step="overdue_1",
        template="send_invoice.overdue_1",
        send_after=send_after,
        idempotency_key=key,
        created_at=NOW,
        updated_at=NOW,
    )


def test_it_sends_due_messages_and_records_them_as_sent(
    case: Case, smtp_server: SmtpServer
) -> None:
    message = scheduled(case, "k1")
    scheduled(case, "later", send_after=NOW + timedelta(hours=1))
    transport = SmtpTransport(SmtpConfig.from_url(smtp_server.url))

    report = deliver_due(now=NOW, transport=transport, rng=random.Random(1))

    message.refresh_from_db()
    assert report.sent == 1
    assert (message.status, message.sent_at, message.attempts) == ("sent", NOW, 1)
    assert message.send_after == NOW  # not the claim's lease, after the send
    [received] = smtp_server.mailbox.received
    assert received["Subject"] == message.subject
    assert received["Message-ID"] == message.provider_id
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_server_that_is_down_delays_the_message_and_loses_nothing(
    case: Case, smtp_server: SmtpServer
) -> None:
    message = scheduled(case, "k1")
    transport = SmtpTransport(SmtpConfig.from_url(smtp_server.url, timeout=5))
    smtp_server.stop()

    first = deliver_due(now=NOW, transport=transport, rng=random.Random(1))
    message.refresh_from_db()
    retry_at = message.send_after
    smtp_server.start()
    nothing_yet = deliver_due(
        now=NOW + timedelta(seconds=0), transport=transport, rng=random.Random(1)
    )
    second = deliver_due(now=retry_at, transport=transport, rng=random.Random(1))

    message.refresh_from_db()
    assert (first.retrying, nothing_yet.sent, second.sent) == (1, 0, 1)
    assert NOW < retry_at <= NOW + timedelta(minutes=1)
    assert message.status == "sent" and message.attempts == 2
    assert len(smtp_server.mailbox.received) == 1


def test_a_refused_address_fails_at_once_and_shows_on_the_case(
    case: Case, smtp_server: SmtpServer
) -> None:
    message = scheduled(case, "k1")
    smtp_server.mailbox.answer = "550 5.1.1 no such user"

    report = deliver_due(
        now=NOW, transport=SmtpTransport(SmtpConfig.from_url(smtp_server.url)), rng=random.Random(1)
    )

    message.refresh_from_db()
    assert report.failed == 1 and message.status == "failed"
    assert "550" in message.last_error
    event = CaseEvent.objects.get(case=case, type="message.failed")
    assert "somchai@example.co.th" in event.reason


def test_an_address_smtp_cannot_carry_fails_that_message_and_the_batch_goes_on(
    case: Case, smtp_server: SmtpServer
) -> None:
    # Both addresses pass the API: the domain goes as punycode, the Thai mailbox
    # name would need SMTPUTF8.  Neither may stop the worker.
    thai = scheduled(case, "k1", to="สมชาย@example.co.th")
    idn = scheduled(case, "k2", to="somchai@bücher.de")

    report = deliver_due(
        now=NOW, transport=SmtpTransport(SmtpConfig.from_url(smtp_server.url)), rng=random.Random(1)
    )

    thai.refresh_from_db()
    idn.refresh_from_db()
    assert (report.sent, report.failed) == (1, 1)
    assert (thai.status, idn.status) == ("failed", "sent")
    assert "SMTPUTF8" in thai.last_error
    assert smtp_server.mailbox.envelopes[0].rcpt_tos == ["somchai@xn--bcher-kva.de"]


def test_a_busy_server_is_retried_until_the_attempts_run_out(
    case: Case, smtp_server: SmtpServer
) -> None:
    message = scheduled(case, "k1")
    smtp_server.mailbox.answer = "451 4.3.0 busy"
    transport = SmtpTransport(SmtpConfig.from_url(smtp_server.url))
    now = NOW
    for _ in range(MAX_ATTEMPTS):
        deliver_due(now=now, transport=transport, rng=random.Random(1))
        message.refresh_from_db()
        now = message.send_after

    assert message.status == "failed"
    assert message.attempts == MAX_ATTEMPTS


def make_other_customer_message(case: Case) -> Message:
    """A message due now to another customer, who did not opt out."""
    other, _ = services.upsert_customer(
        external_id="cus_other",
        now=NOW,
        source="test",
        name="Jane Doe",
        email="jane@example.com",
        locale="en",
        country="US",
        time_zone="Asia/Bangkok",
    )
    message = scheduled(case, "k3", to="jane@example.com")
    Message.objects.filter(pk=message.pk).update(customer=other, case=None)
    message.refresh_from_db()
    return message


def test_a_message_to_a_customer_who_opted_out_since_it_was_written_is_not_sent(
    case: Case, smtp_server: SmtpServer
) -> None:
    # Written at night for the morning; the customer unsubscribed in between.
    message = scheduled(case, "k1")
    other = scheduled(case, "k2")
    other_customer = make_other_customer_message(case)
    record_opt_out(case.customer, Channel.EMAIL, now=NOW, source=OptOutSource.PAGE)

    report = deliver_due(
        now=NOW, transport=SmtpTransport(SmtpConfig.from_url(smtp_server.url)), rng=random.Random(1)
    )

    assert [parseaddr(m["To"])[1] for m in smtp_server.mailbox.received] == [other_customer.to]
    assert report.sent == 1
    for row in (message, other):
        row.refresh_from_db()
        assert row.status == MessageStatus.CANCELED and row.sent_at is None
    event = CaseEvent.objects.filter(case=case, type="message.canceled").first()
    assert event is not None and "opted out" in event.reason


def test_an_opt_out_recorded_while_the_message_was_claimed_still_stops_it(
    case: Case, smtp_server: SmtpServer
) -> None:
    # The opt-out commits after the worker claimed the row: the send still checks.
    message = scheduled(case, "k1")
    ids = claim_due_messages(now=NOW)
    ContactOptOut.objects.create(
        customer=case.customer, channel="email", created_at=NOW, source=OptOutSource.PAGE
    )

    report = deliver(
        ids,
        now=NOW,
        transport=SmtpTransport(SmtpConfig.from_url(smtp_server.url)),
        rng=random.Random(1),
    )

    message.refresh_from_db()
    assert report.sent == 0 and smtp_server.mailbox.received == []
    assert message.status == MessageStatus.CANCELED


def test_a_canceled_message_is_never_sent(case: Case, tmp_path: Path) -> None:
    message = scheduled(case, "k1")
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.CANCELED)

    report = deliver_due(now=NOW, transport=FileTransport(tmp_path), rng=random.Random(1))

    assert report.sent == 0 and list(tmp_path.iterdir()) == []


def test_a_message_canceled_while_in_flight_keeps_its_status(case: Case, tmp_path: Path) -> None:
    # The payment arrives while the email is on its way: the send is not undone,
    # but the row stays canceled and is not counted as sent.
    kept, canceled = scheduled(case, "k1"), scheduled(case, "k2")
    files = FileTransport(tmp_path)

    class CancelsOnSend:
        def send(self, message: Any) -> str:
            Message.objects.filter(pk=canceled.pk).update(status=MessageStatus.CANCELED)
            return files.send(message)

        def close(self) -> None:
            files.close()

    report = deliver_due(now=NOW, transport=CancelsOnSend(), rng=random.Random(1))

    assert report.sent == 1
    assert dict(Message.objects.values_list("pk", "status")) == {
        kept.pk: MessageStatus.SENT,
        canceled.pk: MessageStatus.CANCELED,
    }


def test_a_claimed_message_is_not_claimed_again_until_its_lease_ends(case: Case) -> None:
    scheduled(case, "k1")

    first = claim_due_messages(now=NOW)
    again = claim_due_messages(now=NOW + timedelta(minutes=4))
    after_lease = claim_due_messages(now=NOW + timedelta(minutes=5))

    assert len(first) == 1 and again == [] and after_lease == first


def test_a_message_delayed_past_the_customers_hours_waits_for_the_morning(
    case: Case, tmp_path: Path
) -> None:
    # Due at 10:00 in Bangkok, but the worker was stopped until 22:30.
    message = scheduled(case, "late")
    night = NOW + timedelta(hours=12, minutes=30)
    transport = FileTransport(tmp_path)

    report = deliver_due(now=night, transport=transport, rng=random.Random(1))

    message.refresh_from_db()
    morning = NOW + timedelta(hours=22)  # Tuesday 08:00 in Bangkok
    assert report.sent == 0 and list(tmp_path.iterdir()) == []
    assert (message.status, message.send_after) == ("scheduled", morning)
    event = CaseEvent.objects.get(case=case, type="message.deferred")
    assert "contact hours" in event.reason

    assert deliver_due(now=morning, transport=transport, rng=random.Random(1)).sent == 1
