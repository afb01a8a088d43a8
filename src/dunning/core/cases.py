"""A dunning case: one customer's overdue money in one currency, and its states.

A case opens when an invoice goes overdue or a payment attempt fails (or, for
invoices sent to be paid by hand, shortly before the due date so the courtesy
reminder can go out).  Every change of state is a pure transition that returns
the new state and the event that records why; an impossible change raises
`CaseTransitionError` and changes nothing.

    active ──pause──► paused ──resume──► active
      │ └─final action─► exhausted
      ├──── paid in full (from active, paused or exhausted) ──► recovered
      └──── closed by an operator (from any state but closed) ──► closed
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class CaseState(StrEnum):
    ACTIVE = "active"  # reminders go out on the policy's schedule
    PAUSED = "paused"  # an operator (or a promise to pay) holds every contact
    RECOVERED = "recovered"  # nothing is owed any more
    EXHAUSTED = "exhausted"  # the policy ran out: its final action was taken
    CLOSED = "closed"  # settled outside the engine (written off, disputed, merged)


class CaseEventType(StrEnum):
    OPENED = "opened"
    PAYMENT_APPLIED = "payment_applied"  # a partial payment: less is owed, the case goes on
    # Less is owed with no money received (an invoice of the case voided): the case goes on.
    DEBT_REDUCED = "debt_reduced"
    RECOVERED = "recovered"
    PAUSED = "paused"
    RESUMED = "resumed"
    EXHAUSTED = "exhausted"
    CLOSED = "closed"


class OpenReason(StrEnum):
    INVOICE_DUE_SOON = "invoice_due_soon"  # a send_invoice case, for the courtesy reminder
    INVOICE_OVERDUE = "invoice_overdue"
    PAYMENT_FAILED = "payment_failed"


class CaseTransitionError(ValueError):
    """A transition the case's state does not allow; the message names both."""


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """One entry of the case's timeline: what happened and why."""

    type: CaseEventType
    reason: str
    from_state: CaseState | None  # None when the case is opened
    to_state: CaseState


@dataclass(frozen=True, slots=True)
class Transition:
    state: CaseState
    event: CaseEvent


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the policy chooser and the planner need to know about a case.

    `due_at` is when the earliest invoice of the case falls due (the start of the
    due date, in the customer's time zone, as an aware UTC datetime); `failed_at`
    is the first failed payment attempt.  Steps are anchored on one or the other.
    """

    case_id: str
    state: CaseState
    collection_method: str  # "send_invoice" or "charge_automatically"
    currency: str  # ISO 4217
    amount_due: int  # minor units still owed, across the case's invoices
    country: str = ""  # ISO 3166 alpha-2 of the customer, "" when unknown
    is_business: bool = False
    due_at: datetime | None = None
    failed_at: datetime | None = None


# Which event may happen in which state, and where it leads.  PAYMENT_APPLIED and
# DEBT_REDUCED keep the state they happen in, so `apply_payment` and `reduce_debt`
# handle them, not this table.
_ALLOWED: dict[tuple[CaseState, CaseEventType], CaseState] = {
    (CaseState.ACTIVE, CaseEventType.PAUSED): CaseState.PAUSED,
    (CaseState.ACTIVE, CaseEventType.RECOVERED): CaseState.RECOVERED,
    (CaseState.ACTIVE, CaseEventType.EXHAUSTED): CaseState.EXHAUSTED,
    (CaseState.ACTIVE, CaseEventType.CLOSED): CaseState.CLOSED,
    (CaseState.PAUSED, CaseEventType.RESUMED): CaseState.ACTIVE,
    (CaseState.PAUSED, CaseEventType.RECOVERED): CaseState.RECOVERED,
    (CaseState.PAUSED, CaseEventType.CLOSED): CaseState.CLOSED,
    # A customer may still pay after the final action; the money is welcome.
    (CaseState.EXHAUSTED, CaseEventType.RECOVERED): CaseState.RECOVERED,
    (CaseState.EXHAUSTED, CaseEventType.CLOSED): CaseState.CLOSED,
    (CaseState.RECOVERED, CaseEventType.CLOSED): CaseState.CLOSED,
}

# States in which money is still owed, so a payment can be applied.
_OWING = frozenset({CaseState.ACTIVE, CaseState.PAUSED, CaseState.EXHAUSTED})


def _move(state: CaseState, event: CaseEventType, reason: str) -> Transition:
    target = _ALLOWED.get((state, event))
    if target is None:
        raise CaseTransitionError(f"a case that is {state} cannot be {event} ({reason})")
    return Transition(target, CaseEvent(event, reason, state, target))


def open_case(*, reason: OpenReason) -> Transition:
    """A new case, active from the start."""
    return Transition(
        CaseState.ACTIVE,
        CaseEvent(CaseEventType.OPENED, str(reason), None, CaseState.ACTIVE),
    )


def apply_payment(state: CaseState, *, remaining: int, reason: str = "payment") -> Transition:
    """A payment reduced what is owed to `remaining` minor units; 0 recovers the case."""
    if remaining < 0:
        raise CaseTransitionError(f"remaining must not be negative, got {remaining}")
    if state not in _OWING:
        raise CaseTransitionError(f"a case that is {state} owes nothing: cannot apply a payment")
    if remaining == 0:
        return _move(state, CaseEventType.RECOVERED, reason)
    return Transition(state, CaseEvent(CaseEventType.PAYMENT_APPLIED, reason, state, state))


def reduce_debt(state: CaseState, *, remaining: int, reason: str) -> Transition:
    """Less is owed, `remaining` minor units, though no money came (an invoice of the case
    voided): the case goes on for the rest.  Nothing left is no debt reduced but the
    case's end, recovered or closed (`apply_payment`, `close_case`)."""
    if remaining <= 0:
        raise CaseTransitionError(f"a reduced debt leaves something owed, got {remaining}")
    if state not in _OWING:
        raise CaseTransitionError(f"a case that is {state} owes nothing: cannot reduce it")
    return Transition(state, CaseEvent(CaseEventType.DEBT_REDUCED, reason, state, state))


def invoice_changed(
    state: CaseState,
    *,
    remaining: int,
    money_received: bool,
    voided: bool,
    reason: str,
    closing_reason: str,
) -> Transition:
    """What a change of one of the case's invoices does, now that `remaining` is owed:
    nothing owed and no money received on the case's invoices (all voided or credited
    away) closes it, with `closing_reason`; an invoice `voided` with more still owed
    reduces the debt; otherwise money came (`apply_payment`)."""
    if remaining == 0 and not money_received:
        return close_case(state, reason=closing_reason)
    if voided and remaining > 0:
        return reduce_debt(state, remaining=remaining, reason=reason)
    return apply_payment(state, remaining=remaining, reason=reason)


def pause_case(state: CaseState, *, reason: str) -> Transition:
    return _move(state, CaseEventType.PAUSED, reason)


def resume_case(state: CaseState, *, reason: str) -> Transition:
    return _move(state, CaseEventType.RESUMED, reason)


def exhaust_case(state: CaseState, *, reason: str) -> Transition:
    """The policy's final action was taken: no more reminders."""
    return _move(state, CaseEventType.EXHAUSTED, reason)


def close_case(state: CaseState, *, reason: str) -> Transition:
    return _move(state, CaseEventType.CLOSED, reason)
