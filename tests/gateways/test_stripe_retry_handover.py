"""Dunning and Stripe's own retries (`next_payment_attempt`) hand the invoice over.

Stripe's events of one failed charge come a second apart; a worker's pass may
fall between them.  Whenever Stripe stops retrying, dunning must take over."""

from __future__ import annotations

from dunning.engine import policies
from dunning.engine.cases import sync_cases
from dunning.engine.models import Case
from dunning.engine.retries import retry_due
from dunning.gateways.base import ChargeRequest, ChargeResult
from dunning.ledger.models import Invoice
from tests.gateways.stripe_webhooks import StripePoster, at, s1


class NoCharges:
    """A gateway named like Stripe's that must not be asked to charge in these tests."""

    name = "stripe"

    def charge(self, request: ChargeRequest) -> ChargeResult:  # pragma: no cover
        raise AssertionError("no charge expected")


def test_when_stripe_stops_retrying_after_the_worker_planned_dunning_takes_over(
    stripe: StripePoster,
) -> None:
    """Stripe's last automatic retry fails and Stripe leaves the invoice open
    (next_payment_attempt null).  Stripe sends charge.failed a second before
    invoice.payment_failed; a worker that plans in between sees Stripe's old
    retry time and stops planning.  The invoice.payment_failed that clears
    the time must wake the case again, or nobody ever retries the invoice."""
    policies.ensure_default_policies(now=at(s1(4)["created"]))
    for seq in (4, 6, 7, 8):
        assert stripe.send(s1(seq)).status_code == 200
    sync_cases(now=at(s1(8)["created"] + 1))
    invoice = Invoice.objects.get()
    assert invoice.gateway_retry_at is not None  # Stripe retries on its own: dunning waits

    # Stripe's retry at next_payment_attempt fails: its charge's events come first.
    for seq in (10, 11):
        assert stripe.send(s1(seq)).status_code == 200
    retry_due(now=at(s1(11)["created"] + 1), gateway=NoCharges())  # a worker's pass
    case = Case.objects.get()
    assert case.retry_key == ""  # no charge of dunning's: "the gateway retries ... itself"
    assert case.retry_reason.startswith("the gateway retries this invoice itself")

    last = s1(12)  # invoice.payment_failed: Stripe will not retry any more
    last["data"]["object"]["next_payment_attempt"] = None
    assert stripe.send(last).json()["outcome"] == "applied"
    invoice.refresh_from_db()
    assert (invoice.status, invoice.gateway_retry_at) == ("open", None)

    case.refresh_from_db()
    assert case.state == "active"
    assert case.next_retry_at is not None, (
        "Stripe stopped retrying but nothing wakes the retry stage: the case is never charged"
    )


def test_with_stripe_retries_off_a_first_decline_planned_early_is_still_retried(
    stripe: StripePoster,
) -> None:
    """Smart Retries off: dunning is the only retrier.  invoice.finalized recorded
    Stripe's first charge time as a gateway retry; the worker (sync_cases, then the
    retry stage) runs between charge.failed and invoice.payment_failed, sees that
    time and plans nothing; invoice.payment_failed then clears it (null
    next_payment_attempt) and nothing plans the case again."""
    policies.ensure_default_policies(now=at(s1(4)["created"]))
    for seq in (4, 6, 7):
        assert stripe.send(s1(seq)).status_code == 200
    assert Invoice.objects.get().gateway_retry_at is not None  # finalized: Stripe's first try
    worker_at = at(s1(7)["created"] + 1)
    sync_cases(now=worker_at)
    retry_due(now=worker_at, gateway=NoCharges())

    failed = s1(8)
    failed["data"]["object"]["next_payment_attempt"] = None  # Stripe will not retry
    assert stripe.send(failed).json()["outcome"] == "applied"
    sync_cases(now=at(failed["created"] + 1))

    case = Case.objects.get()
    assert case.state == "active" and Invoice.objects.get().gateway_retry_at is None
    assert case.next_retry_at is not None, f"never retried: {case.retry_reason!r}"
