"""A customer disputing a payment at their bank (S3): recorded, and their dunning paused."""

from __future__ import annotations

from datetime import timedelta

from dunning.engine.cases import sync_cases
from dunning.engine.decisions import decide_due_cases
from dunning.engine.models import Case, CaseEvent, Message
from dunning.ledger import services
from dunning.ledger.models import Customer, Dispute
from tests.gateways.stripe_webhooks import StripePoster, at, story, story_event
from tests.gateways.test_stories import play, play_rest

DISPUTE = "dp_1449OWTXLm7QxR2nVb3AdbsQ"
CREATED, CLOSED = 10, 13  # S3's seq of charge.dispute.created and .closed


def an_overdue_invoice(customer: Customer, *, number: str = "INV-OLD") -> None:
    """An older invoice the customer has not paid, sent for payment and overdue."""
    due = at(story_event("S3", 9)["created"]) - timedelta(days=10)
    services.upsert_invoice(
        facts=services.InvoiceFacts(
            external_id=f"in_{number}",
            customer=customer.external_id,
            number=number,
            currency="USD",
            amount_due=4900,
            issued_at=due - timedelta(days=14),
            due_at=due,
            collection_method="send_invoice",
        ),
        now=due - timedelta(days=14),
        source="test",
    )


def test_s3_the_dispute_is_recorded_with_its_outcome(stripe: StripePoster) -> None:
    cast = story("S3")["cast"]
    play(stripe, "S3")

    dispute = Dispute.objects.get()
    assert (dispute.external_id, dispute.status, dispute.reason) == (DISPUTE, "lost", "fraudulent")
    assert (dispute.amount, dispute.currency) == (1500, "USD")
    assert dispute.invoice is not None and dispute.invoice.external_id == cast["invoice"]
    assert dispute.opened_at == at(story_event("S3", CREATED)["created"])
    assert dispute.closed_at == at(story_event("S3", CLOSED)["created"])


def test_s3_an_open_dispute_pauses_the_customer_s_dunning_until_someone_resumes_it(
    stripe: StripePoster,
) -> None:
    play(stripe, "S3", until=CREATED - 1)
    customer = Customer.objects.get(external_id=story("S3")["cast"]["customer"])
    an_overdue_invoice(customer)
    before = at(story_event("S3", CREATED)["created"]) - timedelta(hours=1)
    sync_cases(now=before)
    decide_due_cases(now=before)
    case = Case.objects.get()
    assert case.state == "active"

    play_rest(stripe, "S3", after=CREATED - 1)

    case.refresh_from_db()
    assert (case.state, case.next_action_at, case.next_retry_at) == ("paused", None, None)
    paused = CaseEvent.objects.get(case=case, type="paused")
    assert DISPUTE in paused.reason and "fraudulent" in paused.reason
    assert "$15.00" in paused.reason
    assert not Message.objects.filter(status="scheduled").exists()
    closed = CaseEvent.objects.get(case=case, type="dispute.closed")
    assert "lost" in closed.reason and "stays paused" in closed.reason
    # The worker leaves it alone: nothing written, nothing charged.
    later = at(story_event("S3", CLOSED)["created"]) + timedelta(days=1)
    assert decide_due_cases(now=later).cases == 0


def test_a_case_opening_while_the_customer_disputes_a_payment_opens_paused(
    stripe: StripePoster,
) -> None:
    play(stripe, "S3", until=CREATED)
    customer = Customer.objects.get(external_id=story("S3")["cast"]["customer"])
    an_overdue_invoice(customer)

    now = at(story_event("S3", CREATED)["created"]) + timedelta(hours=1)
    assert sync_cases(now=now) == 1

    case = Case.objects.get()
    assert (case.state, case.next_action_at) == ("paused", None)
    assert [e.type for e in CaseEvent.objects.filter(case=case).order_by("id")] == [
        "opened",
        "paused",
    ]
    assert decide_due_cases(now=now).cases == 0 and not Message.objects.exists()


def test_a_dispute_closed_before_its_opening_arrives_pauses_nothing(
    stripe: StripePoster,
) -> None:
    play(stripe, "S3", until=CREATED - 1)
    customer = Customer.objects.get(external_id=story("S3")["cast"]["customer"])
    an_overdue_invoice(customer)
    sync_cases(now=at(story_event("S3", CREATED)["created"]))

    for seq in (CLOSED, CREATED, 11, 12):  # Stripe does not promise order
        assert stripe.send(story_event("S3", seq)).status_code == 200

    dispute = Dispute.objects.get()
    assert dispute.status == "lost"
    assert dispute.opened_at == at(story_event("S3", CREATED)["created"])
    assert Case.objects.get().state == "active"
