"""A case's next retry as a person reads it: when the card is charged next, and why (or why not).

`Case.next_retry_at` is the retry stage's wake-up, and `retry_reason` the
text of its last plan: a case that stopped being active keeps both as they
were (a paused case is planned afresh when it is resumed), and a wake-up is
not always a charge (a lease, a lookup, a plan to make).  The API (`GET
/api/v1/cases/{id}`) and the admin's case pages show `retry_status`, so that
they say the same thing, and only what will happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dunning.core.cases import CaseState
from dunning.engine.models import Case
from dunning.engine.retries import on_session
from dunning.ledger.models import CollectionMethod

# Why a case that is not active is not retried: the retry stage claims active
# cases only (`retries.claim_due_retries`), whatever their last plan said.
NOT_RETRIED = {
    CaseState.PAUSED: "the case is paused: no retry until someone resumes it",
    CaseState.EXHAUSTED: "the policy's final action was taken: nothing is charged any more",
    CaseState.RECOVERED: "paid",
    CaseState.CLOSED: "the case is closed: the card is not charged again",
}
# An active case of invoices the customer pays themselves (`send_invoice`): the retry
# stage charges none (a payment made on the pay page is asked about like any other).
NOT_CHARGED = "invoices sent for payment are not charged: the customer pays them"
# An active case whose wake-up is due with no charge planned: a new case, one resumed,
# one whose card or declines changed (`retries.plan_again`) waits for the retry stage's
# next pass to plan it; the reason stored is the plan before, if any.
PLANNING = "the next retry is being planned: the engine decides when at its next pass"
PAY_PAGE_LOOKUP = (
    "a payment made on the pay page is waiting for its answer (the customer may be "
    "confirming it with their bank); the engine looks it up and never sends it again "
    "without the customer"
)


@dataclass(frozen=True, slots=True)
class RetryStatus:
    # When the declined charge is made again (or a charge in doubt asked about again
    # under its key); None when no retry will happen.
    at: datetime | None
    reason: str  # why that moment, or why no retry


def retry_status(case: Case, *, now: datetime) -> RetryStatus:
    """What `case`'s next retry is, for a person, at `now`."""
    if case.charge_in_doubt_since is not None:
        # Asked about in any state.  With no wake-up the engine has stopped asking,
        # and its own text tells the operator what to check.
        if not on_session(case.retry_key):
            return RetryStatus(case.next_retry_at, case.retry_reason)
        # A pay-page payment is never sent again without the customer: its wake-up
        # is a lookup, not a retry.
        if case.next_retry_at is not None:
            return RetryStatus(None, PAY_PAGE_LOOKUP)
        return RetryStatus(None, case.retry_reason)
    if case.state != CaseState.ACTIVE:
        return RetryStatus(None, NOT_RETRIED[CaseState(case.state)])
    if case.collection_method == CollectionMethod.SEND_INVOICE:
        return RetryStatus(None, NOT_CHARGED)
    if case.retry_key and not on_session(case.retry_key):
        return RetryStatus(case.next_retry_at, case.retry_reason)
    if case.next_retry_at is not None and case.next_retry_at <= now:
        return RetryStatus(None, PLANNING)
    # No retry, or a wake-up that is not a charge (the gateway retries the invoice
    # itself; another charge on the card is under way): the plan says which.
    return RetryStatus(None, case.retry_reason)
