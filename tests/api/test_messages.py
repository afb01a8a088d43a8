from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from dunning.engine.models import Case
from tests.api.conftest import error_of, fields_of
from tests.case_factories import add_message, make_case
from tests.conftest import NOW, ApiClient


@pytest.fixture
def cases(make_invoice: Callable[..., Any]) -> tuple[Case, Case]:
    return make_case(make_invoice("in_1", customer="cus_1")), make_case(
        make_invoice("in_2", customer="cus_2")
    )


def test_a_message_is_shown_exactly_as_stored(api: ApiClient, cases: tuple[Case, Case]) -> None:
    sent_at = NOW - timedelta(hours=2)
    message = add_message(
        cases[0],
        NOW - timedelta(hours=3),
        to="somchai@example.co.th",
        locale="th-TH",
        subject="แจ้งเตือนการชำระเงิน",
        body_text="เรียน คุณสมชาย\n\nใบแจ้งหนี้ INV-in_1 เลยกำหนดชำระแล้ว",
        step="overdue_1",
        template="reminder_overdue",
        variant="b",
        status="sent",
        sent_at=sent_at,
        attempts=1,
    )

    response = api.get(f"/messages/{message.pk}")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": message.pk,
        "case": cases[0].pk,
        "customer": "cus_1",
        "channel": "email",
        "to": "somchai@example.co.th",
        "locale": "th-TH",
        "subject": "แจ้งเตือนการชำระเงิน",
        "body_text": "เรียน คุณสมชาย\n\nใบแจ้งหนี้ INV-in_1 เลยกำหนดชำระแล้ว",
        "step": "overdue_1",
        "template": "reminder_overdue",
        "variant": "b",
        "status": "sent",
        "send_after": "2026-03-16T00:00:00Z",
        "attempts": 1,
        "last_error": "",
        "sent_at": "2026-03-16T01:00:00Z",
        "created_at": "2026-03-16T00:00:00Z",
    }


def test_messages_are_listed_newest_first_and_filtered(
    api: ApiClient, cases: tuple[Case, Case]
) -> None:
    first = add_message(cases[0], NOW, status="sent", sent_at=NOW)
    second = add_message(cases[1], NOW)
    third = add_message(cases[0], NOW, status="failed", last_error="550 5.1.1 no such user")
    fourth = add_message(cases[0], NOW, channel="sms", to="+66812345678", status="canceled")

    def ids(**params: Any) -> list[int]:
        response = api.get("/messages", **params)
        assert response.status_code == 200, response.content
        return [m["id"] for m in response.json()["results"]]

    assert ids() == [fourth.pk, third.pk, second.pk, first.pk]
    assert ids(case=cases[0].pk) == [fourth.pk, third.pk, first.pk]
    assert ids(customer="cus_2") == [second.pk]
    assert ids(customer="cus_1", status="failed") == [third.pk]
    assert ids(channel="sms") == [fourth.pk]
    assert ids(case=cases[1].pk, customer="cus_1") == []
    assert ids(customer="nobody") == []
    failed = api.get(f"/messages/{third.pk}").json()
    assert (failed["status"], failed["last_error"]) == ("failed", "550 5.1.1 no such user")


def test_bad_filters_are_validation_errors(api: ApiClient, db: None) -> None:
    assert "case" in fields_of(api.get("/messages", case=2**64))
    assert "case" in fields_of(api.get("/messages", case="abc"))
    assert "status" in fields_of(api.get("/messages", status="delivered"))


def test_an_unknown_message_is_not_found(api: ApiClient, db: None) -> None:
    assert error_of(api.get("/messages/12345"), 404)["code"] == "not_found"


def test_messages_need_the_api_key(db: None) -> None:
    from django.test import Client

    assert Client().get("/api/v1/messages").status_code == 401
    assert Client().get("/api/v1/cases").status_code == 401
