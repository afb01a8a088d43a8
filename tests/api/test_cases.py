from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from dunning.engine.models import Case, CaseEvent, Message
from dunning.engine.retries import AUTHENTICATION_WINDOW
from tests.api.conftest import error_of, fields_of
from tests.case_factories import add_event, add_message, make_case
from tests.conftest import NOW, ApiClient

T0 = NOW - timedelta(days=1)


@pytest.fixture
def case(make_invoice: Callable[..., Any]) -> Case:
    """An active THB case over two invoices of cus_1 (1,234.50 and 500.00)."""
    older = make_invoice("in_1", due_at=NOW - timedelta(days=10), number="INV-001")
    newer = make_invoice("in_2", amount_due=50000, number="INV-002")
    return make_case(newer, older)


def test_a_case_shows_its_state_money_invoices_and_next_action(api: ApiClient, case: Case) -> None:
    response = api.get(f"/cases/{case.pk}")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == case.pk
    assert body["customer"] == "cus_1"
    assert body["status"] == "active"
    assert body["currency"] == "THB"
    assert body["amount_due"] == 173450
    assert body["next_action_at"] == "2026-03-16T09:00:00Z"
    assert body["policy"] == "test.default" and body["policy_version"] == 1
    # Earliest due first.
    assert [(i["external_id"], i["number"], i["amount_remaining"]) for i in body["invoices"]] == [
        ("in_1", "INV-001", 123450),
        ("in_2", "INV-002", 50000),
    ]
    assert body["timeline"] == []


def test_the_timeline_merges_events_and_messages_oldest_first(api: ApiClient, case: Case) -> None:
    opened = add_event(case, "opened", T0, to_state="active", reason="invoice_overdue")
    sent = add_message(
        case, T0 + timedelta(minutes=1), status="sent", sent_at=T0 + timedelta(hours=3)
    )
    planned = add_event(case, "message.planned", T0 + timedelta(hours=2))
    # Written at the same moment as an event: the event (the decision) comes first.
    tie_event = add_event(case, "message.planned", T0 + timedelta(hours=5))
    scheduled = add_message(case, T0 + timedelta(hours=5), step="overdue_2")

    body = api.get(f"/cases/{case.pk}").json()

    entries = [(e["kind"], (e["event"] or e["message"])["id"], e["at"]) for e in body["timeline"]]
    assert entries == [
        ("event", opened.pk, "2026-03-15T03:00:00Z"),
        ("event", planned.pk, "2026-03-15T05:00:00Z"),
        ("message", sent.pk, "2026-03-15T06:00:00Z"),
        ("event", tie_event.pk, "2026-03-15T08:00:00Z"),
        ("message", scheduled.pk, "2026-03-15T08:00:00Z"),
    ]
    first = body["timeline"][0]
    assert first["message"] is None
    assert first["event"]["type"] == "opened"
    assert first["event"]["reason"] == "invoice_overdue"
    assert first["event"]["to_state"] == "active"
    last = body["timeline"][-1]
    assert last["event"] is None
    assert last["message"]["status"] == "scheduled"
    assert last["message"]["step"] == "overdue_2"


def test_cases_are_listed_newest_first_and_filtered_by_customer_and_status(
    api: ApiClient, make_invoice: Callable[..., Any]
) -> None:
    first = make_case(make_invoice("in_1", customer="cus_1"))
    second = make_case(make_invoice("in_2", customer="cus_2"), state="paused")
    third = make_case(make_invoice("in_3", customer="cus_1", currency="USD"), state="recovered")

    def ids(**params: Any) -> list[int]:
        response = api.get("/cases", **params)
        assert response.status_code == 200, response.content
        return [c["id"] for c in response.json()["results"]]

    assert ids() == [third.pk, second.pk, first.pk]
    assert ids(customer="cus_1") == [third.pk, first.pk]
    assert ids(status="paused") == [second.pk]
    assert ids(customer="cus_1", status="active") == [first.pk]
    assert ids(currency="usd") == [third.pk]
    assert ids(customer="nobody") == []
    listed = api.get("/cases", customer="cus_2").json()["results"][0]
    assert listed["status"] == "paused"
    assert [i["external_id"] for i in listed["invoices"]] == ["in_2"]
    assert "timeline" not in listed


def test_an_unknown_status_filter_is_a_validation_error(api: ApiClient, db: None) -> None:
    assert "status" in fields_of(api.get("/cases", status="open"))


def test_pausing_cancels_what_was_scheduled_and_records_why(api: ApiClient, case: Case) -> None:
    sent = add_message(case, T0, status="sent", sent_at=T0)
    scheduled = add_message(case, T0 + timedelta(hours=1), send_after=NOW + timedelta(days=1))

    response = api.post(f"/cases/{case.pk}/pause", {"reason": "customer promised to pay"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "paused"
    assert body["next_action_at"] is None
    case.refresh_from_db()
    assert case.state == "paused" and case.updated_at == NOW and case.next_action_at is None
    assert Message.objects.get(pk=scheduled.pk).status == "canceled"
    assert Message.objects.get(pk=sent.pk).status == "sent"
    event = CaseEvent.objects.get(case=case)
    assert (event.type, event.reason, event.from_state, event.to_state) == (
        "paused",
        "customer promised to pay",
        "active",
        "paused",
    )
    assert event.occurred_at == NOW
    assert event.data == {"source": "api", "canceled_messages": 1}
    assert body["timeline"][-1]["event"]["type"] == "paused"


def test_resuming_hands_the_case_back_to_the_engine_at_once(api: ApiClient, case: Case) -> None:
    assert api.post(f"/cases/{case.pk}/pause", {"reason": "on hold"}).status_code == 200

    response = api.post(f"/cases/{case.pk}/resume", {"reason": "promise broken"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "active"
    assert body["next_action_at"] == "2026-03-16T03:00:00Z"
    assert [e["event"]["type"] for e in body["timeline"]] == ["paused", "resumed"]
    resumed = CaseEvent.objects.filter(case=case).last()
    assert resumed is not None
    assert (resumed.from_state, resumed.to_state, resumed.reason) == (
        "paused",
        "active",
        "promise broken",
    )


def test_resuming_an_active_case_is_a_conflict_and_changes_nothing(
    api: ApiClient, case: Case
) -> None:
    error = error_of(api.post(f"/cases/{case.pk}/resume", {"reason": "secret words"}), 409)

    assert error["code"] == "conflict"
    assert "active" in error["message"]
    assert "secret words" not in error["message"]  # the submitted value is never echoed
    case.refresh_from_db()
    assert case.state == "active"
    assert not CaseEvent.objects.filter(case=case).exists()


@pytest.mark.parametrize("state", ["paused", "recovered", "exhausted", "closed"])
def test_only_an_active_case_can_be_paused(
    api: ApiClient, make_invoice: Callable[..., Any], state: str
) -> None:
    case = make_case(make_invoice(), state=state)
    scheduled = add_message(case, T0)

    error_of(api.post(f"/cases/{case.pk}/pause", {"reason": "hold"}), 409)

    assert Message.objects.get(pk=scheduled.pk).status == "scheduled"
    assert not CaseEvent.objects.filter(case=case).exists()


def test_a_reason_is_required(api: ApiClient, case: Case) -> None:
    assert "reason" in fields_of(api.post(f"/cases/{case.pk}/pause", {}))
    assert "reason" in fields_of(api.post(f"/cases/{case.pk}/pause", {"reason": ""}))
    assert "note" in fields_of(api.post(f"/cases/{case.pk}/pause", {"reason": "x", "note": 1}))


def test_an_unknown_case_is_not_found(api: ApiClient, db: None) -> None:
    assert error_of(api.get("/cases/999"), 404)["code"] == "not_found"
    assert error_of(api.post("/cases/999/pause", {"reason": "x"}), 404)["code"] == "not_found"
    assert error_of(api.post("/cases/999/resume", {"reason": "x"}), 404)["code"] == "not_found"
    assert "id" in fields_of(api.get(f"/cases/{2**64}"))


def test_a_repeated_pause_with_the_same_idempotency_key_is_replayed(
    api: ApiClient, case: Case
) -> None:
    first = api.post(f"/cases/{case.pk}/pause", {"reason": "hold"}, **{"Idempotency-Key": "k1"})
    again = api.post(f"/cases/{case.pk}/pause", {"reason": "hold"}, **{"Idempotency-Key": "k1"})

    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert CaseEvent.objects.filter(case=case).count() == 1


def in_doubt(case: Case) -> Case:
    """The case's last retry got no answer, and the engine stopped asking (a case the
    retry stage charges: its invoices are charged automatically)."""
    Case.objects.filter(pk=case.pk).update(
        collection_method="charge_automatically",
        next_retry_at=None,
        retry_key="case1:try2:0123456789abcdef",
        retry_reason="a charge's outcome is unknown: check the gateway",
        charge_in_doubt_since=T0,
    )
    case.refresh_from_db()
    return case


def test_a_charge_in_doubt_shows_and_an_operator_can_release_it(api: ApiClient, case: Case) -> None:
    case = in_doubt(case)
    assert api.get(f"/cases/{case.pk}").json()["charge_in_doubt_since"] == "2026-03-15T03:00:00Z"

    response = api.post(
        f"/cases/{case.pk}/charge-in-doubt/release", {"reason": "no charge in the dashboard"}
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["charge_in_doubt_since"] is None
    assert body["next_retry_at"] is None  # not planned yet, and it says so
    assert body["retry_reason"].startswith("the next retry is being planned")
    entry = body["timeline"][-1]["event"]
    assert (entry["type"], entry["reason"]) == ("retry.released", "no charge in the dashboard")
    case.refresh_from_db()
    assert (case.retry_key, case.charge_in_doubt_since, case.updated_at) == ("", None, NOW)
    assert case.next_retry_at == NOW  # the retry stage's next pass plans it afresh


def test_a_pay_page_payment_waiting_at_the_bank_is_not_shown_as_a_retry(
    api: ApiClient, case: Case
) -> None:
    # The customer was sent to their bank (3-D Secure) from the pay page: that payment
    # is never sent again without them (`retries.on_session`), only looked up later.
    Case.objects.filter(pk=case.pk).update(
        retry_key=f"pay{case.pk}:try2:0123456789abcdef",
        charge_in_doubt_since=NOW,
        next_retry_at=NOW + AUTHENTICATION_WINDOW,
        retry_reason="a payment on the pay page is under way",
    )

    body = api.get(f"/cases/{case.pk}").json()

    assert body["next_retry_at"] is None
    assert body["charge_in_doubt_since"] == "2026-03-16T03:00:00Z"
    assert "pay page" in body["retry_reason"] and "looks it up" in body["retry_reason"]


def test_a_pay_page_payment_the_engine_stopped_asking_about_keeps_the_operator_s_reason(
    api: ApiClient, case: Case
) -> None:
    in_doubt(case)
    Case.objects.filter(pk=case.pk).update(retry_key=f"pay{case.pk}:try2:0123456789abcdef")

    body = api.get(f"/cases/{case.pk}").json()

    assert body["next_retry_at"] is None
    assert body["retry_reason"] == "a charge's outcome is unknown: check the gateway"


def test_a_retry_in_doubt_still_shows_when_it_is_asked_about_again(
    api: ApiClient, case: Case
) -> None:
    in_doubt(case)
    Case.objects.filter(pk=case.pk).update(next_retry_at=NOW + timedelta(minutes=10))

    assert api.get(f"/cases/{case.pk}").json()["next_retry_at"] == "2026-03-16T03:10:00Z"


def test_releasing_with_no_charge_in_doubt_is_a_conflict_and_changes_nothing(
    api: ApiClient, case: Case
) -> None:
    before = Case.objects.values().get(pk=case.pk)

    error = error_of(
        api.post(f"/cases/{case.pk}/charge-in-doubt/release", {"reason": "secret words"}), 409
    )

    assert error["code"] == "conflict"
    assert "no charge in doubt left to an operator" in error["message"]
    assert "secret words" not in error["message"]
    assert Case.objects.values().get(pk=case.pk) == before
    assert not CaseEvent.objects.filter(case=case).exists()


def test_a_release_needs_a_reason_and_a_case(api: ApiClient, case: Case) -> None:
    case = in_doubt(case)
    assert "reason" in fields_of(api.post(f"/cases/{case.pk}/charge-in-doubt/release", {}))
    assert Case.objects.get(pk=case.pk).charge_in_doubt_since == T0
    error_of(api.post(f"/cases/{case.pk + 1}/charge-in-doubt/release", {"reason": "x"}), 404)


def test_operators_find_the_cases_waiting_for_them_in_the_admin(
    case: Case, make_invoice: Callable[..., Any]
) -> None:
    other = make_case(make_invoice("in_9", customer="cus_9"))  # not in doubt
    case = in_doubt(case)
    client = Client()
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "a-long-password"))

    listing = client.get("/admin/engine/case/", {"in_doubt": "stopped"})

    assert listing.status_code == 200
    shown = [row.pk for row in listing.context["cl"].result_list]
    assert shown == [case.pk] and other.pk not in shown
