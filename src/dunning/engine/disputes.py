"""A customer disputing a payment at their bank: automatic dunning leaves them to a person.

A dispute (a chargeback, or an inquiry before one) says the customer disagrees
with what was charged.  Chasing them meanwhile, by reminder or by retried
charge, risks a second dispute, a complaint, and for a debt collector the
law's "cease collection until verified" (FDCPA 809(b)).  So while one of a
customer's disputes is open, their active cases are paused (scheduled
messages canceled, no retry), and a case that opens for them opens paused.
Nothing resumes on its own when the dispute closes, won or lost: the case's
timeline says so, and an operator resumes it (`POST /api/v1/cases/{id}/resume`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dunning.core.cases import CaseState
from dunning.engine.cases import dispute_pause_reason, pause
from dunning.engine.models import OPEN_STATES, Case, CaseEvent
from dunning.ledger.models import Dispute


def on_dispute_changed(*, dispute: Dispute, opened: bool, now: datetime, **_: Any) -> None:
    """Pause the customer's active cases when a dispute opens; say on their open cases
    when it closes (they stay as they are)."""
    if opened:
        # Locked as they are found, in one order, and read again after any wait: a case
        # a payment recovered or an operator paused meanwhile is no longer active and is
        # left as it is (pausing it would refuse, and the dispute would not be recorded).
        active = (
            Case.objects.select_for_update()
            .filter(customer_id=dispute.customer_id, state=CaseState.ACTIVE)
            .order_by("pk")
        )
        for case in active:
            pause(case, now=now, reason=dispute_pause_reason(dispute), source="dispute")
        return
    if dispute.is_open:
        return
    CaseEvent.objects.bulk_create(
        CaseEvent(
            case=case,
            type="dispute.closed",
            reason=f"dispute {dispute.external_id} closed ({dispute.status}): "
            + (
                "the case stays paused until someone resumes it"
                if case.state == CaseState.PAUSED
                else "nothing changes for the case"
            ),
            data={"dispute": dispute.external_id, "status": dispute.status},
            occurred_at=now,
        )
        for case in Case.objects.filter(customer_id=dispute.customer_id, state__in=OPEN_STATES)
    )
