"""Concurrent deliveries of one Stripe event on PostgreSQL: applied once, the rest duplicates."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from dunning.gateways import webhooks
from dunning.gateways.models import WebhookEvent
from dunning.ledger.models import Event, PaymentAttempt
from tests.gateways.stripe_webhooks import SECRET, URL, at, body_of, sign, story

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_deliveries_of_one_event_at_once_apply_it_once(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.DUNNING_STRIPE_WEBHOOK_SECRET = [SECRET]
    events = {event["type"]: event for event in story("S1")["events"]}
    finalized, failed = events["invoice.finalized"], copy.deepcopy(events["charge.failed"])
    moment = failed["created"] + 1
    monkeypatch.setattr(webhooks, "clock", lambda: at(moment))
    body = body_of(finalized)
    Client().post(
        URL,
        body,
        content_type="application/json",
        headers={"Stripe-Signature": sign(body, timestamp=moment)},
    )
    body = body_of(failed)
    header = sign(body, timestamp=moment)
    start = threading.Barrier(4)
    answers: list[dict[str, Any]] = []

    def deliver() -> None:
        try:
            start.wait()
            response = Client().post(
                URL, body, content_type="application/json", headers={"Stripe-Signature": header}
            )
            answers.append(response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(a.get("outcome", "duplicate") for a in answers) == [
        "applied",
        "duplicate",
        "duplicate",
        "duplicate",
    ]
    assert WebhookEvent.objects.filter(event_id=failed["id"]).count() == 1
    assert PaymentAttempt.objects.count() == 1
    assert Event.objects.filter(type="payment_attempt.failed").count() == 1
