"""What an operator (or the API on their behalf) does to a case: pause it, resume it.

Each action locks the case, asks `dunning.core.cases` whether the change is
allowed, and writes the new state and the `CaseEvent` that records why in one
transaction.  An impossible change raises `CaseTransitionError` and writes
nothing; a missing case raises `Case.DoesNotExist`.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from dunning.core import cases
from dunning.core.cases import CaseState, Transition
from dunning.engine import retries
from dunning.engine.models import Case, CaseEvent, Message, MessageStatus

__all__ = ["pause_case", "resume_case"]


def pause_case(case_id: int, *, now: datetime, reason: str, source: str) -> Case:
    """Hold every contact: the case's scheduled messages are canceled, nothing new is planned."""
    with transaction.atomic():
        case = _locked(case_id)
        transition = cases.pause_case(CaseState(case.state), reason=reason)
        canceled = Message.objects.filter(case=case, status=MessageStatus.SCHEDULED).update(
            status=MessageStatus.CANCELED, updated_at=now
        )
        case.next_action_at = None
        _record(case, transition, now=now, source=source, data={"canceled_messages": canceled})
        return case


def resume_case(case_id: int, *, now: datetime, reason: str, source: str) -> Case:
    """Back to the policy's schedule: the worker looks at the case again from `now`."""
    with transaction.atomic():
        case = _locked(case_id)
        transition = cases.resume_case(CaseState(case.state), reason=reason)
        # The worker replans from here; what was canceled on pausing is not revived.
        case.next_action_at = now
        _record(case, transition, now=now, source=source, data={})
        # A retry planned before the pause is planned afresh: the network rules and
        # the budget are judged again now (a charge in doubt keeps its key).
        retries.plan_again([case.pk], now=now)
        case.refresh_from_db()
        return case


def _locked(case_id: int) -> Case:
    return Case.objects.select_for_update().get(pk=case_id)


def _record(
    case: Case, transition: Transition, *, now: datetime, source: str, data: dict[str, object]
) -> None:
    event = transition.event
    case.state = transition.state.value
    case.updated_at = now
    case.save(update_fields=["state", "next_action_at", "updated_at"])
    CaseEvent.objects.create(
        case=case,
        type=event.type.value,
        reason=event.reason,
        from_state=event.from_state.value if event.from_state else "",
        to_state=event.to_state.value,
        data={"source": source, **data},
        occurred_at=now,
    )
