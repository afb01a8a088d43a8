"""What an operator and the API see of a case's next retry, across the case's life.

The case is driven by the real engine (the retry stage with the simulated
gateway, the decision stage, the operator's actions, a dispute) and read
through the API (`GET /api/v1/cases/{id}`) and the admin's case list.
"""

from __future__ import annotations

import html
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from dunning.core.policy import CHARGE_AUTOMATICALLY_DEFAULT, RetryBudget
from dunning.engine import actions, policies
from dunning.engine.cases import sync_cases
from dunning.engine.decisions import decide_due_cases
from dunning.engine.models import Case
from dunning.ledger import services
from dunning.ledger.models import Customer
from tests.conftest import ApiClient
from tests.engine.test_retries import (
    AMOUNT,
    T0,
    Bank,
    add_invoice,
    bank,
    case,
    customer,
    fail,
    planned,
)

__all__ = ["bank", "case", "customer"]  # fixtures


@pytest.fixture
def operator(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "a-long-password"))
    return client


def shown(api: ApiClient, case: Case) -> tuple[str | None, str]:
    body = api.get(f"/cases/{case.pk}").json()
    return body["next_retry_at"], body["retry_reason"]


def admin_shows(operator: Client, case: Case) -> list[str]:
    """The case's next retry and its reason as the admin shows them: in its row of the
    case list, and on its own page (whose timeline keeps the plans made before)."""
    listing = operator.get("/admin/engine/case/")
    page = operator.get(f"/admin/engine/case/{case.pk}/change/")
    assert listing.status_code == page.status_code == 200
    rows = listing.content.decode().split("<tr")
    (row,) = [row for row in rows if f"/case/{case.pk}/" in row]
    fields = [
        part.split("</div>\n")[0]
        for part in page.content.decode().split('<div class="form-row')
        if "field-next_retry" in part or "field-why_this_retry" in part
    ]
    assert len(fields) == 2
    return [html.unescape(shown) for shown in (row, "".join(fields))]


def dispute(status: str, *, at: timedelta) -> None:
    services.record_dispute(
        services.DisputeFacts(
            external_id="dp_1",
            customer=Customer.objects.get(external_id="cus_th"),
            invoice=None,
            amount=AMOUNT,
            currency="THB",
            reason="fraudulent",
            status=status,
            at=T0 + at,
        ),
        now=T0 + at,
        source="stripe",
    )


@pytest.mark.parametrize("by", ["operator", "dispute"])
def test_a_paused_case_shows_no_retry_and_says_it_waits_to_be_resumed(
    case: Case, bank: Bank, api: ApiClient, operator: Client, by: str
) -> None:
    planned_reason = planned(bank).retry_reason
    assert "retry on 22 Mar" in planned_reason

    if by == "operator":
        actions.pause_case(
            case.pk, now=T0 + timedelta(hours=1), reason="customer called", source="api"
        )
    else:
        dispute("needs_response", at=timedelta(hours=1))
    bank.run(T0 + timedelta(days=3))  # past the time once planned: nothing is charged

    assert bank.gateway.received == []
    at, reason = shown(api, case)
    assert at is None
    assert reason != planned_reason and "paused" in reason, reason
    for shown_there in admin_shows(operator, case):
        assert "March 22" not in shown_there and "22 Mar" not in shown_there
        assert reason in shown_there


def test_an_exhausted_case_shows_no_retry_and_says_why(
    customer: None, bank: Bank, api: ApiClient, operator: Client
) -> None:
    # A policy whose retries would go on for a month, past its final action (day 21).
    policies.save_policy(
        replace(CHARGE_AUTOMATICALLY_DEFAULT, retry=RetryBudget(8, timedelta(days=30))),
        T0 - timedelta(days=1),
    )
    add_invoice(collection_method="charge_automatically")
    fail()
    sync_cases(now=T0)
    case = Case.objects.get()
    now = T0
    while Case.objects.get().state == "active":  # the policy's steps, to its final action
        bank.run(now)
        decide_due_cases(now=now)
        now += timedelta(hours=6)
        assert now < T0 + timedelta(days=60)
    charged = len(bank.gateway.received)
    for day in range(1, 30):
        bank.run(now + timedelta(days=day))
    assert len(bank.gateway.received) == charged  # an exhausted case is never charged

    at, reason = shown(api, case)
    assert at is None
    assert "retry on" not in reason and "final action" in reason, reason
    for shown_there in admin_shows(operator, case):
        assert "retry on" not in shown_there and reason in shown_there


def test_a_resumed_case_says_its_retry_is_being_planned_then_shows_the_plan(
    case: Case, bank: Bank, api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned(bank)
    actions.pause_case(case.pk, now=T0 + timedelta(hours=1), reason="promise", source="api")
    resumed = T0 + timedelta(days=3)  # past the retry planned before the pause
    monkeypatch.setattr(timezone, "now", lambda: resumed)

    response = api.post(f"/cases/{case.pk}/resume", {"reason": "no payment came"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["next_retry_at"] is None
    assert "22 Mar" not in body["retry_reason"] and "planned" in body["retry_reason"]
    bank.run(resumed)
    at, reason = shown(api, case)
    assert at is not None and datetime.fromisoformat(at) > resumed
    assert "retry on" in reason


def test_a_new_case_says_its_retry_is_being_planned(case: Case, api: ApiClient) -> None:
    at, reason = shown(api, case)

    assert at is None and "planned" in reason, reason


def test_a_case_of_invoices_sent_for_payment_says_they_are_not_charged(
    customer: None, bank: Bank, api: ApiClient
) -> None:
    # Overdue by a day: its case opens, and the retry stage has nothing to charge.
    add_invoice(collection_method="send_invoice", due_at=T0 - timedelta(days=1))
    sync_cases(now=T0)
    case = Case.objects.get()
    bank.run(T0)

    at, reason = shown(api, case)

    assert at is None and "not charged" in reason, reason
