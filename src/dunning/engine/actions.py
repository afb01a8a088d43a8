"""What an operator (or the API on their behalf) does to a case: pause it, resume it.

Each action locks the case, asks `dunning.core.cases` whether the change is
allowed, and writes the new state and the `CaseEvent` that records why in one
transaction.  An impossible change raises `CaseTransitionError` and writes
nothing; a missing case raises `Case.DoesNotExist`.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from dunning.engine import cases as engine_cases
from dunning.engine import retries
from dunning.engine.models import Case

__all__ = ["pause_case", "resume_case"]


def pause_case(case_id: int, *, now: datetime, reason: str, source: str) -> Case:
    """Hold every contact: the case's scheduled messages are canceled, nothing new is planned."""
    with transaction.atomic():
        case = _locked(case_id)
        engine_cases.pause(case, now=now, reason=reason, source=source)
        return case


def resume_case(case_id: int, *, now: datetime, reason: str, source: str) -> Case:
    """Back to the policy's schedule: the worker looks at the case again from `now`."""
    with transaction.atomic():
        case = _locked(case_id)
        engine_cases.resume(case, now=now, reason=reason, source=source)
        # A retry planned before the pause is planned afresh: the network rules and
        # the budget are judged again now (a charge in doubt keeps its key).
        retries.plan_again([case.pk], now=now)
        case.refresh_from_db()
        return case


def _locked(case_id: int) -> Case:
    return Case.objects.select_for_update().get(pk=case_id)
