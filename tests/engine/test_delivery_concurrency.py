"""Several delivery workers on one PostgreSQL: every message goes out exactly once."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
from django.db import connection

from dunning.channels.email.transport import SmtpConfig, SmtpTransport
from dunning.engine import policies
from dunning.engine.delivery import deliver_due
from dunning.engine.models import Case, Message
from tests.conftest import NOW
from tests.smtp_server import SmtpServer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_four_workers_send_each_message_exactly_once(make_invoice, smtp_server: SmtpServer) -> None:
    invoice = make_invoice(amount_due=100000)
    policy = policies.ensure_default_policies(now=NOW)[0]
    case = Case.objects.create(
        customer=invoice.customer,
        currency="THB",
        state="active",
        collection_method="send_invoice",
        policy=policy,
        amount_due=100000,
        opened_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
    Message.objects.bulk_create(
        Message(
            case=case,
            customer=case.customer,
            channel="email",
            to=f"c{i}@example.com",
            locale="en",
            subject=f"Reminder {i}",
            body_text="text",
            body_html="<p>html</p>",
            step="s",
            template="t",
            send_after=NOW,
            idempotency_key=f"key-{i}",
            created_at=NOW,
            updated_at=NOW,
        )
        for i in range(200)
    )
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        transport = SmtpTransport(SmtpConfig.from_url(smtp_server.url))
        try:
            while deliver_due(now=NOW, transport=transport, rng=random.Random(seed), limit=10).sent:
                pass
        except BaseException as error:  # surfaced to the test thread below
            errors.append(error)
        finally:
            transport.close()
            connection.close()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    subjects = Counter(message["Subject"] for message in smtp_server.mailbox.received)
    assert len(subjects) == 200 and set(subjects.values()) == {1}
    assert Message.objects.filter(status="sent").count() == 200
